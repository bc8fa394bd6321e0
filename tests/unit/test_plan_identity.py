"""The plan carries each kernel object's whole identity (names, aliases, IFB names, the kernel
prefix), so the hosts read them instead of deriving them again; a plan recorded by an earlier
version (which the host agent may still run from) is completed to the same identities."""
import copy

from ansible_collections.testbed.containers.plugins.module_utils import names
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan
from ansible_collections.testbed.containers.plugins.module_utils.slice import complete_plan

DOC = {"name": "e", "project": "p",
       "nodes": {"a": {"image": "img", "host": "h1"}, "b": {"image": "img", "host": "h2"}},
       "lans": {"lan0": {"members": ["a", "b"], "bandwidth": "10mbit"}},
       "links": {"l1": {"endpoints": ["a", "b"], "a_to_b": {"bandwidth": "5mbit"}}}}
HOST_VARS = {"h1": {"tunnel_address": "192.0.2.1"}, "h2": {"tunnel_address": "192.0.2.2"}}


def test_every_interface_and_lan_names_its_alias_ifb_and_tunnel():
    plan = make_plan(DOC, ["h1", "h2"], host_vars=HOST_VARS)
    assert plan["kernel_prefix"] == names.kernel_prefix("p", "e")
    lan = plan["lans"]["lan0"]
    assert lan["alias"] == "testbed:p/e/lan0" and lan["tunnel_alias"] == "testbed:p/e/lan0/tunnel"
    iface = plan["nodes"]["a"]["interfaces"][0]
    assert iface["alias"] == "testbed:p/e/lan0/a"
    assert iface["ifb"] == names.ifb_name(iface["veth"]) and iface["ifb"].startswith(plan["kernel_prefix"] + "i")


def test_a_plan_recorded_before_version_2_is_completed_to_the_same_identities():
    plan = make_plan(DOC, ["h1", "h2"], host_vars=HOST_VARS)
    old = copy.deepcopy(plan)
    old["version"] = 1
    old["prefix"] = old.pop("kernel_prefix")
    for lan in old["lans"].values():
        lan.pop("alias")
        lan.pop("tunnel_alias", None)
    for node in old["nodes"].values():
        for iface in node["interfaces"]:
            del iface["alias"], iface["ifb"]
    assert complete_plan(old) == plan
    assert complete_plan(plan) is plan
