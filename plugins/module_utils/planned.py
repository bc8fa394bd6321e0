# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a plan on the hosts: which nodes a host has, a node's /etc/hosts, the keys that log
in as root.  Pure, and apart from the planner (plan.py), so the hosts and the agent need none
of model, placement or report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def slice_of(plan, host):
    """The node names of ``plan`` placed on ``host``, in file order."""
    return [n for n, node in plan["nodes"].items() if node["host"] == host]


def hosts_file(plan, node_name):
    """The text of the node's /etc/hosts."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "127.0.1.1\t%s" % node_name if not plan["nodes"][node_name]["interfaces"] else None,
             "# experiment %s/%s (written by testbed.containers)" % (plan["project"], plan["name"])]
    lines = [line for line in lines if line is not None]
    for entry in plan["etc_hosts"]:
        lines.append("%s\t%s" % (entry[0], " ".join(entry[1:])))
    return "\n".join(lines) + "\n"


def root_keys(plan):
    """The keys that may log in as root on every node: the file's and the controller's
    ``ssh_keys`` plus every experiment user's."""
    keys = list(plan.get("ssh_keys") or [])
    for user in plan.get("users") or []:
        keys.extend(user.get("ssh_keys") or [])
    return unique([k.strip() for k in keys])


def unique(items):
    """``items`` without repeats, in first-seen order."""
    seen = set()
    return [i for i in items if not (i in seen or seen.add(i))]


def start_waves(plan, nodes):
    """``nodes`` (one host's, in file order) in the order they start: waves, each node after the
    nodes it ``depends_on`` that run on the same host (nodes on other hosts start on their own).
    One wave of all of them when no node sets an order."""
    here = set(nodes)
    deps = dict((n, [d for d in plan["nodes"][n].get("depends_on") or () if d in here]) for n in nodes)
    waves, placed = [], set()
    while len(placed) < len(nodes):
        wave = [n for n in nodes if n not in placed and all(d in placed for d in deps[n])]
        if not wave:  # a cycle (the model refuses them): the rest together rather than never
            wave = [n for n in nodes if n not in placed]
        waves.append(wave)
        placed.update(wave)
    return waves
