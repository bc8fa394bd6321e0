"""Balanced placement: no packing factor and no max_nodes spreads the nodes over the hosts in
proportion to their capacity, within BALANCE_TOLERANCE, keeping LANs together (issue 16)."""
import json
import math
import random
import time

from ansible_collections.testbed.containers.plugins.module_utils.placement import BALANCE_TOLERANCE, place

from .test_placement import hosts, lan, nodes_of, under_hash_seeds

GIB = 1024 ** 3


def lans_of(n_nodes, size, chain=True, seed=None):
    """Nodes n0.. in LANs of ``size`` (in order), a link from each LAN to the next, and the
    nodes listed in a shuffled order when ``seed`` is given (file order then says nothing)."""
    names = ["n%d" % i for i in range(n_nodes)]
    lans = {}
    for k in range(0, n_nodes, size):
        lans["lan%d" % (k // size)] = lan(*names[k:k + size])
    if chain:
        for k in range(0, n_nodes - size, size):
            lans["chain%d" % (k // size)] = lan(names[k + size - 1], names[k + size])
    if seed is not None:
        random.Random(seed).shuffle(names)
    return nodes_of(names), lans


def band(share):
    """The documented tolerance: share x (1 -/+ eps), inward to whole numbers, but never
    narrower than the whole numbers next to the share."""
    low = math.ceil(share * (1 - BALANCE_TOLERANCE) - 1e-9)
    high = math.floor(share * (1 + BALANCE_TOLERANCE) + 1e-9)
    return min(low, math.floor(share + 1e-9)), max(high, math.ceil(share - 1e-9))


def crossing_of(assignment, lans):
    """Placement.crossing's definition: members not on their LAN's majority host."""
    total = 0
    for spec in lans.values():
        counts = {}
        for member in spec["members"]:
            counts[assignment[member]] = counts.get(assignment[member], 0) + 1
        total += len(spec["members"]) - max(counts.values())
    return total


def round_robin(nodes, inventory):
    names = list(inventory)
    return dict((node, names[k % len(names)]) for k, node in enumerate(nodes))


def assert_within(result, shares):
    for host, share in shares.items():
        low, high = band(share)
        assert low <= result.per_host[host] <= high, (host, result.per_host[host], share, (low, high))
        assert result.bounds[host] == (low, high)


# --- the figures -----------------------------------------------------------------------

def test_5000_nodes_in_lans_of_25_on_25_hosts_under_2_s_balanced_and_cut_below_round_robin():
    nodes, lans = lans_of(5000, 25, seed=16)
    inventory = hosts(25)
    seconds = []
    for _attempt in range(3):   # the best of three: a busy machine does not make the figure
        start = time.perf_counter()
        result = place(nodes, lans, inventory)
        seconds.append(time.perf_counter() - start)
        if seconds[-1] < 2.0:
            break
    assert min(seconds) < 2.0, seconds
    assert result.mode == "balanced" and result.tolerance == BALANCE_TOLERANCE
    assert_within(result, dict((host, 200.0) for host in inventory))
    assert result.target == dict((host, 200) for host in inventory)
    rr = crossing_of(round_robin(nodes, inventory), lans)
    assert result.crossing == crossing_of(result.nodes, lans)
    assert result.crossing < rr
    # 8 LANs of 25 fill a host exactly: only the chain links between hosts may cross
    assert sum(result.lans["lan%d" % k]["crossing"] for k in range(200)) == 0
    assert result.crossing <= 24, result.crossing
    assert rr > 4000   # round robin scatters nearly every LAN over the hosts


def test_501_nodes_on_10_hosts_are_spread_within_the_tolerance():
    for nodes, lans in (nodes_of(["n%d" % i for i in range(501)]), {}), lans_of(501, 20, seed=1):
        if not lans:
            lans = {"lan": lan(*nodes)}   # the case: busybox nodes on one LAN
        result = place(nodes, lans, hosts(10))
        assert_within(result, dict(("pc%d" % (i + 1), 50.1) for i in range(10)))
        assert all(48 <= count <= 52 for count in result.per_host.values())
        assert sum(result.target.values()) == 501 and sorted(result.target.values()) == [50] * 9 + [51]
        assert result.crossing < crossing_of(round_robin(nodes, hosts(10)), lans)


def test_a_chain_of_clusters_keeps_the_cut_small():
    nodes, lans = lans_of(120, 10, seed=3)
    result = place(nodes, lans, hosts(4))
    assert_within(result, dict(("pc%d" % (i + 1), 30.0) for i in range(4)))
    # 3 clusters of 10 per host: only chain links cross, three of them at least
    assert sum(result.lans["lan%d" % k]["crossing"] for k in range(12)) == 0
    assert result.crossing == 3


# --- capacity weights --------------------------------------------------------------------------

def test_a_host_with_twice_the_cpus_gets_twice_the_nodes():
    nodes, lans = lans_of(400, 20, seed=4)
    inventory = hosts(3, cpus=8)
    inventory["pc1"]["cpus"] = 16
    result = place(nodes, lans, inventory)
    assert_within(result, {"pc1": 200.0, "pc2": 100.0, "pc3": 100.0})
    assert result.target == {"pc1": 200, "pc2": 100, "pc3": 100}


def test_memory_weighs_too_and_cpus_and_memory_are_averaged():
    nodes, lans = lans_of(300, 10, seed=5)
    inventory = hosts(2, memory=32 * GIB)
    inventory["pc2"]["memory"] = 64 * GIB
    result = place(nodes, lans, inventory)
    assert_within(result, {"pc1": 100.0, "pc2": 200.0})
    # cpus 16/8 (shares 2/3, 1/3) and memory 32g/32g (1/2, 1/2): weights 7/12 and 5/12
    inventory = hosts(2, memory="32g", cpus=8)
    inventory["pc1"]["cpus"] = "16"
    nodes, lans = lans_of(240, 10, seed=6)
    result = place(nodes, lans, inventory)
    assert result.target == {"pc1": 140, "pc2": 100}
    assert_within(result, {"pc1": 140.0, "pc2": 100.0})


def test_a_host_that_gives_no_cpus_counts_as_the_mean_of_those_that_do():
    nodes, lans = lans_of(360, 12, seed=7)
    inventory = hosts(3)
    inventory["pc1"]["cpus"] = 8
    inventory["pc3"]["cpus"] = 16
    result = place(nodes, lans, inventory)   # pc2 counts as 12 cpus: 8/36, 12/36, 16/36
    assert result.target == {"pc1": 80, "pc2": 120, "pc3": 160}
    assert_within(result, {"pc1": 80.0, "pc2": 120.0, "pc3": 160.0})


def test_nodes_cpus_that_leave_no_choice_win_over_the_tolerance():
    # equal weights (cpus 1 and 100, memory 100g and 1g), but pc1's cpus take 2 nodes of 0.5
    inventory = hosts(2)
    inventory["pc1"].update(cpus=1, memory="100g")
    inventory["pc2"].update(cpus=100, memory="1g")
    nodes = nodes_of(["n%d" % i for i in range(10)], cpus=0.5)
    result = place(nodes, {"lan": lan(*nodes)}, inventory)
    assert result.target == {"pc1": 5, "pc2": 5}
    assert result.per_host == {"pc1": 2, "pc2": 8}


# --- pins, previous placement, hosts that take nothing --------------------------------------------

def test_pins_count_against_their_hosts_share():
    nodes, lans = lans_of(100, 10, seed=8)
    for i in range(40):
        nodes["n%d" % i]["host"] = "pc1"
    for i in range(40, 50):
        nodes["n%d" % i]["host"] = "pc2"
    result = place(nodes, lans, hosts(4))
    for i in range(50):
        assert result.how["n%d" % i] == "pinned"
        assert result.nodes["n%d" % i] == ("pc1" if i < 40 else "pc2")
    # pc1 holds more than a quarter: it keeps its 40, the 60 others share the rest
    assert result.target == {"pc1": 40, "pc2": 20, "pc3": 20, "pc4": 20}
    assert_within(result, {"pc1": 40.0, "pc2": 20.0, "pc3": 20.0, "pc4": 20.0})


def test_previous_placement_is_kept_and_a_new_node_joins_its_neighbours():
    nodes, lans = lans_of(200, 10, seed=9)
    inventory = hosts(5)
    first = place(nodes, lans, inventory)
    assert_within(first, dict((host, 40.0) for host in inventory))
    nodes["new"] = {"host": None, "cpus": None, "memory": None}
    lans["newlink"] = lan("new", "n57")
    second = place(nodes, lans, inventory, previous=first.nodes)
    assert second.moved == []
    assert all(second.how[name] == "kept" for name in first.nodes)
    assert second.nodes["new"] == second.nodes["n57"]
    assert_within(second, dict((host, 40.2) for host in inventory))


def test_a_previous_placement_on_one_host_is_not_reshuffled():
    # an experiment swapped in before balancing (all on pc1): modify in place moves nothing, the
    # new nodes go elsewhere
    nodes, lans = lans_of(30, 10, chain=False)
    previous = dict((name, "pc1") for name in nodes)
    nodes.update(nodes_of(["x%d" % i for i in range(6)]))
    lans["xlan"] = lan(*["x%d" % i for i in range(6)])
    result = place(nodes, lans, hosts(3), previous=previous)
    assert result.moved == [] and result.per_host["pc1"] == 30
    # the target shown is the balanced share (the status line then says pc1 30/12: kept, not balanced)
    assert result.target == {"pc1": 12, "pc2": 12, "pc3": 12}
    assert result.per_host == {"pc1": 30, "pc2": 3, "pc3": 3}


def test_placing_again_with_the_placement_kept_gives_the_same_figures():
    # a no-change re-run plans with the recorded placement as previous: nothing moves and the
    # figures the record keeps (targets included) are those of the first swap-in, or the record
    # (and the re-run's changed count) would change
    nodes, lans = lans_of(501, 11, seed=3)
    first = place(nodes, lans, hosts(10))
    again = place(nodes, lans, hosts(10), previous=dict(first.nodes))
    assert again.moved == [] and dict(again.nodes) == dict(first.nodes)
    assert again.stats()["target"] == first.stats()["target"] and again.per_host == first.per_host
    assert sorted(first.target.values()) == [50] * 9 + [51]


def test_dedicated_hosts_of_others_and_max_nodes_0_take_no_share():
    nodes, lans = lans_of(100, 10, seed=10)
    inventory = hosts(4)
    inventory["pc2"].update(mode="dedicated", used_by={"default/other"})
    inventory["pc4"]["max_nodes"] = 0
    result = place(nodes, lans, inventory)
    assert result.mode == "balanced"
    assert result.per_host["pc2"] == 0 and result.per_host["pc4"] == 0
    assert_within(result, {"pc1": 50.0, "pc3": 50.0})


def test_max_nodes_on_some_hosts_caps_their_share_the_others_take_the_rest():
    nodes, lans = lans_of(90, 10, seed=11)
    inventory = hosts(3)
    inventory["pc1"]["max_nodes"] = 10
    result = place(nodes, lans, inventory)
    assert result.mode == "balanced"
    assert result.target == {"pc1": 10, "pc2": 40, "pc3": 40}
    assert result.per_host["pc1"] <= 10
    assert_within(result, {"pc1": 10.0, "pc2": 40.0, "pc3": 40.0})


# --- fill stays as it was ---------------------------------------------------------------------------

def test_packing_or_max_nodes_everywhere_or_one_host_fill_as_before():
    nodes, lans = lans_of(100, 10, seed=12)
    result = place(nodes, lans, hosts(4), packing=40)
    assert result.mode == "fill" and result.tolerance is None and result.target is None
    assert list(result.per_host.values()) == [40, 40, 20, 0]
    result = place(nodes, lans, hosts(4, max_nodes=30))
    assert result.mode == "fill" and list(result.per_host.values()) == [30, 30, 30, 10]
    result = place(nodes, lans, hosts(1))
    assert result.mode == "fill" and result.per_host == {"pc1": 100}
    inventory = hosts(2)
    inventory["pc2"].update(mode="dedicated", used_by={"p/q"})
    result = place(nodes, lans, inventory)   # one host open: nothing to balance
    assert result.mode == "fill" and result.per_host == {"pc1": 100, "pc2": 0}
    stats = result.stats()
    assert stats["mode"] == "fill" and stats["tolerance"] is None and stats["target"] is None


# --- determinism and the result -------------------------------------------------------------------

def test_same_input_same_balanced_placement():
    nodes, lans = lans_of(600, 15, seed=13)
    first = place(nodes, lans, hosts(7, cpus=4))
    again = place(json.loads(json.dumps(nodes)), json.loads(json.dumps(lans)), hosts(7, cpus=4))
    assert first.nodes == again.nodes and first.to_dict() == again.to_dict()


def test_same_balanced_placement_under_another_hash_seed():
    script = (
        "import json\n"
        "import test_placement as t\n"
        "nodes, lans = t.lan_experiment(300, seed=14)\n"
        "result = t.place(nodes, lans, t.hosts(4))\n"
        "assert result.mode == 'balanced'\n"
        "print(json.dumps(result.to_dict(), sort_keys=True))\n"
    )
    assert len(under_hash_seeds(script)) == 1


def test_the_result_carries_the_mode_the_tolerance_and_the_targets():
    nodes, lans = lans_of(30, 10)
    result = place(nodes, lans, hosts(3))
    stats = result.stats()
    assert stats["mode"] == "balanced" and stats["tolerance"] == BALANCE_TOLERANCE
    assert stats["target"] == {"pc1": 10, "pc2": 10, "pc3": 10}
    assert stats["per_host"] == {"pc1": 10, "pc2": 10, "pc3": 10}
    assert stats["crossing"] == 2 and stats["auto"] == 30
    data = json.loads(json.dumps(result.to_dict()))
    assert data["mode"] == "balanced" and data["target"] == stats["target"]
