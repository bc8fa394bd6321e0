"""Placement of nodes on physical hosts: packing, pins, min-cut, previous placement, errors."""
import itertools
import json
import os
import random
import subprocess
import sys

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import model
from ansible_collections.testbed.containers.plugins.module_utils.placement import (
    Placement,
    PlacementError,
    place,
)

GBIT = 10 ** 9
MBIT = 10 ** 6


def hosts(count, **spec):
    """pc1..pcN, shared, no capacity of their own unless given."""
    base = {"max_nodes": None, "mode": "shared", "cpus": None, "memory": None, "used_by": set()}
    return dict(("pc%d" % (i + 1), dict(base, **spec)) for i in range(count))


def nodes_of(names, **spec):
    base = {"host": None, "cpus": None, "memory": None}
    return dict((name, dict(base, **spec)) for name in names)


def lan(*members, **kw):
    return {"members": list(members), "bandwidth_bps": kw.get("bandwidth")}


def clusters(count=4, size=10, chain=True, as_links=False, shuffle=None):
    """``count`` clusters of ``size`` fully connected nodes (one LAN each, or a link per pair),
    optionally joined in a chain by links (last node of one to first node of the next)."""
    names = ["c%dn%d" % (c, i) for c in range(count) for i in range(size)]
    if shuffle is not None:
        random.Random(shuffle).shuffle(names)
    lans = {}
    for c in range(count):
        members = ["c%dn%d" % (c, i) for i in range(size)]
        if as_links:
            for a, b in itertools.combinations(members, 2):
                lans["l-%s-%s" % (a, b)] = lan(a, b)
        else:
            lans["lan%d" % c] = lan(*members)
    if chain:
        for c in range(count - 1):
            lans["chain%d" % c] = lan("c%dn%d" % (c, size - 1), "c%dn0" % (c + 1))
    return nodes_of(names), lans


def hosts_of_cluster(result, c, size=10):
    return sorted(set(result.nodes["c%dn%d" % (c, i)] for i in range(size)))


def lan_experiment(n_nodes, seed, lan_min=5, lan_max=12):
    """Random LANs of lan_min..lan_max members, a chain of links between them, random links."""
    rng = random.Random(seed)
    names = ["n%d" % i for i in range(n_nodes)]
    lans, groups, k = {}, [], 0
    while k < n_nodes:
        size = min(rng.randint(lan_min, lan_max), n_nodes - k)
        groups.append(names[k:k + size])
        k += size
        lans["lan%d" % len(groups)] = lan(*groups[-1], bandwidth=rng.choice([None, 10 * MBIT, 100 * MBIT]))
    for g in range(len(groups) - 1):
        lans["chain%d" % g] = lan(groups[g][0], groups[g + 1][-1])
    for i in range(len(groups) if len(groups) > 1 else 0):
        a, b = rng.sample(range(len(groups)), 2)
        lans["link%d" % i] = lan(rng.choice(groups[a]), rng.choice(groups[b]), bandwidth=rng.choice([None, GBIT]))
    rng.shuffle(names)
    return nodes_of(names), lans


def per_host_counts(result):
    counts = {}
    for host in result.nodes.values():
        counts[host] = counts.get(host, 0) + 1
    return counts


# --- packing and capacity ---------------------------------------------------------------------

def test_without_any_limit_the_nodes_are_spread_over_the_hosts():
    # was: everything on the first host; now balanced (test_placement_balanced.py): 40/3 each
    nodes, lans = clusters(chain=True)
    result = place(nodes, lans, hosts(3))
    assert result.mode == "balanced"
    assert sorted(result.per_host.values()) == [13, 13, 14]
    # two clusters split once each (3 of 10 elsewhere), the rest whole
    assert result.crossing <= 6


@pytest.mark.parametrize("n, n_hosts, packing", [(50, 3, 20), (40, 4, 10), (7, 3, 3), (200, 1, 200), (61, 7, 9)])
def test_packing_is_respected_and_hosts_are_filled_in_order(n, n_hosts, packing):
    nodes, lans = lan_experiment(n, seed=n)
    result = place(nodes, lans, hosts(n_hosts), packing=packing)
    assert set(result.nodes) == set(nodes)
    assert all(count <= packing for count in result.per_host.values())
    assert sum(result.per_host.values()) == n
    assert dict((h, c) for h, c in result.per_host.items() if c) == per_host_counts(result)
    # DETER's packing: as few hosts as the packing factor allows, taken in inventory order
    used = -(-n // packing)
    assert [count > 0 for count in result.per_host.values()] == [True] * used + [False] * (n_hosts - used)


def test_max_nodes_below_packing_is_the_limit():
    nodes, lans = lan_experiment(30, seed=3)
    inventory = hosts(3)
    inventory["pc1"]["max_nodes"] = 4
    result = place(nodes, lans, inventory, packing=15)
    assert result.per_host["pc1"] <= 4 and result.per_host["pc2"] <= 15 and result.per_host["pc3"] <= 15
    assert sum(result.per_host.values()) == 30
    # nothing to cut: the host limits alone decide (4 + 15 + 11 in inventory order)
    assert place(nodes_of(nodes), {}, inventory, packing=15).per_host == {"pc1": 4, "pc2": 15, "pc3": 11}


def test_cpus_and_memory_of_hosts_are_respected():
    nodes = nodes_of(["n%d" % i for i in range(12)], cpus=1.5, memory=512 * 1024 ** 2)
    lans = {"lan": lan(*nodes)}
    inventory = hosts(3, cpus=8, memory=4 * 1024 ** 3)   # 5 nodes by cpus, 8 by memory
    result = place(nodes, lans, inventory, packing=10)
    assert result.per_host == {"pc1": 5, "pc2": 5, "pc3": 2}


# --- pins ------------------------------------------------------------------------------------

def test_pins_are_kept_and_count_against_packing():
    nodes, lans = clusters(chain=True)
    for i in range(5):
        nodes["c0n%d" % i]["host"] = "pc3"
    result = place(nodes, lans, hosts(4), packing=10)
    for i in range(5):
        assert result.nodes["c0n%d" % i] == "pc3"
        assert result.how["c0n%d" % i] == "pinned"
    assert all(count == 10 for count in result.per_host.values())
    # the rest of cluster 0 joins its pinned members
    assert hosts_of_cluster(result, 0) == ["pc3"]
    assert result.crossing == 3


def test_pins_beyond_room_push_the_rest_elsewhere():
    nodes = nodes_of(["a", "b", "c", "d"])
    nodes["a"]["host"] = "pc2"
    nodes["b"]["host"] = "pc2"
    lans = {"lan": lan("a", "b", "c", "d")}
    result = place(nodes, lans, hosts(2), packing=2)
    assert result.nodes == {"a": "pc2", "b": "pc2", "c": "pc1", "d": "pc1"}
    assert result.lans["lan"] == {"hosts": ["pc1", "pc2"], "majority": "pc1", "crossing": 2}


# --- min cut -----------------------------------------------------------------------------------

@pytest.mark.parametrize("as_links", [False, True], ids=["lan-per-cluster", "link-per-pair"])
@pytest.mark.parametrize("shuffle", [None, 1, 2], ids=["file-order", "shuffled-1", "shuffled-2"])
def test_four_clusters_of_ten_go_one_per_host(as_links, shuffle):
    nodes, lans = clusters(chain=False, as_links=as_links, shuffle=shuffle)
    result = place(nodes, lans, hosts(4), packing=10)
    assert [len(hosts_of_cluster(result, c)) for c in range(4)] == [1, 1, 1, 1]
    assert len(set(hosts_of_cluster(result, c)[0] for c in range(4))) == 4
    assert result.crossing == 0 and result.spanning == 0 and result.cost == 0


@pytest.mark.parametrize("as_links", [False, True], ids=["lan-per-cluster", "link-per-pair"])
@pytest.mark.parametrize("shuffle", [None, 1, 2], ids=["file-order", "shuffled-1", "shuffled-2"])
def test_a_chain_of_clusters_crosses_only_at_the_chain_links(as_links, shuffle):
    nodes, lans = clusters(chain=True, as_links=as_links, shuffle=shuffle)
    result = place(nodes, lans, hosts(4), packing=10)
    assert [len(hosts_of_cluster(result, c)) for c in range(4)] == [1, 1, 1, 1]
    # the three chain links must cross (4 hosts x 10 places, all full); nothing else does
    assert result.crossing == 3
    assert sorted(name for name, stats in result.lans.items() if stats["crossing"]) == ["chain0", "chain1", "chain2"]


def test_a_heavy_link_stays_inside_a_host_when_something_must_cross():
    # a - b - c - d, 2 hosts of 2: one cut is needed; b-c carries 1 Gbit/s, the others 10 Mbit/s
    nodes = nodes_of(["a", "b", "c", "d"])
    lans = {"ab": lan("a", "b", bandwidth=10 * MBIT), "bc": lan("b", "c", bandwidth=GBIT),
            "cd": lan("c", "d", bandwidth=10 * MBIT)}
    result = place(nodes, lans, hosts(2), packing=2)
    assert result.nodes["b"] == result.nodes["c"]
    assert result.lans["bc"]["crossing"] == 0
    assert result.crossing == 2


def test_a_heavy_link_wins_over_a_light_lan_member():
    # x belongs to a slow LAN with a, b, c and has a fast link to y; 4 places per host
    nodes = nodes_of(["a", "b", "c", "x", "y", "p", "q", "r"])
    lans = {"slow": lan("a", "b", "c", "x", bandwidth=MBIT),
            "fast": lan("x", "y", bandwidth=GBIT),
            "other": lan("y", "p", "q", "r", bandwidth=MBIT)}
    result = place(nodes, lans, hosts(2), packing=4)
    assert result.nodes["x"] == result.nodes["y"]


def test_an_unshaped_lan_is_not_outweighed_by_a_slow_link():
    # a 4-member unshaped LAN and a 10 Mbit/s link from one member to a node elsewhere
    nodes = nodes_of(["a", "b", "c", "d", "e", "f", "g", "h"])
    lans = {"lan1": lan("a", "b", "c", "d"), "lan2": lan("e", "f", "g", "h"),
            "wan": lan("d", "e", bandwidth=10 * MBIT)}
    result = place(nodes, lans, hosts(2), packing=4)
    assert result.lans["lan1"]["crossing"] == 0 and result.lans["lan2"]["crossing"] == 0
    assert result.lans["wan"]["crossing"] == 1


def test_lans_bigger_than_a_host_are_split_in_few_pieces():
    nodes = nodes_of(["n%d" % i for i in range(1000)])
    lans = {"big": lan(*nodes)}
    result = place(nodes, lans, hosts(5), packing=250)
    assert list(result.per_host.values()) == [250, 250, 250, 250, 0]
    assert result.lans["big"] == {"hosts": ["pc1", "pc2", "pc3", "pc4"], "majority": "pc1", "crossing": 750}


def test_refinement_beats_filling_in_file_order():
    nodes, lans = lan_experiment(400, seed=11)
    inventory = hosts(5)
    result = place(nodes, lans, inventory, packing=80)
    naive = dict((name, dict(spec, host="pc%d" % (k // 80 + 1))) for k, (name, spec) in enumerate(nodes.items()))
    baseline = place(naive, lans, inventory, packing=80)
    assert result.cost < baseline.cost / 2


def test_small_cases_are_close_to_the_optimum():
    """Exhaustive search over every placement of 8 nodes on 2 hosts x 4 places."""
    for seed in range(30):
        rng = random.Random(seed)
        names = ["n%d" % i for i in range(8)]
        lans = {}
        for k in range(rng.randint(3, 7)):
            size = rng.choice([2, 2, 3, 4])
            lans["l%d" % k] = lan(*rng.sample(names, size), bandwidth=rng.choice([None, 10 * MBIT, GBIT]))
        nodes = nodes_of(names)
        result = place(nodes, lans, hosts(2), packing=4)
        best = None
        for left in itertools.combinations(names, 4):
            pinned = dict((name, dict(nodes[name], host="pc1" if name in left else "pc2")) for name in names)
            cost = place(pinned, lans, hosts(2), packing=4).cost
            best = cost if best is None else min(best, cost)
        assert result.cost <= best * 1.5 + 1e-9, (seed, result.cost, best)


# --- previous placement (modify in place) -------------------------------------------------------

def test_previous_placement_is_kept_when_a_node_is_added():
    nodes, lans = clusters(chain=True, shuffle=3)
    first = place(nodes, lans, hosts(5), packing=10)
    nodes["new"] = {"host": None, "cpus": None, "memory": None}
    lans["newlink"] = lan("new", "c2n4")
    # every host is full: the new node takes the free host, nothing moves
    second = place(nodes, lans, hosts(5), packing=10, previous=first.nodes)
    assert [second.nodes[name] for name in first.nodes] == list(first.nodes.values())
    assert second.nodes["new"] == "pc5" and second.moved == []
    # with room next to its neighbour (packing raised), it joins it; still nothing moves
    second = place(nodes, lans, hosts(5), packing=11, previous=first.nodes)
    for name in first.nodes:
        assert second.nodes[name] == first.nodes[name]
        assert second.how[name] == "kept"
    assert second.how["new"] == "auto"
    assert second.nodes["new"] == second.nodes["c2n4"]
    assert second.moved == []


def test_previous_placement_wins_over_a_better_cut_but_not_over_pins():
    nodes = nodes_of(["a", "b", "c", "d"])
    lans = {"ab": lan("a", "b"), "cd": lan("c", "d")}
    previous = {"a": "pc1", "b": "pc2", "c": "pc1", "d": "pc2"}
    result = place(nodes, lans, hosts(2), packing=2, previous=previous)
    assert result.nodes == previous and result.crossing == 2
    nodes["a"]["host"] = "pc2"
    result = place(nodes, lans, hosts(2), packing=2, previous=previous)
    assert result.nodes["a"] == "pc2" and result.how["a"] == "pinned"
    # b keeps its place on pc2 next to the pinned a; d, previously on the now full pc2, moves
    assert result.nodes == {"a": "pc2", "b": "pc2", "c": "pc1", "d": "pc1"}
    assert result.moved == ["a", "d"]


def test_previous_placement_on_a_vanished_or_full_host_moves():
    nodes, lans = clusters(count=2, size=5, chain=False)
    previous = dict((name, "gone") for name in nodes)
    previous["c0n0"] = "pc1"
    result = place(nodes, lans, hosts(2), packing=5, previous=previous)
    assert result.how["c0n0"] == "kept" and result.nodes["c0n0"] == "pc1"
    assert hosts_of_cluster(result, 0, 5) == ["pc1"] and hosts_of_cluster(result, 1, 5) == ["pc2"]
    assert result.moved == [name for name in nodes if name != "c0n0"]
    # packing lowered below what a host held: the extra nodes move, the others stay
    previous = dict((name, "pc1") for name in nodes)
    result = place(nodes, lans, hosts(2), packing=5, previous=previous)
    assert sum(1 for name in nodes if result.how[name] == "kept") == 5
    assert len(result.moved) == 5


# --- determinism -------------------------------------------------------------------------------

def test_same_input_same_placement():
    nodes, lans = lan_experiment(600, seed=5)
    first = place(nodes, lans, hosts(7), packing=90)
    again = place(json.loads(json.dumps(nodes)), json.loads(json.dumps(lans)), hosts(7), packing=90)
    assert first.nodes == again.nodes and first.to_dict() == again.to_dict()


def under_hash_seeds(script):
    """The outputs of ``script`` (run with this directory importable) under three hash seeds."""
    path = [os.path.dirname(os.path.abspath(__file__))] + [p for p in sys.path if p]
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.pathsep.join(path))
        outputs.add(subprocess.check_output([sys.executable, "-c", script], env=env).decode())
    return outputs


def test_same_placement_under_another_hash_seed():
    script = (
        "import json, sys\n"
        "import test_placement as t\n"
        "nodes, lans = t.lan_experiment(300, seed=8)\n"
        "inv = t.hosts(4)\n"
        "inv['pc2']['used_by'] = {'b/x', 'a/y'}\n"
        "inv['pc2']['mode'] = 'dedicated'\n"
        "print(json.dumps(t.place(nodes, lans, inv, packing=100).to_dict(), sort_keys=True))\n"
    )
    outputs = under_hash_seeds(script)
    assert len(outputs) == 1
    assert json.loads(outputs.pop())["per_host"]["pc2"] == 0


# --- dedicated and shared hosts ---------------------------------------------------------------

def test_a_dedicated_host_used_by_another_experiment_takes_no_node():
    nodes, lans = clusters(count=2, size=5, chain=True)
    inventory = hosts(3)
    inventory["pc1"].update(mode="dedicated", used_by={"default/other"})
    result = place(nodes, lans, inventory, packing=5)
    assert result.per_host == {"pc1": 0, "pc2": 5, "pc3": 5}


def test_a_free_dedicated_host_and_a_busy_shared_host_take_nodes():
    nodes, lans = clusters(count=2, size=5, chain=True)
    inventory = hosts(2)
    inventory["pc1"].update(mode="dedicated", used_by=set())
    inventory["pc2"].update(mode="shared", used_by={"default/other", "p/q"})
    result = place(nodes, lans, inventory, packing=5)
    assert result.per_host == {"pc1": 5, "pc2": 5}


# --- errors -------------------------------------------------------------------------------------

def errors_of(*args, **kwargs):
    with pytest.raises(PlacementError) as info:
        place(*args, **kwargs)
    assert isinstance(info.value, model.ExperimentError)
    return info.value.errors


def test_too_many_nodes_for_hosts_x_packing():
    nodes = nodes_of(["n%d" % i for i in range(130)])
    assert errors_of(nodes, {}, hosts(3), packing=40) == [
        "nodes: 130 nodes do not fit: 3 hosts x packing 40 = 120 places (10 over); raise placement.packing or add hosts"]


def test_too_many_nodes_for_mixed_limits_and_a_dedicated_host():
    nodes = nodes_of(["n%d" % i for i in range(30)])
    inventory = hosts(3)
    inventory["pc1"]["max_nodes"] = 5
    inventory["pc3"].update(mode="dedicated", used_by={"default/other"})
    assert errors_of(nodes, {}, inventory, packing=20) == [
        "nodes: 30 nodes do not fit: 25 places (pc1 5 by testbed_max_nodes, pc2 20 by placement.packing) (5 over); "
        "add hosts or raise placement.packing or testbed_max_nodes; pc3 is dedicated to default/other"]


def test_too_many_nodes_for_max_nodes():
    nodes = nodes_of(["n%d" % i for i in range(12)])
    assert errors_of(nodes, {}, hosts(2, max_nodes=5)) == [
        "nodes: 12 nodes do not fit: 10 places (pc1 5 by testbed_max_nodes, pc2 5 by testbed_max_nodes) (2 over); "
        "add hosts or raise testbed_max_nodes"]


def test_pin_to_a_host_not_in_the_inventory():
    nodes = nodes_of(["web", "db"])
    nodes["web"]["host"] = "pc9"
    assert errors_of(nodes, {}, hosts(2)) == [
        "nodes.web.host: pinned to pc9 which is not in the inventory (hosts: pc1, pc2)"]


def test_pin_to_a_dedicated_host_of_another_experiment():
    nodes = nodes_of(["x", "y"])
    nodes["x"]["host"] = "pc1"
    inventory = hosts(2)
    inventory["pc1"].update(mode="dedicated", used_by={"default/other"})
    assert errors_of(nodes, {}, inventory) == ["nodes.x.host: pc1 is dedicated to default/other"]


def test_pins_beyond_max_nodes_and_beyond_packing():
    nodes = nodes_of(["n%d" % i for i in range(20)])
    for i in range(12):
        nodes["n%d" % i]["host"] = "pc1"
    for i in range(12, 20):
        nodes["n%d" % i]["host"] = "pc2"
    inventory = hosts(3)
    inventory["pc1"]["max_nodes"] = 10
    # pc1: packing 7 is below its testbed_max_nodes 10, so packing is the limit named
    assert errors_of(nodes, {}, inventory, packing=7) == [
        "host pc1: 12 pinned nodes exceed placement.packing 7 (5 over)",
        "host pc2: 8 pinned nodes exceed placement.packing 7 (1 over)",
    ]
    assert errors_of(nodes, {}, inventory, packing=11) == [
        "host pc1: 12 pinned nodes exceed its testbed_max_nodes 10 (2 over)"]


def test_pins_beyond_cpus_and_memory():
    nodes = nodes_of(["a", "b", "c"], cpus=3, memory=3 * 1024 ** 3)
    for name in nodes:
        nodes[name]["host"] = "pc1"
    inventory = hosts(2, cpus=8, memory=8 * 1024 ** 3)
    assert errors_of(nodes, {}, inventory) == [
        "host pc1: pinned nodes ask 9 cpus, above its testbed_cpus 8 (1 over)",
        "host pc1: pinned nodes ask 9g of memory, above its testbed_memory 8g (1g over)",
    ]


def test_a_node_bigger_than_every_host_and_too_many_cpus_in_all():
    nodes = nodes_of(["a", "b", "c"], cpus=4)
    nodes["a"]["cpus"] = 16
    assert errors_of(nodes, {}, hosts(2, cpus=8)) == [
        "nodes.a.cpus: 16 does not fit on any host (the largest testbed_cpus is 8)",
        "nodes: the nodes ask 24 cpus, the hosts offer 16 by testbed_cpus (8 over); add hosts or ask less",
    ]


def test_cpus_that_fit_in_total_but_not_per_host():
    nodes = nodes_of(["x", "y", "z"], cpus=3)
    assert errors_of(nodes, {}, hosts(2, cpus=4.5)) == [
        "nodes: 1 node does not fit in what the hosts' testbed_cpus leave (z); add hosts or lower the nodes' cpus"]


def test_every_host_dedicated_to_others():
    inventory = hosts(2, mode="dedicated", used_by={"p/a"})
    assert errors_of(nodes_of(["a"]), {}, inventory) == [
        "nodes: no host takes this experiment: pc1 is dedicated to p/a; pc2 is dedicated to p/a; "
        "add a shared host or free a dedicated one"]


def test_all_errors_are_reported_at_once():
    nodes = nodes_of(["n%d" % i for i in range(10)])
    nodes["n0"]["host"] = "nowhere"
    nodes["n1"]["host"] = "pc2"
    inventory = hosts(2, max_nodes=4)
    inventory["pc2"].update(mode="dedicated", used_by={"default/b", "default/a"})
    assert errors_of(nodes, {}, inventory) == [
        "nodes.n0.host: pinned to nowhere which is not in the inventory (hosts: pc1, pc2)",
        "nodes.n1.host: pc2 is dedicated to default/a, default/b",
        "nodes: 10 nodes do not fit: 4 places (pc1 4 by testbed_max_nodes) (6 over); add hosts or raise "
        "testbed_max_nodes; pc2 is dedicated to default/a, default/b",
    ]


def test_host_settings_from_an_ini_inventory_are_read():
    nodes = nodes_of(["a", "b", "c"], cpus=2, memory=1024 ** 3)
    inventory = {"pc1": {"max_nodes": "2", "mode": "shared", "cpus": "4", "memory": "2g", "used_by": None},
                 "pc2": {"max_nodes": "5", "mode": "dedicated", "cpus": None, "memory": None, "used_by": []}}
    assert place(nodes, {}, inventory).per_host == {"pc1": 2, "pc2": 1}


def test_invalid_host_settings():
    inventory = {"pc1": {"max_nodes": "many", "mode": "exclusive", "cpus": "0", "memory": "lots"},
                 "pc2": {"max_nodes": -1, "cpus": True}}
    assert errors_of(nodes_of(["a"]), {}, inventory) == [
        "host pc1: testbed_max_nodes must be a whole number of nodes, 0 or more, got 'many'",
        "host pc1: testbed_mode must be shared or dedicated, got 'exclusive'",
        "host pc1: testbed_cpus must be a number of CPUs above 0, got '0'",
        "host pc1: testbed_memory must be a size such as 64g, got 'lots'",
        "host pc2: testbed_max_nodes must be a whole number of nodes, 0 or more, got -1",
        "host pc2: testbed_cpus must be a number of CPUs above 0, got True",
    ]


def test_a_host_with_max_nodes_0_takes_nothing_and_long_lists_are_cut():
    nodes = nodes_of(["n%d" % i for i in range(30)])
    inventory = hosts(12, max_nodes=2)
    inventory["pc1"]["max_nodes"] = 0
    assert errors_of(nodes, {}, inventory) == [
        "nodes: 30 nodes do not fit: 22 places (pc1 0 by testbed_max_nodes, pc2 2 by testbed_max_nodes, "
        "pc3 2 by testbed_max_nodes, pc4 2 by testbed_max_nodes, pc5 2 by testbed_max_nodes, "
        "pc6 2 by testbed_max_nodes, pc7 2 by testbed_max_nodes, pc8 2 by testbed_max_nodes, "
        "pc9 2 by testbed_max_nodes, pc10 2 by testbed_max_nodes and 2 more) (8 over); "
        "add hosts or raise testbed_max_nodes"]
    result = place(nodes_of(["a", "b"]), {}, inventory)
    assert result.nodes == {"a": "pc2", "b": "pc2"}


@pytest.mark.parametrize("packing", [0, -1, "10", 2.5, True])
def test_packing_must_be_a_positive_integer(packing):
    assert errors_of(nodes_of(["a"]), {}, hosts(1), packing=packing) == [
        "placement.packing: must be a whole number of nodes per host, 1 or more, got %r" % (packing,)]


def test_no_host_at_all():
    assert errors_of(nodes_of(["a"]), {}, {}) == [
        "the inventory has no physical host: add one to the group testbed_hosts"]


# --- the result -----------------------------------------------------------------------------------

def test_result_reports_crossing_per_lan_and_stats():
    nodes = nodes_of(["a", "b", "c", "d", "e"])
    for name, host in (("a", "pc2"), ("b", "pc2"), ("c", "pc1"), ("d", "pc3"), ("e", "pc3")):
        nodes[name]["host"] = host
    lans = {"big": lan("a", "b", "c", "d", "e"), "link": lan("c", "d"), "solo": lan("e")}
    result = place(nodes, lans, hosts(3))
    assert isinstance(result, Placement)
    assert result["a"] == "pc2"
    # a tie between pc2 and pc3 (2 members each): the first in inventory order is the majority
    assert result.lans == {
        "big": {"hosts": ["pc1", "pc2", "pc3"], "majority": "pc2", "crossing": 3},
        "link": {"hosts": ["pc1", "pc3"], "majority": "pc1", "crossing": 1},
        "solo": {"hosts": ["pc3"], "majority": "pc3", "crossing": 0},
    }
    assert result.crossing == 4 and result.spanning == 2
    stats = result.stats()
    assert stats == {"crossing": 4, "spanning": 2, "per_host": {"pc1": 1, "pc2": 2, "pc3": 2},
                     "cost": round(result.cost, 6), "pinned": 5, "kept": 0, "auto": 0, "moved": [],
                     # no packing, no max_nodes: balanced; the pins exceed the shares (5/3 each)
                     "mode": "balanced", "tolerance": 0.05, "target": {"pc1": 1, "pc2": 2, "pc3": 2}}
    json.dumps(result.to_dict())
