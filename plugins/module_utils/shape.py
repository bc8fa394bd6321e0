# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shaping of a link, as the experiment file asks for it: bandwidth, delay, jitter, loss and
queue of one direction of one attachment, in units (bit/s, microseconds, a probability).

Pure: the planner, the model, events and the picture use it without netlink; shaping_requests.py
turns a :class:`Shape` into tc requests, shaping.py applies them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.testbed.containers.plugins.module_utils import units

# The kernel features a shape may need, in the order the preflight probes them (their kernel
# options are in preflight.KERNEL_OPTIONS).
SHAPING_FEATURES = ("htb", "netem", "ifb", "ingress", "u32", "mirred")


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
