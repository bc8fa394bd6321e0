# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's view: the merged experiment record and the node table people read."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible_collections.testbed.containers.plugins.module_utils import files, model
from ansible_collections.testbed.containers.plugins.module_utils.resources import format_bytes

COLUMNS = (("node", "NODE"), ("host", "HOST"), ("state", "STATE"), ("container", "CONTAINER"),
           ("start", "START"), ("interfaces", "INTERFACES"), ("ssh", "SSH"))
# shown after START when the hosts read what the nodes use (slice.add_resources)
RESOURCES_COLUMN = ("resources", "CPU/MEMORY")


def record_path(record_dir, project, name):
    return os.path.join(os.path.expanduser(record_dir), project, "%s.json" % name)


def read_record(record_dir, project, name):
    return files.read_json(record_path(record_dir, project, name))


def write_record(record_dir, record):
    path = record_path(record_dir, record["project"], record["name"])
    files.write_json(path, record)
    return path


def remove_record(record_dir, project, name):
    removed = False
    for path in (record_path(record_dir, project, name), events_path(record_dir, project, name)):
        if os.path.exists(path):
            os.unlink(path)
            removed = True
    return removed


# --- the event log: one JSON object a line beside the record (appended, never rewritten) ---------
EVENTS_SHOWN = 5


def events_path(record_dir, project, name):
    return os.path.join(os.path.expanduser(record_dir), project, "%s.events.jsonl" % name)


def append_event(record_dir, project, name, entry):
    """Append one applied event (its time, text, timing error and each host's result)."""
    path = events_path(record_dir, project, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def log_event(record_dir, plan, event, at, results, actions, dry_run=False):
    """The controller's part of an event: append it and its hosts' results to the experiment's
    event log and, when it changed links or shaping everywhere, the record's plan. Returns
    (the entry, the hosts where it failed)."""
    from ansible_collections.testbed.containers.plugins.module_utils import events
    entry, failed = event_entry(event, at, results)
    if dry_run:
        return entry, failed
    append_event(record_dir, plan["project"], plan["name"], entry)
    record = read_record(record_dir, plan["project"], plan["name"])
    if record and not failed and any(a["op"] in ("link", "shape") for acts in actions.values() for a in acts):
        record["plan"] = events.apply_to_plan(record["plan"], actions)
        write_record(record_dir, record)
    return entry, failed


def event_entry(event, at, results):
    """The log entry of an applied event from each host's result (the registered results of the
    experiment_event calls): when it started, how late, ok or failed, and each host's
    operations, exit code, output and error.  Returns (entry, {host: error} of the failed)."""
    results = [r for r in results if r.get("host")]
    failed = dict((r["host"], r.get("msg") or "failed") for r in results if r.get("failed"))
    applied = [r["applied_at"] for r in results if r.get("applied_at")]
    late = [r["late"] for r in results if r.get("late") is not None]
    entry = {"time": time.time(), "event": event, "at": at, "applied_at": min(applied) if applied else None,
             "late": max(late) if late else None,
             "result": "failed on %s" % ", ".join(sorted(failed)) if failed else "ok",
             "hosts": dict((r["host"], {"operations": r.get("operations", []), "rc": r.get("rc"),
                                        "output": (r.get("output") or "")[-2000:] or None, "error": failed.get(r["host"])})
                           for r in results)}
    return entry, failed


def read_events(record_dir, project, name, last=None):
    """The logged events, oldest first (the ``last`` ones only); a torn last line is skipped."""
    entries = []
    try:
        with open(events_path(record_dir, project, name)) as f:
            for line in f:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
    except (IOError, OSError):
        return []
    return entries[-last:] if last else entries


def event_line(entry):
    """One line for people: ``12:00:02 link lan0 down: ok (+0.04 s late)``."""
    when = time.strftime("%H:%M:%S", time.localtime(entry.get("applied_at") or entry.get("time") or 0))
    scheduled = " at %gs" % entry["at"] if entry.get("at") is not None else ""
    late = " (+%.2f s late)" % entry["late"] if entry.get("late") is not None else ""
    return "%s%s %s: %s%s" % (when, scheduled, entry.get("event"), entry.get("result", "?"), late)


VOLATILE = ("state", "start", "start_exit", "app", "sshd", "reason", "log", "resources")
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


LOG_LINES_SHOWN = 3


def log_words(node):
    """The end of a node's console log on one line (`` (log: a | b | c)``), or ''."""
    lines = [line.strip() for line in (node.get("log") or "").splitlines() if line.strip()][-LOG_LINES_SHOWN:]
    return " (log: %s)" % " | ".join(lines) if lines else ""


def dead(record):
    """One line per dead node: ``NODE on HOST: REASON (log: the last lines of its console)``."""
    return ["%s on %s: %s%s" % (n["node"], n.get("host", "?"), n.get("reason") or "dead", log_words(n))
            for n in record["nodes"] if n.get("state") == "dead"]


def failure(record, boot_timeout=None):
    """What fails a swap-in (empty: nothing): the dead nodes, and with ``boot_timeout`` the nodes
    that did not boot in that time."""
    parts = []
    gone = dead(record)
    if gone:
        parts.append("%d node(s) could not be started: %s" % (len(gone), "; ".join(gone)))
    late = not_booted(record, boot_timeout) if boot_timeout else []
    if late:
        parts.append("%d node(s) did not boot: %s" % (len(late), "; ".join(late)))
    return "; ".join(parts)


def not_booted(record, timeout):
    """One line per node still ``running`` (not booted) after a boot wait of ``timeout`` seconds."""
    return ["%s on %s: not booted after %s s (testbed_boot_timeout): its interfaces are not all in place or its "
            "supervisor has not seen it ready; see docker logs %s" % (n["node"], n.get("host", "?"), timeout,
                                                                      n.get("container", "?"))
            for n in record["nodes"] if n.get("state") == "running"]


def resources_column(node):
    """What a node uses against its limits, ``cpu 0.45/1 mem 120m/256m`` (CPUs, memory in
    Docker's units; no ``/LIMIT`` without a limit), ``-`` without a reading (a dead node)."""
    used = node.get("resources")
    if not used:
        return "-"
    cpu = "?" if used.get("cpu_percent") is None else "%.2f" % (used["cpu_percent"] / 100.0)
    if used.get("cpus_limit"):
        cpu += "/%g" % used["cpus_limit"]
    memory = "?" if used.get("memory_bytes") is None else format_bytes(used["memory_bytes"])
    if used.get("memory_limit"):
        memory += "/" + format_bytes(used["memory_limit"])
    return "cpu %s mem %s" % (cpu, memory)


def _capacity(spec):
    """A host's capacity as the plan role collects it (testbed_max_nodes, testbed_cpus,
    testbed_memory; inventory values may be strings): {max_nodes, cpus, memory}, None unset."""
    spec = spec or {}
    result = {"max_nodes": None, "cpus": None, "memory": None}
    try:
        result["max_nodes"] = int(spec["max_nodes"]) if spec.get("max_nodes") not in (None, "") else None
    except (TypeError, ValueError):
        pass
    try:
        result["cpus"] = float(spec["cpus"]) if spec.get("cpus") not in (None, "") else None
    except (TypeError, ValueError):
        pass
    if spec.get("memory") not in (None, ""):
        result["memory"] = model.parse_memory(spec["memory"])
    return result


def host_usage(record, capacity=None):
    """host -> how full it is: its nodes, the cpus and memory they ask (the numbers placement
    counts) and use (the sum of their readings), against its capacity when ``capacity`` gives
    it (host -> {max_nodes, cpus, memory}: testbed_max_nodes, testbed_cpus, testbed_memory).
    {"nodes": {"placed", "capacity"}, "cpus": {"asked", "used", "capacity"}, "memory": {...}},
    ``used`` None when no node of the host was read."""
    planned = (record.get("plan") or {}).get("nodes") or {}
    hosts = {}
    for node in record["nodes"]:
        plan_node = planned.get(node["node"], {})
        host = node.get("host") or plan_node.get("host")
        entry = hosts.get(host)
        if entry is None:
            cap = _capacity((capacity or {}).get(host))
            entry = hosts[host] = {"nodes": {"placed": 0, "capacity": cap["max_nodes"]},
                                   "cpus": {"asked": 0, "used": None, "capacity": cap["cpus"]},
                                   "memory": {"asked": 0, "used": None, "capacity": cap["memory"]}}
        entry["nodes"]["placed"] += 1
        entry["cpus"]["asked"] += plan_node.get("cpus") or 0
        entry["memory"]["asked"] += plan_node.get("memory") or 0
        used = node.get("resources") or {}
        if used.get("cpu_percent") is not None:
            entry["cpus"]["used"] = round((entry["cpus"]["used"] or 0) + used["cpu_percent"] / 100.0, 2)
        if used.get("memory_bytes") is not None:
            entry["memory"]["used"] = (entry["memory"]["used"] or 0) + used["memory_bytes"]
    return hosts


def host_lines(usage):
    """One line per host: ``host h1: nodes 3/10, cpus used 1.20 asked 2.5/8, memory used 600m
    asked 1g/16g`` (``/CAPACITY`` only where the inventory gives it)."""
    lines = []
    for host, entry in usage.items():
        nodes, cpus, memory = entry["nodes"], entry["cpus"], entry["memory"]
        text = "host %s: nodes %d%s" % (host, nodes["placed"], "/%d" % nodes["capacity"] if nodes["capacity"] is not None else "")
        text += ", cpus used %s asked %g%s" % ("?" if cpus["used"] is None else "%.2f" % cpus["used"], cpus["asked"],
                                               "/%g" % cpus["capacity"] if cpus["capacity"] is not None else "")
        text += ", memory used %s asked %s%s" % ("?" if memory["used"] is None else format_bytes(memory["used"]),
                                                 format_bytes(memory["asked"]) if memory["asked"] else "0",
                                                 "/" + format_bytes(memory["capacity"]) if memory["capacity"] else "")
        lines.append(text)
    return lines


def status_document(record, events=None, capacity=None):
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
            "resources": node.get("resources"),
        })
    counts = {}
    for node in nodes:
        counts[node["state"]] = counts.get(node["state"], 0) + 1
    document = {"project": record["project"], "name": record["name"], "counts": counts, "nodes": nodes,
                "hosts": host_usage(record, capacity)}
    if plan.get("placement"):  # plans over several inventory hosts (plan.placement_summary)
        document["placement"] = plan["placement"]
    if events:
        document["events"] = events
    return document


def _count(number, one, many):
    return "%d %s" % (number, one if number == 1 else many)


def placement_line(placement):
    """The placement on one line (None without a summary, i.e. one inventory host):
    ``placement: balanced (±5%), h1 48/50, h2 52/50; 3 LANs span hosts, 12 attachments cross``,
    each host's nodes over its target when balanced, its nodes alone when filled."""
    if not placement:
        return None
    target = placement.get("target") or {}
    hosts = ", ".join("%s %d/%d" % (h, n, target[h]) if h in target else "%s %d" % (h, n)
                      for h, n in placement.get("per_host", {}).items())
    mode = placement.get("mode", "?")
    if placement.get("tolerance") is not None:
        mode += " (±%g%%)" % round(placement["tolerance"] * 100, 3)
    spanning, crossing = placement.get("spanning") or 0, placement.get("crossing") or 0
    lans = _count(spanning, "LAN spans hosts", "LANs span hosts") if spanning else "no LAN spans hosts"
    if crossing:
        lans += ", %s" % _count(crossing, "attachment crosses", "attachments cross")
    return "placement: %s, %s; %s" % (mode, hosts, lans)


def table(record, events=None, capacity=None):
    """Lines of a fixed-width table, one node a line, after the experiment's summary and, over
    several hosts, its placement (``placement_line``); when the hosts read what the nodes use
    (or ``capacity`` is given: host_usage), a CPU/MEMORY column and a line per host after the
    nodes; then the last ``events`` applied."""
    read = any(node.get("resources") for node in record["nodes"])
    columns = COLUMNS[:5] + (RESOURCES_COLUMN,) + COLUMNS[5:] if read else COLUMNS
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
                     "ssh": ssh_column(node), "start": start_column(node), "resources": resources_column(node)})
    widths = dict((key, max([len(title)] + [len(str(r[key])) for r in rows])) for key, title in columns)
    lines = ["  ".join(title.ljust(widths[key]) for key, title in columns).rstrip()]
    for r in rows:
        lines.append("  ".join(str(r[key]).ljust(widths[key]) for key, _t in columns).rstrip())
    if read or capacity:
        lines += host_lines(host_usage(record, capacity))
    summary = "experiment %s/%s: %d nodes" % (record["project"], record["name"], len(rows))
    counts = {}
    for node in record["nodes"]:
        counts[node.get("state", "")] = counts.get(node.get("state", ""), 0) + 1
    summary += " (%s)" % ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items())) if counts else ""
    if events:
        lines += ["last events:"] + ["  " + event_line(e) for e in events]
    placed = placement_line((record.get("plan") or {}).get("placement"))
    return [summary] + ([placed] if placed else []) + lines + port_lines(record.get("plan") or {})


def port_lines(plan):
    """One line per host NIC on a LAN (mixed mode): what the machine behind it is to take."""
    lines = []
    for lan, spec in sorted((plan.get("lans") or {}).items()):
        for port in spec.get("ports") or ():
            routes = ", ".join("%s via %s" % (r["dest"], r["via"]) for r in port.get("routes") or ())
            if port.get("stack"):
                lines.append("host %s on %s: its own stack has %s/%d (%s)%s" % (
                    port["host"], lan, port["address"], port["prefixlen"], port["stack"],
                    "; routes " + routes if routes else ""))
                continue
            lines.append("port %s:%s on %s: the machine behind it takes %s/%d%s" % (
                port["host"], port["interface"], lan, port["address"], port["prefixlen"],
                "; routes " + routes if routes else ""))
    return lines


PHASE_ORDER = ("hosts", "images", "networks", "nodes", "shaping", "control", "boot")


def timings_lines(timings, plan_seconds=None):
    """The swap-in's summary: seconds of planning, then per host seconds per phase (preparing the
    host, images, networks, nodes, shaping, control plane, boot wait)."""
    if not timings:
        return []
    lines = ["seconds per phase:" + (" plan %.1f" % plan_seconds if plan_seconds is not None else "")]
    for entry in timings:
        phases = ["%s %.1f" % (phase, float(entry[phase])) for phase in PHASE_ORDER if entry.get(phase) is not None]
        total = sum(float(entry[phase]) for phase in PHASE_ORDER if entry.get(phase) is not None)
        lines.append("  %s: %s (%.1f)" % (entry.get("host", "?"), ", ".join(phases), total))
    return lines


def converge_record(plan, statuses, record_dir, state="present", write=True, boot_timeout=None, timings=(),
                    plan_seconds=None, dry_run=False, capacity=None):
    """Module experiment_report: the controller's record of the experiment merged from ``plan``
    and each host's ``statuses`` and written (``write``), with the table people read; or the
    record removed (``state`` absent).  Returns (changed, operations, result).  A record that
    differs only in what the nodes are doing (state, start command, resources) is rewritten, but
    that is news, not a change of the experiment.  ``capacity``: host -> {max_nodes, cpus,
    memory} (testbed_max_nodes, testbed_cpus, testbed_memory, as the plan role's
    testbed_host_vars has them), what the per-host lines (host_usage) measure against."""
    project, name = plan["project"], plan["name"]
    path = record_path(record_dir, project, name)
    if state == "absent":
        changed = bool(read_record(record_dir, project, name))
        if changed and not dry_run:
            remove_record(record_dir, project, name)
        return changed, ["remove %s" % path] if changed else [], {"path": path}
    record = merge(plan, [s or [] for s in statuses])
    old = read_record(record_dir, project, name)
    differs = write and json.loads(json.dumps(record)) != old
    if differs and not dry_run:
        write_record(record_dir, record)
    events = read_events(record_dir, project, name, last=EVENTS_SHOWN)
    result = dict(record=record, table=table(record, events, capacity) + timings_lines(timings, plan_seconds),
                  dead=dead(record), path=path, status=status_document(record, events, capacity),
                  failure=failure(record, boot_timeout))
    return bool(differs) and stable(record) != stable(old), ["write %s" % path] if differs else [], result
