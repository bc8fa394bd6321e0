# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Link shaping with tc through pyroute2: bandwidth, delay, jitter, loss and queue per direction.

Shaping lives on the host end of each node's veth, so it works the same whatever carries the
LAN (bridge, VXLAN, VLAN) and needs nothing inside the node:

* traffic TO the node leaves the host end of the veth: the egress layout below sits on the veth;
* traffic FROM the node enters the host end: an ``ingress`` qdisc with a u32 match-all filter
  and a ``mirred egress redirect`` hands it to an IFB device, and the same egress layout sits
  on the IFB.

The egress layout is Emulab's: a root ``htb`` (handle 1:, default class 1:1) with one class 1:1
whose rate and ceil are the bandwidth, and, only when delay, jitter or loss are asked for, a
``netem`` leaf (handle 10:) under 1:1 whose ``limit`` holds the bandwidth-delay product (the
netem default of 1000 packets is what throttles Mininet's long-delay links). Without a
bandwidth, netem alone is the root (handle 10:). A ``queue`` without netem becomes a ``pfifo``
leaf (handle 10:) of that many packets.

The module is split so that tests need no kernel: :func:`egress_requests` and
:func:`plan_egress` are pure (shape and observed state in, plain-data requests out);
:func:`apply` reads the kernel, plans, and runs only the requests that change something, in
place (an htb rate change is a ``change-class``, never a delete), so a second call returns [].

pyroute2 details this relies on (read from pyroute2 0.9.7, ``netlink/rtnl/tcmsg``):

* htb ``rate``/``ceil`` given as integers are taken as **bytes per second** (``get_rate``
  passes integers through, and the kernel's ``tc_ratespec`` is in bytes/s); strings would go
  through pyroute2's own unit parser, which we avoid. ``burst``/``cburst`` are bytes, turned
  into ticks by pyroute2 (``calc_xmittime``); rates of 2**32 bytes/s and more go in
  ``TCA_HTB_RATE64`` (pyroute2 does the split).
* htb ``default`` is the *minor* number of the default class (1 for 1:1); pyroute2's default
  is 0x10, and its docstring example passes 0x200000.
* netem ``delay``/``jitter`` are microseconds (converted to ticks and truncated), ``loss`` is a
  **percentage** (0..100), not a probability, ``limit`` packets.
* ``tc('del', ...)`` without a kind keeps the ``parent`` given; with a kind, pyroute2 builds
  options for the delete request too, so deletions are sent without a kind.
* a qdisc dump covers the whole namespace whatever the index, and ``tc('get')`` returns only
  the ACK: :func:`apply_many` reads all qdiscs once (see :func:`qdisc_snapshot`).
* a u32 filter needs ``target`` (its classid) even when only an action matters; an action
  given as a plain string ("ok", "drop") is a gact action, which some kernels lack.
* an IFB starts with txqueuelen 32, which becomes the limit of htb's default leaf: IFBs are
  created with ``IFB_TXQLEN`` (1000, like a veth) so both directions queue alike.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.testbed.containers.plugins.module_utils import units
from ansible_collections.testbed.containers.plugins.module_utils.names import ifb_name

try:
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.rtnl.tcmsg.common import calc_xmittime, percent2u32, tick_in_usec
    HAS_PYROUTE2 = True
except ImportError:  # pragma: no cover - reported by the modules
    NetlinkError = OSError
    HAS_PYROUTE2 = False
    tick_in_usec = 15.625

    def calc_xmittime(rate, size):
        return int(int(1000000 * (float(size) / rate)) * tick_in_usec)

    def percent2u32(pct):
        return int((2 ** 32 - 1) * pct / 100)

TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1
INGRESS_HANDLE = 0xFFFF0000
HTB_HANDLE = 0x10000        # 1:
HTB_CLASS = 0x10001         # 1:1
HTB_DEFAULT_MINOR = 1       # unclassified traffic goes to 1:1
LEAF_HANDLE = 0x100000      # 10: (netem or pfifo under 1:1, or netem as root)
ETH_P_ALL = 0x0003
REDIRECT_PRIO = 1
MATCH_ALL = "0x0/0x0+0"

MTU = 1500                  # bytes per packet for the bandwidth-delay product
MIN_BURST = 3200            # bytes: two full frames
BURST_TIME_US = 1000        # htb burst: 1 ms worth of the rate, at least MIN_BURST
MIN_QUANTUM = 1600
MAX_QUANTUM = 200000        # the kernel's own bound for computed quanta
MIN_NETEM_LIMIT = 1000      # packets: netem's default
QUEUE_MARGIN = 2            # netem limit = margin x bandwidth-delay product
NOMINAL_LINE_RATE_BPS = 10 ** 10  # a veth has no rate: assume 10 gbit/s for netem without bandwidth
IFB_TXQLEN = 1000           # ifb defaults to 32, the default htb leaf's pfifo limit follows it

KERNEL_OPTIONS = {
    "htb": "CONFIG_NET_SCH_HTB",
    "netem": "CONFIG_NET_SCH_NETEM",
    "ifb": "CONFIG_IFB",
    "ingress": "CONFIG_NET_SCH_INGRESS",
    "u32": "CONFIG_NET_CLS_U32",
    "mirred": "CONFIG_NET_ACT_MIRRED",
}
SHAPING_FEATURES = ("htb", "netem", "ifb", "ingress", "u32", "mirred")


class ShapingError(Exception):
    """A shaping failure, with the interface and the tc object it concerns."""


# ----------------------------------------------------------------------------------------------
# What is asked for


@dataclass(frozen=True)
class Shape:
    """The shaping of one direction of one attachment.

    ``rate_bps`` None means no bandwidth limit; ``limit_packets`` None means a queue derived
    from the bandwidth-delay product (netem) or the device default (htb alone).
    """

    rate_bps: Optional[int] = None
    delay_us: int = 0
    jitter_us: int = 0
    loss: float = 0.0
    limit_packets: Optional[int] = None

    def __post_init__(self):
        if self.rate_bps is not None and (not isinstance(self.rate_bps, int) or self.rate_bps < 8):
            raise ValueError("rate_bps must be an integer of at least 8 bit/s, not %r" % (self.rate_bps,))
        for name in ("delay_us", "jitter_us"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError("%s must be an integer >= 0, not %r" % (name, value))
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError("loss must be a probability between 0 and 1, not %r" % (self.loss,))
        if self.jitter_us and not self.delay_us:
            raise ValueError("jitter needs a delay")
        if self.limit_packets is not None:
            if not isinstance(self.limit_packets, int) or self.limit_packets < 1:
                raise ValueError("limit_packets must be an integer >= 1, not %r" % (self.limit_packets,))
            if self.rate_bps is None and not self.needs_netem:
                raise ValueError("a queue limit needs a bandwidth, a delay or a loss to apply to")

    @classmethod
    def from_spec(cls, spec: Optional[Mapping[str, Any]]) -> "Shape":
        """A Shape from experiment-file values: bandwidth, delay, jitter, loss, queue (all optional)."""
        spec = spec or {}
        unknown = set(spec) - {"bandwidth", "delay", "jitter", "loss", "queue"}
        if unknown:
            raise ValueError("unknown shaping parameter(s) %s; known: bandwidth, delay, jitter, loss, queue"
                             % ", ".join(sorted(unknown)))
        queue = spec.get("queue")
        if queue is not None and (isinstance(queue, bool) or not isinstance(queue, int) or queue < 1):
            raise ValueError("invalid queue %r: expected a number of packets >= 1" % (queue,))
        return cls(
            rate_bps=None if spec.get("bandwidth") is None else units.parse_rate(spec["bandwidth"]),
            delay_us=units.parse_time(spec.get("delay") or 0),
            jitter_us=units.parse_time(spec.get("jitter") or 0),
            loss=units.parse_loss(spec.get("loss") or 0),
            limit_packets=queue,
        )

    @property
    def needs_netem(self) -> bool:
        return bool(self.delay_us or self.jitter_us or self.loss)

    @property
    def empty(self) -> bool:
        return self.rate_bps is None and not self.needs_netem

    def describe(self) -> str:
        parts = []
        if self.rate_bps is not None:
            parts.append("rate " + units.format_rate(self.rate_bps))
        if self.delay_us:
            parts.append("delay " + units.format_time(self.delay_us))
        if self.jitter_us:
            parts.append("jitter " + units.format_time(self.jitter_us))
        if self.loss:
            parts.append("loss " + units.format_loss(self.loss))
        if self.limit_packets is not None:
            parts.append("queue %d" % self.limit_packets)
        return " ".join(parts) or "none"


NO_SHAPE = Shape()


def as_shape(value: Any) -> Shape:
    """Accept a Shape, None, or a mapping with the Shape's field names."""
    if value is None:
        return NO_SHAPE
    if isinstance(value, Shape):
        return value
    return Shape(**dict(value))


def needed_features(shapes: Sequence[Tuple[Shape, Shape]]) -> List[str]:
    """The kernel features a list of (to_node, from_node) shapes needs, for the preflight."""
    needed = set()
    for to_node, from_node in shapes:
        for shape in (as_shape(to_node), as_shape(from_node)):
            if shape.rate_bps is not None:
                needed.add("htb")
            if shape.needs_netem:
                needed.add("netem")
        if not as_shape(from_node).empty:
            needed.update(("ifb", "ingress", "u32", "mirred"))
    return [f for f in SHAPING_FEATURES if f in needed]


# ----------------------------------------------------------------------------------------------
# Requests as data


def handle_str(handle: int) -> str:
    if handle == TC_H_ROOT:
        return "root"
    major, minor = handle >> 16, handle & 0xFFFF
    return "%x:%x" % (major, minor) if minor else "%x:" % major


@dataclass(frozen=True)
class TcRequest:
    """One ``ipr.tc(command, kind, index, handle, parent=parent, **kwargs)`` call."""

    command: str
    kind: Optional[str]
    index: int
    handle: int
    parent: int
    kwargs: Dict[str, Any] = field(default_factory=dict)

    def run(self, ipr):
        return ipr.tc(self.command, self.kind, self.index, self.handle, parent=self.parent, **self.kwargs)

    def describe(self, ifname: Optional[str] = None, names: Optional[Mapping[int, str]] = None) -> str:
        """The request as the tc(8) command an operator would type (``names``: ifindex -> name)."""
        dev = ifname or "#%d" % self.index
        verb = self.command.split("-")[0]
        if verb in ("del", "remove", "delete"):
            verb = "del"
        where = "root" if self.parent == TC_H_ROOT else (
            "ingress" if self.parent == TC_H_INGRESS else "parent " + handle_str(self.parent))
        if self.command.endswith("-class"):
            text = "tc class %s dev %s parent %s classid %s" % (verb, dev, handle_str(self.parent),
                                                                handle_str(self.handle))
        elif self.command.endswith("-filter"):
            text = "tc filter %s dev %s parent %s" % (verb, dev, handle_str(self.parent))
        elif self.parent == TC_H_INGRESS:
            text = "tc qdisc %s dev %s ingress" % (verb, dev)
        else:
            text = "tc qdisc %s dev %s %s handle %s" % (verb, dev, where, handle_str(self.handle))
        if self.kind and verb != "del" and self.parent != TC_H_INGRESS:
            text += " " + self.kind + _describe_kwargs(self.kind, self.kwargs, names or {})
        return text


def _describe_kwargs(kind: str, kw: Mapping[str, Any], names: Mapping[int, str]) -> str:
    if kind == "htb" and "rate" in kw:
        return " rate %s ceil %s burst %db" % (units.format_rate(kw["rate"] * 8),
                                               units.format_rate(kw["ceil"] * 8), kw["burst"])
    if kind == "htb":
        return " default %x" % kw.get("default", 0x10)
    if kind == "netem":
        text = " limit %d" % kw["limit"]
        if kw.get("delay"):
            text += " delay " + units.format_time(kw["delay"])
            if kw.get("jitter"):
                text += " " + units.format_time(kw["jitter"])
        if kw.get("loss"):
            text += " loss " + units.format_loss(kw["loss"] / 100.0)
        return text
    if kind == "pfifo":
        return " limit %d" % kw["limit"]
    if kind == "u32":
        target = (kw.get("action") or {}).get("ifindex")
        return " protocol all prio %d match u32 0 0 action mirred egress redirect dev %s" % (
            kw.get("prio", 0), names.get(target, "#%s" % target))
    return ""


@dataclass(frozen=True)
class TcObject:
    """One qdisc or class of the egress layout: the request that makes it and the parameters
    the kernel reports back for it (what the comparison uses)."""

    what: str                   # "qdisc" or "class"
    kind: str
    handle: int
    parent: int
    kwargs: Dict[str, Any]
    state: Dict[str, Any]

    def request(self, command: str, index: int) -> TcRequest:
        suffix = "-class" if self.what == "class" else ""
        return TcRequest(command + suffix, self.kind, index, self.handle, self.parent, dict(self.kwargs))


@dataclass(frozen=True)
class Observed:
    """A qdisc or class as read from the kernel."""

    kind: str
    handle: int
    parent: int
    state: Dict[str, Any]


@dataclass
class EgressLayout:
    """The three places of the egress layout: root qdisc, htb class 1:1, leaf under 1:1."""

    root: Any = None
    cls: Any = None
    leaf: Any = None


def rate_bytes(shape: Shape) -> int:
    return shape.rate_bps // 8


def htb_burst(rate_bytes_per_s: int) -> int:
    return max(MIN_BURST, rate_bytes_per_s * BURST_TIME_US // 1000000)


def htb_quantum(rate_bytes_per_s: int) -> int:
    return min(MAX_QUANTUM, max(MIN_QUANTUM, rate_bytes_per_s // 10))


def netem_limit(shape: Shape) -> int:
    """Packets netem may hold: the given queue, else margin x bandwidth-delay product (>= 1000)."""
    if shape.limit_packets is not None:
        return shape.limit_packets
    rate = shape.rate_bps or NOMINAL_LINE_RATE_BPS
    in_flight_us = shape.delay_us + shape.jitter_us
    numerator = rate * in_flight_us * QUEUE_MARGIN
    denominator = MTU * 8 * 1000000
    return max(MIN_NETEM_LIMIT, -(-numerator // denominator))


def _ticks(microseconds: int) -> int:
    # pyroute2: time2tick(us) = int(us) * tick_in_usec, truncated when packed as u32
    return int(int(microseconds) * tick_in_usec)


def _netem_object(shape: Shape, parent: int) -> TcObject:
    percent = shape.loss * 100.0
    return TcObject(
        "qdisc", "netem", LEAF_HANDLE, parent,
        {"delay": shape.delay_us, "jitter": shape.jitter_us, "loss": percent, "limit": netem_limit(shape)},
        {"delay": _ticks(shape.delay_us), "jitter": _ticks(shape.jitter_us), "loss": percent2u32(percent),
         "limit": netem_limit(shape)},
    )


def desired_layout(shape: Shape) -> EgressLayout:
    shape = as_shape(shape)
    if shape.empty:
        return EgressLayout()
    if shape.rate_bps is None:
        return EgressLayout(root=_netem_object(shape, TC_H_ROOT))
    rate = rate_bytes(shape)
    burst = htb_burst(rate)
    quantum = htb_quantum(rate)
    root = TcObject("qdisc", "htb", HTB_HANDLE, TC_H_ROOT, {"default": HTB_DEFAULT_MINOR},
                    {"defcls": HTB_DEFAULT_MINOR})
    cls = TcObject(
        "class", "htb", HTB_CLASS, HTB_HANDLE,
        {"rate": rate, "ceil": rate, "burst": burst, "cburst": burst, "quantum": quantum},
        {"rate": rate, "ceil": rate, "buffer": calc_xmittime(rate, burst), "cbuffer": calc_xmittime(rate, burst),
         "quantum": quantum},
    )
    leaf = None
    if shape.needs_netem:
        leaf = _netem_object(shape, HTB_CLASS)
    elif shape.limit_packets is not None:
        leaf = TcObject("qdisc", "pfifo", LEAF_HANDLE, HTB_CLASS, {"limit": shape.limit_packets},
                        {"limit": shape.limit_packets})
    return EgressLayout(root=root, cls=cls, leaf=leaf)


def egress_requests(ifname_index: int, shape: Shape) -> List[TcRequest]:
    """The requests that build the egress layout of ``shape`` on a device without one."""
    layout = desired_layout(shape)
    return [obj.request("add", ifname_index) for obj in (layout.root, layout.cls, layout.leaf) if obj is not None]


def _same(desired: Optional[TcObject], observed: Optional[Observed]) -> bool:
    if desired is None or observed is None:
        return desired is None and observed is None
    return (desired.kind == observed.kind and desired.handle == observed.handle
            and desired.parent == observed.parent and desired.state == observed.state)


def _delete_qdisc(index: int, obs: Observed) -> TcRequest:
    return TcRequest("del", None, index, obs.handle, obs.parent, {})


def plan_egress(index: int, observed: EgressLayout, shape: Shape) -> List[Tuple[TcRequest, Optional[Observed]]]:
    """The requests turning the observed egress layout into the one of ``shape``, each with the
    observed object it replaces or changes (for the report). Changes in place where the kernel
    allows it: an htb class rate, a netem's parameters."""
    desired = desired_layout(shape)
    steps = []
    if desired.root is None:
        if observed.root is not None:
            steps.append((_delete_qdisc(index, observed.root), observed.root))
        return steps
    root = observed.root
    if root is not None and (root.kind, root.handle) == (desired.root.kind, desired.root.handle):
        if not _same(desired.root, root):
            if root.kind == "netem":
                steps.append((desired.root.request("change", index), root))
            else:  # htb's qdisc parameters (the default class) cannot be changed
                steps.append((_delete_qdisc(index, root), root))
                return steps + [(r, None) for r in egress_requests(index, shape)]
    else:
        if root is not None:
            steps.append((_delete_qdisc(index, root), root))
        return steps + [(r, None) for r in egress_requests(index, shape)]
    if desired.cls is None:
        return steps
    if observed.cls is None:
        steps.append((desired.cls.request("add", index), None))
    elif not _same(desired.cls, observed.cls):
        steps.append((desired.cls.request("change", index), observed.cls))
    leaf, want = observed.leaf, desired.leaf
    if _same(want, leaf):
        return steps
    if leaf is not None and want is not None and (leaf.kind, leaf.handle) == (want.kind, want.handle):
        steps.append((want.request("change", index), leaf))
        return steps
    if leaf is not None:
        steps.append((_delete_qdisc(index, leaf), leaf))
    if want is not None:
        steps.append((want.request("add", index), None))
    return steps


def ingress_requests(veth_index: int, ifb_index: int) -> List[TcRequest]:
    """The ingress qdisc on the veth and the filter redirecting all its traffic to the IFB."""
    return [
        TcRequest("add", "ingress", veth_index, INGRESS_HANDLE, TC_H_INGRESS, {}),
        TcRequest("add-filter", "u32", veth_index, 0, INGRESS_HANDLE, {
            "prio": REDIRECT_PRIO,
            "protocol": ETH_P_ALL,
            "target": HTB_CLASS,
            "keys": [MATCH_ALL],
            "action": {"kind": "mirred", "direction": "egress", "action": "redirect", "ifindex": ifb_index},
        }),
    ]


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


def _link(ipr, name: str):
    try:
        msg = ipr.link("get", ifname=name)[0]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise
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


def _error(exc, ifname: str, what: str) -> ShapingError:
    code = getattr(exc, "code", None)
    if "qdisc add" in what and " netem" in what and code in (errno.ENOENT, errno.EOPNOTSUPP):
        return ShapingError(
            "%s: the kernel has no netem qdisc (kernel option %s), needed for delay, jitter and loss; "
            "failed request: %s" % (ifname, KERNEL_OPTIONS["netem"], what))
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
          ifb: Optional[str] = None) -> List[str]:
    """Converge the shaping of the attachment whose host end is ``veth_name``.

    ``to_node`` shapes traffic the host sends into the node (egress of the veth), ``from_node``
    traffic the node sends (ingress of the veth, through the IFB ``ifb``, by default
    ``ifb_name(veth_name)``, which gets ``alias`` as its alias so teardown can recognise it). Only what differs is changed;
    returns the operations done (or, with ``dry_run``, to be done); [] when nothing differs.
    ``snapshot`` (from :func:`qdisc_snapshot`, taken before) spares a qdisc dump per call;
    it stays valid across calls for different veths, as each call touches only its own.
    """
    to_node, from_node = as_shape(to_node), as_shape(from_node)
    veth = _link(ipr, veth_name)
    if veth is None:
        raise ShapingError("%s: no such interface to shape" % veth_name)
    if snapshot is None:
        snapshot = qdisc_snapshot(ipr)
    ops = _converge_egress(ipr, veth["index"], veth_name, to_node, dry_run, snapshot)
    ops.extend(_converge_from_node(ipr, veth, veth_name, from_node, dry_run, alias, snapshot,
                                   ifb or ifb_name(veth_name)))
    return ops


def apply_many(ipr, attachments: Sequence[Mapping[str, Any]], dry_run: bool = False) -> List[str]:
    """:func:`apply` for many attachments with one qdisc dump; each item has ``veth`` and
    optionally ``to_node``, ``from_node`` (Shape, mapping or None), ``alias`` and ``ifb``."""
    snapshot = qdisc_snapshot(ipr)
    ops = []
    for item in attachments:
        ops.extend(apply(ipr, item["veth"], item.get("to_node"), item.get("from_node"), dry_run=dry_run,
                         alias=item.get("alias"), snapshot=snapshot, ifb=item.get("ifb")))
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
                               "traffic from the node" % (name, KERNEL_OPTIONS["ifb"])) from exc
        raise _error(exc, name, "creating the IFB") from exc


def _converge_from_node(ipr, veth, veth_name, shape: Shape, dry_run: bool, alias: Optional[str],
                        snapshot, name: str) -> List[str]:
    ifb = _link(ipr, name)
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


# ----------------------------------------------------------------------------------------------
# Preflight


def missing_shaping_features(ipr, features: Sequence[str] = SHAPING_FEATURES) -> List[Tuple[str, str]]:
    """The features of ``features`` this kernel lacks, as (feature, kernel option) pairs.

    Each feature is probed by creating it on a throwaway veth pair in the namespace of ``ipr``
    (built in or loadable, /proc/modules proves nothing); everything is deleted at once.
    mirred can only be probed through u32: without u32 it is not reported.
    """
    unknown = set(features) - set(KERNEL_OPTIONS)
    if unknown:
        raise ValueError("unknown shaping feature(s) %s; known: %s"
                         % (", ".join(sorted(unknown)), ", ".join(SHAPING_FEATURES)))
    base = "tbsp%05d" % (os.getpid() % 100000)
    probe, peer, ifb = base + "a", base + "b", base + "i"
    present = set()
    absent = set()

    def attempt(feature, call):
        try:
            call()
        except NetlinkError as exc:
            if exc.code in (errno.ENOENT, errno.EOPNOTSUPP):
                absent.add(feature)
                return False
            raise ShapingError("probing %s (%s): %s (errno %d)"
                               % (feature, KERNEL_OPTIONS[feature], os.strerror(exc.code), exc.code)) from exc
        present.add(feature)
        return True

    def delete_probes():
        for name in (probe, ifb):
            link = _link(ipr, name)
            if link is not None:
                ipr.link("del", index=link["index"])

    delete_probes()
    ipr.link("add", ifname=probe, kind="veth", peer=peer)
    try:
        index = _link(ipr, probe)["index"]
        if attempt("htb", lambda: ipr.tc("add", "htb", index, HTB_HANDLE, parent=TC_H_ROOT,
                                         default=HTB_DEFAULT_MINOR)):
            ipr.tc("del", None, index, HTB_HANDLE, parent=TC_H_ROOT)
        if attempt("netem", lambda: ipr.tc("add", "netem", index, LEAF_HANDLE, parent=TC_H_ROOT,
                                           delay=1000, limit=1000)):
            ipr.tc("del", None, index, LEAF_HANDLE, parent=TC_H_ROOT)
        target = index
        if attempt("ifb", lambda: ipr.link("add", ifname=ifb, kind="ifb")):
            target = _link(ipr, ifb)["index"]
        if attempt("ingress", lambda: ipr.tc("add", "ingress", index, INGRESS_HANDLE, parent=TC_H_INGRESS)):
            if attempt("u32", lambda: ipr.tc("add-filter", "u32", index, 0, parent=INGRESS_HANDLE,
                                             prio=REDIRECT_PRIO, protocol=ETH_P_ALL, target=HTB_CLASS,
                                             keys=[MATCH_ALL])):
                attempt("mirred", lambda: ipr.tc("add-filter", "u32", index, 0, parent=INGRESS_HANDLE,
                                                 prio=REDIRECT_PRIO + 1, protocol=ETH_P_ALL, target=HTB_CLASS,
                                                 keys=[MATCH_ALL],
                                                 action={"kind": "mirred", "direction": "egress",
                                                         "action": "redirect", "ifindex": target}))
    finally:
        delete_probes()
    return [(f, KERNEL_OPTIONS[f]) for f in SHAPING_FEATURES if f in features and f in absent]
