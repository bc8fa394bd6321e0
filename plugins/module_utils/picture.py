# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology picture: a plan (and optionally the controller's record) as a graphviz graph.

:func:`dot_source` is pure and deterministic (plan order); :func:`render` runs graphviz's
``dot`` on it. The picture has one box per physical host (a cluster) holding its nodes; a LAN
is a small ellipse inside the box of its host, or outside the boxes when it spans hosts, with
an edge to each member (its interface, address and shaping); a link is one edge between its
two endpoints (both addresses, the shaping of each direction). With a record, nodes are
coloured by their state.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import subprocess

from ansible_collections.testbed.containers.plugins.module_utils import units
from ansible_collections.testbed.containers.plugins.module_utils.shaping import Shape

# fill colours of the node states of the record (report.py); an unknown state stays plain
STATE_COLORS = {
    "booted": "palegreen",
    "running": "khaki1",
    "dead": "lightcoral",
    "absent": "lightgrey",
}
STATE_WORDS = (("booted", "green"), ("running", "yellow"), ("dead", "red"), ("absent", "grey"))
FONT = "Helvetica"
FORMAT_RE = re.compile(r"^[a-z][a-z0-9_:]*\Z")
INSTALL_HINT = "apt-get install graphviz"


class PictureError(Exception):
    pass


def quote(text):
    """``text`` as a DOT quoted string: backslashes and double quotes escaped, newlines kept as
    graphviz's centred line break."""
    text = "%s" % (text,)
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return '"%s"' % text


def label(*lines):
    """A multi-line label (empty lines dropped), quoted."""
    return quote("\n".join(line for line in lines if line))


def shape_words(value):
    """The shaping of one direction, short: ``10mbit 20ms±5ms 0.1% queue 100``; '' without any."""
    if not value:
        return ""
    shape = value if isinstance(value, Shape) else Shape(**value)
    if shape.empty:
        return ""
    parts = []
    if shape.rate_bps is not None:
        parts.append(units.format_rate(shape.rate_bps))
    if shape.delay_us:
        delay = units.format_time(shape.delay_us)
        parts.append(delay + (u"\u00b1" + units.format_time(shape.jitter_us) if shape.jitter_us else ""))
    if shape.loss:
        parts.append(units.format_loss(shape.loss))
    if shape.limit_packets is not None:
        parts.append("queue %d" % shape.limit_packets)
    return " ".join(parts)


def attachment_words(iface):
    """A LAN member's shaping: one text when both directions agree, else ``to: X / from: Y``
    (to: the LAN to the node, from: the node to the LAN)."""
    to_node, from_node = shape_words(iface.get("to_node")), shape_words(iface.get("from_node"))
    if to_node == from_node:
        return to_node
    return "to: %s / from: %s" % (to_node or "none", from_node or "none")


def address(iface):
    return "%s/%s" % (iface["address"], iface["prefixlen"]) if iface.get("prefixlen") is not None \
        else "%s" % iface["address"]


def node_id(name):
    return quote("node:" + name)


def lan_id(name):
    return quote("lan:" + name)


def states_of(record):
    """Node -> state from the controller's record (``{"nodes": [{node, state, ...}]}``)."""
    if not record:
        return {}
    return dict((n["node"], n.get("state")) for n in record.get("nodes") or () if n.get("node"))


def hosts_of(plan):
    """The physical hosts in plan order, then any host only a node names."""
    hosts = list(plan.get("hosts") or ())
    for node in plan["nodes"].values():
        if node.get("host") and node["host"] not in hosts:
            hosts.append(node["host"])
    return hosts


def interface(plan, node_name, lan_name):
    for iface in plan["nodes"][node_name]["interfaces"]:
        if iface["lan"] == lan_name:
            return iface
    return None


def node_statement(name, node, states):
    attrs = ["shape=box", "style=%s" % quote("rounded" + (",filled" if states.get(name) in STATE_COLORS else "")),
             "label=%s" % label(name, node.get("image"), states.get(name) if states else "")]
    if states.get(name) in STATE_COLORS:
        attrs.append("fillcolor=%s" % quote(STATE_COLORS[states[name]]))
    return "%s [%s];" % (node_id(name), ", ".join(attrs))


def lan_statement(name, lan):
    return "%s [shape=ellipse, style=filled, fillcolor=%s, fontsize=10, margin=\"0.05,0.02\", height=0.3, label=%s];" % (
        lan_id(name), quote("lightblue"), label(name, lan.get("subnet")))


def lan_edges(plan, lan_name, lan):
    lines = []
    for member in lan["members"]:
        iface = interface(plan, member, lan_name)
        if iface is None:
            continue
        text = label("%s %s" % (iface["ifname"], address(iface)), attachment_words(iface))
        lines.append("%s -- %s [label=%s];" % (node_id(member), lan_id(lan_name), text))
    return lines


def link_edge(plan, lan_name, lan):
    """One edge between the link's two endpoints: its name and subnet, each end's interface and
    address, the shaping of each direction (a direction is shaped on its receiving end)."""
    if len(lan["members"]) != 2:
        return []
    first, second = lan["members"]
    ends = [(first, interface(plan, first, lan_name)), (second, interface(plan, second, lan_name))]
    if any(iface is None for _n, iface in ends):
        return []
    lines = ["%s %s" % (lan_name, lan.get("subnet") or "")]
    lines.extend("%s %s %s" % (n, iface["ifname"], address(iface)) for n, iface in ends)
    towards_second, towards_first = shape_words(ends[1][1].get("to_node")), shape_words(ends[0][1].get("to_node"))
    if towards_second == towards_first:
        lines.append(towards_second)
    else:
        lines.append("%s->%s: %s" % (first, second, towards_second or "none"))
        lines.append("%s->%s: %s" % (second, first, towards_first or "none"))
    return ["%s -- %s [label=%s, penwidth=2];" % (node_id(first), node_id(second), label(*lines))]


def dot_source(plan, record=None):
    """The DOT source of the plan's picture; with ``record``, nodes coloured by state."""
    states = states_of(record)
    lans = plan.get("lans") or {}
    out = ["graph %s {" % quote("%s/%s" % (plan.get("project", ""), plan.get("name", ""))),
           "  graph [fontname=%s, labelloc=t, rankdir=LR, nodesep=0.4, ranksep=0.9, label=%s];" % (
               quote(FONT), label("%s/%s" % (plan.get("project", ""), plan.get("name", "")),
                                  "state: " + ", ".join("%s %s" % w for w in STATE_WORDS) if record else "")),
           "  node [fontname=%s];" % quote(FONT),
           "  edge [fontname=%s, fontsize=9];" % quote(FONT)]
    on_host = dict((h, []) for h in hosts_of(plan))
    for lan_name, lan in lans.items():
        if lan.get("kind", "lan") == "lan" and len(lan.get("hosts") or ()) == 1 and lan["hosts"][0] in on_host:
            on_host[lan["hosts"][0]].append(lan_name)
    inside = set(n for names_ in on_host.values() for n in names_)
    for index, host in enumerate(on_host):
        out.append("  subgraph %s {" % quote("cluster_%d_%s" % (index, host)))
        out.append("    graph [label=%s, labeljust=l, style=rounded, color=grey40];" % quote(host))
        for node_name, node in plan["nodes"].items():
            if node.get("host") == host:
                out.append("    " + node_statement(node_name, node, states))
        for lan_name in on_host[host]:
            out.append("    " + lan_statement(lan_name, lans[lan_name]))
        out.append("  }")
    for node_name, node in plan["nodes"].items():
        if not node.get("host"):
            out.append("  " + node_statement(node_name, node, states))
    for lan_name, lan in lans.items():
        if lan.get("kind", "lan") == "lan" and lan_name not in inside:
            out.append("  " + lan_statement(lan_name, lan))
    for lan_name, lan in lans.items():
        edges = link_edge(plan, lan_name, lan) if lan.get("kind") == "link" else lan_edges(plan, lan_name, lan)
        out.extend("  " + line for line in edges)
    out.append("}")
    return "\n".join(out) + "\n"


def render(source, path_without_ext, formats=("svg", "png")):
    """Run ``dot -T<fmt> -o PATH.<fmt>`` for each format; returns the files written."""
    dot = shutil.which("dot")
    if dot is None:
        raise PictureError("graphviz's dot command is missing (not on PATH): %s" % INSTALL_HINT)
    bad = [f for f in formats if not FORMAT_RE.match("%s" % f)]
    if bad:
        raise PictureError("invalid output format(s) %s: a graphviz format such as svg, png or pdf"
                           % ", ".join(repr(f) for f in bad))
    prefix = os.path.abspath(os.path.expanduser(path_without_ext))
    directory = os.path.dirname(prefix)
    if not os.path.isdir(directory):
        os.makedirs(directory)
    written = []
    for fmt in formats:
        path = "%s.%s" % (prefix, fmt.partition(":")[0])
        try:
            proc = subprocess.run([dot, "-T" + fmt, "-o", path], input=source.encode("utf-8"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        except OSError as exc:
            raise PictureError("running %s: %s (%s)" % (dot, exc, INSTALL_HINT)) from exc
        if proc.returncode != 0:
            raise PictureError("dot -T%s -o %s failed (exit %d): %s" % (
                fmt, path, proc.returncode, proc.stderr.decode("utf-8", "replace").strip()))
        written.append(path)
    return written
