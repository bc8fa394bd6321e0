# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement: which physical host runs each node of an experiment.

Pure and deterministic (no Ansible, no Docker, no randomness): the same nodes, LANs, hosts,
packing factor and previous placement give the same result.  The steps:

1. **Pins** (``host:`` on a node, DETER's partition attribute) are kept as written; a pin to a
   host not in the inventory, to a dedicated host another experiment holds, or beyond a host's
   capacity is an error.  Pins and the packing factor combine: pinned nodes count against it.
2. **Previous placement** (an earlier swap-in, for modify in place): a node stays where it was
   while that host is still in the inventory, open to this experiment and has room, so
   modifying an experiment moves nothing that need not move.
3. **Automatic** for the other nodes, in one of two modes (``Placement.mode``):

   - **fill** (DETER-like) when a packing factor is given, or every host open to the
     experiment has a ``max_nodes``, or only one host is open: the hosts are filled one after
     the other up to their capacity;
   - **balanced** otherwise (no packing factor, more than one open host, one of them at least
     without ``max_nodes``): a balanced k-way partition.  Each open host gets a share of *all*
     the experiment's nodes in proportion to its capacity weight (below), never less than what
     its pins and previous placement already hold on it, never more than its ``max_nodes``
     (water filling: the hosts that hold more than their share keep it, the others share the
     rest).  The shares rounded to whole targets (largest remainders, the first host on a tie)
     are the capacities of the growth, and the refinement keeps every host within its share x
     (1 -/+ ``BALANCE_TOLERANCE``), inward to whole numbers but never narrower than the whole
     numbers next to the share (a share of 50.1 allows 48 to 52 nodes, a share of 4 exactly 4;
     ``Placement.bounds``).  The nodes' ``cpus``/``memory`` win over the tolerance when they
     leave no other choice.  The capacity weight of a host is the mean of its shares of the
     hosts' ``cpus`` and of their ``memory`` (the same fields that bound what the nodes ask);
     a resource counts when one open host at least gives it, and a host that does not give it
     counts as the mean of those that do; with neither given anywhere the weights are equal.
     Previously placed nodes stay even above their host's share (an experiment swapped in
     before is not reshuffled); new nodes go where there is room below the shares.

   Both modes run the same two stages:

   - greedy graph growing: the free nodes form groups (the free members of each node's
     heaviest LAN; a node in no LAN alone) and the hosts are filled one after the other up to
     their capacity (balanced: their target), always with the group most strongly connected to
     the host being filled that fits in the room left; a group is split only when none fits
     (then its rest starts the next host).  Hosts that already hold nodes (pins, previous
     placement) are filled first, so new nodes join their neighbours.  With nothing connected
     left, the heaviest group starts the host.  Ties are many (a link weighs as much as one
     LAN membership), so the growth runs ``GROW_VARIANTS`` times with the ties broken in
     different fixed orders and the cheapest result is kept: still deterministic, less
     dependent on the order of the file;
   - refinement (Fiduccia-Mattheyses passes, capacity respected): each pass moves the node
     with the best gain to the host it is most drawn to, or swaps it with a node of that host
     when it is full (balanced: at its most, or when the node's own host is at its least), locks
     it, and goes on, also through steps that lose (so that it can leave a local optimum),
     then undoes the steps after its best point; passes repeat while they gain.  Only
     automatically placed nodes move: pinned and previously placed nodes stay.

Capacity of a host for this experiment: the smallest of its ``max_nodes`` (testbed_max_nodes)
and the packing factor (``placement.packing``, DETER's nodes per physical machine), none if
neither is set; a dedicated host that another experiment already uses (``used_by``) takes no
node.  When a host gives ``cpus`` or ``memory``, the nodes' ``cpus``/``memory`` on it must fit
within them (a node that asks none counts as 0); they also weigh its balanced share.

Cost (what the partition minimizes): every LAN is a clique of its members (a link is a LAN of
two) where each pair weighs ``weight / (members - 1)``, so that one member is attached to its
LAN with the LAN's weight whatever the LAN's size; the cost is the weight of the pairs that
cross hosts.  A LAN's weight is its ``bandwidth_bps``; an unshaped LAN (no bandwidth) is not
slower than a shaped one, so it weighs like the fastest of ``UNSHAPED_BPS`` (1 Gbit/s) and the
experiment's shaped LANs (so a 10 Mbit/s WAN link does not outweigh an unshaped LAN a
million times, as "bandwidth or 1" would make it).  LANs are never expanded into pair lists:
gains come from per-LAN member counts per host (and, for LANs of up to ``SMALL_LAN`` members,
per-node sums kept up to date on every move), so a LAN of 5,000 members costs no more than
5,000 links.

The figure reported (``Placement.crossing``): for each LAN the majority host is the host with
the most of its members (the first in inventory order on a tie); every member on another host
is one LAN attachment that crosses hosts (it rides a tunnel).  A link split over two hosts
counts 1; a LAN of 20 split 12/5/3 counts 8.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import heapq
import itertools
import math

from ansible_collections.testbed.containers.plugins.module_utils import model

UNSHAPED_BPS = 10 ** 9
MAX_PASSES = 10
MIN_PASS_GAIN = 0.002   # stop when a pass gains less than this share of the cost
SWAP_CANDIDATES = 8
GROW_LOOKAHEAD = 8
GROW_VARIANTS = 3
WANTS_PER_NODE = 3
FM_PATIENCE = 50
SMALL_LAN = 64
BALANCE_TOLERANCE = 0.05   # balanced placement: each host within its share x (1 -/+ this)
EPSILON = 1e-9
PACKING_FIELD = "placement.packing"
HOST_VARS = {"max_nodes": "testbed_max_nodes", "mode": "testbed_mode", "cpus": "testbed_cpus",
             "memory": "testbed_memory"}
MODES = ("shared", "dedicated")
# The longest list of names an error message spells out.
LIST_LIMIT = 10


class PlacementError(model.ExperimentError):
    """Nodes cannot be placed; ``errors`` lists every reason, each naming its constraint."""


class Placement:
    """The result of ``place()``.

    - ``nodes``: node -> host, in the nodes' order;
    - ``per_host``: host -> number of nodes of this experiment, every inventory host, in order;
    - ``lans``: LAN -> {"hosts": hosts with members (inventory order), "majority": the host with
      most members, "crossing": members not on the majority host};
    - ``crossing``: LAN attachments that cross hosts, summed over LANs (see the module doc);
    - ``spanning``: number of LANs whose members sit on more than one host;
    - ``cost``: the minimized cost, in units of one unshaped attachment;
    - ``how``: node -> "pinned", "kept" (previous placement) or "auto";
    - ``moved``: nodes of ``previous`` that now sit on another host, in the nodes' order;
    - ``mode``: "balanced" or "fill" (see the module doc); when balanced, ``tolerance``
      (BALANCE_TOLERANCE), ``target``: host -> whole target and ``bounds``: host -> (least,
      most) nodes; None when filled.
    """

    def __init__(self, nodes, per_host, lans, cost, how, moved):
        self.mode, self.tolerance, self.target, self.bounds = "fill", None, None, None
        self.nodes = nodes
        self.per_host = per_host
        self.lans = lans
        self.crossing = sum(lan["crossing"] for lan in lans.values())
        self.spanning = sum(1 for lan in lans.values() if len(lan["hosts"]) > 1)
        self.cost = cost
        self.how = how
        self.moved = moved

    def __getitem__(self, node):
        return self.nodes[node]

    def __repr__(self):
        return "Placement(%d nodes on %d hosts, crossing=%d)" % (
            len(self.nodes), sum(1 for c in self.per_host.values() if c), self.crossing)

    def stats(self):
        """The figures a report shows: crossing, spanning LANs, per-host counts, how placed, the
        mode, and when balanced the tolerance and the per-host targets."""
        how = {"pinned": 0, "kept": 0, "auto": 0}
        for value in self.how.values():
            how[value] += 1
        return {"crossing": self.crossing, "spanning": self.spanning, "per_host": dict(self.per_host),
                "cost": round(self.cost, 6), "pinned": how["pinned"], "kept": how["kept"],
                "auto": how["auto"], "moved": list(self.moved), "mode": self.mode, "tolerance": self.tolerance,
                "target": dict(self.target) if self.target is not None else None}

    def to_dict(self):
        """Plain data (JSON-able) for the plan and the experiment record."""
        result = self.stats()
        result["nodes"] = dict(self.nodes)
        result["lans"] = dict((name, dict(lan)) for name, lan in self.lans.items())
        return result


# --- formatting for messages ----------------------------------------------------------------

def _fmt_cpus(value):
    return "%g" % value


def _fmt_memory(value):
    """Bytes the way Docker users write them: 8589934592 -> '8g'."""
    value = int(value)
    for unit, size in (("g", 1024 ** 3), ("m", 1024 ** 2), ("k", 1024)):
        if value and value % size == 0:
            return "%d%s" % (value // size, unit)
    return "%db" % value


def _names(items):
    items = list(items)
    if len(items) > LIST_LIMIT:
        return "%s and %d more" % (", ".join(items[:LIST_LIMIT]), len(items) - LIST_LIMIT)
    return ", ".join(items)


def _plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


# --- the placement --------------------------------------------------------------------------

def place(nodes, lans, hosts, packing=None, previous=None):
    """Place ``nodes`` on ``hosts``; return a Placement or raise PlacementError.

    - nodes: ordered mapping node -> {"host": pin or None, "cpus": number or None,
      "memory": bytes or None};
    - lans: ordered mapping LAN -> {"members": [node, ...], "bandwidth_bps": int or None}
      (links are LANs of two members);
    - hosts: ordered mapping host -> {"max_nodes": int or None, "mode": "shared" or
      "dedicated", "cpus": number or None, "memory": bytes or None, "used_by": set of the keys
      ("project/name") of other experiments already on the host};
    - packing: at most this many nodes of the experiment per host (None: no limit, and the
      placement is balanced over the hosts when more than one is open, see the module doc);
    - previous: node -> host of an earlier swap-in.
    """
    previous = previous or {}
    if not hosts:
        raise PlacementError(["the inventory has no physical host: add one to the group testbed_hosts"])
    if packing is not None and (isinstance(packing, bool) or not isinstance(packing, int) or packing < 1):
        raise PlacementError(["%s: must be a whole number of nodes per host, 1 or more, got %r" % (PACKING_FIELD, packing)])

    names = list(nodes)
    index = dict((name, v) for v, name in enumerate(names))
    n = len(names)
    hnames = list(hosts)
    hindex = dict((name, h) for h, name in enumerate(hnames))
    m = len(hnames)

    # -- hosts: capacity for this experiment ------------------------------------------------
    errors = []
    cap, cap_why, closed_by = [], [], []
    cpu_cap, mem_cap = [], []
    for name in hnames:
        spec = _host_spec(errors, name, hosts[name] or {})
        closed = spec["used_by"] if spec["mode"] == "dedicated" and spec["used_by"] else None
        limit, why = spec["max_nodes"], "max_nodes"
        if limit is None:
            why = None
        if packing is not None and (limit is None or packing < limit):
            limit, why = packing, "packing"
        if closed:
            limit = 0
        cap.append(limit)
        cap_why.append(why)
        closed_by.append(closed)
        cpu_cap.append(spec["cpus"])
        mem_cap.append(spec["memory"])
    if errors:
        raise PlacementError(errors)

    nodes = dict((name, nodes[name] or {}) for name in names)
    cpu = [float(nodes[name].get("cpus") or 0) for name in names]
    mem = [int(nodes[name].get("memory") or 0) for name in names]

    # -- LANs: members as indices, pair weights ----------------------------------------------
    shaped = [lan.get("bandwidth_bps") for lan in lans.values() if lan.get("bandwidth_bps")]
    unshaped = float(max([UNSHAPED_BPS] + shaped))
    lan_names = list(lans)
    members, pair = [], []
    node_lans = [[] for _node in range(n)]
    for e, lan_name in enumerate(lan_names):
        lan = lans[lan_name]
        mine = []
        for member in lan["members"]:
            if member not in index:
                raise ValueError("LAN %s: unknown member %r" % (lan_name, member))
            mine.append(index[member])
        members.append(mine)
        weight = (lan.get("bandwidth_bps") or unshaped) / unshaped
        pair.append(weight / (len(mine) - 1) if len(mine) > 1 else 0.0)
        if len(mine) > 1:
            for v in mine:
                node_lans[v].append(e)

    state = _State(n, m, cap, cpu_cap, mem_cap, cpu, mem, members, pair, node_lans)

    # -- 1. pins -----------------------------------------------------------------------------
    how = [None] * n
    pinned_on = [[] for _host in range(m)]
    for v, name in enumerate(names):
        pin = nodes[name].get("host")
        if pin is None:
            continue
        if pin not in hindex:
            errors.append("nodes.%s.host: pinned to %s which is not in the inventory (hosts: %s)"
                          % (name, pin, _names(hnames)))
            continue
        h = hindex[pin]
        if closed_by[h]:
            errors.append("nodes.%s.host: %s is dedicated to %s" % (name, pin, ", ".join(closed_by[h])))
            continue
        pinned_on[h].append(v)
    for h, pinned in enumerate(pinned_on):
        if cap[h] is not None and len(pinned) > cap[h]:
            what = "its %s" % HOST_VARS["max_nodes"] if cap_why[h] == "max_nodes" else PACKING_FIELD
            errors.append("host %s: %d pinned nodes exceed %s %d (%d over)"
                          % (hnames[h], len(pinned), what, cap[h], len(pinned) - cap[h]))
        asked = sum(cpu[v] for v in pinned)
        if cpu_cap[h] is not None and asked > cpu_cap[h] + EPSILON:
            errors.append("host %s: pinned nodes ask %s cpus, above its %s %s (%s over)"
                          % (hnames[h], _fmt_cpus(asked), HOST_VARS["cpus"], _fmt_cpus(cpu_cap[h]),
                             _fmt_cpus(asked - cpu_cap[h])))
        asked = sum(mem[v] for v in pinned)
        if mem_cap[h] is not None and asked > mem_cap[h]:
            errors.append("host %s: pinned nodes ask %s of memory, above its %s %s (%s over)"
                          % (hnames[h], _fmt_memory(asked), HOST_VARS["memory"], _fmt_memory(mem_cap[h]),
                             _fmt_memory(asked - mem_cap[h])))
        for v in pinned:
            how[v] = "pinned"
    errors.extend(_capacity_errors(names, hnames, cap, cap_why, closed_by, cpu_cap, mem_cap, cpu, mem, packing))
    if errors:
        raise PlacementError(errors)
    for h, pinned in enumerate(pinned_on):
        for v in pinned:
            state.assign(v, h)

    held_by_pins = list(state.used)

    # -- 2. previous placement ---------------------------------------------------------------
    for v, name in enumerate(names):
        if how[v] is None and previous.get(name) in hindex:
            h = hindex[previous[name]]
            if state.fits(v, h):
                state.assign(v, h)
                how[v] = "kept"

    # -- 3. automatic ------------------------------------------------------------------------
    free = [v for v in range(n) if how[v] is None]
    balanced = _balanced(cap, closed_by, packing)
    target = bounds = None
    if balanced:
        shares = _shares(n, balanced, _weights(balanced, cpu_cap, mem_cap), state.used, cap)
        target = _whole(shares, n, balanced)
        bounds = [_band(share, cap[h]) for h, share in enumerate(shares)]
        state.cap = list(target)   # the growth fills every host up to its target
    if free:
        best = None
        for variant in range(GROW_VARIANTS):
            _grow(state, free, variant)
            left = [v for v in free if state.host_of[v] < 0]
            result = (state.cost() if not left else float("inf"), variant, [state.host_of[v] for v in free])
            if best is None or result[:2] < best[:2]:
                best = result
            for v in free:
                if state.host_of[v] >= 0:
                    state.unassign(v)
        for v, h in zip(free, best[2]):
            if h >= 0:
                state.assign(v, h)
        left = [v for v in free if state.host_of[v] < 0]
        if balanced:
            # what the growth left (a host it did not fill to its target, resources fragmented):
            # to the host it is most drawn to among those below their target, else below their
            # most, else (the nodes' cpus or memory leave no other choice) below their max_nodes
            for caps in (target, [hi for _lo, hi in bounds], cap):
                state.cap = caps
                for v in [v for v in left if state.host_of[v] < 0]:
                    room = [h for h in balanced if state.fits(v, h)]
                    if room:
                        state.assign(v, max(room, key=lambda h: (state.affinity(v, h), -h)))
            state.cap = [hi for _lo, hi in bounds]   # the refinement moves nodes within the tolerance
            state.low = [lo for lo, _hi in bounds]
        for v in left:  # resources fragmented by the growth: first fit, connections aside
            for h in range(m):
                if state.host_of[v] < 0 and state.fits(v, h):
                    state.assign(v, h)
                    break
        left = [names[v] for v in free if state.host_of[v] < 0]
        if left:
            what = [w for w, offer in (("cpus", cpu_cap), ("memory", mem_cap)) if any(c is not None for c in offer)]
            raise PlacementError(["nodes: %s %s not fit in what the hosts' %s leave (%s); add hosts or lower the "
                                  "nodes' %s" % (_plural(len(left), "node"), "does" if len(left) == 1 else "do",
                                                 " and ".join(HOST_VARS[w] for w in what), _names(left), " or ".join(what))])
        for v in free:
            how[v] = "auto"
        _refine(state, free)

    # -- result ------------------------------------------------------------------------------
    host_of = state.host_of
    placed = dict((name, hnames[host_of[v]]) for v, name in enumerate(names))
    per_host = dict((name, state.used[h]) for h, name in enumerate(hnames))
    lan_stats = {}
    for e, lan_name in enumerate(lan_names):
        counts = {}
        for v in members[e]:
            counts[host_of[v]] = counts.get(host_of[v], 0) + 1
        where = sorted(counts)
        majority = max(where, key=lambda h: (counts[h], -h)) if where else None
        lan_stats[lan_name] = {
            "hosts": [hnames[h] for h in where],
            "majority": hnames[majority] if majority is not None else None,
            "crossing": len(members[e]) - counts[majority] if where else 0,
        }
    moved = [name for name in names if name in previous and previous[name] != placed[name]]
    result = Placement(placed, per_host, lan_stats, state.cost(), dict(zip(names, how)), moved)
    if balanced:
        result.mode, result.tolerance = "balanced", BALANCE_TOLERANCE
        # The targets reported are the balanced shares of the pins and the capacities alone: the
        # growth's own targets also count the nodes kept from the previous placement, so they
        # would change from the first swap-in to the next (a re-run's plan must not differ).
        weights = _weights(balanced, cpu_cap, mem_cap)
        ideal = _whole(_shares(n, balanced, weights, held_by_pins, cap), n, balanced)
        result.target = dict((name, ideal[h]) for h, name in enumerate(hnames))
        result.bounds = dict((name, bounds[h]) for h, name in enumerate(hnames))
    return result


def _balanced(cap, closed_by, packing):
    """The hosts a balanced placement spreads the experiment over, in order; None: fill.

    Balanced when no packing factor is given, more than one host is open to the experiment
    (not dedicated to another one, ``max_nodes`` not 0) and one of them at least has no
    ``max_nodes``.
    """
    if packing is not None:
        return None
    hosts = [h for h in range(len(cap)) if not closed_by[h] and cap[h] != 0]
    if len(hosts) < 2 or all(cap[h] is not None for h in hosts):
        return None
    return hosts


def _weights(hosts, cpu_cap, mem_cap):
    """host -> capacity weight: the mean of its shares of the cpus and of the memory.

    A resource counts when one host at least gives it; a host that does not give it counts as
    the mean of the hosts that do.  Neither given anywhere: equal weights.
    """
    weights = dict((h, 0.0) for h in hosts)
    used = 0
    for offer in (cpu_cap, mem_cap):
        known = [offer[h] for h in hosts if offer[h] is not None]
        if not known:
            continue
        used += 1
        mean = float(sum(known)) / len(known)
        values = dict((h, float(offer[h]) if offer[h] is not None else mean) for h in hosts)
        total = sum(values.values())
        for h in hosts:
            weights[h] += values[h] / total
    if not used:
        return dict((h, 1.0) for h in hosts)
    return dict((h, weight / used) for h, weight in weights.items())


def _shares(n, hosts, weights, held, cap):
    """host index -> its share of the ``n`` nodes (a real number; 0 for hosts not in ``hosts``).

    Proportional to the weights, but never below what the host already holds (``held``: pins,
    previous placement) nor above its ``max_nodes`` (``cap``): share = clamp(level x weight,
    held, cap) with the level at which the shares sum to ``n`` (water filling).
    """
    def clamp(level, h):
        value = max(float(held[h]), level * weights[h])
        return value if cap[h] is None else min(float(cap[h]), value)

    def total(level):
        return sum(clamp(level, h) for h in hosts)

    points = sorted(set([0.0] + [held[h] / weights[h] for h in hosts] +
                        [cap[h] / weights[h] for h in hosts if cap[h] is not None]))
    # the last breakpoint below the level, then a point above it (an uncapped host grows on)
    k = bisect.bisect_left([total(p) for p in points], n) - 1
    low = points[max(k, 0)]
    high = points[k + 1] if 0 <= k + 1 < len(points) and total(points[k + 1]) >= n else None
    if high is None:
        high = max(low, 1.0) * 2
        while total(high) < n:
            high *= 2
    below, above = total(low), total(high)
    level = high if above <= below else low + (n - below) * (high - low) / (above - below)
    shares = [0.0] * len(cap)
    for h in hosts:
        shares[h] = clamp(level, h)
    return shares


def _whole(shares, n, hosts):
    """Whole targets summing to ``n``: each share rounded down, then one more for the hosts with
    the largest remainders (the first in inventory order on a tie)."""
    target = [int(math.floor(share + EPSILON)) for share in shares]
    order = sorted(hosts, key=lambda h: (target[h] - shares[h], h))
    for h in order[:max(n - sum(target), 0)]:
        target[h] += 1
    for h in reversed(order[len(order) - max(sum(target) - n, 0):]):   # rounding noise only
        target[h] -= 1
    return target


def _band(share, cap):
    """(least, most) nodes for a host with this share: share x (1 -/+ BALANCE_TOLERANCE), inward
    to whole numbers, widened to the whole numbers next to the share when that holds none;
    never above the host's ``max_nodes`` (``cap``)."""
    low = int(math.ceil(share * (1 - BALANCE_TOLERANCE) - EPSILON))
    high = int(math.floor(share * (1 + BALANCE_TOLERANCE) + EPSILON))
    low, high = min(low, int(math.floor(share + EPSILON))), max(high, int(math.ceil(share - EPSILON)))
    return (low, high if cap is None else min(high, cap))


def _host_spec(errors, name, spec):
    """A host's settings, normalized (inventory variables may come as strings)."""
    result = {"max_nodes": None, "mode": "shared", "cpus": None, "memory": None,
              "used_by": sorted(spec.get("used_by") or ())}
    value = spec.get("max_nodes")
    if value is not None:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            errors.append("host %s: %s must be a whole number of nodes, 0 or more, got %r"
                          % (name, HOST_VARS["max_nodes"], value))
        else:
            result["max_nodes"] = value
    value = spec.get("mode")
    if value is not None:
        if value not in MODES:
            errors.append("host %s: %s must be %s, got %r" % (name, HOST_VARS["mode"], " or ".join(MODES), value))
        else:
            result["mode"] = value
    value = spec.get("cpus")
    if value is not None:
        number = None
        if not isinstance(value, bool):
            try:
                number = float(value)
            except (TypeError, ValueError):
                pass
        if number is None or math.isnan(number) or math.isinf(number) or number <= 0:
            errors.append("host %s: %s must be a number of CPUs above 0, got %r" % (name, HOST_VARS["cpus"], value))
        else:
            result["cpus"] = number
    value = spec.get("memory")
    if value is not None:
        number = model.parse_memory(value)
        if number is None:
            errors.append("host %s: %s must be a size such as 64g, got %r" % (name, HOST_VARS["memory"], value))
        else:
            result["memory"] = number
    return result


def _capacity_errors(names, hnames, cap, cap_why, closed_by, cpu_cap, mem_cap, cpu, mem, packing):
    """Whole-experiment checks: the number of nodes, their cpus and memory against all hosts."""
    errors = []
    n = len(names)
    open_hosts = [h for h in range(len(hnames)) if not closed_by[h]]
    closed = ["%s is dedicated to %s" % (hnames[h], ", ".join(closed_by[h])) for h in range(len(hnames)) if closed_by[h]]
    if not open_hosts:
        errors.append("nodes: no host takes this experiment: %s; add a shared host or free a dedicated one"
                      % "; ".join(closed))
        return errors
    if all(cap[h] is not None for h in open_hosts):
        places = sum(cap[h] for h in open_hosts)
        if n > places:
            why = set(cap_why[h] for h in open_hosts)
            if why == set(["packing"]):
                detail = "%s x packing %d = %d places" % (_plural(len(open_hosts), "host"), packing, places)
                hint = "raise %s or add hosts" % PACKING_FIELD
            else:
                detail = "%d places (%s)" % (places, _names(
                    "%s %d by %s" % (hnames[h], cap[h], PACKING_FIELD if cap_why[h] == "packing" else HOST_VARS["max_nodes"])
                    for h in open_hosts))
                hint = "add hosts or raise %s" % ("%s or %s" % (PACKING_FIELD, HOST_VARS["max_nodes"])
                                                  if "packing" in why else HOST_VARS["max_nodes"])
            if closed:
                hint += "; %s" % "; ".join(closed)
            errors.append("nodes: %d nodes do not fit: %s (%d over); %s" % (n, detail, n - places, hint))
    for what, asked, offer, fmt, field in (("cpus", cpu, cpu_cap, _fmt_cpus, "cpus"),
                                           ("memory", mem, mem_cap, _fmt_memory, "memory")):
        if not all(offer[h] is not None for h in open_hosts):
            continue
        largest = max(offer[h] for h in open_hosts)
        for v, name in enumerate(names):
            if asked[v] > largest + EPSILON:
                errors.append("nodes.%s.%s: %s does not fit on any host (the largest %s is %s)"
                              % (name, field, fmt(asked[v]), HOST_VARS[what], fmt(largest)))
        total, offered = sum(asked), sum(offer[h] for h in open_hosts)
        if total > offered + EPSILON:
            errors.append("nodes: the nodes ask %s %s, the hosts offer %s by %s (%s over); add hosts or ask less"
                          % (fmt(total), "cpus" if what == "cpus" else "of memory", fmt(offered), HOST_VARS[what],
                             fmt(total - offered)))
    return errors


class _State:
    """Who is where, with per-LAN member counts per host (all gains derive from them).

    For LANs of at most ``SMALL_LAN`` members each node also keeps, per host, the weight of its
    pairs with the nodes placed there (``near``), updated on every move; so the gains of a node
    with thousands of links cost as little as those of a node with one.  Big LANs are read from
    their per-host counts instead (updating thousands of members on every move would not pay).
    """

    def __init__(self, n, m, cap, cpu_cap, mem_cap, cpu, mem, members, pair, node_lans):
        self.n, self.m = n, m
        self.cap, self.cpu_cap, self.mem_cap = cap, cpu_cap, mem_cap
        self.cpu, self.mem = cpu, mem
        self.members, self.pair, self.node_lans = members, pair, node_lans
        self.small = [len(mine) <= SMALL_LAN for mine in members]
        self.node_small = [[e for e in lans if self.small[e]] for lans in node_lans]
        self.node_big = [[e for e in lans if not self.small[e]] for lans in node_lans]
        self.lan_sets = [frozenset(lans) for lans in node_lans]
        self.host_of = [-1] * n
        self.used = [0] * m
        self.cpu_used = [0.0] * m
        self.mem_used = [0] * m
        self.count = [{} for _lan in members]   # LAN -> {host: members placed there}
        self.placed = [0] * len(members)     # LAN -> members placed anywhere
        self.near = [{} for _node in range(n)]   # node -> {host: weight of its small-LAN pairs there}
        self.near_count = [{} for _node in range(n)]   # node -> {host: how many such pairs}
        self.resources = any(c is not None for c in cpu_cap) or any(c is not None for c in mem_cap)
        self.low = None   # host -> least nodes (balanced placement's refinement), None: no least

    def room(self, h):
        return self.cap[h] is None or self.used[h] < self.cap[h]

    def spare(self, h):
        """A node may leave h without a swap (h stays at or above its least)."""
        return self.low is None or self.used[h] > self.low[h]

    def fits_resources(self, v, h, cpu_extra=0.0, mem_extra=0):
        if self.cpu_cap[h] is not None and self.cpu_used[h] + self.cpu[v] + cpu_extra > self.cpu_cap[h] + EPSILON:
            return False
        if self.mem_cap[h] is not None and self.mem_used[h] + self.mem[v] + mem_extra > self.mem_cap[h]:
            return False
        return True

    def fits(self, v, h):
        return self.room(h) and (not self.resources or self.fits_resources(v, h))

    def assign(self, v, h):
        self.host_of[v] = h
        self.used[h] += 1
        self.cpu_used[h] += self.cpu[v]
        self.mem_used[h] += self.mem[v]
        for e in self.node_lans[v]:
            count = self.count[e]
            count[h] = count.get(h, 0) + 1
            self.placed[e] += 1
        for p, weights, counts in self._small_neighbours(v):
            weights[h] = weights.get(h, 0.0) + p
            counts[h] = counts.get(h, 0) + 1

    def _small_neighbours(self, v):
        """(pair weight, near weights, near counts) of each node sharing one of v's small LANs."""
        near, near_count = self.near, self.near_count
        for e in self.node_small[v]:
            p = self.pair[e]
            for w in self.members[e]:
                if w != v:
                    yield p, near[w], near_count[w]

    def unassign(self, v):
        h = self.host_of[v]
        self.host_of[v] = -1
        self.used[h] -= 1
        self.cpu_used[h] -= self.cpu[v]
        self.mem_used[h] -= self.mem[v]
        for e in self.node_lans[v]:
            count = self.count[e]
            if count[h] == 1:
                del count[h]
            else:
                count[h] -= 1
            self.placed[e] -= 1
        for p, weights, counts in self._small_neighbours(v):
            if counts[h] == 1:   # exact zero, whatever rounding the sums left
                del counts[h]
                del weights[h]
            else:
                counts[h] -= 1
                weights[h] -= p

    def affinity(self, v, h):
        """Weight of v's pairs with nodes placed on h (v itself not counted)."""
        total = self.near[v].get(h, 0.0)
        own = self.host_of[v] == h
        for e in self.node_big[v]:
            c = self.count[e].get(h, 0) - (1 if own else 0)
            if c:
                total += self.pair[e] * c
        return total

    def connections(self, v):
        """host -> weight of v's pairs with nodes placed there (v itself not counted)."""
        conn = dict(self.near[v])
        own = self.host_of[v]
        for e in self.node_big[v]:
            p = self.pair[e]
            for h, c in self.count[e].items():
                if h == own:
                    c -= 1
                    if not c:
                        continue
                conn[h] = conn.get(h, 0.0) + p * c
        return conn

    def shared(self, v, u):
        """Weight of the pairs (v, u): the LANs they are both members of."""
        mine, theirs = self.lan_sets[v], self.lan_sets[u]
        if len(mine) > len(theirs):
            mine, theirs = theirs, mine
        return sum(self.pair[e] for e in mine if e in theirs)

    def cost(self):
        """Weight of the pairs that cross hosts, over all LANs."""
        total = 0.0
        for e, count in enumerate(self.count):
            k = self.placed[e]
            same = sum(c * (c - 1) for c in count.values()) // 2
            total += self.pair[e] * (k * (k - 1) // 2 - same)
        return total


def _permute(k, n, variant):
    """A fixed permutation of range(n) per variant (stride through the order)."""
    stride = (2 * variant + 1) * 7919
    while n > 1 and _gcd(stride, n) != 1:
        stride += 2
    return (k * stride + variant) % n if n else 0


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def _units(state, free):
    """Groups of free nodes grown together: the free members of each node's primary LAN.

    A node's primary LAN is its heaviest (weight, then size, then file order); a node in no LAN
    is a group of its own.  Growing whole groups keeps LANs together: a link that reaches into
    another LAN brings that LAN along instead of a lone member of it.
    """
    members, pair, node_lans = state.members, state.pair, state.node_lans
    groups, key_of = [], {}
    unit_of = {}
    for v in free:
        best = None
        for e in node_lans[v]:
            rank = (pair[e] * (len(members[e]) - 1), len(members[e]), -e)
            if best is None or rank > best[0]:
                best = (rank, e)
        key = ("lan", best[1]) if best is not None else ("node", v)
        if key not in key_of:
            key_of[key] = len(groups)
            groups.append([])
        unit_of[v] = key_of[key]
        groups[key_of[key]].append(v)
    return groups, unit_of


def _grow(state, free, variant=0):
    """Greedy graph growing by groups (see _units): fill hosts one after the other.

    The next group for the host being filled is the one most strongly connected to it that fits
    in the room left (among the best few); when none of those fits, a group of the same size
    or smaller that fits, else the best one, split.  With no connected group: the rest of a split
    group (continuation), else the heaviest group.  Hosts that already hold nodes (pins, previous
    placement) are filled first; a group more strongly drawn to another such host waits for it.
    """
    host_of, node_lans, members, pair = state.host_of, state.node_lans, state.members, state.pair
    groups, unit_of = _units(state, free)
    ng = len(groups)
    left = [len(g) for g in groups]           # unplaced members per group
    first = [g[0] for g in groups]            # for ties: file order of the first member
    position = dict((v, k) for k, v in enumerate(free))
    if variant:
        position = dict((v, _permute(k, len(free), variant)) for k, v in enumerate(free))
    gorder = [position[first[u]] for u in range(ng)]
    # LAN -> {group: unplaced members of the LAN in that group}
    lan_groups = [{} for _lan in members]
    for v in free:
        for e in node_lans[v]:
            counts = lan_groups[e]
            counts[unit_of[v]] = counts.get(unit_of[v], 0) + 1
    weight = [0.0] * ng
    for v in free:
        weight[unit_of[v]] += sum(pair[e] * (len(members[e]) - 1) for e in node_lans[v])
    heaviest = sorted(range(ng), key=lambda u: (-weight[u], gorder[u]))
    heaviest_at = 0
    # untouched groups by size, for filling the end of a host
    by_size = sorted((left[u], gorder[u], u) for u in range(ng))
    touched = [False] * ng

    # continuation: affinity of each group to nodes placed on any host
    gaff = [0.0] * ng
    for e, counts in enumerate(lan_groups):
        if state.placed[e]:
            for u, cnt in counts.items():
                gaff[u] += pair[e] * state.placed[e] * cnt
    gheap = [(-gaff[u], gorder[u], u) for u in range(ng) if gaff[u] > 0]
    heapq.heapify(gheap)

    pending = set(h for h in range(state.m) if state.used[h])   # hold nodes, not filled yet

    def candidates(heap, keys, count):
        """Up to ``count`` valid entries from the top of a heap (popped; push back the unused)."""
        found = []
        while heap and len(found) < count:
            entry = heapq.heappop(heap)
            u = entry[2]
            if not left[u] or -entry[0] != keys[u]:
                continue
            found.append(entry)
        return found

    def choose(heap, keys, skip, h):
        room = None if state.cap[h] is None else state.cap[h] - state.used[h]
        found = candidates(heap, keys, GROW_LOOKAHEAD)
        usable = [entry for entry in found if entry[2] not in skip]
        chosen = None
        for entry in usable:
            if room is None or left[entry[2]] <= room:
                chosen = entry[2]
                break
        if chosen is None and usable:
            best = usable[0][2]
            # a group bigger than a whole host is split anyway: go on with it; else fill the
            # room with a smaller group if there is one, and split the best one only if not
            filler = None if left[best] > state.cap[h] else fitting(room, skip)
            chosen = filler if filler is not None else best
        for entry in found:
            if entry[2] != chosen:
                heapq.heappush(heap, entry)
        return chosen

    def fitting(room, skip):
        """The largest untouched group that fits in ``room`` (None: unlimited room)."""
        if room is None:
            return None
        k = bisect.bisect_right(by_size, (room, len(free), ng)) - 1
        while k >= 0:
            u = by_size[k][2]
            if u not in skip:
                return u
            k -= 1
        return None

    def drawn_elsewhere(u, h):
        """A host that holds nodes and is not filled yet, with room, pulls group u more than h."""
        others = [x for x in sorted(pending) if x != h and state.room(x)]
        if not others:
            return False
        pull = dict((x, 0.0) for x in others + [h])
        for v in groups[u]:
            if host_of[v] < 0:
                for e in node_lans[v]:
                    count = state.count[e]
                    for x in pull:
                        c = count.get(x)
                        if c:
                            pull[x] += pair[e] * c
        return any(pull[x] > pull[h] + EPSILON for x in others)

    def take(u):
        if not touched[u]:
            touched[u] = True
            k = bisect.bisect_left(by_size, (len(groups[u]), gorder[u], u))
            del by_size[k]

    remaining = len(free)
    host_order = sorted(pending) + [h for h in range(state.m) if h not in pending]
    for h in host_order:
        pending.discard(h)
        if not remaining:
            break
        if not state.room(h):
            continue
        aff = [0.0] * ng
        heap = []
        seen_lans = set()
        for v in range(state.n):
            if host_of[v] == h:
                seen_lans.update(node_lans[v])
        for e in sorted(seen_lans):
            c = state.count[e][h]
            for u, cnt in lan_groups[e].items():
                aff[u] += pair[e] * c * cnt
        heap = [(-aff[u], gorder[u], u) for u in range(ng) if aff[u] > 0 and left[u]]
        heapq.heapify(heap)
        skip = set()
        while remaining and state.room(h):
            u = choose(heap, aff, skip, h)
            if u is None:
                u = choose(gheap, gaff, skip, h)
            if u is None:
                room = None if state.cap[h] is None else state.cap[h] - state.used[h]
                if state.used[h]:
                    u = fitting(room, skip)
                if u is None:
                    while heaviest_at < ng and not left[heaviest[heaviest_at]]:
                        heaviest_at += 1
                    for k in range(heaviest_at, ng):
                        if left[heaviest[k]] and heaviest[k] not in skip:
                            u = heaviest[k]
                            break
            if u is None:
                break
            if drawn_elsewhere(u, h):
                skip.add(u)
                continue
            take(u)
            todo = [v for v in groups[u] if host_of[v] < 0]
            if state.cap[h] is not None and len(todo) > state.cap[h] - state.used[h]:
                todo.sort(key=lambda v: (-state.affinity(v, h), position[v]))
            for v in todo:
                if not state.room(h):
                    break
                if not state.fits(v, h):
                    continue
                state.assign(v, h)
                remaining -= 1
                left[u] -= 1
                for e in node_lans[v]:
                    counts = lan_groups[e]
                    counts[u] -= 1
                    p = pair[e]
                    for w, cnt in counts.items():
                        if cnt and left[w]:
                            aff[w] += p * cnt
                            gaff[w] += p * cnt
                            heapq.heappush(heap, (-aff[w], gorder[w], w))
                            heapq.heappush(gheap, (-gaff[w], gorder[w], w))
            if left[u] and state.room(h):
                skip.add(u)   # members that do not fit here (cpus, memory)


def _refine(state, movable):
    """Fiduccia-Mattheyses style passes over the automatically placed nodes.

    A pass takes, again and again, the unlocked node with the best gain (moving it to the host
    it is most drawn to; when that host is full, swapping it with the node of that host that
    gains most by the exchange), even when the gain is negative, and locks what moved; it stops
    after ``FM_PATIENCE`` steps without a new best, then undoes the steps after the best point.
    Passes repeat while they lower the cost.  Capacity (nodes, cpus, memory) always holds.
    """
    order = dict((v, k) for k, v in enumerate(movable))
    is_movable = set(movable)
    for _pass in range(MAX_PASSES):
        before = state.cost()
        if _fm_pass(state, movable, order, is_movable) <= max(EPSILON, MIN_PASS_GAIN * before):
            break


def _best_target(state, v):
    """(gain, host) of v's best move, by gain then host order; None if v touches no other host."""
    a = state.host_of[v]
    conn = state.connections(v)
    own = conn.get(a, 0.0)
    best = None
    for x in sorted(conn):
        if x != a:
            gain = conn[x] - own
            if best is None or gain > best[0] + EPSILON:
                best = (gain, x)
    return best


def _fm_pass(state, movable, order, is_movable):
    host_of, members, node_lans = state.host_of, state.members, state.node_lans
    # Swap partners, as of the start of the pass: nodes of a host drawn to another one, and the
    # nodes of each host least attached to it.
    wants, loose = {}, {}
    heap, key = [], {}
    for v in movable:
        a = host_of[v]
        conn = state.connections(v)
        own = conn.get(a, 0.0)
        loose.setdefault(a, []).append((own, order[v], v))
        gains = sorted((own - c, x) for x, c in conn.items() if x != a)
        for negative, x in gains[:WANTS_PER_NODE]:
            wants.setdefault((a, x), []).append((negative, order[v], v))
        if gains:
            key[v] = -gains[0][0]
            heap.append((gains[0][0], order[v], v, False))
    if not heap:
        return 0.0
    heapq.heapify(heap)
    for lst in itertools.chain(wants.values(), loose.values()):
        lst.sort()

    locked, log = set(), []
    total = best_total = 0.0
    best_len = since_best = 0
    while heap:
        negative, _k, v, settled = heapq.heappop(heap)
        if v in locked:
            continue
        target = _best_target(state, v)
        if target is None:
            continue
        gain, b = target
        if not settled and abs(gain + negative) > EPSILON:   # stale: the gain changed since the push
            key[v] = gain
            heapq.heappush(heap, (-gain, order[v], v, False))
            continue
        a = host_of[v]
        partner = None
        if not (state.room(b) and state.spare(a) and (not state.resources or state.fits_resources(v, b))):
            tried, seen = 0, set()
            for entry in itertools.chain(wants.get((b, a), ()), loose.get(b, ())):
                u = entry[2]
                if u in seen or u in locked or host_of[u] != b or u not in is_movable:
                    continue
                seen.add(u)
                tried += 1
                if tried > SWAP_CANDIDATES:
                    break
                swap = _swap_gain(state, v, u, gain)
                if swap is not None and (partner is None or swap > partner[0] + EPSILON):
                    partner = (swap, u)
            if partner is None:
                locked.add(v)
                continue
            if not settled and partner[0] < gain - EPSILON:
                # the move is blocked and the best exchange gains less: let better steps go first
                key[v] = None
                heapq.heappush(heap, (-partner[0], order[v], v, True))
                continue
            gain = partner[0]
        state.unassign(v)
        if partner is not None:
            state.unassign(partner[1])
            state.assign(partner[1], a)
            locked.add(partner[1])
        state.assign(v, b)
        locked.add(v)
        log.append((v, a, partner[1] if partner else None, b))
        total += gain
        if total > best_total + EPSILON:
            best_total, best_len, since_best = total, len(log), 0
        else:
            since_best += 1
            if since_best > FM_PATIENCE:
                break
        # the gains of the neighbours changed: push them again (small LANs only)
        for w in (v,) if partner is None else (v, partner[1]):
            for e in node_lans[w]:
                if not state.small[e]:
                    continue
                for x in members[e]:
                    if x not in locked and x in is_movable:
                        target = _best_target(state, x)
                        if target is not None and (key.get(x) is None or abs(target[0] - key[x]) > EPSILON):
                            key[x] = target[0]
                            heapq.heappush(heap, (-target[0], order[x], x, False))
    for v, a, u, b in reversed(log[best_len:]):
        state.unassign(v)
        if u is not None:
            state.unassign(u)
            state.assign(u, b)
        state.assign(v, a)
    return best_total


def _swap_gain(state, v, u, v_gain):
    """Cost decrease of exchanging v (gaining ``v_gain`` by moving) and u; None if not allowed.

    Both move: each gains what a lone move would, less the pair (v, u) counted by both moves
    though it stays cut.
    """
    a, b = state.host_of[v], state.host_of[u]
    if state.resources:
        cpu_delta = state.cpu[u] - state.cpu[v]
        mem_delta = state.mem[u] - state.mem[v]
        if state.cpu_cap[b] is not None and state.cpu_used[b] - cpu_delta > state.cpu_cap[b] + EPSILON:
            return None
        if state.mem_cap[b] is not None and state.mem_used[b] - mem_delta > state.mem_cap[b]:
            return None
        if state.cpu_cap[a] is not None and state.cpu_used[a] + cpu_delta > state.cpu_cap[a] + EPSILON:
            return None
        if state.mem_cap[a] is not None and state.mem_used[a] + mem_delta > state.mem_cap[a]:
            return None
    u_gain = state.affinity(u, a) - state.affinity(u, b)
    return v_gain + u_gain - 2 * state.shared(v, u)
