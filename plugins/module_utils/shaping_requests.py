# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tc requests of link shaping, as data: what a :class:`~shape.Shape` asks of the kernel.

The egress layout is Emulab's: a root ``htb`` (handle 1:, default class 1:1) with one class 1:1
whose rate and ceil are the bandwidth, and, only when delay, jitter or loss are asked for, a
``netem`` leaf (handle 10:) under 1:1 whose ``limit`` holds the bandwidth-delay product (the
netem default of 1000 packets is what throttles Mininet's long-delay links). Without a
bandwidth, netem alone is the root (handle 10:). A ``queue`` without netem becomes a ``pfifo``
leaf (handle 10:) of that many packets.  Traffic from the node reaches an IFB through an
``ingress`` qdisc and a u32 match-all filter with a ``mirred egress redirect``
(:func:`ingress_requests`).

Pure, so tests need no kernel: :func:`egress_requests` and :func:`plan_egress` take a shape and
the observed state and return plain-data requests; shaping.py reads the kernel and runs them.

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
* a u32 filter needs ``target`` (its classid) even when only an action matters; an action
  given as a plain string ("ok", "drop") is a gact action, which some kernels lack.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.testbed.containers.plugins.module_utils import units
from ansible_collections.testbed.containers.plugins.module_utils.shape import Shape, as_shape

try:
    from pyroute2.netlink.rtnl.tcmsg.common import calc_xmittime, percent2u32, tick_in_usec
except ImportError:  # pragma: no cover - without pyroute2 (a controller): the same arithmetic
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
