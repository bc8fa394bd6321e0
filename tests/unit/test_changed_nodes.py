"""plan.changed_nodes: per host, the nodes a converge has to create or recreate (the slice role
runs a converge with many of them asynchronously, and a no-change re-run as one plain call)."""
import copy

from ansible_collections.testbed.containers.plugins.module_utils.plan import changed_nodes, make_plan

DOC = {"name": "cn", "nodes": dict(("n%d" % i, {"image": "testbed/busybox:latest", "host": "h%d" % (i % 2)})
                                   for i in range(6)),
       "lans": {"lan0": {"members": ["n%d" % i for i in range(6)]}}}
HOST_VARS = {"h0": {"tunnel_address": "192.0.2.1"}, "h1": {"tunnel_address": "192.0.2.2"}}


def test_first_swap_in_counts_every_node_and_a_re_plan_none():
    plan = make_plan(copy.deepcopy(DOC), ["h0", "h1"], host_vars=HOST_VARS)
    assert changed_nodes(plan, None) == {"h0": 3, "h1": 3}
    again = make_plan(copy.deepcopy(DOC), ["h0", "h1"], plan, host_vars=HOST_VARS)
    assert changed_nodes(again, plan) == {"h0": 0, "h1": 0}


def test_a_changed_node_counts_on_its_host_only():
    plan = make_plan(copy.deepcopy(DOC), ["h0", "h1"], host_vars=HOST_VARS)
    doc = copy.deepcopy(DOC)
    doc["nodes"]["n1"]["command"] = ["sleep", "1"]
    doc["nodes"]["n7"] = {"image": "testbed/busybox:latest", "host": "h0"}
    again = make_plan(doc, ["h0", "h1"], plan, host_vars=HOST_VARS)
    assert changed_nodes(again, plan) == {"h0": 1, "h1": 1}
