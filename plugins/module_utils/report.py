# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's view: the merged experiment record and the node table people read."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.testbed.containers.plugins.module_utils import files

COLUMNS = (("node", "NODE"), ("host", "HOST"), ("state", "STATE"), ("container", "CONTAINER"),
           ("start", "START"), ("interfaces", "INTERFACES"), ("ssh", "SSH"))


def record_path(record_dir, project, name):
    return os.path.join(os.path.expanduser(record_dir), project, "%s.json" % name)


def read_record(record_dir, project, name):
    return files.read_json(record_path(record_dir, project, name))


def write_record(record_dir, record):
    path = record_path(record_dir, record["project"], record["name"])
    files.write_json(path, record)
    return path


def remove_record(record_dir, project, name):
    path = record_path(record_dir, project, name)
    if os.path.exists(path):
        os.unlink(path)
        return True
    return False


VOLATILE = ("state", "start", "start_exit", "app", "sshd", "reason")
REASON_WIDTH = 80


def stable(record):
    """The record without what changes by itself as nodes run (states, start command)."""
    if not record:
        return record
    nodes = [dict((k, v) for k, v in n.items() if k not in VOLATILE) for n in record.get("nodes", [])]
    return dict(record, nodes=nodes)


def merge(plan, statuses):
    """One record from the plan and each host's status entries (lists of node dicts)."""
    nodes = {}
    for entries in statuses:
        for entry in entries:
            nodes[entry["node"]] = entry
    for node_name, node in plan["nodes"].items():
        nodes.setdefault(node_name, {"node": node_name, "host": node["host"], "state": "absent",
                                     "container": node["container"]})
        nodes[node_name]["interfaces"] = [
            dict((k, i[k]) for k in ("ifname", "lan", "address", "prefixlen", "mac", "veth"))
            for i in node["interfaces"]]
    ordered = [nodes[n] for n in plan["nodes"]]
    return {"version": 1, "project": plan["project"], "name": plan["name"], "plan": plan, "nodes": ordered}


def ssh_column(node):
    """The ssh command; for a node with its own SSH server that is not running, also its state."""
    text = node.get("ssh", "-")
    sshd = node.get("sshd")
    if sshd and sshd != "running":
        text += " (sshd %s)" % sshd
    return text


def start_column(node):
    """The start command's state for the table: exit=N, waiting, running or -."""
    if node.get("start_exit") is not None:
        return "exit=%s" % node["start_exit"]
    state = node.get("start")
    return state if state and state != "none" else "-"


def dead(record):
    """One line per dead node: ``NODE on HOST: REASON``."""
    return ["%s on %s: %s" % (n["node"], n.get("host", "?"), n.get("reason") or "dead")
            for n in record["nodes"] if n.get("state") == "dead"]


def status_document(record):
    """The record for automation (status.yml -e format=json): one object per node with its host,
    container, state (and why it is dead), start command state and exit code, control address,
    ssh command, and interfaces with addresses, the host-side interface (to capture on:
    ``capture_command``) and shaping per direction."""
    plan = record.get("plan") or {}
    nodes = []
    for node in record["nodes"]:
        planned = plan.get("nodes", {}).get(node["node"], {})
        host = node.get("host") or planned.get("host")
        interfaces = []
        for iface in planned.get("interfaces", []):
            interfaces.append({
                "ifname": iface["ifname"], "lan": iface["lan"], "address": iface["address"],
                "prefixlen": iface["prefixlen"], "mac": iface["mac"], "host_interface": iface["veth"],
                "to_node": iface.get("to_node"), "from_node": iface.get("from_node"),
                "capture_command": "ssh %s tcpdump -U -w - -i %s" % (host, iface["veth"]),
            })
        nodes.append({
            "node": node["node"], "host": host, "container": node.get("container"), "state": node.get("state"),
            "reason": node.get("reason"), "start": node.get("start"), "start_exit": node.get("start_exit"),
            "control_address": node.get("control_address"), "ssh": node.get("ssh"), "interfaces": interfaces,
        })
    counts = {}
    for node in nodes:
        counts[node["state"]] = counts.get(node["state"], 0) + 1
    return {"project": record["project"], "name": record["name"], "counts": counts, "nodes": nodes}


def table(record):
    """Lines of a fixed-width table, one node a line."""
    rows = []
    for node in record["nodes"]:
        ifaces = " ".join("%s=%s/%s(%s)" % (i["ifname"], i["address"], i["prefixlen"], i["lan"])
                          for i in node.get("interfaces", []))
        state = node.get("state", "")
        if node.get("reason"):
            reason = node["reason"]
            # the end of a reason is its most specific part ("...: no such file or directory")
            state += " (%s)" % (reason if len(reason) <= REASON_WIDTH else "..." + reason[3 - REASON_WIDTH:])
        rows.append({"node": node["node"], "host": node.get("host", ""), "state": state,
                     "container": node.get("container", ""), "interfaces": ifaces or "-",
                     "ssh": ssh_column(node), "start": start_column(node)})
    widths = dict((key, max([len(title)] + [len(str(r[key])) for r in rows])) for key, title in COLUMNS)
    lines = ["  ".join(title.ljust(widths[key]) for key, title in COLUMNS).rstrip()]
    for r in rows:
        lines.append("  ".join(str(r[key]).ljust(widths[key]) for key, _t in COLUMNS).rstrip())
    summary = "experiment %s/%s: %d nodes" % (record["project"], record["name"], len(rows))
    counts = {}
    for node in record["nodes"]:
        counts[node.get("state", "")] = counts.get(node.get("state", ""), 0) + 1
    summary += " (%s)" % ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items())) if counts else ""
    return [summary] + lines
