"""The planner: subnets, addresses, MACs, interface numbers, routes, /etc/hosts, stability."""
import copy
import ipaddress
import json
import os
import re
import subprocess
import sys

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import names, plan as planner
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan
from ansible_collections.testbed.containers.plugins.module_utils.planned import hosts_file

HOSTS = ["h1"]
# with no packing nodes spread over several hosts (balanced placement): LANs span them
TUNNELS = dict(("h%d" % i, {"tunnel_address": "192.0.2.%d" % i}) for i in (1, 2, 3))
N = {"image": "img"}
R = {"image": "img", "forwarding": True}


def iface(plan, node, lan):
    """The interface of ``node`` on ``lan``."""
    found = [i for i in plan["nodes"][node]["interfaces"] if i["lan"] == lan]
    assert len(found) == 1, (node, lan)
    return found[0]


def ifnames(plan, node):
    return dict((i["lan"], i["ifname"]) for i in plan["nodes"][node]["interfaces"])


def addr(plan, node, lan):
    return iface(plan, node, lan)["address"]


def routes(plan, node):
    return dict((r["lan"], (r["dest"], r["via"], r["dev"])) for r in plan["nodes"][node]["routes"])


# --- routing ----------------------------------------------------------------------------------

def chain(middle_forwards=True, routing=None):
    """n0 -lan0- r1 -lan1- r2 -lan2- r3 -lan3- n4: four LANs, three routers."""
    doc = {
        "name": "chain",
        "nodes": {"n0": N, "r1": R, "r2": R if middle_forwards else N, "r3": R, "n4": N},
        "lans": {"lan0": {"members": ["n0", "r1"]}, "lan1": {"members": ["r1", "r2"]},
                 "lan2": {"members": ["r2", "r3"]}, "lan3": {"members": ["r3", "n4"]}},
    }
    if routing is not None:
        doc["routing"] = routing
    return doc


def test_chain_subnets_and_addresses():
    plan = make_plan(chain(), HOSTS)
    assert [plan["lans"][n]["subnet"] for n in ("lan0", "lan1", "lan2", "lan3")] == [
        "10.10.0.0/24", "10.10.1.0/24", "10.10.2.0/24", "10.10.3.0/24"]
    assert addr(plan, "n0", "lan0") == "10.10.0.1" and addr(plan, "r1", "lan0") == "10.10.0.2"
    assert addr(plan, "r1", "lan1") == "10.10.1.1" and addr(plan, "r2", "lan1") == "10.10.1.2"
    assert addr(plan, "r2", "lan2") == "10.10.2.1" and addr(plan, "r3", "lan2") == "10.10.2.2"
    assert addr(plan, "r3", "lan3") == "10.10.3.1" and addr(plan, "n4", "lan3") == "10.10.3.2"


def test_chain_of_four_lans_routes_every_node_to_every_other_subnet():
    plan = make_plan(chain(), HOSTS)
    assert routes(plan, "n0") == {
        "lan1": ("10.10.1.0/24", "10.10.0.2", "eth1"),
        "lan2": ("10.10.2.0/24", "10.10.0.2", "eth1"),
        "lan3": ("10.10.3.0/24", "10.10.0.2", "eth1"),
    }
    assert routes(plan, "r1") == {
        "lan2": ("10.10.2.0/24", "10.10.1.2", "eth2"),
        "lan3": ("10.10.3.0/24", "10.10.1.2", "eth2"),
    }
    assert routes(plan, "r2") == {
        "lan0": ("10.10.0.0/24", "10.10.1.1", "eth1"),
        "lan3": ("10.10.3.0/24", "10.10.2.2", "eth2"),
    }
    assert routes(plan, "r3") == {
        "lan0": ("10.10.0.0/24", "10.10.2.1", "eth1"),
        "lan1": ("10.10.1.0/24", "10.10.2.1", "eth1"),
    }
    assert routes(plan, "n4") == {
        "lan0": ("10.10.0.0/24", "10.10.3.1", "eth1"),
        "lan1": ("10.10.1.0/24", "10.10.3.1", "eth1"),
        "lan2": ("10.10.2.0/24", "10.10.3.1", "eth1"),
    }
    # Routes come in LAN file order and carry exactly these keys.
    assert [r["lan"] for r in plan["nodes"]["n0"]["routes"]] == ["lan1", "lan2", "lan3"]
    assert all(set(r) == {"dest", "via", "dev", "lan"} for n in plan["nodes"].values() for r in n["routes"])


def assert_routes_consistent(plan):
    """Every route: not to an attached subnet, next hop on the subnet of its dev, a forwarding router."""
    by_addr = dict((i["address"], (n, i["lan"])) for n, node in plan["nodes"].items() for i in node["interfaces"])
    for name, node in plan["nodes"].items():
        attached = dict((i["lan"], i) for i in node["interfaces"])
        devs = dict((i["ifname"], i) for i in node["interfaces"])
        dests = [r["dest"] for r in node["routes"]]
        assert len(dests) == len(set(dests))
        for r in node["routes"]:
            assert r["lan"] not in attached
            assert r["dest"] == plan["lans"][r["lan"]]["subnet"]
            out = devs[r["dev"]]
            assert ipaddress.ip_address(r["via"]) in ipaddress.ip_network("%s/%d" % (out["address"], out["prefixlen"]),
                                                                          strict=False)
            router, via_lan = by_addr[r["via"]]
            assert via_lan == out["lan"] and router != name
            assert plan["nodes"][router]["forwarding"]


def test_chain_routes_are_consistent_and_complete():
    plan = make_plan(chain(), HOSTS)
    assert_routes_consistent(plan)
    for name, node in plan["nodes"].items():
        attached = set(i["lan"] for i in node["interfaces"])
        assert set(r["lan"] for r in node["routes"]) == set(plan["lans"]) - attached


def test_no_route_through_a_node_without_forwarding():
    plan = make_plan(chain(middle_forwards=False), HOSTS)
    # r2 does not forward: lan2 and lan3 are unreachable from n0 and r1, lan0 and lan1 from r3 and n4.
    assert routes(plan, "n0") == {"lan1": ("10.10.1.0/24", "10.10.0.2", "eth1")}
    assert routes(plan, "r1") == {}
    assert routes(plan, "r3") == {}
    assert routes(plan, "n4") == {"lan2": ("10.10.2.0/24", "10.10.3.1", "eth1")}
    # r2 itself still routes its own traffic through the forwarding routers around it.
    assert routes(plan, "r2") == {
        "lan0": ("10.10.0.0/24", "10.10.1.1", "eth1"),
        "lan3": ("10.10.3.0/24", "10.10.2.2", "eth2"),
    }
    assert_routes_consistent(plan)


def test_routing_none_gives_no_routes():
    plan = make_plan(chain(routing="none"), HOSTS)
    assert plan["routing"] == "none"
    assert all(node["routes"] == [] for node in plan["nodes"].values())
    # Everything else is planned as with static routing.
    static = make_plan(chain(routing="static"), HOSTS)
    assert static["routing"] == "static"
    for name in plan["nodes"]:
        assert plan["nodes"][name]["interfaces"] == static["nodes"][name]["interfaces"]


def test_shortest_path_wins_over_a_longer_one():
    """A shortcut router x joins lan0 and lan3: n0 reaches lan3 through x, not through three routers."""
    doc = chain()
    doc["nodes"]["x"] = R
    doc["lans"]["lan0"]["members"].append("x")
    doc["lans"]["lan3"]["members"].append("x")
    plan = make_plan(doc, HOSTS)
    x0 = addr(plan, "x", "lan0")
    assert routes(plan, "n0") == {
        "lan1": ("10.10.1.0/24", "10.10.0.2", "eth1"),
        "lan2": ("10.10.2.0/24", "10.10.0.2", "eth1"),
        "lan3": ("10.10.3.0/24", x0, "eth1"),
    }
    assert routes(plan, "n4")["lan0"] == ("10.10.0.0/24", addr(plan, "x", "lan3"), "eth1")
    assert_routes_consistent(plan)


def test_route_dev_is_the_interface_facing_the_router():
    """A node on two LANs uses, for each destination, the interface on the router's LAN."""
    doc = {
        "name": "two",
        "nodes": {"h": N, "ra": R, "rb": R, "fa": N, "fb": N},
        "lans": {"left": {"members": ["h", "ra"]}, "right": {"members": ["h", "rb"]},
                 "far-a": {"members": ["ra", "fa"]}, "far-b": {"members": ["rb", "fb"]}},
    }
    plan = make_plan(doc, HOSTS)
    assert routes(plan, "h") == {
        "far-a": (plan["lans"]["far-a"]["subnet"], addr(plan, "ra", "left"), "eth1"),
        "far-b": (plan["lans"]["far-b"]["subnet"], addr(plan, "rb", "right"), "eth2"),
    }
    assert_routes_consistent(plan)


def test_node_without_lans_has_no_interfaces_routes_or_hosts_entries():
    doc = {"name": "solo", "nodes": {"alone": N, "a": N}, "lans": {"lan0": {"members": ["a"]}}}
    plan = make_plan(doc, HOSTS)
    assert plan["nodes"]["alone"]["interfaces"] == [] and plan["nodes"]["alone"]["routes"] == []
    assert plan["etc_hosts"] == [["10.10.0.1", "a", "a-lan0"]]
    assert "127.0.1.1\talone\n" in hosts_file(plan, "alone")
    assert "127.0.1.1" not in hosts_file(plan, "a")


# --- subnets and addresses --------------------------------------------------------------------

def test_auto_subnets_skip_a_fixed_subnet_in_the_pool():
    doc = {"name": "fx", "nodes": {"a": N, "b": N},
           "lans": {"fixed": {"members": ["a"], "subnet": "10.10.0.0/24"}, "auto": {"members": ["a", "b"]}}}
    plan = make_plan(doc, HOSTS)
    assert plan["lans"]["fixed"]["subnet"] == "10.10.0.0/24"
    assert plan["lans"]["auto"]["subnet"] == "10.10.1.0/24"


def test_auto_subnets_skip_a_fixed_subnet_listed_after_them():
    doc = {"name": "fx", "nodes": {"a": N, "b": N},
           "lans": {"auto": {"members": ["a", "b"]}, "auto2": {"members": ["a"]}},
           "links": {"fixed": {"endpoints": ["a", "b"], "subnet": "10.10.0.0/23"}}}
    plan = make_plan(doc, HOSTS)
    assert plan["lans"]["fixed"]["subnet"] == "10.10.0.0/23"
    assert plan["lans"]["auto"]["subnet"] == "10.10.2.0/24"
    assert plan["lans"]["auto2"]["subnet"] == "10.10.3.0/24"


def test_auto_subnets_from_a_custom_pool_and_prefix():
    doc = {"name": "pool", "nodes": {"a": N, "b": N}, "addressing": {"pool": "192.168.0.0/16", "prefixlen": 28},
           "lans": {"x": {"members": ["a", "b"]}, "y": {"members": ["a"], "subnet": "192.168.0.16/28"},
                    "z": {"members": ["b"]}}}
    plan = make_plan(doc, HOSTS)
    assert [plan["lans"][n]["subnet"] for n in ("x", "y", "z")] == [
        "192.168.0.0/28", "192.168.0.16/28", "192.168.0.32/28"]
    assert iface(plan, "a", "x")["prefixlen"] == 28


def test_pool_narrower_than_the_default_prefix_is_one_subnet():
    """A /28 pool with no prefixlen used to crash the planner (ValueError from ipaddress)."""
    doc = {"name": "pool", "nodes": {"a": N, "b": N}, "addressing": {"pool": "172.16.5.0/28"},
           "lans": {"x": {"members": ["a", "b"]}}}
    plan = make_plan(doc, HOSTS)
    assert plan["lans"]["x"]["subnet"] == "172.16.5.0/28"
    assert addr(plan, "a", "x") == "172.16.5.1"


def test_addresses_skip_fixed_addresses():
    doc = {"name": "ad", "nodes": {"a": N, "b": N, "c": N, "d": N},
           "lans": {"lan0": {"subnet": "10.9.1.0/24",
                             "members": ["a", {"node": "b", "ip": "10.9.1.1"}, "c", {"node": "d", "ip": "10.9.1.3"}]}}}
    plan = make_plan(doc, HOSTS)
    assert [addr(plan, n, "lan0") for n in "abcd"] == ["10.9.1.2", "10.9.1.1", "10.9.1.4", "10.9.1.3"]
    assert iface(plan, "a", "lan0")["prefixlen"] == 24


def test_a_full_subnet_uses_every_host_address():
    doc = {"name": "full", "nodes": {"a": N, "b": N},
           "links": {"p2p": {"endpoints": ["a", {"node": "b", "ip": "10.9.1.1"}], "subnet": "10.9.1.0/30"}}}
    plan = make_plan(doc, HOSTS)
    assert (addr(plan, "a", "p2p"), addr(plan, "b", "p2p")) == ("10.9.1.2", "10.9.1.1")


def test_addresses_are_unique_and_inside_their_subnet():
    nodes = dict(("n%d" % i, N) for i in range(40))
    doc = {"name": "big", "nodes": nodes,
           "lans": {"l%d" % k: {"members": ["n%d" % i for i in range(40) if i % (k + 2) == 0]} for k in range(5)}}
    plan = make_plan(doc, HOSTS)
    for lan_name, lan in plan["lans"].items():
        net = ipaddress.ip_network(lan["subnet"])
        got = [addr(plan, m, lan_name) for m in lan["members"]]
        assert len(set(got)) == len(got)
        assert all(ipaddress.ip_address(a) in net and ipaddress.ip_address(a) not in
                   (net.network_address, net.broadcast_address) for a in got)
    subnets = [ipaddress.ip_network(lan["subnet"]) for lan in plan["lans"].values()]
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])


# --- MACs, interface names, kernel names ---------------------------------------------------------

MAC_RE = re.compile(r"^02(:[0-9a-f]{2}){5}$")


def test_macs_are_unique_locally_administered_unicast():
    nodes = dict(("n%d" % i, N) for i in range(30))
    doc = {"name": "macs", "nodes": nodes,
           "lans": {"l%d" % k: {"members": list(nodes)} for k in range(4)}}
    plan = make_plan(doc, HOSTS)
    macs = [i["mac"] for n in plan["nodes"].values() for i in n["interfaces"]]
    assert len(macs) == 120 and len(set(macs)) == 120
    for mac in macs:
        assert MAC_RE.match(mac), mac
        first = int(mac.split(":")[0], 16)
        assert first & 0x02 and not first & 0x01  # locally administered, unicast


def test_mac_collision_is_resolved_deterministically(monkeypatch):
    """Force every attachment's first-choice MAC to collide: the planner retries, still unique."""
    real = names.mac_address

    def colliding(project, name, node, lan, attempt=0):
        return "02:00:00:00:00:01" if attempt == 0 else real(project, name, node, lan, attempt)

    monkeypatch.setattr(planner.names, "mac_address", colliding)
    doc = {"name": "mc", "nodes": {"a": N, "b": N}, "lans": {"l": {"members": ["a", "b"]}}, "links": {
        "k": {"endpoints": ["a", "b"]}}}
    plan = make_plan(doc, HOSTS)
    macs = [i["mac"] for n in plan["nodes"].values() for i in n["interfaces"]]
    assert len(set(macs)) == 4 and macs[0] == "02:00:00:00:00:01"
    assert all(MAC_RE.match(m) for m in macs)
    assert make_plan(doc, HOSTS) == plan


def test_interfaces_numbered_lans_then_links_in_file_order():
    # links: written before lans: in the file; lans still come first (decision 6).
    doc = {"name": "ifs", "nodes": {"a": N, "b": N, "c": N},
           "links": {"k1": {"endpoints": ["a", "b"]}, "k0": {"endpoints": ["c", "a"]}},
           "lans": {"zeta": {"members": ["b", "a"]}, "alpha": {"members": ["a", "c"]}}}
    plan = make_plan(doc, HOSTS)
    assert list(plan["lans"]) == ["zeta", "alpha", "k1", "k0"]
    assert [(i["ifname"], i["lan"]) for i in plan["nodes"]["a"]["interfaces"]] == [
        ("eth1", "zeta"), ("eth2", "alpha"), ("eth3", "k1"), ("eth4", "k0")]
    assert ifnames(plan, "b") == {"zeta": "eth1", "k1": "eth2"}
    assert ifnames(plan, "c") == {"alpha": "eth1", "k0": "eth2"}
    assert plan["lans"]["k1"]["kind"] == "link" and plan["lans"]["zeta"]["kind"] == "lan"


def two_experiments():
    def doc(name, project=None):
        d = {"name": name, "nodes": {"a": N, "b": N},
             "lans": {"lan0": {"members": ["a", "b"], "subnet": "10.9.1.0/24"}},
             "links": {"k": {"endpoints": ["a", "b"], "subnet": "10.9.2.0/30"}}}
        if project:
            d["project"] = project
        return d
    return [make_plan(doc("one"), HOSTS), make_plan(doc("two"), HOSTS), make_plan(doc("one", "other"), HOSTS)]


def kernel_names(plan):
    bridges = [lan["bridge"] for lan in plan["lans"].values()]
    veths = [i["veth"] for n in plan["nodes"].values() for i in n["interfaces"]]
    return bridges + veths


def test_kernel_names_are_short_prefixed_and_distinct_between_experiments():
    plans = two_experiments()
    everything = []
    for plan in plans:
        prefix = plan["kernel_prefix"]
        assert prefix == names.kernel_prefix(plan["project"], plan["name"]) and len(prefix) == 7
        for kname in kernel_names(plan):
            assert 1 <= len(kname) <= 15, kname
            assert kname.startswith(prefix)
            assert re.match(r"^[a-z0-9]+$", kname)
        everything += kernel_names(plan)
    assert len(everything) == len(set(everything))  # also distinct within each experiment
    assert len(set(p["kernel_prefix"] for p in plans)) == 3
    containers = [n["container"] for p in plans for n in p["nodes"].values()]
    assert len(set(containers)) == len(containers)
    assert plans[0]["nodes"]["a"]["container"] == "tb_default_one_a"
    # Equal names and subnets, so the addresses are equal too: only the kernel names differ.
    assert addr(plans[0], "a", "lan0") == addr(plans[1], "a", "lan0")


def test_kernel_names_with_long_names_stay_within_15_characters():
    long_node, long_lan = "n" * 31, "l" * 31
    doc = {"name": "e" * 31, "project": "p" * 31, "nodes": {long_node: N, "b": N},
           "lans": {long_lan: {"members": [long_node, "b"]}}}
    plan = make_plan(doc, HOSTS)
    assert all(len(k) <= 15 for k in kernel_names(plan))


# --- /etc/hosts -------------------------------------------------------------------------------------

def test_hosts_entries_node_on_lowest_eth_and_node_lan_for_each():
    plan = make_plan(chain(), HOSTS)
    assert plan["etc_hosts"] == [
        ["10.10.0.1", "n0", "n0-lan0"],
        ["10.10.0.2", "r1", "r1-lan0"], ["10.10.1.1", "r1-lan1"],
        ["10.10.1.2", "r2", "r2-lan1"], ["10.10.2.1", "r2-lan2"],
        ["10.10.2.2", "r3", "r3-lan2"], ["10.10.3.1", "r3-lan3"],
        ["10.10.3.2", "n4", "n4-lan3"],
    ]
    text = hosts_file(plan, "n0")
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert "# experiment default/chain (written by testbed.containers)\n" in text
    assert "10.10.0.2\tr1 r1-lan0\n" in text and "10.10.1.1\tr1-lan1\n" in text
    assert text.endswith("\n")
    names_ = [n for entry in plan["etc_hosts"] for n in entry[1:]]
    assert len(names_) == len(set(names_))


# --- modify in place ----------------------------------------------------------------------------------

def base_doc():
    return {
        "name": "mod",
        "nodes": {"a": N, "b": N, "c": N, "r": R},
        "lans": {"lan1": {"members": ["a", "b", "r"]}, "lan2": {"members": ["r", "c"]}},
        "links": {"k": {"endpoints": ["a", "c"]}},
    }


def test_modify_in_place_new_lan_before_existing_and_node_removed():
    doc_a = base_doc()
    plan_a = make_plan(doc_a, HOSTS)
    assert ifnames(plan_a, "a") == {"lan1": "eth1", "k": "eth2"}
    assert ifnames(plan_a, "c") == {"lan2": "eth1", "k": "eth2"}
    assert addr(plan_a, "a", "lan1") == "10.10.0.1" and addr(plan_a, "b", "lan1") == "10.10.0.2"
    assert addr(plan_a, "r", "lan1") == "10.10.0.3"

    doc_b = {
        "name": "mod",
        "nodes": {"a": N, "c": N, "r": R},  # b removed
        "lans": {"new0": {"members": ["c", "a"]},  # inserted before the existing LANs
                 "lan1": {"members": ["a", "r"]}, "lan2": {"members": ["r", "c"]}},
        "links": {"k": {"endpoints": ["a", "c"]}},
    }
    plan_b = make_plan(doc_b, HOSTS, previous=plan_a)
    assert "b" not in plan_b["nodes"] and plan_b["lans"]["lan1"]["members"] == ["a", "r"]
    # Existing attachments keep their ethN, addresses and subnets.
    for lan in ("lan1", "lan2", "k"):
        assert plan_b["lans"][lan]["subnet"] == plan_a["lans"][lan]["subnet"]
        assert plan_b["lans"][lan]["bridge"] == plan_a["lans"][lan]["bridge"]
    for node in ("a", "c", "r"):
        for i in plan_a["nodes"][node]["interfaces"]:
            assert iface(plan_b, node, i["lan"]) == i
    # The new attachment takes the lowest free ethN and a subnet no one uses.
    assert ifnames(plan_b, "a") == {"lan1": "eth1", "k": "eth2", "new0": "eth3"}
    assert ifnames(plan_b, "c") == {"lan2": "eth1", "k": "eth2", "new0": "eth3"}
    assert plan_b["lans"]["new0"]["subnet"] == "10.10.3.0/24"
    assert addr(plan_b, "c", "new0") == "10.10.3.1" and addr(plan_b, "a", "new0") == "10.10.3.2"
    # Interfaces stay sorted by number, so bare NODE still names eth1's address.
    assert [i["ifname"] for i in plan_b["nodes"]["a"]["interfaces"]] == ["eth1", "eth2", "eth3"]
    assert ["10.10.0.1", "a", "a-lan1"] in plan_b["etc_hosts"]
    assert ["10.10.3.2", "a-new0"] in plan_b["etc_hosts"]
    assert_routes_consistent(plan_b)

    # Without the previous plan the same file renumbers everything: the previous plan is what keeps it.
    fresh = make_plan(doc_b, HOSTS)
    assert ifnames(fresh, "a") == {"new0": "eth1", "lan1": "eth2", "k": "eth3"}
    assert fresh["lans"]["new0"]["subnet"] == "10.10.0.0/24"


def test_modify_in_place_new_attachment_takes_a_freed_number():
    doc_a = base_doc()
    doc_a["lans"]["lan2"]["members"].append("a")
    plan_a = make_plan(doc_a, HOSTS)
    assert ifnames(plan_a, "a") == {"lan1": "eth1", "lan2": "eth2", "k": "eth3"}

    doc_b = base_doc()  # a leaves lan2 (eth2 is freed) and joins a new LAN listed first
    doc_b["lans"] = {"new0": {"members": ["a", "b"]}, "lan1": doc_b["lans"]["lan1"], "lan2": doc_b["lans"]["lan2"]}
    plan_b = make_plan(doc_b, HOSTS, previous=plan_a)
    assert ifnames(plan_b, "a") == {"lan1": "eth1", "new0": "eth2", "k": "eth3"}
    assert [(i["ifname"], i["lan"]) for i in plan_b["nodes"]["a"]["interfaces"]] == [
        ("eth1", "lan1"), ("eth2", "new0"), ("eth3", "k")]  # listed by number
    assert ifnames(plan_b, "b") == {"lan1": "eth1", "new0": "eth2"}
    assert iface(plan_b, "a", "k") == iface(plan_a, "a", "k")
    # The freed address on lan2 is not handed to anyone else: c and r keep theirs.
    assert addr(plan_b, "r", "lan2") == addr(plan_a, "r", "lan2")
    assert addr(plan_b, "c", "lan2") == addr(plan_a, "c", "lan2")


def test_bare_node_name_follows_the_lowest_eth_even_for_a_newer_attachment():
    plan_a = make_plan(base_doc(), HOSTS)
    assert ifnames(plan_a, "a") == {"lan1": "eth1", "k": "eth2"}
    doc_b = base_doc()  # a leaves lan1 (eth1 is freed) and joins lan3, listed after k's section
    doc_b["lans"]["lan1"]["members"] = ["b", "r"]
    doc_b["lans"]["lan3"] = {"members": ["a", "b"]}
    plan_b = make_plan(doc_b, HOSTS, previous=plan_a)
    assert [(i["ifname"], i["lan"]) for i in plan_b["nodes"]["a"]["interfaces"]] == [("eth1", "lan3"), ("eth2", "k")]
    a_entries = [e for e in plan_b["etc_hosts"] if any(n.startswith("a") for n in e[1:])]
    assert a_entries == [[addr(plan_b, "a", "lan3"), "a", "a-lan3"], [addr(plan_a, "a", "k"), "a-k"]]


def test_modify_in_place_node_added_keeps_others_unchanged():
    doc_a = base_doc()
    plan_a = make_plan(doc_a, HOSTS)
    # e is listed first in nodes: and in lan1's members, where it would take .1 on a fresh plan.
    doc_b = base_doc()
    doc_b["nodes"] = dict([("e", N)] + list(doc_b["nodes"].items()))
    doc_b["lans"]["lan1"]["members"].insert(0, "e")
    plan_b = make_plan(doc_b, HOSTS, previous=plan_a)
    for name, node in plan_a["nodes"].items():
        assert plan_b["nodes"][name] == node
    assert ifnames(plan_b, "e") == {"lan1": "eth1"}
    assert addr(plan_b, "e", "lan1") == "10.10.0.4"  # the lowest free address
    assert plan_b["etc_hosts"][0] == ["10.10.0.4", "e", "e-lan1"]
    assert plan_b["etc_hosts"][1:] == plan_a["etc_hosts"]
    assert addr(make_plan(doc_b, HOSTS), "e", "lan1") == "10.10.0.1"


def test_modify_in_place_removed_node_frees_its_address_for_a_new_one():
    plan_a = make_plan(base_doc(), HOSTS)
    doc_b = base_doc()
    del doc_b["nodes"]["b"]
    doc_b["nodes"]["f"] = N
    doc_b["lans"]["lan1"]["members"] = ["a", "r", "f"]
    plan_b = make_plan(doc_b, HOSTS, previous=plan_a)
    assert addr(plan_b, "a", "lan1") == "10.10.0.1" and addr(plan_b, "r", "lan1") == "10.10.0.3"
    assert addr(plan_b, "f", "lan1") == "10.10.0.2"


def test_modify_in_place_previous_from_a_json_record():
    plan_a = make_plan(base_doc(), HOSTS)
    record = json.loads(json.dumps(plan_a))
    doc_b = base_doc()
    doc_b["lans"] = dict([("new0", {"members": ["a"]})] + list(doc_b["lans"].items()))
    plan_b = make_plan(doc_b, HOSTS, previous=record)
    assert ifnames(plan_b, "a") == {"lan1": "eth1", "k": "eth2", "new0": "eth3"}
    assert plan_b["lans"]["lan1"]["subnet"] == "10.10.0.0/24"


def test_previous_plan_of_another_experiment_is_ignored():
    plan_a = make_plan(base_doc(), HOSTS)
    doc_b = base_doc()
    doc_b["name"] = "other"
    doc_b["lans"] = dict([("new0", {"members": ["a"]})] + list(doc_b["lans"].items()))
    assert make_plan(doc_b, HOSTS, previous=plan_a) == make_plan(doc_b, HOSTS)


def test_previous_subnet_taken_by_a_new_fixed_subnet_is_reallocated():
    plan_a = make_plan(base_doc(), HOSTS)
    assert plan_a["lans"]["lan1"]["subnet"] == "10.10.0.0/24"
    doc_b = base_doc()
    doc_b["lans"]["lan2"]["subnet"] = "10.10.0.0/23"  # now covers lan1's and lan2's old subnets
    plan_b = make_plan(doc_b, HOSTS, previous=plan_a)
    assert plan_b["lans"]["lan2"]["subnet"] == "10.10.0.0/23"
    assert plan_b["lans"]["lan1"]["subnet"] == "10.10.3.0/24"  # k keeps 10.10.2.0/24
    assert plan_b["lans"]["k"]["subnet"] == plan_a["lans"]["k"]["subnet"]
    assert addr(plan_b, "a", "lan1") == "10.10.3.1"


def test_previous_subnet_outside_a_changed_pool_is_reallocated():
    plan_a = make_plan(base_doc(), HOSTS)
    doc_b = base_doc()
    doc_b["addressing"] = {"pool": "172.20.0.0/16"}
    plan_b = make_plan(doc_b, HOSTS, previous=plan_a)
    assert [plan_b["lans"][n]["subnet"] for n in ("lan1", "lan2", "k")] == [
        "172.20.0.0/24", "172.20.1.0/24", "172.20.2.0/24"]
    assert ifnames(plan_b, "a") == ifnames(plan_a, "a")


def test_replanning_with_its_own_plan_as_previous_is_a_fixpoint():
    for doc in (base_doc(), chain(), chain(middle_forwards=False)):
        plan = make_plan(doc, HOSTS)
        assert make_plan(doc, HOSTS, previous=plan) == plan
        assert make_plan(doc, HOSTS, previous=json.loads(json.dumps(plan))) == plan


def test_placement_keeps_the_previous_host():
    doc = base_doc()
    plan_a = make_plan(doc, ["h1"])
    plan_b = make_plan(doc, ["h2", "h1"], previous=plan_a)
    assert set(n["host"] for n in plan_b["nodes"].values()) == {"h1"}
    assert plan_b["hosts"] == ["h1"] and plan_b["lans"]["lan1"]["hosts"] == ["h1"]
    # without it, the nodes spread over both hosts (balanced placement)
    assert set(n["host"] for n in make_plan(doc, ["h2", "h1"], host_vars=TUNNELS)["nodes"].values()) == {"h1", "h2"}
    # A pin wins over the previous placement.
    pinned = base_doc()
    pinned["nodes"] = dict((n, dict(s, host="h2")) for n, s in pinned["nodes"].items())
    assert make_plan(pinned, ["h1", "h2"], previous=plan_a)["hosts"] == ["h2"]


# --- determinism ----------------------------------------------------------------------------------------

def test_same_input_gives_equal_plans_with_stable_order():
    doc = chain()
    one, two = make_plan(doc, HOSTS), make_plan(copy.deepcopy(doc), HOSTS)
    assert one == two
    assert json.dumps(one) == json.dumps(two)  # order-sensitive
    assert list(one) == ["version", "project", "name", "routing", "ssh_keys", "users", "kernel_prefix", "hosts", "lans",
                         "nodes", "tunnels", "etc_hosts", "features"]
    assert list(one["nodes"]) == ["n0", "r1", "r2", "r3", "n4"]
    assert list(one["lans"]) == ["lan0", "lan1", "lan2", "lan3"]
    assert list(one["nodes"]["n0"]) == ["image", "command", "cpus", "memory", "pids", "forwarding", "augment", "start", "restart", "env",
                                        "host", "container", "interfaces", "routes"]
    assert list(one["nodes"]["n0"]["interfaces"][0]) == ["ifname", "lan", "address", "prefixlen", "mac", "veth", "ifb", "alias", "to_node", "from_node", "mtu"]


def test_planning_does_not_change_its_inputs():
    doc, prev = base_doc(), make_plan(base_doc(), HOSTS)
    doc_copy, prev_copy = copy.deepcopy(doc), copy.deepcopy(prev)
    make_plan(doc, HOSTS, previous=prev)
    assert doc == doc_copy and prev == prev_copy


SUBPROCESS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan
doc = json.loads(sys.argv[2])
tunnels = dict(("h%d" % i, {"tunnel_address": "192.0.2.%d" % i}) for i in (1, 2))
print(json.dumps(make_plan(doc, ["h1", "h2"], host_vars=tunnels)))
"""


def test_plan_is_identical_across_processes_with_different_hash_seeds():
    """Sets inside the planner must not leak into its output order (PYTHONHASHSEED)."""
    doc = chain()
    doc["nodes"]["x"] = R
    doc["lans"]["lan0"]["members"].append("x")
    doc["lans"]["lan3"]["members"].append("x")
    collections = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               ".collections")
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", SUBPROCESS, collections, json.dumps(doc)], env=env,
                             check=True, capture_output=True, text=True).stdout
        outputs.add(out)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == make_plan(doc, ["h1", "h2"], host_vars=TUNNELS)


@pytest.mark.parametrize("hosts", [["h1"], ["h1", "h2", "h3"]])
def test_plan_is_json_serializable(hosts):
    plan = make_plan(base_doc(), hosts, host_vars=TUNNELS)
    assert json.loads(json.dumps(plan)) == plan


def test_dedicated_host_held_by_another_experiment_is_closed_but_not_to_its_owner():
    doc = {"name": "mine", "project": "p", "nodes": {"a": {"image": "img", "host": "h2"}}}
    host_vars = {"h1": {}, "h2": {"mode": "dedicated", "used_by": ["p/other"]}}
    with pytest.raises(Exception, match=r"h2 is dedicated to p/other"):
        make_plan(doc, ["h1", "h2"], host_vars=host_vars)
    # the experiment that holds it may keep using it (a modify in place)
    host_vars["h2"]["used_by"] = ["p/mine"]
    assert make_plan(doc, ["h1", "h2"], host_vars=host_vars)["nodes"]["a"]["host"] == "h2"
    # a shared host takes several experiments
    host_vars["h2"] = {"mode": "shared", "used_by": ["p/other"]}
    assert make_plan(doc, ["h1", "h2"], host_vars=host_vars)["nodes"]["a"]["host"] == "h2"
