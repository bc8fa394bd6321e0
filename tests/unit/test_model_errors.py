"""Bad experiment files: every error names its field path and says what is wrong.

Table-driven: each case is (id, document, hosts, expected errors).  An expected error is the
exact text, or a compiled regex (fullmatch) where part of the text comes from Python's
ipaddress module and may vary between versions.  The whole ``errors`` list is compared, so a
case also proves that nothing spurious is reported besides the expected errors.
"""
import re

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import model
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan

HOSTS = ["h1", "h2"]
# valid plans: with no packing the nodes spread over both hosts (balanced placement), LANs span them
TUNNELS = {"h1": {"tunnel_address": "192.0.2.1"}, "h2": {"tunnel_address": "192.0.2.2"}}
HINT = model.NAME_HINT
IMG = {"image": "img"}
NODE_KEYS = ("augment, binds, blkio_weight, cap_add, cap_drop, command, cpu_shares, cpus, depends_on, entrypoint, env, forwarding, host, image, "
             "labels, memory, pids, ports, restart, start, sysctls, user, volumes, workdir")
TOP_KEYS = "addressing, defaults, events, lans, links, name, nodes, placement, project, routing, ssh_keys, storage, users"


def exp(nodes=None, lans=None, links=None, **top):
    """A valid experiment (a, b, r on lan0; r-b link) with the given parts replaced."""
    doc = {"name": "exp"}
    doc["nodes"] = nodes if nodes is not None else {"a": dict(IMG), "b": dict(IMG), "r": dict(IMG, forwarding=True)}
    doc["lans"] = lans if lans is not None else {"lan0": {"members": ["a", "r"]}}
    doc["links"] = links if links is not None else {"l1": {"endpoints": ["r", "b"]}}
    doc.update(top)
    return doc


def node(**settings):
    """exp() with node a's settings replaced by ``settings`` (image kept unless overridden)."""
    return exp(nodes={"a": dict(IMG, **settings), "b": dict(IMG), "r": dict(IMG, forwarding=True)})


def lan0(members, subnet=None):
    spec = {"members": members}
    if subnet is not None:
        spec["subnet"] = subnet
    return exp(lans={"lan0": spec})


def without(key):
    doc = exp()
    del doc[key]
    return doc


def bad_name(value, what):
    return "invalid %s name %r: %s" % (what, value, HINT)


CASES = [
    # --- top level -------------------------------------------------------------------------
    ("doc-not-a-mapping", ["name", "exp"], HOSTS, ["must be a mapping, got a list"]),
    ("doc-empty", None, HOSTS, ["must be a mapping, got empty"]),
    ("missing-name", without("name"), HOSTS, ["name: is required"]),
    ("missing-nodes", {"name": "exp"}, HOSTS, ["nodes: is required"]),
    ("unknown-top-level-key", exp(nodez={}), HOSTS, ["nodez: unknown key; allowed keys: " + TOP_KEYS]),
    ("name-uppercase", exp(name="Exp"), HOSTS, ["name: " + bad_name("Exp", "experiment")]),
    ("name-underscore", exp(name="my_exp"), HOSTS, ["name: " + bad_name("my_exp", "experiment")]),
    ("name-too-long", exp(name="e" * 32), HOSTS, ["name: " + bad_name("e" * 32, "experiment")]),
    ("name-starts-with-digit", exp(name="1exp"), HOSTS, ["name: " + bad_name("1exp", "experiment")]),
    ("name-not-a-string", exp(name=5), HOSTS, ["name: " + bad_name(5, "experiment")]),
    ("project-bad", exp(project="My.Project"), HOSTS, ["project: " + bad_name("My.Project", "project")]),
    ("routing-bad", exp(routing="ospf"), HOSTS, ["routing: must be one of static, none, got 'ospf'"]),
    ("defaults-unknown-key", exp(defaults={"cpu": 1}), HOSTS,
     ["defaults.cpu: unknown key; allowed keys: augment, blkio_weight, cpu_shares, cpus, image, memory, pids, restart, start"]),
    ("defaults-not-a-mapping", exp(defaults=["img"]), HOSTS, ["defaults: must be a mapping, got a list"]),
    ("addressing-not-a-mapping", exp(addressing="10.0.0.0/8"), HOSTS,
     ["addressing: must be a mapping, got a string"]),
    ("addressing-unknown-key", exp(addressing={"pools": "10.0.0.0/8"}), HOSTS,
     ["addressing.pools: unknown key; allowed keys: pool, prefixlen"]),
    ("addressing-pool-invalid", exp(addressing={"pool": "10.0.0.0/99"}), HOSTS,
     [re.compile(r"addressing\.pool: invalid subnet '10\.0\.0\.0/99' \(.+\); "
                 r"write it as an IPv4 network such as 10\.9\.1\.0/24")]),
    ("addressing-prefixlen-too-long", exp(addressing={"prefixlen": 31}), HOSTS,
     ["addressing.prefixlen: must be an integer from 16 (the pool's) to 30, got 31"]),
    ("addressing-prefixlen-shorter-than-pool", exp(addressing={"pool": "172.16.0.0/20", "prefixlen": 16}), HOSTS,
     ["addressing.prefixlen: must be an integer from 20 (the pool's) to 30, got 16"]),
    ("addressing-prefixlen-string", exp(addressing={"prefixlen": "24"}), HOSTS,
     ["addressing.prefixlen: must be an integer from 16 (the pool's) to 30, got '24'"]),
    ("addressing-prefixlen-bool", exp(addressing={"prefixlen": True}), HOSTS,
     ["addressing.prefixlen: must be an integer from 16 (the pool's) to 30, got True"]),
    # --- nodes -----------------------------------------------------------------------------
    ("nodes-empty", exp(nodes={}, lans={}, links={}), HOSTS,
     ["nodes: must be a mapping of at least one node name to its settings"]),
    ("nodes-a-list", exp(nodes=["a", "b"], lans={}, links={}), HOSTS,
     ["nodes: must be a mapping of at least one node name to its settings"]),
    ("node-name-uppercase", exp(nodes={"Web": dict(IMG)}, lans={}, links={}), HOSTS,
     ["nodes.Web: " + bad_name("Web", "node")]),
    ("node-name-underscore", exp(nodes={"web_1": dict(IMG)}, lans={}, links={}), HOSTS,
     ["nodes.web_1: " + bad_name("web_1", "node")]),
    ("node-name-too-long", exp(nodes={"n" * 32: dict(IMG)}, lans={}, links={}), HOSTS,
     ["nodes.%s: %s" % ("n" * 32, bad_name("n" * 32, "node"))]),
    ("node-name-starts-with-digit", exp(nodes={"9n": dict(IMG)}, lans={}, links={}), HOSTS,
     ["nodes.9n: " + bad_name("9n", "node")]),
    ("node-name-integer", exp(nodes={1: dict(IMG)}, lans={}, links={}), HOSTS,
     ["nodes.1: " + bad_name(1, "node")]),
    ("node-settings-not-a-mapping", exp(nodes={"a": "img"}, lans={}, links={}), HOSTS,
     ["nodes.a: must be a mapping, got a string"]),
    ("node-unknown-key", node(devices=[22]), HOSTS, ["nodes.a.devices: unknown key; allowed keys: " + NODE_KEYS]),
    ("node-without-image", exp(nodes={"a": {"cpus": 1}}, lans={}, links={}), HOSTS,
     ["nodes.a.image: is required: name a Docker image (or set defaults.image)"]),
    ("node-empty-settings-no-default-image", exp(nodes={"a": None}, lans={}, links={}), HOSTS,
     ["nodes.a.image: is required: name a Docker image (or set defaults.image)"]),
    ("node-image-blank", node(image="  "), HOSTS,
     ["nodes.a.image: is required: name a Docker image (or set defaults.image)"]),
    ("cpus-zero", node(cpus=0), HOSTS, ["nodes.a.cpus: must be a number of CPUs above 0, such as 0.5 or 2, got 0"]),
    ("cpus-negative", node(cpus=-1.5), HOSTS,
     ["nodes.a.cpus: must be a number of CPUs above 0, such as 0.5 or 2, got -1.5"]),
    ("cpus-string", node(cpus="2"), HOSTS,
     ["nodes.a.cpus: must be a number of CPUs above 0, such as 0.5 or 2, got '2'"]),
    ("cpus-bool", node(cpus=True), HOSTS,
     ["nodes.a.cpus: must be a number of CPUs above 0, such as 0.5 or 2, got True"]),
    ("memory-bad-unit", node(memory="12x"), HOSTS,
     ["nodes.a.memory: invalid memory '12x': write a size such as 256m or 1g"]),
    ("memory-zero", node(memory=0), HOSTS, ["nodes.a.memory: invalid memory 0: write a size such as 256m or 1g"]),
    ("memory-bool", node(memory=True), HOSTS,
     ["nodes.a.memory: invalid memory True: write a size such as 256m or 1g"]),
    ("memory-below-minimum", node(memory="1m"), HOSTS, ["nodes.a.memory: '1m' is below Docker's minimum of 6m"]),
    ("memory-below-minimum-bytes", node(memory=4096), HOSTS,
     ["nodes.a.memory: 4096 is below Docker's minimum of 6m"]),
    ("command-empty-string", node(command=""), HOSTS,
     ["nodes.a.command: must not be empty; leave it out to keep the image's CMD"]),
    ("command-blank-string", node(command="   "), HOSTS,
     ["nodes.a.command: must not be empty; leave it out to keep the image's CMD"]),
    ("command-empty-list", node(command=[]), HOSTS,
     ["nodes.a.command: must be a string or a non-empty list of strings"]),
    ("command-dict", node(command={"sh": "-c"}), HOSTS,
     ["nodes.a.command: must be a string or a non-empty list of strings"]),
    ("command-list-of-lists", node(command=[["sleep"], "1"]), HOSTS,
     ["nodes.a.command: must be a string or a non-empty list of strings"]),
    ("forwarding-string", node(forwarding="yes"), HOSTS, ["nodes.a.forwarding: must be true or false, got 'yes'"]),
    ("forwarding-int", node(forwarding=1), HOSTS, ["nodes.a.forwarding: must be true or false, got 1"]),
    ("start-without-augmentation", node(augment="none", start="echo hi"), HOSTS,
     ["nodes.a.start: a start command needs augmentation: set augment: basic (or leave augment out)"]),
    ("start-not-a-string", node(start=["echo", "hi"]), HOSTS,
     ["nodes.a.start: must be a command line (a string), run by a shell in the node"]),
    ("augment-unknown", node(augment="extra"), HOSTS,
     ["nodes.a.augment: must be one of none, basic, full, got 'extra'"]),
    ("augment-unknown-from-defaults", exp(defaults={"augment": "max"}), HOSTS,
     ["nodes.%s.augment: must be one of none, basic, full, got 'max'" % n for n in ("a", "b", "r")]),
    ("host-empty", node(host=""), HOSTS, ["nodes.a.host: must name a host of the inventory"]),
    ("env-not-a-mapping", node(env=["A=1"]), HOSTS, ["nodes.a.env: must be a mapping of variable names to values"]),
    ("env-bad-variable-name", node(env={"1A": "x"}), HOSTS,
     ["nodes.a.env: must be a mapping of variable names to values"]),
    # --- lans and links: shape -------------------------------------------------------------
    ("lans-not-a-mapping", exp(lans=["lan0"]), HOSTS, ["lans: must be a mapping of names to settings, got a list"]),
    ("lan-name-uppercase", exp(lans={"LAN0": {"members": ["a", "r"]}}), HOSTS,
     ["lans.LAN0: " + bad_name("LAN0", "lan")]),
    ("lan-name-underscore", exp(lans={"lan_0": {"members": ["a", "r"]}}), HOSTS,
     ["lans.lan_0: " + bad_name("lan_0", "lan")]),
    ("lan-name-too-long", exp(lans={"l" * 32: {"members": ["a", "r"]}}), HOSTS,
     ["lans.%s: %s" % ("l" * 32, bad_name("l" * 32, "lan"))]),
    ("lan-name-starts-with-digit", exp(lans={"0lan": {"members": ["a", "r"]}}), HOSTS,
     ["lans.0lan: " + bad_name("0lan", "lan")]),
    ("link-name-underscore", exp(links={"r_b": {"endpoints": ["r", "b"]}}), HOSTS,
     ["links.r_b: " + bad_name("r_b", "link")]),
    ("lan-unknown-key", exp(lans={"lan0": {"members": ["a"], "colour": "red"}}), HOSTS,
     ["lans.lan0.colour: unknown key; allowed keys: bandwidth, delay, jitter, loss, members, queue, subnet"]),
    ("lan-bad-bandwidth-unit", exp(lans={"lan0": {"members": ["a"], "bandwidth": "10m"}}), HOSTS,
     ["lans.lan0.bandwidth: invalid rate '10m': unknown unit 'm'; expected a rate such as 10mbit, 100kbit, "
      "1gbit, 500bit, 10Mbit/s or 2mbps (bytes/s, as in tc); units bit, kbit, mbit, gbit, tbit (powers of 1000), "
      "kibit..tibit (powers of 1024), bps, kbps, mbps, gbps (bytes per second); a bare number is bit/s"]),
    ("link-direction-names-no-endpoint", exp(links={"l1": {"endpoints": ["r", "b"], "r_to_a": {"bandwidth": "1mbit"}}}),
     HOSTS, ["links.l1.r_to_a: names no direction of this link: use r_to_b or b_to_r"]),
    ("link-direction-unknown-key", exp(links={"l1": {"endpoints": ["r", "b"], "r_to_b": {"rate": "1mbit"}}}),
     HOSTS, ["links.l1.r_to_b.rate: unknown key; allowed keys: bandwidth, delay, jitter, loss, queue"]),
    ("lan-without-members", exp(lans={"lan0": {"subnet": "10.9.1.0/24"}}), HOSTS, ["lans.lan0.members: is required"]),
    ("link-with-members-key", exp(links={"l1": {"members": ["r", "b"]}}), HOSTS,
     ["links.l1.members: unknown key; allowed keys: bandwidth, delay, endpoints, jitter, loss, queue, subnet",
      "links.l1.endpoints: is required"]),
    ("members-not-a-list", lan0("a"), HOSTS, ["lans.lan0.members: must be a list of node names, got a string"]),
    ("members-a-mapping", lan0({"a": None}), HOSTS, ["lans.lan0.members: must be a list of node names, got a mapping"]),
    ("members-empty", lan0([]), HOSTS, ["lans.lan0.members: must list at least one node"]),
    ("member-integer", lan0(["a", 7]), HOSTS, ["lans.lan0.members[1]: must be a mapping, got an integer"]),
    ("member-mapping-without-node", lan0([{"ip": "10.9.1.1"}], "10.9.1.0/24"), HOSTS,
     ["lans.lan0.members[0].node: is required"]),
    ("member-mapping-unknown-key", lan0([{"node": "a", "mac": "02:00:00:00:00:01"}]), HOSTS,
     ["lans.lan0.members[0].mac: unknown key; allowed keys: bandwidth, delay, from_node, interface, ip, jitter, loss, node, queue, to_node"]),
    ("member-node-not-a-string", lan0([{"node": 3}]), HOSTS, ["lans.lan0.members[0].node: must be a node name"]),
    ("member-ip-invalid", lan0([{"node": "a", "ip": "10.9.1.x"}], "10.9.1.0/24"), HOSTS,
     ["lans.lan0.members[0].ip: invalid IPv4 address '10.9.1.x'"]),
    ("member-ip-integer", lan0([{"node": "a", "ip": 5}], "10.9.1.0/24"), HOSTS,
     ["lans.lan0.members[0].ip: invalid IPv4 address 5"]),
    ("link-three-endpoints", exp(links={"l1": {"endpoints": ["r", "b", "a"]}}), HOSTS,
     ["links.l1.endpoints: a link has exactly 2 endpoints, got 3; use lans: for more"]),
    ("link-one-endpoint", exp(links={"l1": {"endpoints": ["r"]}}), HOSTS,
     ["links.l1.endpoints: a link has exactly 2 endpoints, got 1; use lans: for more"]),
    ("name-in-lans-and-links", exp(lans={"net": {"members": ["a", "r"]}}, links={"net": {"endpoints": ["r", "b"]}}),
     HOSTS, ["links.net: name 'net' is used by both lans: and links:; rename one"]),
    ("subnet-invalid-string", lan0(["a", "r"], "10.9.1.0/33"), HOSTS,
     [re.compile(r"lans\.lan0\.subnet: invalid subnet '10\.9\.1\.0/33' \(.+\); "
                 r"write it as an IPv4 network such as 10\.9\.1\.0/24")]),
    ("subnet-host-bits-set", lan0(["a", "r"], "10.9.1.1/24"), HOSTS,
     [re.compile(r"lans\.lan0\.subnet: invalid subnet '10\.9\.1\.1/24' \(.*host bits set.*\); "
                 r"write it as an IPv4 network such as 10\.9\.1\.0/24")]),
    ("subnet-not-a-string", lan0(["a", "r"], 5), HOSTS,
     ["lans.lan0.subnet: invalid subnet 5 (not a string); write it as an IPv4 network such as 10.9.1.0/24"]),
    ("subnet-ipv6", lan0(["a", "r"], "fd00:1::/64"), HOSTS,
     ["lans.lan0.subnet: only IPv4 subnets are supported, got fd00:1::/64"]),
    ("subnet-slash-31", lan0(["a", "r"], "10.9.1.0/31"), HOSTS,
     ["lans.lan0.subnet: subnet 10.9.1.0/31 is too small: use a prefix of /30 or shorter"]),
    ("subnet-slash-32", lan0(["a", "r"], "10.9.1.7/32"), HOSTS,
     ["lans.lan0.subnet: subnet 10.9.1.7/32 is too small: use a prefix of /30 or shorter"]),
    # --- cross-field rules (second stage) --------------------------------------------------
    ("member-unknown-node", lan0(["a", "srv"]), HOSTS,
     ["lans.lan0.members[1]: unknown node 'srv' (known nodes: a, b, r)"]),
    ("endpoint-unknown-node", exp(links={"l1": {"endpoints": ["r", {"node": "db"}]}}), HOSTS,
     ["links.l1.endpoints[1]: unknown node 'db' (known nodes: a, b, r)"]),
    ("member-duplicate", lan0(["a", "r", "a"]), HOSTS,
     ["lans.lan0.members[2]: node 'a' is already a member at index 0; a node joins a LAN once"]),
    ("link-same-node-twice", exp(links={"l1": {"endpoints": ["b", "b"]}}), HOSTS,
     ["links.l1.endpoints[1]: node 'b' is already a member at index 0; a node joins a LAN once"]),
    ("fixed-ip-outside-subnet", lan0([{"node": "a", "ip": "10.9.2.5"}, "r"], "10.9.1.0/24"), HOSTS,
     ["lans.lan0.members[0].ip: address 10.9.2.5 is outside the subnet 10.9.1.0/24"]),
    ("fixed-ip-without-subnet", lan0(["a", {"node": "r", "ip": "10.9.1.1"}]), HOSTS,
     ["lans.lan0.members[1].ip: a fixed address needs the LAN's subnet: add lans.lan0.subnet"]),
    ("fixed-ip-ipv6", lan0([{"node": "a", "ip": "fd00::1"}], "10.9.1.0/24"), HOSTS,
     ["lans.lan0.members[0].ip: only IPv4 addresses are supported, got fd00::1"]),
    ("fixed-ip-duplicate", lan0([{"node": "a", "ip": "10.9.1.5"}, {"node": "r", "ip": "10.9.1.5"}], "10.9.1.0/24"),
     HOSTS, ["lans.lan0.members[1].ip: duplicate address 10.9.1.5 (also lans.lan0.members[0].ip)"]),
    ("fixed-ip-network-address", lan0([{"node": "a", "ip": "10.9.1.0"}, "r"], "10.9.1.0/24"), HOSTS,
     ["lans.lan0.members[0].ip: address 10.9.1.0 is the network or broadcast address of 10.9.1.0/24"]),
    ("fixed-ip-broadcast-address", lan0(["a", {"node": "r", "ip": "10.9.1.255"}], "10.9.1.0/24"), HOSTS,
     ["lans.lan0.members[1].ip: address 10.9.1.255 is the network or broadcast address of 10.9.1.0/24"]),
    ("fixed-subnets-overlap", exp(lans={"lan0": {"members": ["a", "r"], "subnet": "10.9.0.0/16"}},
                                  links={"l1": {"endpoints": ["r", "b"], "subnet": "10.9.1.0/30"}}), HOSTS,
     ["links.l1.subnet: subnet 10.9.1.0/30 overlaps 10.9.0.0/16 of lans.lan0"]),
    ("fixed-subnets-equal", exp(lans={"lan0": {"members": ["a", "r"], "subnet": "10.9.1.0/24"},
                                      "lan1": {"members": ["b", "r"], "subnet": "10.9.1.0/24"}}, links={}), HOSTS,
     ["lans.lan1.subnet: subnet 10.9.1.0/24 overlaps 10.9.1.0/24 of lans.lan0"]),
    ("host-name-collision-node-lan-vs-node-lan",
     exp(nodes={"a-b": dict(IMG), "a": dict(IMG)}, lans={"c": {"members": ["a-b"]}, "b-c": {"members": ["a"]}},
         links={}), HOSTS,
     ["lans.b-c: host name 'a-b-c' of node 'a' on lans.b-c collides with node 'a-b' on lans.c; "
      "rename a node or a LAN"]),
    ("host-name-collision-node-lan-vs-node",
     exp(nodes={"x": dict(IMG), "x-lan0": dict(IMG)}, lans={"lan0": {"members": ["x", "x-lan0"]}}, links={}), HOSTS,
     ["lans.lan0: host name 'x-lan0' of node 'x' on lans.lan0 collides with node 'x-lan0'; rename a node or a LAN"]),
    ("host-name-collision-via-link",
     exp(nodes={"x": dict(IMG), "x-k": dict(IMG), "y": dict(IMG)}, lans={}, links={"k": {"endpoints": ["x", "y"]}}),
     HOSTS, ["links.k: host name 'x-k' of node 'x' on links.k collides with node 'x-k'; rename a node or a LAN"]),
    # --- planner -----------------------------------------------------------------------------
    ("too-many-members-for-subnet", exp(lans={"lan0": {"members": ["a", "b", "r"], "subnet": "10.9.1.0/30"}},
                                        links={}), HOSTS,
     ["lans.lan0: 3 members do not fit in 10.9.1.0/30 (2 addresses): give a larger subnet"]),
    ("too-many-members-for-auto-prefix", exp(lans={"lan0": {"members": ["a", "b", "r"]}}, links={},
                                             addressing={"prefixlen": 30}), HOSTS,
     ["lans.lan0: 3 members do not fit in 10.10.0.0/30 (2 addresses): give a larger subnet"]),
    ("pool-exhausted", exp(addressing={"pool": "10.20.0.0/24", "prefixlen": 24}), HOSTS,
     ["links.l1: no free /24 subnet left in the pool 10.20.0.0/24: widen addressing.pool or give this LAN a subnet"]),
    ("pinned-unknown-host", node(host="nowhere"), HOSTS,
     ["nodes.a.host: pinned to nowhere which is not in the inventory (hosts: h1, h2)"]),
    ("empty-inventory", exp(), [], ["the inventory has no physical host: add one to the group testbed_hosts"]),
    ("lan-across-hosts", exp(nodes={"a": dict(IMG, host="h2"), "b": dict(IMG), "r": dict(IMG, forwarding=True, host="h1")}),
     HOSTS, ["inventory.h1.testbed_tunnel_address: a LAN spans this host, so it needs the IPv4 address of its "
             "interface that carries experiment tunnels, got None",
             "inventory.h2.testbed_tunnel_address: a LAN spans this host, so it needs the IPv4 address of its "
             "interface that carries experiment tunnels, got None"]),
]


def errors_of(doc, hosts):
    with pytest.raises(model.ExperimentError) as info:
        make_plan(doc, hosts)
    return info.value.errors


def assert_errors(actual, expected):
    assert len(actual) == len(expected), "\n".join(actual)
    for got, want in zip(actual, expected):
        if isinstance(want, str):
            assert got == want
        else:
            assert want.fullmatch(got), got


@pytest.mark.parametrize("doc, hosts, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_experiment_is_reported_with_its_field_path(doc, hosts, expected):
    assert_errors(errors_of(doc, hosts), expected)


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


def test_error_text_lists_every_error_one_per_line():
    err = model.ExperimentError(["a: one", "b: two"])
    assert str(err) == "a: one\nb: two"
    assert err.errors == ["a: one", "b: two"]


@pytest.mark.parametrize("users, expected", [
    ("alice", ["users: must be a list of accounts, each {name: NAME, ssh_keys: [KEY, ...]}"]),
    ([{"name": "Alice"}], ["users[0].name: 'Alice' is not an account name: use 1 to 32 characters, a lowercase "
                           "letter or '_' first, then lowercase letters, digits, '_' or '-'"]),
    ([{"name": "alice"}, "alice"], ["users[1].name: account 'alice' is listed twice: merge its ssh_keys into one "
                                    "entry"]),
    ([{"name": "bob", "keys": []}], ["users[0].keys: unknown key; allowed keys: name, ssh_keys"]),
    ([{"name": "bob", "ssh_keys": ["not a key"]}],
     ["users[0].ssh_keys[0]: not an OpenSSH public key: paste a line of an id_*.pub file"]),
    ([{"name": "bob", "ssh_keys": "ssh-ed25519 AAAA"}],
     ["users[0].ssh_keys: must be a list of public keys (lines of id_*.pub files)"]),
    ([7], ["users[0]: must be a mapping, got an integer"]),
])
def test_users_errors_name_the_field(users, expected):
    assert errors_of(exp(users=users, nodes={"a": dict(IMG)}, lans={}, links={}), HOSTS) == expected


def test_users_accept_names_and_mappings_and_full_level():
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE alice@lab"
    doc = exp(users=["bob", {"name": "alice", "ssh_keys": [key + "  "]}],
              nodes={"a": dict(IMG, augment="full")}, lans={}, links={})
    checked = model.validate(doc)
    assert checked["users"] == [{"name": "bob", "ssh_keys": []}, {"name": "alice", "ssh_keys": [key]}]
    assert checked["nodes"]["a"]["augment"] == "full"


def test_defaults_image_fills_nodes_without_image():
    doc = exp(defaults={"image": "debian"}, nodes={"a": None, "b": {"image": "busybox"}}, lans={}, links={})
    plan = make_plan(doc, HOSTS)
    assert plan["nodes"]["a"]["image"] == "debian"
    assert plan["nodes"]["b"]["image"] == "busybox"


def test_several_errors_of_the_first_stage_are_reported_at_once():
    """All shape errors in one report, in file order; cross-field rules wait for the next run."""
    doc = {
        "name": "Bad_Name",
        "routing": "rip",
        "colour": "blue",
        "nodes": {
            "a": {"cpus": 0, "memory": "12x", "forwarding": "no"},
            "B": {"image": "img"},
            "c": {"image": "img", "command": []},
        },
        "lans": {
            "lan0": {"members": ["a", "ghost"], "subnet": "10.9.1.0/31"},  # ghost: second stage
        },
        "links": {"l1": {"endpoints": ["a", "c", "ghost"]}},
    }
    errors = errors_of(doc, HOSTS)
    assert errors == [
        "colour: unknown key; allowed keys: " + TOP_KEYS,
        "name: " + bad_name("Bad_Name", "experiment"),
        "routing: must be one of static, none, got 'rip'",
        "nodes.a.image: is required: name a Docker image (or set defaults.image)",
        "nodes.a.forwarding: must be true or false, got 'no'",
        "nodes.a.cpus: must be a number of CPUs above 0, such as 0.5 or 2, got 0",
        "nodes.a.memory: invalid memory '12x': write a size such as 256m or 1g",
        "nodes.B: " + bad_name("B", "node"),
        "nodes.c.command: must be a string or a non-empty list of strings",
        "lans.lan0.subnet: subnet 10.9.1.0/31 is too small: use a prefix of /30 or shorter",
        "links.l1.endpoints: a link has exactly 2 endpoints, got 3; use lans: for more",
    ]
    assert not any("unknown node" in e for e in errors)


def test_several_errors_of_the_second_stage_are_reported_at_once():
    doc = exp(
        nodes={"a": dict(IMG), "r": dict(IMG, forwarding=True), "x": dict(IMG), "x-k": dict(IMG)},
        lans={"lan0": {"members": ["a", "srv", {"node": "r", "ip": "10.9.2.1"}, "a"], "subnet": "10.9.1.0/24"},
              "lan1": {"members": ["r", {"node": "x", "ip": "10.9.3.1"}]}},
        links={"k": {"endpoints": ["x", "a"], "subnet": "10.9.0.0/16"}},
    )
    assert errors_of(doc, HOSTS) == [
        "lans.lan0.members[1]: unknown node 'srv' (known nodes: a, r, x, x-k)",
        "lans.lan0.members[3]: node 'a' is already a member at index 0; a node joins a LAN once",
        "links.k: host name 'x-k' of node 'x' on links.k collides with node 'x-k'; rename a node or a LAN",
        "lans.lan0.members[2].ip: address 10.9.2.1 is outside the subnet 10.9.1.0/24",
        "lans.lan1.members[1].ip: a fixed address needs the LAN's subnet: add lans.lan1.subnet",
        "links.k.subnet: subnet 10.9.0.0/16 overlaps 10.9.1.0/24 of lans.lan0",
    ]


def test_every_error_starts_with_its_field_path():
    """Apart from whole-document and inventory errors, each message is 'PATH: text'."""
    path_re = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+|\[\d+\])*: \S")
    for case_id, doc, hosts, _expected in CASES:
        if case_id in ("doc-not-a-mapping", "doc-empty", "empty-inventory"):
            continue
        for error in errors_of(doc, hosts):
            assert path_re.match(error), (case_id, error)


def test_valid_base_experiment_plans():
    """The table's base document is valid, so each case fails only for what it changes."""
    plan = make_plan(exp(), HOSTS, host_vars=TUNNELS)
    assert list(plan["nodes"]) == ["a", "b", "r"]
    assert list(plan["lans"]) == ["lan0", "l1"]


@pytest.mark.parametrize("memory, expected", [
    ("6m", 6 * 1024 ** 2), ("256M", 256 * 1024 ** 2), ("1g", 1024 ** 3), ("7000k", 7000 * 1024),
    (" 64m ", 64 * 1024 ** 2), (8 * 1024 ** 2, 8 * 1024 ** 2), ("8388608", 8388608), ("8388608b", 8388608),
])
def test_valid_memory_sizes_are_normalized_to_bytes(memory, expected):
    assert make_plan(node(memory=memory), HOSTS, host_vars=TUNNELS)["nodes"]["a"]["memory"] == expected


@pytest.mark.parametrize("cpus", [0.5, 1, 2, 1024])
def test_valid_cpus_are_accepted(cpus):
    assert make_plan(node(cpus=cpus), HOSTS, host_vars=TUNNELS)["nodes"]["a"]["cpus"] == cpus


def test_command_list_items_are_strings_and_ip_may_be_null():
    doc = exp(nodes={"a": dict(IMG, command=["sleep", 5]), "r": dict(IMG)},
              lans={"lan0": {"members": [{"node": "a", "ip": None}, "r"]}}, links={})
    plan = make_plan(doc, HOSTS, host_vars=TUNNELS)
    assert plan["nodes"]["a"]["command"] == ["sleep", "5"]
    assert plan["nodes"]["a"]["interfaces"][0]["address"] == "10.10.0.1"


def test_name_at_the_length_limit_is_valid():
    name = "e" + "x-9" * 10  # 31 characters
    assert len(name) == 31
    plan = make_plan(exp(name=name, nodes={name: dict(IMG)}, lans={}, links={}), HOSTS)
    assert plan["name"] == name and list(plan["nodes"]) == [name]


@pytest.mark.parametrize("spec, expected", [
    ({"restart": "sometimes"}, ["nodes.a.restart: must be one of no, on-failure, always (what the supervisor does "
                                "when the application exits), got 'sometimes'"]),
    ({"restart": "always", "augment": "none"}, ["nodes.a.restart: restarting the application needs augmentation: "
                                                "set augment: basic (or leave augment out)"]),
])
def test_restart_policy_errors(spec, expected):
    assert errors_of(exp(nodes={"a": dict(IMG, **spec)}, lans={}, links={}), HOSTS) == expected


def test_restart_policy_from_defaults_and_yaml_no():
    checked = model.validate(exp(defaults={"restart": "on-failure"}, nodes={"a": dict(IMG), "b": dict(IMG, restart=False)},
                                 lans={}, links={}))
    assert (checked["nodes"]["a"]["restart"], checked["nodes"]["b"]["restart"]) == ("on-failure", "no")
