"""The control interface (testbed_control.control_interface): attaching the NIC to dockercnet
with its refusals, detaching it, and the firewall rules, against a fake netlink handle."""
import pytest

from ansible_collections.testbed.containers.plugins.module_utils import control, names


class Msg(dict):
    """A netlink message as pyroute2 gives it: items and get_attr."""

    def get_attr(self, name):
        return dict(self["attrs"]).get(name)


class FakeIPRoute:
    """Links by name: index, master index, up flag, IPv4 addresses; records the calls."""

    def __init__(self, links):
        self.links = links
        self.calls = []

    def link_lookup(self, ifname):
        return [self.links[ifname]["index"]] if ifname in self.links else []

    def _by_index(self, index):
        return next(link for link in self.links.values() if link["index"] == index)

    def get_addr(self, index, family):
        return [Msg(attrs=[("IFA_ADDRESS", a)]) for a in self._by_index(index).get("addresses", [])]

    def get_links(self, index):
        link = self._by_index(index)
        return [Msg(flags=1 if link.get("up") else 0, attrs=[("IFLA_MASTER", link.get("master"))])]

    def link(self, command, index, **kw):
        self.calls.append((command, index, kw))
        link = self._by_index(index)
        if "master" in kw:
            link["master"] = kw["master"] or None
        if kw.get("state") == "up":
            link["up"] = True


def ipr(**nic):
    return FakeIPRoute({"dockercnet": {"index": 5}, "eth2": dict({"index": 7}, **nic), "br9": {"index": 9}})


CFG = dict(control.settings(), control_interface="eth2")


def test_the_nic_is_attached_once_and_remembered():
    fake, state = ipr(), {}
    assert control.ensure_control_interface(fake, state, CFG) == ["attach eth2 to dockercnet (control LAN)"]
    assert fake.calls == [("set", 7, {"master": 5, "state": "up"})] and state["control_interface"] == "eth2"
    assert control.ensure_control_interface(fake, state, CFG) == []  # attached and up: nothing to do
    assert control.release_control_interface(fake, state) == ["detach eth2 from dockercnet"]
    assert fake.links["eth2"]["master"] is None and "control_interface" not in state


def test_check_mode_describes_without_attaching():
    fake, state = ipr(), {}
    assert control.ensure_control_interface(fake, state, CFG, dry_run=True) == ["attach eth2 to dockercnet (control LAN)"]
    assert fake.calls == []


def test_a_nic_named_no_more_is_detached():
    fake, state = ipr(master=5, up=True), {"control_interface": "eth2"}
    assert control.ensure_control_interface(fake, state, control.settings()) == ["detach eth2 from dockercnet"]
    assert fake.links["eth2"]["master"] is None and state == {}


@pytest.mark.parametrize("cfg, nic, message", [
    (dict(CFG, control_interface="eth9"), {}, "testbed_control.control_interface: this host has no interface eth9"),
    (CFG, {"addresses": ["10.0.0.5"]}, "testbed_control.control_interface: eth2 carries 10.0.0.5: a NIC bridged"),
    (CFG, {"master": 9}, "testbed_control.control_interface: eth2 is a port of another bridge (index 9)"),
])
def test_unusable_nics_are_refused_naming_the_setting(cfg, nic, message):
    fake = ipr(**nic)
    with pytest.raises(control.ControlError) as exc:
        control.ensure_control_interface(fake, {}, cfg)
    assert str(exc.value).startswith(message) and fake.calls == []


def test_firewall_lets_the_control_lan_in_and_only_replies_out():
    rules = control.host_rules(CFG)[names.NODES_CHAIN]
    both = ["-i", "dockercnet", "-o", "dockercnet", "-m", "physdev"]
    assert rules == [both + ["--physdev-in", "eth2", "-j", "ACCEPT"],
                     both + ["--physdev-out", "eth2", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j",
                             "ACCEPT"],
                     both + ["--physdev-out", "eth2", "-j", "DROP"]]
    assert names.NODES_CHAIN not in control.host_rules(control.settings())  # off by default: nothing
