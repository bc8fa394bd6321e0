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
