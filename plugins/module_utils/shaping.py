# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Link shaping with tc through pyroute2: bandwidth, delay, jitter, loss and queue per direction.

Shaping lives on the host end of each node's veth, so it works the same whatever carries the
LAN (bridge, VXLAN, VLAN) and needs nothing inside the node:

* traffic TO the node leaves the host end of the veth: the egress layout sits on the veth;
* traffic FROM the node enters the host end: an ``ingress`` qdisc with a u32 match-all filter
  and a ``mirred egress redirect`` hands it to an IFB device, and the same egress layout sits
  on the IFB.

What is asked for is a :class:`~shape.Shape` (shape.py); the requests that build the layout are
data (shaping_requests.py, pure); this file reads the kernel and applies: :func:`apply` plans
and runs only the requests that change something, in place (an htb rate change is a
``change-class``, never a delete), so a second call returns [].  The kernel probes of the
preflight are in preflight.py.

pyroute2 details this relies on (read from pyroute2 0.9.7):

* a qdisc dump covers the whole namespace whatever the index, and ``tc('get')`` returns only
  the ACK: :func:`apply_many` reads all qdiscs once (see :func:`qdisc_snapshot`).
* an IFB starts with txqueuelen 32, which becomes the limit of htb's default leaf: IFBs are
  created with ``IFB_TXQLEN`` (1000, like a veth) so both directions queue alike.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import socket
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.testbed.containers.plugins.module_utils import units
from ansible_collections.testbed.containers.plugins.module_utils.names import ifb_name
# Shape and needed_features are also imported from here (by the planner, model, events, picture).
from ansible_collections.testbed.containers.plugins.module_utils.shape import (  # pylint: disable=unused-import
    Shape, as_shape, needed_features)
from ansible_collections.testbed.containers.plugins.module_utils.shaping_requests import (
    ETH_P_ALL, HTB_CLASS, HTB_HANDLE, INGRESS_HANDLE, REDIRECT_PRIO, TC_H_INGRESS, TC_H_ROOT, EgressLayout, Observed,
    TcRequest, handle_str, ingress_requests, plan_egress, tick_in_usec)

try:
    from pyroute2.netlink.exceptions import NetlinkError
except ImportError:  # pragma: no cover - reported by the modules
    NetlinkError = OSError

IFB_TXQLEN = 1000           # ifb defaults to 32, the default htb leaf's pfifo limit follows it


class ShapingError(Exception):
    """A shaping failure, with the interface and the tc object it concerns."""


# ----------------------------------------------------------------------------------------------
# Reading the kernel


def _nested(msg, *names):
    for name in names:
        if msg is None:
            return None
        msg = msg.get_attr(name)
    return msg


def _observed_state(kind: str, msg) -> Dict[str, Any]:
    opts = msg.get_attr("TCA_OPTIONS")
    if opts is None:
        return {}
    if kind == "htb" and msg["handle"] & 0xFFFF == 0:
        init = opts.get_attr("TCA_HTB_INIT") or {}
        return {"defcls": init.get("defcls")}
    if kind == "htb":
        parms = opts.get_attr("TCA_HTB_PARMS") or {}
        return {
            "rate": opts.get_attr("TCA_HTB_RATE64") or parms.get("rate"),
            "ceil": opts.get_attr("TCA_HTB_CEIL64") or parms.get("ceil"),
            "buffer": parms.get("buffer"),
            "cbuffer": parms.get("cbuffer"),
            "quantum": parms.get("quantum"),
        }
    if kind == "netem":
        return {k: opts.get(k) for k in ("delay", "jitter", "loss", "limit")}
    if kind == "pfifo":
        return {"limit": opts.get("limit")}
    return {}


def _observe(msg) -> Observed:
    kind = msg.get_attr("TCA_KIND")
    return Observed(kind, msg["handle"], msg["parent"], _observed_state(kind, msg))


def qdisc_snapshot(ipr) -> Dict[int, list]:
    """Every qdisc of the namespace, by ifindex, from one dump.

    ``get_qdiscs(index=...)`` costs a dump of every qdisc of the namespace (the filter is
    applied after parsing: ~80 ms with 200 shaped veths), and pyroute2 0.9.7's ``tc('get')``
    returns only the ACK, not the qdisc; so one dump serves all the devices of a run.
    """
    snapshot = {}
    for q in ipr.get_qdiscs():
        snapshot.setdefault(q["index"], []).append(q)
    return snapshot


def _qdiscs(ipr, index: int, snapshot: Optional[Mapping[int, list]]) -> list:
    if snapshot is None:
        return [q for q in ipr.get_qdiscs(index=index) if q["index"] == index]
    return list(snapshot.get(index, ()))


def read_egress(ipr, index: int, snapshot: Optional[Mapping[int, list]] = None) -> EgressLayout:
    """The egress layout the kernel has on device ``index`` (default qdiscs, handle 0, count as none)."""
    layout = EgressLayout()
    qdiscs = _qdiscs(ipr, index, snapshot)
    for q in qdiscs:
        if q["parent"] == TC_H_ROOT and q["handle"] != 0:
            layout.root = _observe(q)
    if layout.root is not None and layout.root.kind == "htb" and layout.root.handle == HTB_HANDLE:
        for q in qdiscs:
            if q["parent"] == HTB_CLASS and q["handle"] != 0:
                layout.leaf = _observe(q)
        for c in ipr.get_classes(index=index):
            if c["index"] == index and c["handle"] == HTB_CLASS and c.get_attr("TCA_KIND") == "htb":
                obs = _observe(c)
                # the kernel reports a class at the top of the htb tree with parent "root"
                layout.cls = Observed(obs.kind, obs.handle, HTB_HANDLE, obs.state)
    return layout


def read_ingress(ipr, index: int, snapshot: Optional[Mapping[int, list]] = None
                 ) -> Tuple[Optional[str], List[Tuple[Optional[int], bool]]]:
    """(kind of the ingress-side qdisc or None, [(redirect ifindex or None, is ours)] per filter)."""
    kind = None
    for q in _qdiscs(ipr, index, snapshot):
        if q["parent"] == TC_H_INGRESS:
            kind = q.get_attr("TCA_KIND")
    if kind is None:
        return None, []
    filters = []
    for f in ipr.get_filters(index=index, parent=INGRESS_HANDLE):
        opts = f.get_attr("TCA_OPTIONS")
        if opts is None or opts.get_attr("TCA_U32_SEL") is None:
            continue  # the u32 hash table header, not a rule
        parms = _nested(opts, "TCA_U32_ACT", "TCA_ACT_PRIO_1", "TCA_ACT_OPTIONS", "TCA_MIRRED_PARMS")
        kind_act = _nested(opts, "TCA_U32_ACT", "TCA_ACT_PRIO_1", "TCA_ACT_KIND")
        keys = opts.get_attr("TCA_U32_SEL").get("keys") or []
        match_all = len(keys) == 1 and keys[0]["key_mask"] == 0 and keys[0]["key_val"] == 0
        protocol = socket.ntohs(f["info"] & 0xFFFF)
        ours = (f.get_attr("TCA_KIND") == "u32" and kind_act == "mirred" and parms is not None
                and parms["eaction"] == 1 and match_all and protocol == ETH_P_ALL
                and f["info"] >> 16 == REDIRECT_PRIO)
        filters.append((parms["ifindex"] if parms is not None else None, ours))
    return kind, filters


def _link(ipr, name: str, links: Optional[Mapping[str, Any]] = None):
    """What shaping needs of the link ``name`` (None when it does not exist): from ``links`` (a
    :func:`link_snapshot`) when given, else one netlink request."""
    if links is not None:
        return links.get(name)
    try:
        msg = ipr.link("get", ifname=name)[0]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise
    return _link_state(msg)


def link_snapshot(ipr) -> Dict[str, Any]:
    """Every link of the namespace as :func:`_link` gives it, keyed by name, from one dump. Like
    :func:`qdisc_snapshot` it stays valid across :func:`apply` calls for different veths: each
    touches only its veth and that veth's IFB."""
    return dict((msg.get_attr("IFLA_IFNAME"), _link_state(msg)) for msg in ipr.get_links())


def _link_state(msg):
    info = msg.get_attr("IFLA_LINKINFO")
    return {
        "index": msg["index"],
        "kind": info.get_attr("IFLA_INFO_KIND") if info is not None else None,
        "alias": msg.get_attr("IFLA_IFALIAS") or "",
        "up": bool(msg["flags"] & 1),
        "txqlen": msg.get_attr("IFLA_TXQLEN"),
    }


# ----------------------------------------------------------------------------------------------
# Applying


def _kernel_option(feature: str) -> str:
    """The kernel option that provides ``feature``, for an error message.  preflight.py holds the
    table; it is imported here, on the error path only, so that importing Shape through this
    file (the planner does) pulls in neither the engine nor the probes."""
    from ansible_collections.testbed.containers.plugins.module_utils.preflight import KERNEL_OPTIONS
    return KERNEL_OPTIONS[feature]


def _error(exc, ifname: str, what: str) -> ShapingError:
    code = getattr(exc, "code", None)
    if "qdisc add" in what and " netem" in what and code in (errno.ENOENT, errno.EOPNOTSUPP):
        return ShapingError(
            "%s: the kernel has no netem qdisc (kernel option %s), needed for delay, jitter and loss; "
            "failed request: %s" % (ifname, _kernel_option("netem"), what))
    if code:
        return ShapingError("%s: %s failed: %s (errno %d)" % (ifname, what, os.strerror(code), code))
    return ShapingError("%s: %s failed: %s" % (ifname, what, exc))


def _run(ipr, request: TcRequest, ifname: str):
    try:
        request.run(ipr)
    except NetlinkError as exc:
        raise _error(exc, ifname, request.describe(ifname)) from exc


def _describe_observed(obs: Observed) -> str:
    s = obs.state
    if obs.kind == "htb" and "rate" in s and s["rate"] is not None:
        return "rate %s" % units.format_rate(s["rate"] * 8)
    if obs.kind == "netem" and s.get("delay") is not None:
        text = "limit %d delay %s" % (s["limit"], units.format_time(round(s["delay"] / tick_in_usec)))
        if s.get("jitter"):
            text += " jitter " + units.format_time(round(s["jitter"] / tick_in_usec))
        if s.get("loss"):
            text += " loss " + units.format_loss(s["loss"] / float(2 ** 32 - 1))
        return text
    if obs.kind == "pfifo":
        return "limit %s" % s.get("limit")
    return "%s %s" % (obs.kind, handle_str(obs.handle))


def _converge_egress(ipr, index: int, ifname: str, shape: Shape, dry_run: bool, snapshot,
                     observed=None) -> List[str]:
    if observed is None:
        observed = read_egress(ipr, index, snapshot)
    ops = []
    for request, replaced in plan_egress(index, observed, shape):
        text = "%s: %s" % (ifname, request.describe(ifname))
        if replaced is not None and request.command.startswith("change"):
            text += " (was %s)" % _describe_observed(replaced)
        ops.append(text)
        if not dry_run:
            _run(ipr, request, ifname)
    return ops


def apply(ipr, veth_name: str, to_node: Shape, from_node: Shape, dry_run: bool = False,
          alias: Optional[str] = None, snapshot: Optional[Mapping[int, list]] = None,
          ifb: Optional[str] = None, links: Optional[Mapping[str, Any]] = None) -> List[str]:
    """Converge the shaping of the attachment whose host end is ``veth_name``.

    ``to_node`` shapes traffic the host sends into the node (egress of the veth), ``from_node``
    traffic the node sends (ingress of the veth, through the IFB ``ifb``, by default
    ``ifb_name(veth_name)``, which gets ``alias`` as its alias so teardown can recognise it). Only what differs is changed;
    returns the operations done (or, with ``dry_run``, to be done); [] when nothing differs.
    ``snapshot`` (from :func:`qdisc_snapshot`, taken before) spares a qdisc dump per call;
    it stays valid across calls for different veths, as each call touches only its own; so does
    ``links`` (from :func:`link_snapshot`), which spares the link requests.
    """
    to_node, from_node = as_shape(to_node), as_shape(from_node)
    veth = _link(ipr, veth_name, links)
    if veth is None:
        raise ShapingError("%s: no such interface to shape" % veth_name)
    if snapshot is None:
        snapshot = qdisc_snapshot(ipr)
    ops = _converge_egress(ipr, veth["index"], veth_name, to_node, dry_run, snapshot)
    ops.extend(_converge_from_node(ipr, veth, veth_name, from_node, dry_run, alias, snapshot,
                                   ifb or ifb_name(veth_name), links))
    return ops


def apply_many(ipr, attachments: Sequence[Mapping[str, Any]], dry_run: bool = False) -> List[str]:
    """:func:`apply` for many attachments with one qdisc dump and one link dump; each item has
    ``veth`` and optionally ``to_node``, ``from_node`` (Shape, mapping or None), ``alias`` and ``ifb``."""
    snapshot = qdisc_snapshot(ipr)
    links = link_snapshot(ipr) if attachments else None
    ops = []
    for item in attachments:
        ops.extend(apply(ipr, item["veth"], item.get("to_node"), item.get("from_node"), dry_run=dry_run,
                         alias=item.get("alias"), snapshot=snapshot, ifb=item.get("ifb"), links=links))
    return ops


def _converge_ifb(ipr, name: str, ifb, alias: Optional[str], dry_run: bool) -> Tuple[Any, List[str]]:
    """Create the IFB, or bring an existing one to what shaping needs (up, queue length, alias)."""
    try:
        if ifb is None:
            ops = ["create ifb %s%s" % (name, " (%s)" % alias if alias else "")]
            if not dry_run:
                # the queue length must be right before the htb class exists: its default
                # pfifo leaf takes its limit from it (an ifb starts with 32)
                ipr.link("add", ifname=name, kind="ifb", txqlen=IFB_TXQLEN)
                index = _link(ipr, name)["index"]
                extra = {"ifalias": alias} if alias else {}
                ipr.link("set", index=index, state="up", **extra)
                ifb = _link(ipr, name)
            return ifb, ops
        changes = {}
        if ifb["txqlen"] != IFB_TXQLEN:
            changes["txqlen"] = IFB_TXQLEN
        if alias and ifb["alias"] != alias:
            changes["ifalias"] = alias
        if not ifb["up"]:
            changes["state"] = "up"
        if not changes:
            return ifb, []
        if not dry_run:
            ipr.link("set", index=ifb["index"], **changes)
        return ifb, ["set ifb %s %s" % (name, " ".join("%s %s" % kv for kv in sorted(changes.items())))]
    except NetlinkError as exc:
        if exc.code == errno.EOPNOTSUPP:
            raise ShapingError("%s: the kernel has no IFB devices (kernel option %s), needed to shape "
                               "traffic from the node" % (name, _kernel_option("ifb"))) from exc
        raise _error(exc, name, "creating the IFB") from exc


def _converge_from_node(ipr, veth, veth_name, shape: Shape, dry_run: bool, alias: Optional[str],
                        snapshot, name: str, links: Optional[Mapping[str, Any]] = None) -> List[str]:
    ifb = _link(ipr, name, links)
    if ifb is not None and ifb["kind"] != "ifb":
        raise ShapingError("%s: exists and is a %s, not an IFB: refusing to take it over" % (name, ifb["kind"]))
    if ifb is not None and alias is not None and ifb["alias"] not in ("", alias):
        raise ShapingError("%s: exists but belongs to %r, not %r: refusing to take it over"
                           % (name, ifb["alias"], alias))
    ingress_kind, filters = read_ingress(ipr, veth["index"], snapshot)
    remove_ingress = TcRequest("del", None, veth["index"], INGRESS_HANDLE, TC_H_INGRESS, {})
    ops = []

    if shape.empty:
        if ingress_kind is not None:
            ops.append("%s: %s" % (veth_name, remove_ingress.describe(veth_name)))
            if not dry_run:
                _run(ipr, remove_ingress, veth_name)
        if ifb is not None:
            ops.append("delete ifb %s" % name)
            if not dry_run:
                try:
                    ipr.link("del", index=ifb["index"])
                except NetlinkError as exc:
                    raise _error(exc, name, "deleting the IFB") from exc
        return ops

    ifb, ifb_ops = _converge_ifb(ipr, name, ifb, alias, dry_run)
    ops.extend(ifb_ops)
    if ifb is None:  # dry run: the IFB does not exist yet, nothing to read on it
        ifb_index = 0
        ops.extend(_converge_egress(ipr, 0, name, shape, True, snapshot, observed=EgressLayout()))
    else:
        ifb_index = ifb["index"]
        ops.extend(_converge_egress(ipr, ifb_index, name, shape, dry_run, snapshot))

    # the redirect comes last, once the IFB shapes what it receives
    add_ingress, add_filter = ingress_requests(veth["index"], ifb_index)
    if ingress_kind is None:
        steps = [add_ingress, add_filter]
    elif ingress_kind == "ingress" and filters == [(ifb_index, True)]:
        steps = []
    elif ingress_kind == "ingress" and not filters:
        steps = [add_filter]
    else:  # another qdisc (clsact) or other filters there: start again from a clean ingress
        steps = [remove_ingress, add_ingress, add_filter]
    names = {veth["index"]: veth_name, ifb_index: name}
    for request in steps:
        ops.append("%s: %s" % (veth_name, request.describe(veth_name, names)))
        if not dry_run:
            _run(ipr, request, veth_name)
    return ops
