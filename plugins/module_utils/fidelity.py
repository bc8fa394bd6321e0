# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fidelity report (playbooks/fidelity.yml, docs/fidelity.md): what the plumbing costs.

The MACE study of the seed testbeds found that the veth plumbing of container nodes adds
latency an experimenter must subtract from what is measured.  This file is the pure half of
the report: the measurement experiment built from a template for the inventory's hosts
(:func:`design`), the parsers of what the tools print (iputils and busybox ``ping``, ``iperf3
-J``), the statistics (median, nearest-rank p99) and the report: one row a measured path, the
overhead each layer adds over the path beneath it, the error of a shaped delay, as lines and
as a JSON document.  measure.py runs the tools on the hosts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import math
import os
import re

from ansible_collections.testbed.containers.plugins.module_utils import files, model, units

DOCUMENT_VERSION = 1
# the measurement experiment's template: examples/fidelity.yml
TEMPLATE_NODES = ("a", "b")
TEMPLATE_LANS = ("plain", "qdisc")
TEMPLATE_LINKS = ("delay",)
# what each measured path is (the netns baseline and the hosts' own network have no LAN)
PATHS = {
    "netns": "two plain network namespaces joined by a veth pair",
    "lan": "two nodes on an unshaped LAN (veth + bridge)",
    "qdisc": "two nodes on a LAN with shaping qdiscs and no real limit",
    "delay": "two nodes on a link with a delay",
    "hosts": "the two hosts' tunnel addresses",
    "vxlan": "two nodes on a LAN across the two hosts",
}
# kernel features a path needs beyond a plain LAN (preflight's names)
NEEDS = {"qdisc": ("htb", "ifb", "ingress", "u32", "mirred"), "delay": ("netem",), "vxlan": ("vxlan",)}
WHAT_CANNOT = {"qdisc": "shaping qdiscs cannot be measured", "delay": "delay cannot be measured",
               "vxlan": "the cross-host LAN cannot be measured"}
# (layer, path, the path beneath it): the overhead a layer adds is path - beneath
LAYERS = (
    ("veth + bridge", "lan", "netns"),
    ("shaping qdiscs (no limit)", "qdisc", "lan"),
    ("cross-host LAN (VXLAN)", "vxlan", "hosts"),
)
PERCENTILE = 99


class FidelityError(Exception):
    pass


# --- statistics ---------------------------------------------------------------------------------
def median(values):
    """The middle value (the mean of the two middle ones for an even count)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of no values")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def percentile(values, pct):
    """The nearest-rank percentile: the smallest value with at least ``pct`` % of the values at or
    below it (p99 of 200 samples is the 198th smallest, so two outliers do not move it)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 < pct <= 100:
        raise ValueError("percentile must be in (0, 100], got %r" % pct)
    rank = int(math.ceil(pct / 100.0 * len(ordered) - 1e-9))
    return ordered[max(rank, 1) - 1]


def rtt_summary(ping):
    """Statistics of a parsed ping (milliseconds): sent, received, loss, min, median, p99, max, mean."""
    samples = ping["samples"]
    sent = ping["transmitted"] if ping.get("transmitted") is not None else len(samples)
    received = ping["received"] if ping.get("received") is not None else len(samples)
    summary = {"sent": sent, "received": received, "loss": round(1 - received / float(sent), 4) if sent else 1.0}
    if samples:
        summary.update(min=round(min(samples), 3), median=round(median(samples), 3),
                       p99=round(percentile(samples, PERCENTILE), 3), max=round(max(samples), 3),
                       mean=round(sum(samples) / len(samples), 3))
    return summary


# --- what the tools print -----------------------------------------------------------------------
# iputils: "64 bytes from 10.10.0.2: icmp_seq=1 ttl=64 time=0.045 ms"
# busybox: "64 bytes from 10.10.0.2: seq=0 ttl=64 time=0.080 ms"; both mark duplicates "(DUP!)"
REPLY_RE = re.compile(r"^\d+ bytes from .+?: (icmp_seq|seq)=(\d+) ttl=\d+ time[=<]([0-9.]+) ms(.*)$")
# iputils: "200 packets transmitted, 200 received, 0% packet loss, time 2189ms"
# busybox: "200 packets transmitted, 200 packets received, 0% packet loss"
COUNTS_RE = re.compile(r"^(\d+) packets transmitted, (\d+) (?:packets )?received")


def parse_ping(text):
    """Round-trip times (ms) of iputils or busybox ping's output, duplicates left out, with the
    summary's counts ({samples, transmitted, received, flavour}; counts None without a summary)."""
    samples, flavour, transmitted, received = [], None, None, None
    for line in (text or "").splitlines():
        line = line.strip()
        match = REPLY_RE.match(line)
        if match:
            flavour = flavour or ("iputils" if match.group(1) == "icmp_seq" else "busybox")
            if "DUP!" not in match.group(4):
                samples.append(float(match.group(3)))
            continue
        match = COUNTS_RE.match(line)
        if match:
            transmitted, received = int(match.group(1)), int(match.group(2))
    return {"samples": samples, "transmitted": transmitted, "received": received, "flavour": flavour}


def parse_iperf3(text):
    """The result of ``iperf3 -c ... -J``: the receiver's throughput (what got through), the
    sender's, retransmits, bytes and seconds; raises FidelityError with iperf3's own error."""
    text = text or ""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise FidelityError("iperf3 printed no JSON: %s" % (tail(text) or "no output"))
    try:
        doc = json.loads(text[start:end + 1])
    except ValueError as exc:
        raise FidelityError("iperf3 printed unreadable JSON (%s): %s" % (exc, tail(text)))
    if doc.get("error"):
        raise FidelityError("iperf3: %s" % doc["error"])
    done = doc.get("end") or {}
    received, sent = done.get("sum_received"), done.get("sum_sent")
    if not received or not sent:
        raise FidelityError("iperf3's JSON has no end.sum_received/sum_sent: %s" % tail(text))
    return {"bits_per_second": float(received["bits_per_second"]),
            "sent_bits_per_second": float(sent["bits_per_second"]),
            "retransmits": sent.get("retransmits"),
            "bytes": int(received["bytes"]),
            "seconds": round(float(received["seconds"]), 3)}


def tail(text, lines=3):
    return " | ".join([line.strip() for line in (text or "").strip().splitlines() if line.strip()][-lines:])


# --- the measurement experiment ----------------------------------------------------------------
def check_template(template, where="template"):
    """The template's shape: nodes a and b, LANs plain and qdisc (with a bandwidth), link delay
    (with a delay), node b serving iperf3, no pins.  Returns the link's asked round trip (ms)."""
    problems = []
    if not isinstance(template, dict):
        raise FidelityError("%s: must be an experiment file (a mapping)" % where)
    for key, names in (("nodes", TEMPLATE_NODES), ("lans", TEMPLATE_LANS), ("links", TEMPLATE_LINKS)):
        have = template.get(key) or {}
        if not isinstance(have, dict) or sorted(have) != sorted(names):
            problems.append("%s: must be exactly %s (has %s): the fidelity report measures over those"
                            % (key, ", ".join(names), ", ".join(sorted(have)) if isinstance(have, dict) else have))
    if problems:
        raise FidelityError("%s: %s" % (where, "; ".join(problems)))
    for node in TEMPLATE_NODES:
        if "host" in template["nodes"][node]:
            problems.append("nodes.%s.host: the playbook pins a copy of the node to each host: remove it" % node)
    command = template["nodes"]["b"].get("command")
    if not (isinstance(command, list) and command[:1] == ["iperf3"] and "-s" in command):
        problems.append("nodes.b.command: must be [iperf3, -s]: the measurements connect to b's iperf3 server")
    if not template["lans"]["qdisc"].get("bandwidth"):
        problems.append("lans.qdisc.bandwidth: needed, far above what the path carries (e.g. 100gbit): "
                        "the qdiscs are measured, not a limit")
    try:
        asked = asked_rtt_ms(template["links"]["delay"])
    except ValueError as exc:
        problems.append("links.delay: %s" % exc)
        asked = None
    if problems:
        raise FidelityError("%s: %s" % (where, "; ".join(problems)))
    return asked


def asked_rtt_ms(link):
    """A link's asked round trip: its delay towards b plus its delay towards a (docs/shaping.md:
    each direction of a link is delayed once)."""
    delays = []
    for direction in ("a_to_b", "b_to_a"):
        value = (link.get(direction) or {}).get("delay", link.get("delay"))
        if not value:
            raise ValueError("delay (or %s.delay) is needed: the report compares asked and measured delay" % direction)
        delays.append(units.parse_time(value) / 1000.0)
    return round(sum(delays), 3)


def _copy_link(link, a, b):
    out = copy.deepcopy(link)
    out["endpoints"] = [a, b]
    for direction, renamed in (("a_to_b", "%s_to_%s" % (a, b)), ("b_to_a", "%s_to_%s" % (b, a))):
        if direction in out:
            out[renamed] = out.pop(direction)
    return out


def _item(host, path, **extra):
    item = {"id": "%s/%s" % (host, path), "host": host, "path": path, "client": None, "server": None,
            "lan": None, "peer_host": None, "tools": None, "asked_rtt_ms": None, "skipped": None}
    item.update(extra)
    item["id"] = "%s/%s" % (host, path) + ("->%s" % item["peer_host"] if item["peer_host"] else "")
    return item


def _lacking(path, hosts, missing):
    """The reason a path cannot be measured on ``hosts`` (features their kernels lack), or None."""
    for host in hosts:
        lacks = [f for f in NEEDS.get(path, ()) if f in (missing.get(host) or [])]
        if lacks:
            return "%s missing on %s: %s" % (", ".join(lacks), host, WHAT_CANNOT[path])
    return None


def design(template, hosts, missing=None):
    """The measurement experiment for ``hosts`` (inventory order) and what to measure.

    Host N (from 1) gets a copy of nodes a and b pinned to it (aN, bN) on LANs plainN and qdiscN
    and link delayN; consecutive hosts N, N+1 get LAN vxlanN between aN and bN+1.  A path whose
    kernel features a host lacks (``missing``: host -> preflight feature names) is left out of
    the experiment and its measurement is skipped with the reason.  Returns (experiment, items).
    """
    if not hosts:
        raise FidelityError("hosts: no physical host to measure on")
    missing = missing or {}
    asked = check_template(template)
    experiment = dict((k, copy.deepcopy(v)) for k, v in template.items() if k not in ("nodes", "lans", "links"))
    nodes, lans, links, items = {}, {}, {}, []
    for index, host in enumerate(hosts, 1):
        a, b = "a%d" % index, "b%d" % index
        for name, role in ((a, "a"), (b, "b")):
            nodes[name] = dict(copy.deepcopy(template["nodes"][role]), host=host)
        lans["plain%d" % index] = dict(copy.deepcopy(template["lans"]["plain"]), members=[a, b])
        items.append(_item(host, "netns", tools=b))
        items.append(_item(host, "lan", client=a, server=b, lan="plain%d" % index))
        reason = _lacking("qdisc", [host], missing)
        if not reason:
            lans["qdisc%d" % index] = dict(copy.deepcopy(template["lans"]["qdisc"]), members=[a, b])
        items.append(_item(host, "qdisc", client=a, server=b, lan="qdisc%d" % index, skipped=reason))
        reason = _lacking("delay", [host], missing)
        if not reason:
            links["delay%d" % index] = _copy_link(template["links"]["delay"], a, b)
        items.append(_item(host, "delay", client=a, server=b, lan="delay%d" % index, asked_rtt_ms=asked,
                           skipped=reason))
    for index in range(1, len(hosts)):
        host, peer = hosts[index - 1], hosts[index]
        a, b = "a%d" % index, "b%d" % (index + 1)
        # the hosts' own path is the baseline of the cross-host LAN, measured only with it
        reason = _lacking("vxlan", [host, peer], missing)
        items.append(_item(host, "hosts", peer_host=peer, tools=a, server=b, skipped=reason))
        if not reason:
            lans["vxlan%d" % index] = {"members": [a, b]}
        items.append(_item(host, "vxlan", client=a, server=b, lan="vxlan%d" % index, peer_host=peer,
                           skipped=reason))
    experiment.update(nodes=nodes, lans=lans)
    if links:
        experiment["links"] = links
    return experiment, items


def target_address(plan, item):
    """The address a measurement pings and connects to: the server node's on the item's LAN, the
    peer host's tunnel address for the hosts' own path; None for the netns baseline."""
    if item["path"] == "netns":
        return None
    if item["path"] == "hosts":
        address = (plan.get("tunnels") or {}).get(item["peer_host"])
        if not address:
            raise FidelityError("%s: the plan has no tunnel address for host %s (testbed_tunnel_address)"
                                % (item["id"], item["peer_host"]))
        return address
    node = (plan.get("nodes") or {}).get(item["server"])
    for iface in (node or {}).get("interfaces", []):
        if iface["lan"] == item["lan"]:
            return iface["address"]
    raise FidelityError("%s: node %s has no interface on %s in the recorded plan" % (item["id"], item["server"], item["lan"]))


# --- the report ---------------------------------------------------------------------------------
def _mbit(bits):
    return None if bits is None else round(bits / 1e6, 1)


def overheads(results):
    """What each layer adds over the path beneath it, per host (and peer host): RTT median and
    p99 (ms) and TCP throughput (Mbit/s and %).  Only layers whose two paths were measured."""
    measured = dict(((r["host"], r["path"]), r) for r in results if not r.get("skipped") and not r.get("error"))
    rows = []
    for layer, path, beneath in LAYERS:
        for (host, have), upper in sorted(measured.items()):
            lower = measured.get((host, beneath))
            if have != path or lower is None or not upper.get("rtt", {}).get("median") or not lower.get("rtt", {}).get("median"):
                continue
            row = {"host": host, "peer_host": upper.get("peer_host"), "layer": layer, "path": path, "over": beneath,
                   "rtt_median_ms": round(upper["rtt"]["median"] - lower["rtt"]["median"], 3),
                   "rtt_p99_ms": round(upper["rtt"]["p99"] - lower["rtt"]["p99"], 3),
                   "tcp_mbit": None, "tcp_percent": None}
            if upper.get("tcp") and lower.get("tcp"):
                up, low = upper["tcp"]["bits_per_second"], lower["tcp"]["bits_per_second"]
                row["tcp_mbit"] = _mbit(up - low)
                row["tcp_percent"] = round(100.0 * (up - low) / low, 1) if low else None
            rows.append(row)
    return rows


def delay_errors(results):
    """The shaped delay asked vs measured per host: error of the RTT median against the asked
    round trip, and the same net of the unshaped LAN's RTT (the plumbing beneath the delay)."""
    lans = dict((r["host"], r) for r in results if r["path"] == "lan" and r.get("rtt", {}).get("median"))
    rows = []
    for r in results:
        if r["path"] != "delay":
            continue
        row = {"host": r["host"], "asked_rtt_ms": r.get("asked_rtt_ms"), "skipped": r.get("skipped"),
               "error": r.get("error")}
        median_ms = (r.get("rtt") or {}).get("median")
        if median_ms and r.get("asked_rtt_ms"):
            row.update(measured_rtt_ms=median_ms, error_ms=round(median_ms - r["asked_rtt_ms"], 3),
                       error_percent=round(100.0 * (median_ms - r["asked_rtt_ms"]) / r["asked_rtt_ms"], 2))
            if r["host"] in lans:
                row["error_net_ms"] = round(row["error_ms"] - lans[r["host"]]["rtt"]["median"], 3)
        rows.append(row)
    return rows


def document(plan, results, settings, measured_at):
    """The JSON document written beside the experiment's record (NAME.fidelity.json)."""
    return {"version": DOCUMENT_VERSION, "project": plan["project"], "name": plan["name"],
            "measured_at": measured_at, "settings": settings, "hosts": list(plan.get("hosts") or []),
            "measurements": results, "overheads": overheads(results), "delay": delay_errors(results),
            "failed": [r["id"] for r in results if r.get("error")]}


def _ms(value, sign=False):
    if value is None:
        return "-"
    return ("%+.3f ms" if sign else "%.3f ms") % value


def columns(titles, rows):
    """Fixed-width lines: a title line, then one line a row (each a list of strings)."""
    widths = [max(len(t), *[len(r[i]) for r in rows]) if rows else len(t) for i, t in enumerate(titles)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [list(titles)] + rows]


def _between(r):
    if r["path"] == "netns":
        return "netns veth pair"
    if r["path"] == "hosts":
        return "%s -> %s" % (r["host"], r["peer_host"])
    return "%s -> %s on %s" % (r["client"], r["server"], r["lan"])


def measurement_row(r):
    rtt, tcp = r.get("rtt") or {}, r.get("tcp") or {}
    note = "skipped: %s" % r["skipped"] if r.get("skipped") else ("failed: %s" % r["error"] if r.get("error") else "")
    if not note and r["path"] == "delay":
        note = "asked rtt %s" % _ms(r.get("asked_rtt_ms"))
    loss = "%g%%" % round(100 * rtt["loss"], 2) if "loss" in rtt else "-"
    return [r["host"], r["path"], _between(r), _ms(rtt.get("median")), _ms(rtt.get("p99")), loss,
            "%.1f" % _mbit(tcp["bits_per_second"]) if tcp else "-",
            str(tcp["retransmits"]) if tcp.get("retransmits") is not None else "-", note]


def lines(doc):
    """The report people read: the measured paths, the overhead of each layer, the delay error."""
    settings = doc.get("settings") or {}
    out = ["fidelity of %s/%s (%s): %s ping samples every %s s, iperf3 %s s a path"
           % (doc["project"], doc["name"], doc["measured_at"], settings.get("ping_count", "?"),
              settings.get("ping_interval", "?"), settings.get("iperf_seconds", "?"))]
    out += columns(("host", "path", "between", "rtt median", "rtt p99", "loss", "tcp Mbit/s", "retr", "note"),
                   [measurement_row(r) for r in doc["measurements"]])
    out.append("overhead each layer adds:")
    rows = []
    for o in doc["overheads"]:
        tcp = "-" if o["tcp_mbit"] is None else "%+.1f Mbit/s" % o["tcp_mbit"] + (
            " (%+.1f%%)" % o["tcp_percent"] if o["tcp_percent"] is not None else "")
        host = o["host"] + (" -> %s" % o["peer_host"] if o.get("peer_host") else "")
        rows.append([host, o["layer"], "%s over %s" % (o["path"], o["over"]), _ms(o["rtt_median_ms"], True),
                     _ms(o["rtt_p99_ms"], True), tcp])
    out += ["  " + line for line in columns(("host", "layer", "paths", "rtt median", "rtt p99", "tcp"), rows)] \
        if rows else ["  none (no layer and the path beneath it were both measured)"]
    out.append("shaped delay, asked vs measured:")
    for d in doc["delay"]:
        if d.get("skipped") or d.get("error") or "error_ms" not in d:
            out.append("  %s: %s" % (d["host"], d.get("skipped") or d.get("error") or "not measured"))
            continue
        net = ", %s net of the unshaped LAN" % _ms(d["error_net_ms"], True) if "error_net_ms" in d else ""
        out.append("  %s: asked rtt %s, measured median %s: error %s (%+.2f%%)%s"
                   % (d["host"], _ms(d["asked_rtt_ms"]), _ms(d["measured_rtt_ms"]), _ms(d["error_ms"], True),
                      d["error_percent"], net))
    return out


# --- the controller's steps (module experiment_fidelity): files beside the experiment's record --
def design_path(record_dir, project, name):
    return os.path.join(os.path.expanduser(record_dir), project, "%s.fidelity-experiment.yml" % name)


def report_path(record_dir, project, name):
    return os.path.join(os.path.expanduser(record_dir), project, "%s.fidelity.json" % name)


def write_design(template_path, hosts, missing, record_dir, dry_run=False):
    """Read the template, check it as an experiment file, write the measurement experiment beside
    the experiment's record; returns (changed, result with path, project, name and measurements)."""
    import yaml  # the controller's (ansible-core needs it); hosts never call this

    try:
        with open(template_path) as f:
            template = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise FidelityError("template %s: %s" % (template_path, exc))
    try:
        model.validate(template)
    except model.ExperimentError as exc:
        raise FidelityError("template %s: %s" % (template_path, "; ".join(exc.errors)))
    experiment, items = design(template, hosts, missing)
    project, name = experiment.get("project", "default"), experiment["name"]
    path = design_path(record_dir, project, name)
    text = "# written by playbooks/fidelity.yml from %s for hosts %s (docs/fidelity.md)\n%s" % (
        template_path, ", ".join(hosts), yaml.safe_dump(experiment, sort_keys=False, default_flow_style=None))
    changed = files.write_if_changed(path, text, dry_run=dry_run)
    return changed, {"path": path, "project": project, "name": name, "measurements": items}


def write_report(plan, results, settings, record_dir, measured_at, dry_run=False):
    """The report's document written beside the record (kept after teardown); returns (changed,
    result with path, lines, document, failures)."""
    doc = document(plan, results, settings, measured_at)
    path = report_path(record_dir, plan["project"], plan["name"])
    if not dry_run:
        files.write_json(path, doc)
    return not dry_run, {"path": path, "lines": lines(doc) + ["written to %s" % path], "document": doc,
                         "failures": doc["failed"]}
