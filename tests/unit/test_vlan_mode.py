"""VLAN mode (802.1Q on a trunk interface) for LANs spanning hosts: the plan and the netlink
requests.  This machine's kernel has no 8021q, so the requests are checked against a recording
stand-in for pyroute2's IPRoute; the preflight test (tests/integration) shows the host refusing."""
import errno

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import names, netlink
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan

HOSTS = ["h1", "h2", "h3"]
TRUNKS = {"h1": {"trunk_interface": "eth1"}, "h2": {"trunk_interface": "eth1"}, "h3": {"trunk_interface": "bond0"}}


def spanning(lans=None):
    return {"name": "v", "project": "p",
            "nodes": {"a": {"image": "i", "host": "h1"}, "b": {"image": "i", "host": "h2"},
                      "c": {"image": "i", "host": "h3"}, "d": {"image": "i", "host": "h1"}},
            "lans": lans or {"lan0": {"members": ["a", "b", "c"]}, "lan1": {"members": ["a", "d"]}}}


def test_lans_spanning_trunked_hosts_use_vlans_without_mtu_loss():
    plan = make_plan(spanning(), HOSTS, host_vars=TRUNKS)
    lan0, lan1 = plan["lans"]["lan0"], plan["lans"]["lan1"]
    assert lan0["vid"] == names.vlan_id("p", "v", "lan0") and 2 <= lan0["vid"] <= 4094
    assert lan0["vlan"] == names.vlan_name("p", "v", "lan0") and len(lan0["vlan"]) <= 15
    assert "vxlan" not in lan0 and "vni" not in lan0
    assert "vid" not in lan1  # on one host: a bridge only
    assert plan["trunks"] == {"h1": "eth1", "h2": "eth1", "h3": "bond0"}
    assert plan["tunnels"] == {}
    assert all(i["mtu"] is None for n in plan["nodes"].values() for i in n["interfaces"])
    assert "vlan" in plan["features"] and "vxlan" not in plan["features"]


def test_without_trunks_spanning_lans_use_vxlan():
    plan = make_plan(spanning(), HOSTS, host_vars=dict((h, {"tunnel_address": "10.0.0.%d" % i})
                                                       for i, h in enumerate(HOSTS, 1)))
    assert plan["lans"]["lan0"]["vxlan"] and "vid" not in plan["lans"]["lan0"]
    assert "vxlan" in plan["features"] and "vlan" not in plan["features"]


def test_a_lan_over_trunked_and_untrunked_hosts_is_an_error():
    host_vars = dict(TRUNKS, h3={"tunnel_address": "10.0.0.3"})
    with pytest.raises(Exception) as err:
        make_plan(spanning(), HOSTS, host_vars=host_vars)
    assert "lans.lan0: spans hosts with a trunk interface (h1, h2) and without (h3): set testbed_trunk_interface " \
           "on all of them (VLAN mode) or on none (VXLAN)" in str(err.value)


def test_vlan_ids_are_kept_and_never_shared_within_an_experiment(monkeypatch):
    real = names.vlan_id
    # every LAN hashes to 100 first: the planner must probe on
    monkeypatch.setattr(names, "vlan_id", lambda p, n, lan, attempt=0: 100 if attempt == 0 else real(p, n, lan, attempt))
    lans = {"lan0": {"members": ["a", "b"]}, "lan1": {"members": ["c", "d"]}}
    first = make_plan(spanning(lans), HOSTS, host_vars=TRUNKS)
    vids = [first["lans"][n]["vid"] for n in ("lan0", "lan1")]
    assert vids[0] == 100 and vids[1] != 100
    # modify: a new LAN between the same hosts; the old LANs keep their ids, the new one avoids them
    lans["lan2"] = {"members": ["b", "c"]}
    second = make_plan(spanning(lans), HOSTS, previous=first, host_vars=TRUNKS)
    assert [second["lans"][n]["vid"] for n in ("lan0", "lan1")] == vids
    assert second["lans"]["lan2"]["vid"] not in vids


class FakeIPRoute:
    """Records link requests; links: name -> index, plus an optional error for 'add'."""

    def __init__(self, links=None, add_error=None):
        self.links = dict(links or {})
        self.calls = []
        self.add_error = add_error
        self.up = set()

    def link_lookup(self, ifname):
        return [self.links[ifname]] if ifname in self.links else []

    def link(self, cmd, **kw):
        self.calls.append((cmd, kw))
        if cmd == "add":
            if self.add_error:
                raise netlink.NetlinkError(self.add_error)
            self.links[kw["ifname"]] = max(self.links.values() or [1]) + 1
        if cmd == "set" and kw.get("state") == "up":
            self.up.add(kw["index"])

    def get_links(self, index):
        return [{"flags": 1 if index in self.up else 0, "index": index}]


def test_vlan_requests_create_tag_attach_and_raise_the_trunk():
    ipr = FakeIPRoute({"eth1": 2})
    ops = netlink.ensure_vlan(ipr, "tbabcq1234567", 123, "eth1", 40, "testbed:p/v/lan0/vlan", {})
    assert ipr.calls[0] == ("add", {"ifname": "tbabcq1234567", "kind": "vlan", "link": 2, "vlan_id": 123})
    index = ipr.links["tbabcq1234567"]
    assert ("set", {"index": index, "ifalias": "testbed:p/v/lan0/vlan", "master": 40, "state": "up"}) in ipr.calls
    assert ("set", {"index": 2, "state": "up"}) in ipr.calls
    assert ops == ["create vlan tbabcq1234567 id 123 on eth1 (testbed:p/v/lan0/vlan)", "bring up trunk eth1"]


def test_an_existing_vlan_device_is_only_reattached():
    ipr = FakeIPRoute({"eth1": 2, "tbq": 7})
    ipr.up.add(2)
    existing = {"tbq": {"alias": "testbed:p/v/lan0/vlan", "index": 7, "master": 39, "up": True}}
    assert netlink.ensure_vlan(ipr, "tbq", 123, "eth1", 40, "testbed:p/v/lan0/vlan", existing) == \
        ["attach vlan tbq to its bridge"]
    assert ipr.calls == [("set", {"index": 7, "master": 40, "state": "up"})]


@pytest.mark.parametrize("code, message", [
    (errno.EEXIST, "VLAN 123 on eth1 is already used by another device on this host (another experiment's LAN)"),
    (errno.EOPNOTSUPP, "this kernel has no 802.1Q VLAN devices (CONFIG_VLAN_8021Q)"),
])
def test_vlan_errors_say_what_is_wrong(code, message):
    with pytest.raises(netlink.NetworkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        netlink.ensure_vlan(FakeIPRoute({"eth1": 2}, add_error=code), "tbq", 123, "eth1", 40, "a", {})


def test_a_missing_trunk_or_a_foreign_device_is_refused():
    with pytest.raises(netlink.NetworkError, match="trunk interface eth9 .* does not exist"):
        netlink.ensure_vlan(FakeIPRoute({"eth1": 2}), "tbq", 5, "eth9", 40, "a", {})
    with pytest.raises(netlink.NetworkError, match="belongs to 'testbed:other/x/lan0/vlan'"):
        netlink.ensure_vlan(FakeIPRoute({"eth1": 2}), "tbq", 5, "eth1", 40, "a",
                            {"tbq": {"alias": "testbed:other/x/lan0/vlan", "index": 3, "master": 1, "up": True}})
