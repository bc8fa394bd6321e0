"""Experiment events (plugins/module_utils/events.py): the event lines, their errors and canonical
text, the ``events:`` schedule, what an event does on each host of a plan (resolve) and what it
leaves in the recorded plan (apply_to_plan); the schedule in the experiment file and the plan."""
import copy
import json

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import events
from ansible_collections.testbed.containers.plugins.module_utils.model import ExperimentError
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan

HOSTS = ["h1", "h2"]
HOST_VARS = {"h1": {"tunnel_address": "192.0.2.1"}, "h2": {"tunnel_address": "192.0.2.2"}}
IMG = "img"


def doc(**extra):
    """a on h1, b and c on h2; lan0 (b, a, c: its first member on h2) spans both hosts and is shaped
    both ways; link l1 (a, b) with a delay and a slower b -> a direction; lan9 has c alone."""
    d = {"name": "demo",
         "nodes": {"a": {"image": IMG, "host": "h1"}, "b": {"image": IMG, "host": "h2", "augment": "none"},
                   "c": {"image": IMG, "host": "h2"}},
         "lans": {"lan0": {"members": ["b", "a", "c"], "bandwidth": "10mbit", "delay": "5ms"},
                  "lan9": {"members": ["c"]}},
         "links": {"l1": {"endpoints": ["a", "b"], "delay": "20ms", "b_to_a": {"bandwidth": "1mbit"}}}}
    d.update(extra)
    return d


@pytest.fixture(name="plan")
def plan_fixture():
    return make_plan(doc(), HOSTS, host_vars=HOST_VARS)


def iface(plan, node, lan):
    return [i for i in plan["nodes"][node]["interfaces"] if i["lan"] == lan][0]


def shape(rate=None, delay=0, jitter=0, loss=0.0, limit=None):
    return {"rate_bps": rate, "delay_us": delay, "jitter_us": jitter, "loss": loss, "limit_packets": limit}


def error(call, *args, **kwargs):
    with pytest.raises(events.EventError) as info:
        call(*args, **kwargs)
    return str(info.value)


# --- parsing -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("link lan0 down", {"kind": "link", "lan": "lan0", "node": None, "state": "down"}),
    ("link lan0 up", {"kind": "link", "lan": "lan0", "node": None, "state": "up"}),
    ("  link   b:lan0   down ", {"kind": "link", "lan": "lan0", "node": "b", "state": "down"}),
    ("node a stop", {"kind": "node", "node": "a", "action": "stop"}),
    ("node a start", {"kind": "node", "node": "a", "action": "start"}),
    ("node a restart", {"kind": "node", "node": "a", "action": "restart"}),
    ("shape lan0 bandwidth=10mbit", {"kind": "shape", "lan": "lan0", "node": None, "shape": {"bandwidth": "10mbit"}}),
    ("shape a:l1 queue=50 delay=20ms jitter=2ms loss=0.1% bandwidth=none",
     {"kind": "shape", "lan": "l1", "node": "a",
      "shape": {"bandwidth": None, "delay": "20ms", "jitter": "2ms", "loss": "0.1%", "queue": "50"}}),
    ("shape lan0 'delay=2.5ms'", {"kind": "shape", "lan": "lan0", "node": None, "shape": {"delay": "2.5ms"}}),
    ("exec a ip addr show", {"kind": "exec", "node": "a", "command": "ip addr show"}),
    ('exec a "ip addr show"', {"kind": "exec", "node": "a", "command": "ip addr show"}),
    ("exec a 'ip addr show'", {"kind": "exec", "node": "a", "command": "ip addr show"}),
    ("exec a hostname", {"kind": "exec", "node": "a", "command": "hostname"}),
    # more than one word: the rest of the line as written, for the node's shell to read
    ('exec a echo "a  b" | wc -c', {"kind": "exec", "node": "a", "command": 'echo "a  b" | wc -c'}),
    ('exec a "echo hello from $(hostname); exit 3"',
     {"kind": "exec", "node": "a", "command": "echo hello from $(hostname); exit 3"}),
    ("exec a ls # not a comment", {"kind": "exec", "node": "a", "command": "ls # not a comment"}),
])
def test_parse_each_kind(text, expected):
    assert events.parse(text) == expected


@pytest.mark.parametrize("text, words", [
    ("", ["event: empty event", "link, node, shape, exec"]),
    ("lnk lan0 down", ["event: unknown event 'lnk'; events are: link, node, shape, exec"]),
    ("link lan0", ["event: link takes [NODE:]LAN and a state", "down|up"]),
    ("link lan0 down now", ["event: link takes"]),
    ("link lan0 off", ["event: unknown link state 'off'; states are: down, up"]),
    ("link LAN0 down", ["event: invalid LAN name 'LAN0'"]),
    ("link :lan0 down", ["event: invalid node name ''"]),
    ("link a:b:lan0 down", ["event: invalid node name 'a:b'"]),
    ("node a", ["event: node takes a node and an action", "stop|start|restart"]),
    ("node a kill", ["event: unknown node action 'kill'; actions are: stop, start, restart"]),
    ("node A stop", ["event: invalid node name 'A'"]),
    ("shape lan0", ["event: shape takes [NODE:]LAN and at least one KEY=VALUE", "bandwidth, delay, jitter"]),
    ("shape lan0 fast", ["event: 'fast' is not KEY=VALUE"]),
    ("shape lan0 =1", ["event: '=1' is not KEY=VALUE"]),
    ("shape lan0 rate=1mbit", ["event: unknown shaping key 'rate'; keys: bandwidth, delay, jitter, loss, queue"]),
    ("shape lan0 delay=1ms delay=2ms", ["event: delay is given twice"]),
    ("shape lan0 bandwidth=fast", ["event: bandwidth: invalid rate 'fast'"]),
    ("shape lan0 bandwidth=", ["event: bandwidth: has no value; write bandwidth=none"]),
    ("shape lan0 delay=20", ["event: delay: invalid time '20'", "needs a unit"]),
    ("shape lan0 jitter=1xs", ["event: jitter: invalid time '1xs'"]),
    ("shape lan0 loss=150%", ["event: loss: invalid loss '150%'", "out of range"]),
    ("shape lan0 queue=0", ["event: queue: invalid queue '0'", ">= 1"]),
    ("shape lan0 queue=many", ["event: queue: invalid queue 'many'"]),
    ("exec a", ["event: exec takes a node and a command", "exec NODE COMMAND..."]),
    ("exec a ''", ["event: exec needs a command"]),
    ('exec a "unclosed', ["event: cannot split", "no closing quotation"]),
    ("link lan0\ndown", ["event: must be one line"]),
])
def test_parse_errors_name_the_path_and_the_fix(text, words):
    message = error(events.parse, text)
    for word in words:
        assert word in message, (word, message)


def test_parse_errors_start_with_the_path_given():
    assert error(events.parse, "lnk", "events[2].event").startswith("events[2].event: unknown event 'lnk'")
    assert error(events.parse, 5).startswith("event: must be an event line such as 'link lan0 down', got an integer")


def test_parse_takes_a_normalized_event_back_as_a_checked_copy():
    event = events.parse("shape a:l1 bandwidth=1mbit queue=50")
    again = events.parse(event)
    assert again == event and again is not event and again["shape"] is not event["shape"]
    # values from YAML (numbers) become the strings an event line gives
    assert events.parse({"kind": "shape", "lan": "l1", "shape": {"queue": 50, "loss": 0.01}})["shape"] == \
        {"loss": "0.01", "queue": "50"}
    assert events.parse({"kind": "link", "lan": "lan0", "state": "up"})["node"] is None
    assert "unknown key 'when'" in error(events.parse, {"kind": "node", "node": "a", "action": "stop", "when": 1})
    assert "a node event needs action" in error(events.parse, {"kind": "node", "node": "a"})
    assert "an exec event needs node" in error(events.parse, {"kind": "exec", "command": "ls"})
    assert "unknown event 'nod'" in error(events.parse, {"kind": "nod"})
    assert "shape needs at least one KEY=VALUE" in error(events.parse, {"kind": "shape", "lan": "l1", "shape": {}})
    assert "bandwidth: must be a value such as 10mbit" in error(
        events.parse, {"kind": "shape", "lan": "l1", "shape": {"bandwidth": True}})


@pytest.mark.parametrize("text, canonical", [
    ("link lan0 down", "link lan0 down"),
    ("link  b:lan0  up", "link b:lan0 up"),
    ("node a restart", "node a restart"),
    ("shape lan0 delay=none bandwidth=40mbit", "shape lan0 bandwidth=40mbit delay=none"),
    ("shape a:l1 loss=0.1% queue=50", "shape a:l1 loss=0.1% queue=50"),
    ("shape lan0 'bandwidth=10 mbit'", "shape lan0 'bandwidth=10 mbit'"),
    ('exec a "ip addr show"', "exec a ip addr show"),
    ("exec a hostname", "exec a hostname"),
    ('exec a echo "a  b" | wc -c', 'exec a echo "a  b" | wc -c'),
    ("exec a \"'quoted'\"", "exec a ''\"'\"'quoted'\"'\"''"),
    ("exec a '  padded'", "exec a '  padded'"),
    ('exec a "echo \'unbalanced"', "exec a 'echo '\"'\"'unbalanced'"),
])
def test_describe_is_canonical_and_reads_back(text, canonical):
    event = events.parse(text)
    assert events.describe(event) == canonical
    assert events.parse(events.describe(event)) == event
    assert events.describe(text) == canonical  # text is parsed first


# --- the schedule ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, seconds", [
    (30, 30.0), (1.5, 1.5), (0, 0.0), ("30", 30.0), ("30s", 30.0), ("1.5s", 1.5), ("500ms", 0.5), ("2m", 120.0),
    ("1h", 3600.0), (" 2 s ", 2.0), (".5s", 0.5),
])
def test_parse_time(value, seconds):
    assert events.parse_time(value, "events[0].at") == seconds


@pytest.mark.parametrize("value, words", [
    ("soon", "invalid time 'soon': write seconds such as 30, 30s"),
    ("2d", "invalid time '2d'"),
    ("-1s", "must be 0 or later"),
    (-3, "must be 0 or later"),
    (True, "invalid time True"),
    (None, "invalid time None"),
    (float("nan"), "invalid time nan"),
    ([1], "invalid time [1]"),
])
def test_parse_time_errors_name_the_path(value, words):
    message = error(events.parse_time, value, "events[1].at")
    assert message.startswith("events[1].at: ") and words in message, message


def test_parse_schedule_sorts_by_time_keeping_the_order_of_ties():
    items = [{"at": "1m", "event": "node a restart"}, {"at": 2, "event": "link lan0 down"},
             {"at": "2s", "event": "exec a ls"}, {"at": "500ms", "event": "link lan0 up"}]
    assert events.parse_schedule(items) == [
        {"at": 0.5, "event": events.parse("link lan0 up")},
        {"at": 2.0, "event": events.parse("link lan0 down")},
        {"at": 2.0, "event": events.parse("exec a ls")},
        {"at": 60.0, "event": events.parse("node a restart")},
    ]
    assert events.parse_schedule([]) == []
    assert events.parse_schedule(items[:1], with_paths=True) == [
        {"at": 60.0, "event": events.parse("node a restart"), "path": "events[0].event"}]


@pytest.mark.parametrize("items, expected", [
    ({"at": 1, "event": "link lan0 down"}, "events: must be a list of {at: TIME, event: TEXT}, got a mapping"),
    ("link lan0 down", "events: must be a list of {at: TIME, event: TEXT}, got a string"),
    ([{"at": 1, "event": "node a stop"}, "node a stop"], "events[1]: must be a mapping {at: TIME, event: TEXT}, got a string"),
    ([{"at": 1, "event": "node a stop"}, {"when": 1, "event": "node a stop"}], "events[1]: unknown key 'when'; keys: at, event"),
    ([{"event": "node a stop"}], "events[0].at: is required"),
    ([{"at": 1}], "events[0].event: is required"),
    ([{"at": "x", "event": "node a stop"}], "events[0].at: invalid time 'x': write seconds such as 30, 30s, 1.5s, 500ms, 2m or 1h"),
    ([{"at": 1, "event": "nod a stop"}], "events[0].event: unknown event 'nod'; events are: link, node, shape, exec"),
])
def test_parse_schedule_errors(items, expected):
    assert error(events.parse_schedule, items) == expected


def test_parse_schedule_collects_every_bad_item_and_checks_names():
    items = [{"at": "x", "event": "node a stop"}, {"at": 1, "event": "node zz stop"}, {"at": 0, "event": "node a stop"},
             {"at": 1, "event": "link a:lan9 down"}]
    found = []
    names = (["a", "c"], {"lan0": ["a"], "lan9": ["c"]}, "p/e")
    assert events.parse_schedule(items, "events", found, names) == [{"at": 0.0, "event": events.parse("node a stop")}]
    assert [str(e) for e in found] == [
        "events[0].at: invalid time 'x': write seconds such as 30, 30s, 1.5s, 500ms, 2m or 1h",
        "events[1].event: node 'zz' is not in experiment p/e (its nodes: a, c)",
        "events[3].event: node a is not on lan9 (its LANs: lan0)",
    ]


# --- names -----------------------------------------------------------------------------------

NODES = ["b", "a", "c"]
LANS = {"lan0": ["b", "a"], "l1": ["a", "c"], "lan9": ["c"]}


@pytest.mark.parametrize("text, expected", [
    ("node zz stop", "events[2].event: node 'zz' is not in experiment default/demo (its nodes: a, b, c)"),
    ("exec zz ls", "events[2].event: node 'zz' is not in experiment default/demo (its nodes: a, b, c)"),
    ("link zz down", "events[2].event: LAN 'zz' is not in experiment default/demo (its LANs and links: l1, lan0, lan9)"),
    ("shape zz:lan0 delay=1ms", "events[2].event: node 'zz' is not in experiment default/demo (its nodes: a, b, c)"),
    ("link a:lan9 down", "events[2].event: node a is not on lan9 (its LANs: l1, lan0)"),
    ("shape b:l1 delay=1ms", "events[2].event: node b is not on l1 (its LANs: lan0)"),
])
def test_check_names(text, expected):
    assert error(events.check_names, events.parse(text), NODES, LANS, "events[2].event", "default/demo") == expected


def test_check_names_passes_known_names():
    for text in ("node a stop", "exec c ls", "link lan0 up", "link c:lan9 down", "shape a:l1 loss=1%"):
        events.check_names(events.parse(text), NODES, LANS, "event", "default/demo")
    assert error(events.check_names, "node zz stop", [], {}) == "event: node 'zz' is not in the experiment (its nodes: none)"


# --- resolve: what each host does --------------------------------------------------------------

def test_the_fixture_spans_two_hosts(plan):
    assert plan["hosts"] == ["h1", "h2"] and plan["lans"]["lan0"]["hosts"] == ["h1", "h2"]
    assert plan["nodes"]["a"]["host"] == "h1" and plan["nodes"]["b"]["host"] == "h2"


def test_link_event_takes_every_attachment_on_each_host_in_host_order(plan):
    actions = events.resolve(plan, "link lan0 down")
    assert list(actions) == ["h1", "h2"]  # the plan's host order, though lan0's first member is on h2
    assert actions["h1"] == [{"op": "link", "state": "down", "attachments": [
        {"node": "a", "lan": "lan0", "veth": iface(plan, "a", "lan0")["veth"]}]}]
    assert actions["h2"] == [{"op": "link", "state": "down", "attachments": [
        {"node": "b", "lan": "lan0", "veth": iface(plan, "b", "lan0")["veth"]},
        {"node": "c", "lan": "lan0", "veth": iface(plan, "c", "lan0")["veth"]}]}]
    assert events.resolve(plan, "link l1 up")["h2"][0]["state"] == "up"


def test_link_event_on_one_attachment_involves_its_host_only(plan):
    assert events.resolve(plan, "link b:l1 down") == {"h2": [{"op": "link", "state": "down", "attachments": [
        {"node": "b", "lan": "l1", "veth": iface(plan, "b", "l1")["veth"]}]}]}


def test_node_and_exec_events_go_to_the_node_host(plan):
    assert events.resolve(plan, "node b restart") == {"h2": [
        {"op": "node", "action": "restart", "node": "b", "container": plan["nodes"]["b"]["container"]}]}
    assert events.resolve(plan, 'exec a "ip addr show"') == {"h1": [
        {"op": "exec", "node": "a", "container": plan["nodes"]["a"]["container"], "command": "ip addr show",
         "augment": "basic"}]}
    assert events.resolve(plan, "exec b ls")["h2"][0]["augment"] == "none"


def test_shape_event_on_a_lan_merges_over_both_directions_of_each_member(plan):
    assert iface(plan, "a", "lan0")["to_node"] == shape(rate=10000000, delay=5000)
    actions = events.resolve(plan, "shape lan0 bandwidth=40mbit")
    assert list(actions) == ["h1", "h2"]
    new = shape(rate=40000000, delay=5000)  # bandwidth changed, delay kept
    for host, nodes in (("h1", ["a"]), ("h2", ["b", "c"])):
        [action] = actions[host]
        assert action["op"] == "shape"
        assert [item["node"] for item in action["attachments"]] == nodes
        for item in action["attachments"]:
            planned = iface(plan, item["node"], "lan0")
            assert item == {"node": item["node"], "lan": "lan0", "veth": planned["veth"], "alias": planned["alias"],
                            "ifb": planned["ifb"], "to_node": new, "from_node": new}
    # the plan is not changed by resolving
    assert iface(plan, "a", "lan0")["to_node"] == shape(rate=10000000, delay=5000)


def test_shape_none_removes_a_parameter_and_an_empty_shaping_is_none(plan):
    [action] = events.resolve(plan, "shape a:lan0 delay=none loss=1%")["h1"]
    assert [i["node"] for i in action["attachments"]] == ["a"]
    assert action["attachments"][0]["to_node"] == action["attachments"][0]["from_node"] == \
        shape(rate=10000000, loss=0.01)
    [action] = events.resolve(plan, "shape a:lan0 bandwidth=none delay=none")["h1"]
    assert action["attachments"][0]["to_node"] is None and action["attachments"][0]["from_node"] is None
    # an unshaped attachment gets what the event gives
    [action] = events.resolve(plan, "shape lan9 delay=10ms jitter=1ms queue=20")["h2"]
    assert action["attachments"][0]["to_node"] == shape(delay=10000, jitter=1000, limit=20)


def test_shape_event_on_a_link_shapes_the_receiving_ends(plan):
    # l1: a -> b 20ms; b -> a 20ms at 1mbit (b_to_a), both on the receiving end's to_node
    assert iface(plan, "a", "l1")["to_node"] == shape(rate=1000000, delay=20000)
    assert iface(plan, "b", "l1")["to_node"] == shape(delay=20000)
    actions = events.resolve(plan, "shape l1 delay=30ms")
    [to_a] = actions["h1"][0]["attachments"]
    [to_b] = actions["h2"][0]["attachments"]
    assert to_a["to_node"] == shape(rate=1000000, delay=30000) and to_a["from_node"] is None
    assert to_b["to_node"] == shape(delay=30000) and to_b["from_node"] is None
    # NODE:LINK: the traffic toward NODE only
    planned = iface(plan, "b", "l1")
    assert events.resolve(plan, "shape b:l1 bandwidth=5mbit") == {"h2": [{"op": "shape", "attachments": [
        {"node": "b", "lan": "l1", "veth": planned["veth"], "alias": planned["alias"], "ifb": planned["ifb"],
         "to_node": shape(rate=5000000, delay=20000), "from_node": None}]}]}


def test_resolve_errors(plan):
    assert error(events.resolve, plan, "node zz stop") == \
        "event: node 'zz' is not in experiment default/demo (its nodes: a, b, c)"
    assert error(events.resolve, plan, "link a:lan9 down", "events[0].event") == \
        "events[0].event: node a is not on lan9 (its LANs: l1, lan0)"
    # a shaping the merge makes invalid names the attachment and direction
    assert error(events.resolve, plan, "shape lan0 jitter=1ms delay=none") == \
        "event: the shaping of b on lan0, to_node would be invalid: jitter needs a delay"
    assert "a queue limit needs a bandwidth" in error(events.resolve, plan, "shape lan9 queue=10")


def test_resolve_takes_the_recorded_plan(plan):
    recorded = json.loads(json.dumps(plan))
    assert events.resolve(recorded, "shape lan0 loss=1%") == events.resolve(plan, "shape lan0 loss=1%")
    assert events.resolve(recorded, events.parse("link lan0 down")) == events.resolve(plan, "link lan0 down")


# --- apply_to_plan: what the recorded plan keeps --------------------------------------------------

def test_apply_to_plan_keeps_the_new_shaping(plan):
    before = copy.deepcopy(plan)
    after = events.apply_to_plan(plan, events.resolve(plan, "shape lan0 bandwidth=40mbit"))
    assert plan == before  # a copy
    for node in ("a", "b", "c"):
        assert iface(after, node, "lan0")["to_node"] == iface(after, node, "lan0")["from_node"] == \
            shape(rate=40000000, delay=5000)
    assert iface(after, "a", "l1") == iface(plan, "a", "l1")
    # the next event merges over what the last one left
    after = events.apply_to_plan(after, events.resolve(after, "shape a:lan0 delay=none"))
    assert iface(after, "a", "lan0")["to_node"] == shape(rate=40000000)
    assert iface(after, "b", "lan0")["to_node"] == shape(rate=40000000, delay=5000)


def test_apply_to_plan_marks_downed_interfaces_until_up(plan):
    down = events.apply_to_plan(plan, events.resolve(plan, "link lan0 down"))
    assert [iface(down, n, "lan0").get("down") for n in ("a", "b", "c")] == [True, True, True]
    assert "down" not in iface(down, "a", "l1") and "down" not in iface(plan, "a", "lan0")
    up = events.apply_to_plan(down, events.resolve(down, "link b:lan0 up"))
    assert [iface(up, n, "lan0").get("down") for n in ("a", "b", "c")] == [True, None, True]
    up = events.apply_to_plan(up, events.resolve(up, "link lan0 up"))
    assert up == plan


def test_apply_to_plan_ignores_node_and_exec_events(plan):
    assert events.apply_to_plan(plan, events.resolve(plan, "node a stop")) == plan
    assert events.apply_to_plan(plan, events.resolve(plan, "exec a ls")) == plan


# --- the events: key of an experiment file --------------------------------------------------------

def plan_errors(document):
    with pytest.raises(ExperimentError) as info:
        make_plan(document, HOSTS, host_vars=HOST_VARS)
    return info.value.errors


def test_bad_events_are_all_reported_with_their_field_paths():
    assert plan_errors(doc(events=[
        {"at": "2s", "event": "link lan0 down"},
        {"at": "later", "event": "link lan0 up"},
        {"at": 1, "event": "lnk lan0 up"},
        {"at": 1, "event": "node zz stop"},
        {"when": 1, "event": "node a stop"},
        "node a stop",
        {"at": 1, "event": "shape lan0 delay=20"},
        {"at": 1, "event": "link a:lan9 up"},
    ])) == [
        "events[1].at: invalid time 'later': write seconds such as 30, 30s, 1.5s, 500ms, 2m or 1h",
        "events[2].event: unknown event 'lnk'; events are: link, node, shape, exec",
        "events[3].event: node 'zz' is not in experiment default/demo (its nodes: a, b, c)",
        "events[4]: unknown key 'when'; keys: at, event",
        "events[5]: must be a mapping {at: TIME, event: TEXT}, got a string",
        "events[6].event: delay: invalid time '20': a number needs a unit (tc would read microseconds); expected a "
        "time such as 100us, 5ms, 2.5ms or 1s (units us/usec, ms/msec, s/sec); 0 means none",
        "events[7].event: node a is not on lan9 (its LANs: l1, lan0)",
    ]
    assert plan_errors(doc(events={"at": 1})) == ["events: must be a list of {at: TIME, event: TEXT}, got a mapping"]


def test_events_are_checked_with_the_rest_of_the_last_stage():
    errors = plan_errors(doc(events=[{"at": 1, "event": "node zz stop"}], ssh_keys=["not a key"]))
    assert errors == ["ssh_keys[0]: not an OpenSSH public key: paste a line of an id_*.pub file",
                      "events[0].event: node 'zz' is not in experiment default/demo (its nodes: a, b, c)"]


def test_a_scheduled_shaping_must_be_valid_when_it_is_played():
    # the jitter at 2s needs the delay set at 1s: resolved in order, over what the earlier ones leave
    plan = make_plan(doc(events=[{"at": "2s", "event": "shape lan9 jitter=1ms"},
                                 {"at": "1s", "event": "shape lan9 delay=10ms"}]), HOSTS, host_vars=HOST_VARS)
    assert plan["events"] == [{"at": 1.0, "event": "shape lan9 delay=10ms"}, {"at": 2.0, "event": "shape lan9 jitter=1ms"}]
    assert iface(plan, "c", "lan9")["to_node"] is None  # the plan itself is the file's shaping
    assert plan_errors(doc(events=[{"at": "1s", "event": "shape lan9 delay=10ms"},
                                   {"at": "3s", "event": "shape lan9 delay=none"},
                                   {"at": "2s", "event": "shape lan9 jitter=1ms"},
                                   {"at": "4s", "event": "link lan9 down"}])) == [
        "events[1].event: the shaping of c on lan9, to_node would be invalid: jitter needs a delay"]


def test_a_plan_with_events_carries_them_sorted_and_canonical():
    plain = make_plan(doc(), HOSTS, host_vars=HOST_VARS)
    scheduled = make_plan(doc(events=[
        {"at": "1m", "event": "node b  restart"},
        {"at": "2s", "event": "link lan0 down"},
        {"at": "2s", "event": "shape a:l1 delay=none bandwidth=2mbit"},
        {"at": 5, "event": 'exec a "ip addr show"'},
    ]), HOSTS, host_vars=HOST_VARS)
    assert scheduled["events"] == [
        {"at": 2.0, "event": "link lan0 down"},
        {"at": 2.0, "event": "shape a:l1 bandwidth=2mbit delay=none"},
        {"at": 5.0, "event": "exec a ip addr show"},
        {"at": 60.0, "event": "node b restart"},
    ]
    assert dict((k, v) for k, v in scheduled.items() if k != "events") == plain
    assert json.loads(json.dumps(scheduled))["events"] == scheduled["events"]


def test_a_plan_without_events_has_no_events_key():
    assert "events" not in make_plan(doc(), HOSTS, host_vars=HOST_VARS)
    assert "events" not in make_plan(doc(events=[]), HOSTS, host_vars=HOST_VARS)
    assert "events" not in make_plan(doc(events=None), HOSTS, host_vars=HOST_VARS)


def test_plan_event_describes_and_resolves_and_hints_at_ansibles_split(plan):
    text, actions = events.plan_event(plan, "link lan0   down")
    assert text == "link lan0 down" and sorted(actions) == ["h1", "h2"]
    with pytest.raises(events.EventError) as exc:
        events.plan_event(plan, "link")
    assert "(quote the event: -e \"event='link lan0 down'\"" in str(exc.value)
    with pytest.raises(events.EventError) as exc:
        events.plan_event(plan, "link lan7 down")
    assert "quote the event" not in str(exc.value) and "lan7" in str(exc.value)


def test_log_event_appends_it_and_changes_the_recorded_plan_only_when_it_worked(plan, tmp_path):
    from ansible_collections.testbed.containers.plugins.module_utils import report
    record = {"project": plan["project"], "name": plan["name"], "plan": plan}
    report.write_record(str(tmp_path), record)
    _text, actions = events.plan_event(plan, "link lan0 down")
    ok = [{"host": h, "applied_at": 1.0, "operations": ["x"]} for h in actions]
    entry, failed = report.log_event(str(tmp_path), plan, "link lan0 down", 1.0, ok, actions, dry_run=True)
    assert failed == {} and not (tmp_path / plan["project"]).joinpath("%s.events.jsonl" % plan["name"]).exists()
    assert report.read_record(str(tmp_path), plan["project"], plan["name"]) == record  # check mode: nothing
    report.log_event(str(tmp_path), plan, "link lan0 down", 1.0, ok, actions)
    after = report.read_record(str(tmp_path), plan["project"], plan["name"])["plan"]
    assert after == events.apply_to_plan(plan, actions) and after != plan
    bad = [dict(ok[0]), {"host": "h2", "failed": True, "msg": "h2: no interface"}]
    _entry, failed = report.log_event(str(tmp_path), after, "link lan0 up", 2.0, bad, actions)
    assert failed == {"h2": "h2: no interface"}
    assert report.read_record(str(tmp_path), plan["project"], plan["name"])["plan"] == after  # unchanged
    assert len(report.read_events(str(tmp_path), plan["project"], plan["name"])) == 2
