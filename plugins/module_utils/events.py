# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Experiment events: one line of text each, in the manner of Emulab's tevc (issue 15).

::

    link LAN down|up                  every member's attachment of a LAN or link
    link NODE:LAN down|up             one attachment
    node NODE stop|start|restart
    shape [NODE:]LAN KEY=VALUE ...    bandwidth, delay, jitter, loss, queue; VALUE none removes it
    exec NODE COMMAND...              a shell command line, quoted or not

This module is pure (no engine, no netlink): it parses and checks events, writes them back in
their canonical form, reads the ``events:`` schedule of an experiment file, and turns an event
into each host's actions from a plan (``resolve``), which plugins/module_utils/operate.py does
on the hosts.  ``apply_to_plan`` is what a link or shaping event leaves in the recorded plan,
so that a node re-plumbed later (the host agent, a restart) keeps the link down or the new
shaping until the experiment file is swapped in again.

Every error is an EventError whose message starts with the field path (``event`` for an event
given alone, ``events[2].event`` in a schedule), as the experiment file's errors do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import dataclasses
import math
import re
import shlex

from ansible_collections.testbed.containers.plugins.module_utils import units
from ansible_collections.testbed.containers.plugins.module_utils.model import NAME_HINT, NAME_RE, SHAPE_KEYS
from ansible_collections.testbed.containers.plugins.module_utils.shaping import Shape

KINDS = ("link", "node", "shape", "exec")
LINK_STATES = ("down", "up")
NODE_ACTIONS = ("stop", "start", "restart")
USAGE = {
    "link": "link [NODE:]LAN down|up",
    "node": "node NODE stop|start|restart",
    "shape": "shape [NODE:]LAN KEY=VALUE ... (keys: %s; VALUE none removes one)" % ", ".join(SHAPE_KEYS),
    "exec": "exec NODE COMMAND...",
}
# the keys of each kind's normalized form (besides "kind")
EVENT_KEYS = {
    "link": ("lan", "node", "state"),
    "node": ("node", "action"),
    "shape": ("lan", "node", "shape"),
    "exec": ("node", "command"),
}
# an event's shaping key -> the Shape field it sets, and that field's value for ``none``
SHAPE_FIELDS = {
    "bandwidth": ("rate_bps", None),
    "delay": ("delay_us", 0),
    "jitter": ("jitter_us", 0),
    "loss": ("loss", 0.0),
    "queue": ("limit_packets", None),
}
SCHEDULE_KEYS = ("at", "event")
TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
TIME_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*\Z")
TIME_HINT = "write seconds such as 30, 30s, 1.5s, 500ms, 2m or 1h"


class EventError(Exception):
    """A bad event or schedule; the message starts with the field path."""


def _fail(path, message):
    raise EventError("%s: %s" % (path, message) if path else message)


def _type_name(value):
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "empty"}.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------------------------------
# Parsing and the canonical text


def parse(text, path="event"):
    """An event line (or an event already normalized, checked again) -> its normalized dict.

    Only the event itself is checked here (its words, names' spelling, shaping values); whether
    the nodes and LANs exist is check_names', against an experiment.
    """
    if isinstance(text, dict):
        return _normalize(text, path)
    if not isinstance(text, str):
        _fail(path, "must be an event line such as 'link lan0 down', got %s" % _type_name(text))
    if "\n" in text or "\r" in text or "\x00" in text:
        _fail(path, "must be one line of text (without NUL characters)")
    try:
        words = shlex.split(text)
    except ValueError as exc:  # an unbalanced quote
        _fail(path, "cannot split %r into words: %s" % (text, str(exc).lower()))
    if not words:
        _fail(path, "empty event; events are: %s" % ", ".join(KINDS))
    kind = words[0]
    if kind not in KINDS:
        _fail(path, "unknown event %r; events are: %s" % (kind, ", ".join(KINDS)))
    args = words[1:]
    if kind == "link":
        if len(args) != 2:
            _fail(path, "link takes [NODE:]LAN and a state: write %s" % USAGE["link"])
        node, lan = _split_attachment(args[0])
        event = {"kind": "link", "lan": lan, "node": node, "state": args[1]}
    elif kind == "node":
        if len(args) != 2:
            _fail(path, "node takes a node and an action: write %s" % USAGE["node"])
        event = {"kind": "node", "node": args[0], "action": args[1]}
    elif kind == "shape":
        if len(args) < 2:
            _fail(path, "shape takes [NODE:]LAN and at least one KEY=VALUE: write %s" % USAGE["shape"])
        node, lan = _split_attachment(args[0])
        shape = {}
        for word in args[1:]:
            key, sep, value = word.partition("=")
            if not sep or not key:
                _fail(path, "%r is not KEY=VALUE: write %s" % (word, USAGE["shape"]))
            if key in shape:
                _fail(path, "%s is given twice" % key)
            shape[key] = None if value == "none" else value
        event = {"kind": "shape", "lan": lan, "node": node, "shape": shape}
    else:
        if len(args) < 2:
            _fail(path, "exec takes a node and a command: write %s" % USAGE["exec"])
        event = {"kind": "exec", "node": args[0], "command": _command(text, args)}
    return _normalize(event, path)


def _split_attachment(word):
    """'NODE:LAN' -> (NODE, LAN); 'LAN' -> (None, LAN)."""
    node, sep, lan = word.rpartition(":")
    return (node if sep else None), lan


def _command(text, args):
    """An exec's command: its one word when it was quoted (``exec a "ip addr show"``), else the
    rest of the line as written, after the node, so that a shell reads its quotes (``exec a
    echo "a  b" | wc``); the words rejoined would lose them."""
    if len(args) == 2:
        return args[1]
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.get_token()  # exec
    lexer.get_token()  # NODE (the whitespace after it is read too)
    return lexer.instream.read().strip()


def _check_name(path, value, what):
    if not isinstance(value, str) or not NAME_RE.match(value):
        _fail(path, "invalid %s name %r: %s" % (what, value, NAME_HINT))


def _normalize(event, path):
    """A checked copy of a normalized event."""
    kind = event.get("kind")
    if kind not in KINDS:
        _fail(path, "unknown event %r; events are: %s" % (kind, ", ".join(KINDS)))
    allowed = ("kind",) + EVENT_KEYS[kind]
    for key in event:
        if key not in allowed:
            _fail(path, "unknown key %r of a %s event; keys: %s" % (key, kind, ", ".join(allowed)))
    for key in EVENT_KEYS[kind]:
        if key not in event and key != "node":
            _fail(path, "%s %s event needs %s" % ("an" if kind == "exec" else "a", kind, key))
    result = {"kind": kind}
    if kind in ("link", "shape"):
        _check_name(path, event["lan"], "LAN")
        if event.get("node") is not None:
            _check_name(path, event["node"], "node")
        result.update(lan=event["lan"], node=event.get("node"))
    else:
        if "node" not in event:
            _fail(path, "%s %s event needs node" % ("an" if kind == "exec" else "a", kind))
        _check_name(path, event["node"], "node")
        result["node"] = event["node"]
    if kind == "link":
        if event["state"] not in LINK_STATES:
            _fail(path, "unknown link state %r; states are: %s" % (event["state"], ", ".join(LINK_STATES)))
        result["state"] = event["state"]
    elif kind == "node":
        if event["action"] not in NODE_ACTIONS:
            _fail(path, "unknown node action %r; actions are: %s" % (event["action"], ", ".join(NODE_ACTIONS)))
        result["action"] = event["action"]
    elif kind == "shape":
        result["shape"] = _check_shape(path, event["shape"])
    else:
        command = event["command"]
        if not isinstance(command, str) or not command.strip():
            _fail(path, "exec needs a command: write %s" % USAGE["exec"])
        if "\x00" in command or "\n" in command or "\r" in command:
            _fail(path, "the command must be one line without NUL characters")
        result["command"] = command
    return result


def _check_shape(path, shape):
    """The shaping keys of a shape event: {key: value as given (a string) or None}."""
    if not isinstance(shape, dict) or not shape:
        _fail(path, "shape needs at least one KEY=VALUE: write %s" % USAGE["shape"])
    for key in shape:
        if key not in SHAPE_FIELDS:
            _fail(path, "unknown shaping key %r; keys: %s" % (key, ", ".join(SHAPE_KEYS)))
    result = {}
    for key in SHAPE_KEYS:  # the canonical order
        if key not in shape:
            continue
        value = shape[key]
        if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
            _fail(path, "%s: must be a value such as %s, or none" % (key, _EXAMPLES[key]))
        if value is not None:
            value = str(value)
            if not value.strip():
                _fail(path, "%s: has no value; write %s=none to remove it" % (key, key))
            if value == "none":
                value = None
        if value is not None:
            try:
                _field_value(key, value)
            except ValueError as exc:
                _fail(path, "%s: %s" % (key, exc))
        result[key] = value
    return result


_EXAMPLES = {"bandwidth": "10mbit", "delay": "20ms", "jitter": "2ms", "loss": "0.1%", "queue": "50"}


def _field_value(key, value):
    """The Shape field value of an event's shaping value (None: the parameter's absence)."""
    if value is None:
        return SHAPE_FIELDS[key][1]
    if key == "queue":
        if not re.match(r"^[0-9]+\Z", value) or int(value) < 1:
            raise ValueError("invalid queue %r: expected a number of packets >= 1" % (value,))
        return int(value)
    # the experiment file's units (a jitter alone is fine here: the merged shaping is checked)
    if key == "bandwidth":
        return units.parse_rate(value)
    if key == "loss":
        return units.parse_loss(value)
    return units.parse_time(value)


def describe(event):
    """The canonical one-line text of an event: parse(describe(e)) == e."""
    event = parse(event)
    kind = event["kind"]
    if kind in ("link", "shape"):
        target = "%s:%s" % (event["node"], event["lan"]) if event["node"] else event["lan"]
        if kind == "link":
            return "link %s %s" % (target, event["state"])
        return "shape %s %s" % (target, " ".join(shlex.quote("%s=%s" % (k, "none" if v is None else v))
                                                 for k, v in event["shape"].items()))
    if kind == "node":
        return "node %s %s" % (event["node"], event["action"])
    command = event["command"]
    words = _words(command)
    # unquoted when the line reads back as the same command, else one quoted word
    plain = words is not None and command == command.strip() and (len(words) > 1 or words == [command])
    return "exec %s %s" % (event["node"], command if plain else shlex.quote(command))


def _words(text):
    try:
        return shlex.split(text)
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------------
# The schedule: the ``events:`` key of an experiment file


def parse_time(value, path):
    """Seconds (a float >= 0) from 30, 1.5, '30', '30s', '1.5s', '500ms', '2m' or '1h'."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        _fail(path, "invalid time %r: %s" % (value, TIME_HINT))
    if isinstance(value, str):
        match = TIME_RE.match(value)
        if match is None:
            if value.strip().startswith("-"):
                _fail(path, "invalid time %r: must be 0 or later (seconds from the start of the schedule)" % (value,))
            _fail(path, "invalid time %r: %s" % (value, TIME_HINT))
        seconds = float(match.group(1)) * TIME_UNITS[match.group(2) or "s"]
    else:
        seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        _fail(path, "invalid time %r: %s" % (value, TIME_HINT))
    if seconds < 0:
        _fail(path, "invalid time %r: must be 0 or later (seconds from the start of the schedule)" % (value,))
    return seconds


def parse_entry(item, path):
    """One item of a schedule, ``{at: TIME, event: TEXT}`` -> {"at": seconds, "event": normalized}."""
    if not isinstance(item, dict):
        _fail(path, "must be a mapping {at: TIME, event: TEXT}, got %s" % _type_name(item))
    for key in item:
        if key not in SCHEDULE_KEYS:
            _fail(path, "unknown key %r; keys: %s" % (key, ", ".join(SCHEDULE_KEYS)))
    for key in SCHEDULE_KEYS:
        if key not in item:
            _fail("%s.%s" % (path, key), "is required")
    at = parse_time(item["at"], path + ".at")
    return {"at": at, "event": parse(item["event"], path + ".event")}


def parse_schedule(items, path="events", errors=None, names=None, with_paths=False):
    """A schedule (the list of ``{at, event}`` items) -> [{"at": seconds, "event": normalized}],
    sorted by time (items at the same time keep their order).

    By default the first bad item raises.  With ``errors`` (a list), every bad item's EventError
    is appended there and the item left out, so that all are reported at once.  ``names``:
    (nodes, lans, experiment) as check_names takes them, to check the names each event uses.
    ``with_paths``: each entry also carries ``path``, its event's field path in the file
    (``events[2].event``), for errors found later (the planner's).
    """
    if not isinstance(items, list):
        _fail(path, "must be a list of {at: TIME, event: TEXT}, got %s" % _type_name(items))
    entries = []
    for i, item in enumerate(items):
        ipath = "%s[%d]" % (path, i)
        try:
            entry = parse_entry(item, ipath)
            if names is not None:
                check_names(entry["event"], names[0], names[1], ipath + ".event", names[2])
        except EventError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        if with_paths:
            entry["path"] = ipath + ".event"
        entries.append(entry)
    return sorted(entries, key=lambda e: e["at"])


# ----------------------------------------------------------------------------------------------
# Against an experiment


def check_names(event, nodes, lans, path="event", experiment=None):
    """EventError unless the nodes and LANs ``event`` names exist and a NODE:LAN is a member.

    ``nodes``: the node names; ``lans``: LAN (or link) name -> its members' names;
    ``experiment``: "PROJECT/NAME", for the messages.
    """
    event = parse(event, path)
    where = "experiment %s" % experiment if experiment else "the experiment"
    node, lan = event.get("node"), event.get("lan")
    if lan is not None and lan not in lans:
        _fail(path, "LAN %r is not in %s (its LANs and links: %s)" % (lan, where, ", ".join(sorted(lans)) or "none"))
    if node is not None and node not in nodes:
        _fail(path, "node %r is not in %s (its nodes: %s)" % (node, where, ", ".join(sorted(nodes)) or "none"))
    if node is not None and lan is not None and node not in lans[lan]:
        theirs = sorted(name for name, members in lans.items() if node in members)
        _fail(path, "node %s is not on %s (its LANs: %s)" % (node, lan, ", ".join(theirs) or "none"))


def plan_event(plan, text):
    """One event as module experiment_event takes it: (its description, its actions per host).
    A refused event without a space was most likely split by Ansible's -e key=value: say so."""
    try:
        event = parse(text)
        return describe(event), resolve(plan, event)
    except EventError as exc:
        if " " in text.strip():
            raise
        raise EventError(str(exc) + " (quote the event: -e \"event='link lan0 down'\"; Ansible splits -e key=value "
                         "at spaces)")


def resolve(plan, event, path="event"):
    """Host -> [action] for ``event`` on the experiment ``plan`` (make_plan's, or the recorded one).

    Only the hosts involved appear, in plan["hosts"] order; each action is a plain dict (see
    operate.HostEvents).  A shape event's actions carry the new shaping of each attachment: its
    current one with the event's keys merged over it.
    """
    event = parse(event, path)
    lans = dict((name, list(lan["members"])) for name, lan in plan["lans"].items())
    check_names(event, plan["nodes"], lans, path, "%s/%s" % (plan.get("project"), plan.get("name")))
    kind = event["kind"]
    by_host = {}

    def add(node, action):
        by_host.setdefault(plan["nodes"][node]["host"], []).append(action)

    if kind in ("node", "exec"):
        planned = plan["nodes"][event["node"]]
        action = {"op": kind, "node": event["node"], "container": planned["container"]}
        if kind == "node":
            action["action"] = event["action"]
        else:
            action.update(command=event["command"], augment=planned.get("augment", "none"))
        add(event["node"], action)
        return _in_host_order(plan, by_host)

    lan = event["lan"]
    members = [event["node"]] if event["node"] else lans[lan]
    items = {}  # host -> attachments
    for node in members:
        iface = _interface(plan, node, lan)
        if kind == "link":
            item = {"node": node, "lan": lan, "veth": iface["veth"]}
        else:
            item = {"node": node, "lan": lan, "veth": iface["veth"], "alias": iface.get("alias"),
                    "ifb": iface.get("ifb"), "to_node": iface.get("to_node"), "from_node": iface.get("from_node")}
            # a link's direction is shaped on its receiving end only: from_node stays as planned
            directions = ("to_node", "from_node") if plan["lans"][lan]["kind"] == "lan" else ("to_node",)
            for direction in directions:
                item[direction] = _merge(path, item[direction], event["shape"], "%s on %s, %s" % (node, lan, direction))
        items.setdefault(plan["nodes"][node]["host"], []).append(item)
    for host, attachments in items.items():
        action = {"op": kind, "attachments": attachments}
        if kind == "link":
            action = {"op": "link", "state": event["state"], "attachments": attachments}
        by_host[host] = [action]
    return _in_host_order(plan, by_host)


def _interface(plan, node, lan):
    for iface in plan["nodes"][node]["interfaces"]:
        if iface["lan"] == lan:
            return iface
    raise EventError("the plan has no interface of %s on %s" % (node, lan))  # pragma: no cover - a broken plan


def _merge(path, current, keys, what):
    """The shaping dict (asdict(Shape), or None when empty) of ``current`` with ``keys`` over it."""
    fields = dataclasses.asdict(Shape(**current)) if current else dataclasses.asdict(Shape())
    for key, value in keys.items():
        try:
            fields[SHAPE_FIELDS[key][0]] = _field_value(key, value)
        except ValueError as exc:
            _fail(path, "%s: %s" % (key, exc))
    try:
        shape = Shape(**fields)
    except ValueError as exc:
        _fail(path, "the shaping of %s would be invalid: %s" % (what, exc))
    return None if shape.empty else dataclasses.asdict(shape)


def _in_host_order(plan, by_host):
    order = list(plan.get("hosts") or [])
    order += sorted(h for h in by_host if h not in order)
    return dict((h, by_host[h]) for h in order if h in by_host)


def apply_to_plan(plan, actions_by_host):
    """A deep copy of ``plan`` with what the actions leave in it: a shape action's new shaping of
    its attachments, a link action's ``down: True`` on each interface taken down (removed when
    brought up).  Node and exec actions change nothing; attachments the plan lacks are skipped."""
    plan = copy.deepcopy(plan)
    for actions in actions_by_host.values():
        for action in actions:
            if action.get("op") not in ("link", "shape"):
                continue
            for item in action["attachments"]:
                node = plan.get("nodes", {}).get(item["node"])
                for iface in (node or {}).get("interfaces", []):
                    if iface["lan"] != item["lan"]:
                        continue
                    if action["op"] == "shape":
                        iface["to_node"] = copy.deepcopy(item.get("to_node"))
                        iface["from_node"] = copy.deepcopy(item.get("from_node"))
                    elif action["state"] == "down":
                        iface["down"] = True
                    else:
                        iface.pop("down", None)
    return plan
