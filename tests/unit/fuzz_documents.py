"""Hypothesis strategies for experiment files and inventory host variables.

``documents()`` draws half its documents clean (every value of a kind a user writes, so the
planner gets real work: placement, addressing, routes) and half hostile (shell and path
characters, NUL and newlines, wrong types, huge numbers, reserved and overlapping subnets,
keys with options mixed in at every level)."""
from hypothesis import strategies as st

NODE_NAMES = ["a", "b", "c", "r", "srv", "a-b", "node-1"]
LAN_NAMES = ["lan0", "lan1", "b-c", "l1", "x"]
HOSTILE = ["", " ", "a\n", "../etc", "a/../../b", "a;rm -rf /", "$(id)", "`id`", "a\nb", "a\x00b", "\u00e9t\u00e9", "A",
           "-a", "a" * 40, "'", '"', "\\", "*", "a b", "%s", "{{ x }}"]
CLEAN = {
    "subnet": ["10.9.1.0/24", "10.9.2.0/25", "10.9.3.128/25", "192.168.0.0/29"],
    "rate": ["10mbit", "1gbit", "100kbit", "2.5mbit"],
    "time": ["10ms", "0ms", "1s", "100us"],
    "loss": ["1%", "0%", "0.5%"],
    "image": ["testbed/busybox:latest", "img", "reg:5000/a/b:1", "img@sha256:" + "a" * 64],
    "key": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlain user@h"],
    "memory": ["256m", "1g", 7 * 2 ** 20],
    "ip": ["10.9.1.5", "10.9.1.6"],
}
BROKEN = {
    "subnet": ["10.9.1.0/31", "10.9.1.1/24", "172.30.0.0/16", "172.30.1.0/24", "198.18.255.0/24",
               "169.254.240.0/24", "0.0.0.0/0", "::1/128", "fd00::/64", "10.9.1.0", "banana", "300.1.1.0/24"],
    "rate": ["0mbit", "1bit", "100tbit", "-5mbit", "10 mbit", "10Mbps", "fast"],
    "time": ["-1ms", "1h", "1e9ms", "soon"],
    "loss": ["100%", "101%", "0.001", "-1%", "half"],
    "image": ["img\nRUN rm -rf /", "Img", "a b", "", "img:", "-img", "a" * 300],
    "key": ['command="rm -rf /" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlain',
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlain x\nssh-rsa AAAA evil", "ssh-ed25519 AAAA x\x00", "not a key"],
    "memory": ["5m", "0", "-1m", "1t", 10 ** 30],
    "ip": ["10.9.1.0", "10.9.1.255", "172.30.0.1", "10.9.2.5", "::1"],
}


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(HOSTILE))
_WEIRD = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=2), st.dictionaries(st.text(max_size=4), _SCALARS, max_size=2))


def weird():
    """Any value of any type a YAML file can hold (scalars, short lists and mappings of them)."""
    return _WEIRD


class Gen:
    """The strategies, clean or hostile."""

    def __init__(self, hostile):
        self.hostile = hostile

    def maybe(self, strategy, broken=None):
        """``strategy``; when hostile, now and then a broken value of the kind, or any value."""
        if not self.hostile:
            return strategy
        extra = [st.sampled_from(HOSTILE), weird()] + ([st.sampled_from(broken)] if broken else [])
        return st.one_of(strategy, strategy, *extra)

    def kind(self, name):
        return self.maybe(st.sampled_from(CLEAN[name]), BROKEN[name])

    def name(self, pool):
        """A name (also a mapping key: hashable values only)."""
        if not self.hostile:
            return st.sampled_from(pool)
        return st.one_of(st.sampled_from(pool), st.sampled_from(pool), st.sampled_from(HOSTILE), st.none(),
                         st.booleans(), st.integers(-5, 5), st.text(max_size=8))

    def shape(self):
        """The optional shaping keys of a LAN or link."""
        return {"bandwidth": self.kind("rate"), "delay": self.kind("time"), "jitter": self.kind("time"),
                "loss": self.kind("loss"), "queue": self.maybe(st.integers(1, 10 ** 4), [-5, 0, 10 ** 9])}

    def member(self):
        with_ip = st.fixed_dictionaries({"node": self.name(NODE_NAMES)}, optional={"ip": self.kind("ip")})
        return st.one_of(self.name(NODE_NAMES), with_ip)

    def lan(self, members_key, size):
        return st.fixed_dictionaries({members_key: self.maybe(st.lists(self.member(), min_size=size[0],
                                                                       max_size=size[1]))},
                                     optional=dict(self.shape(), subnet=self.kind("subnet")))

    def node(self):
        text = st.text(alphabet="abcdefghij -_./=$", max_size=12) if not self.hostile else st.text(max_size=12)
        return st.fixed_dictionaries({}, optional={
            "image": self.kind("image"),
            "command": self.maybe(st.one_of(text.filter(str.strip), st.lists(text, min_size=1, max_size=3))),
            "start": self.maybe(text.filter(str.strip)),
            "env": self.maybe(st.dictionaries(st.sampled_from(["A", "PATH", "X_1"]), text, max_size=3),
                              [{"1X": "a"}, {"a b": "x"}, {"X": "a\x00b"}, {"X\x00": "a"}]),
            "forwarding": self.maybe(st.booleans()), "cpus": self.maybe(st.sampled_from([0.5, 1, 2]), [0, -1, 1e9]),
            "memory": self.kind("memory"),
            "augment": self.maybe(st.sampled_from(["none", "basic", "full"])),
            "host": self.maybe(st.sampled_from(["h1", "h2", "h3"]), ["nowhere", ""]),
            "pids": self.maybe(st.integers(16, 10 ** 5), [-1, 0, 10 ** 12]),
        })

    def document(self):
        required = {"name": self.name(["exp", "e1"]), "nodes": self.maybe(
            st.dictionaries(self.name(NODE_NAMES), st.one_of(st.none(), self.node()), min_size=1, max_size=6))}
        optional = {
            "project": self.name(["default", "proj"]),
            "lans": self.maybe(st.dictionaries(self.name(LAN_NAMES), self.lan("members", (1, 5)), max_size=3)),
            "links": self.maybe(st.dictionaries(self.name(LAN_NAMES), self.lan("endpoints", (2, 2)), max_size=2)),
            "routing": self.maybe(st.sampled_from(["static", "none"])),
            "addressing": self.maybe(st.fixed_dictionaries({}, optional={
                "pool": self.maybe(st.sampled_from(["10.20.0.0/16", "10.30.0.0/20"]), BROKEN["subnet"]),
                "prefixlen": self.maybe(st.integers(24, 28), [0, 40, -1])})),
            "defaults": self.maybe(st.fixed_dictionaries({}, optional={
                "image": self.kind("image"), "augment": self.maybe(st.sampled_from(["none", "basic", "full"]))})),
            "ssh_keys": self.maybe(st.lists(self.kind("key"), max_size=2)),
            "users": self.maybe(st.lists(st.fixed_dictionaries(
                {"name": self.maybe(st.sampled_from(["alice", "bob", "_x"]), ["9x", "Bob", "a;b", "root\n"])},
                optional={"ssh_keys": self.maybe(st.lists(self.kind("key"), max_size=2))}), max_size=3,
                unique_by=lambda u: str(u.get("name")))),
            "placement": self.maybe(st.fixed_dictionaries({}, optional={
                "packing": self.maybe(st.integers(1, 5), [0, -1])})),
        }
        return st.fixed_dictionaries(required, optional=optional)

    def host_vars(self):
        per_host = st.fixed_dictionaries({}, optional={
            "max_nodes": self.maybe(st.integers(2, 10), [-1, 0]), "cpus": self.maybe(st.sampled_from([2, 8]), [-1]),
            "memory": self.maybe(st.sampled_from(["4g", "100g"]), ["x", "0"]),
            "mode": self.maybe(st.sampled_from(["shared", "dedicated"])),
            "tunnel_address": self.maybe(st.sampled_from(["192.0.2.10", "192.0.2.11"]), ["::1", "banana"]),
            "control_subnet": self.maybe(st.sampled_from(["172.30.0.0/16", "10.99.0.0/16"]), ["banana", "10.9.0.0/16"]),
            "used_by": self.maybe(st.lists(st.sampled_from(["p/e", "default/exp"]), max_size=2)),
        })
        return st.fixed_dictionaries({"h1": per_host, "h2": per_host, "h3": per_host})


def documents():
    """(document, host_vars) pairs, half clean, half hostile."""
    return st.one_of(*[st.tuples(g.document(), g.host_vars()) for g in (Gen(False), Gen(True))])
