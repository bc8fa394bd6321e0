"""The preflight's one table of kernel options and its tc probes, against a recording stand-in
for pyroute2's IPRoute (this machine's kernel lacks netem; tests/integration probes for real)."""
import errno

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import netlink, preflight
from ansible_collections.testbed.containers.plugins.module_utils.shape import SHAPING_FEATURES


class FakeIPRoute:
    """Links by name; ``tc`` of a kind in ``lacking`` fails as a kernel without it does."""

    def __init__(self, lacking=()):
        self.lacking = set(lacking)
        self.links = {}
        self.calls = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def link_lookup(self, ifname):
        return [self.links[ifname]] if ifname in self.links else []

    def get_links(self):
        return []  # no probe debris: remove_stale_probes finds nothing

    def link(self, command, **kw):
        self.calls.append(("link", command, kw.get("ifname") or kw.get("index"), kw.get("kind")))
        if command == "add":
            if kw.get("kind") in self.lacking:
                raise netlink.NetlinkError(errno.EOPNOTSUPP, "not supported")
            self.links[kw["ifname"]] = len(self.calls) * 2
            if kw.get("peer"):  # a veth's peer goes with it
                self.links[kw["peer"]] = len(self.calls) * 2 + 1
        elif command == "del":
            for name in [n for n, i in self.links.items() if i // 2 == kw["index"] // 2]:
                del self.links[name]

    def tc(self, command, kind, index, handle, **kw):
        self.calls.append(("tc", command, kind, index))
        if command.startswith("add") and (kind in self.lacking or (kw.get("action") or {}).get("kind") in self.lacking):
            raise netlink.NetlinkError(errno.ENOENT, "no such kind")


def test_one_table_names_the_kernel_option_of_every_feature_a_plan_may_need():
    assert set(SHAPING_FEATURES) | {"bridge", "veth", "vxlan", "vlan"} == set(preflight.KERNEL_OPTIONS)
    assert preflight.KERNEL_OPTIONS["netem"] == "CONFIG_NET_SCH_NETEM"


def test_a_kernel_without_netem_is_reported_with_its_option_and_the_probes_are_removed():
    ipr = FakeIPRoute(lacking={"netem"})
    assert preflight.missing_shaping_features(ipr) == [("netem", "CONFIG_NET_SCH_NETEM")]
    assert ipr.links == {}
    veth_index = ipr.calls[1][3]
    assert ipr.calls.count(("tc", "add-filter", "u32", veth_index)) == 2  # u32, then mirred through u32


def test_without_u32_mirred_cannot_be_probed_and_is_not_reported():
    ipr = FakeIPRoute(lacking={"u32", "ifb"})
    assert preflight.missing_shaping_features(ipr) == [("ifb", "CONFIG_IFB"), ("u32", "CONFIG_NET_CLS_U32")]


def test_only_the_features_asked_for_are_reported():
    assert preflight.missing_shaping_features(FakeIPRoute(lacking={"netem", "ifb"}), ["htb", "ifb"]) == [
        ("ifb", "CONFIG_IFB")]


def test_an_unknown_feature_is_an_error_naming_the_known_ones(monkeypatch):
    monkeypatch.setattr(netlink, "IPRoute", FakeIPRoute)
    with pytest.raises(ValueError, match="unknown kernel feature 'warp'; known: bridge, htb, ifb"):
        preflight.missing_features(["warp"])
    with pytest.raises(ValueError, match="unknown shaping feature"):
        preflight.missing_shaping_features(FakeIPRoute(), ["bridge"])


def test_a_probe_failing_for_another_reason_names_the_feature_and_its_option():
    class Busy(FakeIPRoute):
        def tc(self, command, kind, index, handle, **kw):
            raise netlink.NetlinkError(errno.EBUSY, "busy")

    with pytest.raises(preflight.PreflightError, match=r"probing htb \(CONFIG_NET_SCH_HTB\): .*errno 16"):
        preflight.missing_shaping_features(Busy())


def test_probe_links_a_killed_preflight_left_are_removed_and_nothing_else():
    from .fake_kernel import FakeIPRoute as Host  # pylint: disable=import-outside-toplevel
    host = Host({"tbsp01169a": {"kind": "veth"}, "tbsp01169i": {"kind": "ifb"}, "tbpf4242b": {"kind": "bridge"},
                 "tb1a2b3b0c0ffee": {"kind": "bridge", "alias": "testbed:p/e/lan0"}, "eth0": {"up": True},
                 "tbspare": {"kind": "bridge"}})
    assert preflight.remove_stale_probes(host, dry_run=True) == [
        "remove kernel probe bridge tbpf4242b left by a killed preflight",
        "remove kernel probe veth tbsp01169a left by a killed preflight",
        "remove kernel probe ifb tbsp01169i left by a killed preflight"]
    assert len(host.links) == 6
    preflight.remove_stale_probes(host)
    assert sorted(host.links) == ["eth0", "tb1a2b3b0c0ffee", "tbspare"]  # an experiment's link and others stay


def test_the_sweep_waits_for_no_running_probe(tmp_path):
    lock = str(tmp_path / "probes.lock")
    with preflight.probe_lock(path=lock) as held:
        assert held
        with preflight.probe_lock(wait=False, path=lock) as other:
            assert other is False  # a probe runs: its links are not debris
    with preflight.probe_lock(wait=False, path=lock) as again:
        assert again
