#!/usr/bin/env python
"""Importer benchmark: convert generated NS files, containerlab topologies and compose projects
of growing size, then validate and plan them; print the time per phase and per node.

Run from the repository root (no Docker needed):

    .venv/bin/python bench/importers.py [--nodes 500,5000] [--repeat 3]

The NS file is what a testbed user writes for a big experiment: a `for` loop over an array of
nodes, each node on a shaped duplex link to a router of its group of 50, the routers on one LAN,
explicit addresses for the first node of each group, `rtproto Static`.  The containerlab file and
the compose project have the same shape (groups of 50 on a bridge / a network).  Figures are the
best of --repeat runs.  The issue's goal: a 5,000-node NS file converts in under 2 s.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import sys
import tempfile
import time

# tests/checkout.py links the checkout as ansible_collections.testbed.containers
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import checkout  # noqa: E402  pylint: disable=wrong-import-position

checkout.importable()
from ansible_collections.testbed.containers.plugins.module_utils import importers, model, plan  # noqa: E402


def ns_source(nodes, group=50):
    groups = (nodes + group - 1) // group
    return """source tb_compat.tcl
set ns [new Simulator]
set groups %d
set per %d
set lanstr ""
for {set g 0} {$g < $groups} {incr g} {
    set r($g) [$ns node]
    tb-set-node-os $r($g) UBUNTU22-64-STD
    append lanstr "$r($g) "
}
set core [$ns make-lan "$lanstr" 1Gb 0ms]
set k 0
for {set g 0} {$g < $groups} {incr g} {
    for {set i 0} {$i < $per && $k < %d - $groups} {incr i} {
        set h($k) [$ns node]
        set l($k) [$ns duplex-link $h($k) $r($g) 100Mb 0ms DropTail]
        if {$i == 0} {
            tb-set-ip-link $h($k) $l($k) 10.[expr {$g / 200}].[expr {$g %% 200}].2
        }
        incr k
    }
}
$ns rtproto Static
$ns run
""" % (groups, group - 1, nodes)


def clab_source(nodes, group=50):
    lines = ["name: big", "topology:", "  kinds:", "    linux: {image: testbed/debian:bookworm}", "  nodes:"]
    links = []
    for k in range(nodes):
        if k % group == 0:
            lines.append("    br%d: {kind: bridge}" % (k // group))
        lines.append("    n%d: {kind: linux, exec: ['touch /tmp/up']}" % k)
        links.append('    - endpoints: ["n%d:eth1", "br%d:p%d"]' % (k, k // group, k % group))
    return "\n".join(lines + ["  links:"] + links) + "\n"


def compose_source(nodes, group=50):
    lines = ["name: big", "services:"]
    for k in range(nodes):
        lines += ["  s%d:" % k, "    image: testbed/busybox:latest", "    networks: [net%d]" % (k // group)]
    lines.append("networks:")
    lines += ["  net%d: {}" % g for g in range((nodes + group - 1) // group)]
    return "\n".join(lines) + "\n"


def best(fn, repeat):
    times, result = [], None
    for _attempt in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="500,5000", help="comma-separated sizes")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(n) for n in args.nodes.split(",")]
    hosts = ["h%d" % i for i in range(1, 26)]
    header = ("format", "nodes", "convert s", "ms/node", "validate s", "plan s", "notes")
    print("%-8s %6s %10s %12s %10s %10s %12s" % header)
    tmp = tempfile.mkdtemp(prefix="bench-importers-")
    for fmt, source, filename in (("ns", ns_source, "big.ns"), ("clab", clab_source, "big.clab.yml"),
                                  ("compose", compose_source, "compose.yml")):
        for nodes in sizes:
            path = os.path.join(tmp, filename)
            text = source(nodes)
            with open(path, "w") as f:
                f.write(text)
            options = {"os_images": {"UBUNTU22-64-STD": "testbed/debian:bookworm"}, "max_nodes": nodes + 10}
            took, (_fmt, doc, notes) = best(lambda: importers.load(path, None, options, text=text), args.repeat)
            got = len(doc["nodes"])
            valid, _exp = best(lambda: model.validate(doc), 1)
            planned, _plan = best(lambda: plan.make_plan(doc, hosts), 1)
            row = (fmt, got, took, 1000.0 * took / got, valid, planned, len(notes))
            print("%-8s %6d %10.3f %12.3f %10.3f %10.3f %12d" % row)
            sys.stdout.flush()
    goal = [s for s in sizes if s >= 5000]
    if goal:
        print("goal: a 5,000-node NS file converts in under 2 s (see the ns row above)")


if __name__ == "__main__":
    main()
