"""Placement benchmark: time and quality of ``placement.place()`` (pure Python, no Docker).

Run from the repository root:

    .venv/bin/python bench/placement.py [--repeat R] [--seed S]

Scenarios (generated from a fixed seed, so every run plans the same experiments):

- ``5000/25``: 5,000 nodes in LANs of 15 to 25 members (about 250 LANs, a third of them shaped
  to 10 or 100 Mbit/s), a chain of links joining each LAN's first node to the next LAN's, and
  250 more links between random nodes of different LANs; 25 hosts, packing 200 (exactly full);
- ``5000/25 shuffled``: the same, nodes listed in a shuffled order;
- ``200/1``: 200 nodes of the same kind on one host, packing 200;
- ``5000/25 one LAN``: 5,000 nodes on a single LAN (the big-LAN path), 25 hosts, packing 200;
- ``120/3``: 120 nodes (LANs of ~20) on 3 hosts, packing 40 (the multi-host swap-in benchmark);
- balanced (no packing, ``pack`` shows ``-``): ``5000/25 bal`` (the first scenario, no packing),
  ``5000/25 shuf bal`` (shuffled), ``501/10 bal`` (501 nodes in LANs of 15 to 25) and
  ``501/10 one LAN`` (the issue's case: 501 nodes on one LAN, 10 hosts).

For each: the median wall time of R runs; the LAN attachments crossing hosts (members off their
LAN's majority host), the LANs spanning hosts and the cost place() minimizes (bandwidth-weighted
cut, in unshaped attachments); the same two figures for the naive placement (nodes in file order,
each host filled up to the packing factor: ``naive:x``, ``naive:$``); the least and most nodes
on a host.  With no packing the naive placement fills the hosts in file order up to their
balanced targets, and ``rr:x`` is the crossing of a round-robin placement (node k on host k mod
hosts), the baseline of the unit test.  The generator lists each LAN's members together, so file
order is already a good placement for the unshuffled scenarios: the naive figures are a strong
baseline there and a weak one for the shuffled scenario.  The crossing count is unweighted while
place() minimizes the weighted cost, so it may cross more attachments of slow LANs to keep fast
ones together.  The 5,000-node plans must take under 2 s on a 2-core machine (the issue's
target), and a balanced placement must keep every host within its tolerance (``bal``: ok).
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import random
import statistics
import sys
import time

# tests/checkout.py links the checkout as ansible_collections.testbed.containers
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import checkout  # noqa: E402  pylint: disable=wrong-import-position

ROOT = checkout.importable()

from ansible_collections.testbed.containers.plugins.module_utils.placement import place  # noqa: E402

TARGET_SECONDS = 2.0


def lan_experiment(n_nodes, seed, lan_min=15, lan_max=25, extra_links=None):
    """Nodes in LANs of lan_min..lan_max members, a chain of links between LANs, random links."""
    rng = random.Random(seed)
    nodes, lans, groups = {}, {}, []
    k = 0
    while k < n_nodes:
        size = min(rng.randint(lan_min, lan_max), n_nodes - k)
        group = ["n%d" % i for i in range(k, k + size)]
        k += size
        groups.append(group)
        bandwidth = rng.choice([None, None, 10 * 10 ** 6, 100 * 10 ** 6])
        lans["lan%d" % len(groups)] = {"members": group, "bandwidth_bps": bandwidth}
    for name in ("n%d" % i for i in range(n_nodes)):
        nodes[name] = {"host": None, "cpus": None, "memory": None}
    for g in range(len(groups) - 1):
        lans["chain%d" % g] = {"members": [groups[g][0], groups[g + 1][0]], "bandwidth_bps": None}
    extra = len(groups) if extra_links is None else extra_links
    for i in range(extra if len(groups) > 1 else 0):
        a, b = rng.sample(range(len(groups)), 2)
        lans["link%d" % i] = {"members": [rng.choice(groups[a]), rng.choice(groups[b])],
                              "bandwidth_bps": rng.choice([None, 10 ** 9, 10 * 10 ** 6])}
    return nodes, lans


def one_lan(n_nodes):
    nodes = dict(("n%d" % i, {"host": None, "cpus": None, "memory": None}) for i in range(n_nodes))
    return nodes, {"lan": {"members": list(nodes), "bandwidth_bps": None}}


def inventory(count):
    return dict(("pc%d" % (i + 1), {"max_nodes": None, "mode": "shared", "cpus": None, "memory": None,
                                    "used_by": set()}) for i in range(count))


def naive(nodes, lans, hosts, packing, target=None):
    """File-order filling (each host up to the packing factor, or to its balanced target), scored
    by place() through pins."""
    limits = [packing] * len(hosts) if target is None else [target[host] for host in hosts]
    order = [host for host, limit in zip(hosts, limits) for _k in range(limit)]
    pinned = dict((name, dict(spec, host=order[k])) for k, (name, spec) in enumerate(nodes.items()))
    return place(pinned, lans, hosts, packing=packing)


def round_robin(nodes, lans, hosts):
    """Node k on host k mod hosts, scored by place() through pins."""
    names = list(hosts)
    pinned = dict((name, dict(spec, host=names[k % len(names)])) for k, (name, spec) in enumerate(nodes.items()))
    return place(pinned, lans, hosts)


def within_tolerance(result):
    """'ok' when every host is within its balanced bounds, else the hosts outside; '-' for fill."""
    if result.mode != "balanced":
        return "-"
    out = [host for host, (low, high) in result.bounds.items() if not low <= result.per_host[host] <= high]
    return "ok" if not out else "OUT:" + ",".join(out)


def shuffled(nodes, lans, seed):
    """The same experiment with the nodes listed in another order (file order says nothing)."""
    items = list(nodes.items())
    random.Random(seed).shuffle(items)
    return dict(items), lans


def run(label, nodes, lans, n_hosts, packing, repeat):
    hosts = inventory(n_hosts)
    times, result = [], None
    for _run in range(repeat):
        start = time.perf_counter()
        result = place(nodes, lans, hosts, packing=packing)
        times.append(time.perf_counter() - start)
    base = naive(nodes, lans, hosts, packing, result.target)
    seconds = statistics.median(times)
    balance = within_tolerance(result)
    print("%-17s %5d %5d %5d %5s %7.3f %8d %8d %8.1f %8d %8.1f %8d %5d..%-5d %s" % (
        label, len(nodes), len(lans), n_hosts, packing or "-", seconds, result.crossing, result.spanning, result.cost,
        base.crossing, base.cost, round_robin(nodes, lans, hosts).crossing, min(result.per_host.values()),
        max(result.per_host.values()), balance))
    return seconds, balance in ("-", "ok")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (median shown)")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    print("%-17s %5s %5s %5s %5s %7s %8s %8s %8s %8s %8s %8s %-12s %s" % (
        "scenario", "nodes", "lans", "hosts", "pack", "seconds", "crossing", "spanning", "cost",
        "naive:x", "naive:$", "rr:x", "per host", "bal"))
    big = lan_experiment(5000, args.seed)
    results = [
        run("5000/25", *big, n_hosts=25, packing=200, repeat=args.repeat),
        run("5000/25 shuffled", *shuffled(*big, seed=args.seed), n_hosts=25, packing=200, repeat=args.repeat),
        run("5000/25 one LAN", *one_lan(5000), n_hosts=25, packing=200, repeat=args.repeat),
        run("200/1", *lan_experiment(200, args.seed), n_hosts=1, packing=200, repeat=args.repeat),
        run("120/3", *lan_experiment(120, args.seed), n_hosts=3, packing=40, repeat=args.repeat),
        run("5000/25 bal", *big, n_hosts=25, packing=None, repeat=args.repeat),
        run("5000/25 shuf bal", *shuffled(*big, seed=args.seed), n_hosts=25, packing=None, repeat=args.repeat),
        run("501/10 bal", *lan_experiment(501, args.seed), n_hosts=10, packing=None, repeat=args.repeat),
        run("501/10 one LAN", *one_lan(501), n_hosts=10, packing=None, repeat=args.repeat),
    ]
    status = 0
    for k in (0, 1, 2, 5, 6):   # the 5,000-node plans
        if results[k][0] >= TARGET_SECONDS:
            status = 1
    if status:
        print("FAIL: a 5,000-node plan on 25 hosts took %.3f s (target: under %.1f s)"
              % (max(results[k][0] for k in (0, 1, 2, 5, 6)), TARGET_SECONDS))
    if not all(balanced for _seconds, balanced in results):
        print("FAIL: a balanced placement has a host outside its tolerance")
        status = 1
    if not status:
        print("ok: 5,000 nodes on 25 hosts in %.3f s at most (target: under %.1f s), balanced within tolerance"
              % (max(results[k][0] for k in (0, 1, 2, 5, 6)), TARGET_SECONDS))
    return status


if __name__ == "__main__":
    sys.exit(main())
