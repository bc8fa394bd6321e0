"""The slice's network and host-NIC stages against an in-memory host (the engine and netlink
handles are injected): what they create, what they refuse, what a second run leaves alone."""
import json

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import plan as plan_mod
from ansible_collections.testbed.containers.plugins.module_utils.slice import Run, Slice, SliceError

from .fake_kernel import FakeIPRoute

BB = "testbed/busybox:latest"
TUNNELS = {"h1": {"tunnel_address": "192.0.2.1"}, "h2": {"tunnel_address": "192.0.2.2"}}


def make(lan0_members=("a", "b"), unshaped=True):
    lan0 = {"members": list(lan0_members), "subnet": "10.31.0.0/24"}
    if not unshaped:
        lan0["bandwidth"] = "10Mbit"
    doc = {"name": "st", "project": "p",
           "nodes": {"a": {"image": BB, "host": "h1"}, "b": {"image": BB, "host": "h2"}, "c": {"image": BB, "host": "h1"}},
           "lans": {"lan0": lan0, "lan1": {"members": ["a", "c"]}}}
    return plan_mod.make_plan(doc, ["h1", "h2"], host_vars=TUNNELS)


def slice_on(plan, kernel, tmp_path, host="h1", dry_run=False):
    return Slice(plan, host, state_dir=str(tmp_path), dry_run=dry_run, iproute=lambda: kernel, client=lambda **_: None)


def test_the_bridges_and_the_tunnel_are_made_once(tmp_path):
    plan, kernel = make(), FakeIPRoute({"eth0": {"up": True}})
    lan0, lan1 = plan["lans"]["lan0"], plan["lans"]["lan1"]
    run = Run(None)
    first = slice_on(plan, kernel, tmp_path)
    first.stage_networks(run)
    assert first.ops == ["create bridge %s (%s)" % (lan0["bridge"], lan0["alias"]),
                         "create vxlan %s id %d local 192.0.2.1 (%s)" % (lan0["vxlan"], lan0["vni"], lan0["tunnel_alias"]),
                         "vxlan %s: flood to 192.0.2.2" % lan0["vxlan"],
                         "create bridge %s (%s)" % (lan1["bridge"], lan1["alias"])]
    assert kernel.links[lan0["bridge"]]["up"] and kernel.links[lan0["bridge"]]["alias"] == lan0["alias"]
    assert kernel.master_of(lan0["vxlan"]) == lan0["bridge"] and kernel.links[lan0["vxlan"]]["up"]
    assert kernel.fdbs[kernel.links[lan0["vxlan"]]["index"]] == {"192.0.2.2"}
    assert "vxlan" not in lan1  # a LAN on one host has no tunnel
    assert run.bridges == {"lan0": kernel.links[lan0["bridge"]]["index"], "lan1": kernel.links[lan1["bridge"]]["index"]}
    assert set(run.host_links) == {lan0["bridge"], lan0["vxlan"], lan1["bridge"]} and "eth0" in run.link_names
    calls = len(kernel.calls)
    again = slice_on(plan, kernel, tmp_path)
    again.stage_networks(Run(None))
    assert again.ops == [] and len(kernel.calls) == calls


def test_a_link_the_plan_no_longer_has_goes_and_a_foreign_one_is_refused(tmp_path):
    plan = make()
    prefix, lan0 = plan["kernel_prefix"], plan["lans"]["lan0"]
    stale = prefix + "old"
    kernel = FakeIPRoute({stale: {"kind": "bridge", "alias": "testbed:p/st/lan9", "up": True}})
    sl = slice_on(plan, kernel, tmp_path)
    sl.stage_networks(Run(None))
    assert sl.ops[0] == "remove bridge %s (testbed:p/st/lan9)" % stale and stale not in kernel.links
    assert lan0["bridge"] in kernel.links
    # a name with our prefix but another experiment's alias (a hash collision, or a hand-made link)
    kernel = FakeIPRoute({stale: {"kind": "bridge", "alias": "testbed:p/other/lan0"}})
    with pytest.raises(SliceError, match="interface %s has our name prefix but belongs to 'testbed:p/other/lan0'" % stale):
        slice_on(plan, kernel, tmp_path).stage_networks(Run(None))
    assert stale in kernel.links and len(kernel.links) == 1  # refused before anything was made


def test_check_mode_runs_the_same_stage_and_changes_nothing(tmp_path):
    plan = make()
    kernel = FakeIPRoute({plan["kernel_prefix"] + "old": {"kind": "veth", "alias": "testbed:p/st/a/x"}})
    sl = slice_on(plan, kernel, tmp_path, dry_run=True)
    sl.stage_networks(Run(None))
    assert sl.ops[0].startswith("remove veth ") and len(sl.ops) == 5 and kernel.calls == []


def test_a_hosts_nic_joins_its_lan_and_is_given_back_as_it_was(tmp_path):
    plan, kernel = make(("a", "b", {"host": "h1", "interface": "eth2"})), FakeIPRoute({"eth2": {}})
    run = Run(None)
    sl = slice_on(plan, kernel, tmp_path)
    sl.stage_networks(run)
    sl.stage_ports(run)
    bridge = plan["lans"]["lan0"]["bridge"]
    assert sl.ops[-1] == "attach eth2 to LAN lan0"
    assert kernel.master_of("eth2") == bridge and kernel.links["eth2"]["up"]
    recorded = json.loads((tmp_path / "experiments" / "p" / "st" / "ports.json").read_text())
    assert recorded["eth2"]["lan"] == "lan0" and recorded["eth2"]["up"] is False
    again = slice_on(plan, kernel, tmp_path)
    again.stage_ports(_with_bridges(run.bridges))
    assert again.ops == []
    # the NIC taken out of the file: out of the bridge and down again, as it was found
    later = slice_on(make(), kernel, tmp_path)
    later.stage_ports(_with_bridges(run.bridges))
    assert "eth2" in " ".join(later.ops) and kernel.master_of("eth2") is None and not kernel.links["eth2"]["up"]


def _with_bridges(bridges):
    run = Run(None)
    run.bridges = dict(bridges)
    return run


@pytest.mark.parametrize("nic, message", [
    ({}, "lans.lan0: host h1 has no interface eth2: name one of its NICs"),
    ({"eth2": {"addresses": ["10.0.0.9"]}}, "lans.lan0: eth2 of host h1 carries 10.0.0.9: a NIC that joins"),
    ({"br7": {"kind": "bridge"}, "eth2": {"master": "br7"}}, "lans.lan0: eth2 of host h1 is a port of another bridge"),
])
def test_an_unusable_nic_is_refused_naming_the_lan(tmp_path, nic, message):
    plan, kernel = make(("a", "b", {"host": "h1", "interface": "eth2"})), FakeIPRoute(nic)
    run = Run(None)
    sl = slice_on(plan, kernel, tmp_path)
    sl.stage_networks(run)
    before = dict(kernel.links.get("eth2") or {})
    with pytest.raises(SliceError, match=message):
        sl.stage_ports(run)
    assert (kernel.links.get("eth2") or {}) == before  # refused before the NIC was touched


def test_the_hosts_own_stack_joins_its_lan_with_its_address_and_routes(tmp_path):
    doc = {"name": "st", "project": "p",
           "nodes": {"a": {"image": BB, "host": "h1"}, "r": {"image": BB, "host": "h1", "forwarding": True},
                     "b": {"image": BB, "host": "h1"}},
           "lans": {"lan0": {"members": ["a", "r", {"host": "h1"}], "subnet": "10.31.0.0/24"},
                    "lan1": {"members": ["r", "b"], "subnet": "10.31.1.0/24"}}}
    plan = plan_mod.make_plan(doc, ["h1"])
    port, = plan["lans"]["lan0"]["ports"]
    kernel, run = FakeIPRoute(), Run(None)
    dry = slice_on(plan, kernel, tmp_path, dry_run=True)
    dry.stage_networks(run)
    dry.stage_ports(run)
    assert kernel.links == {}  # check mode: nothing made
    sl = slice_on(plan, kernel, tmp_path)
    sl.stage_networks(run)
    sl.stage_ports(run)
    assert dry.ops == sl.ops  # and it lists what the real run then does
    stack, end = port["stack"], port["interface"]
    assert sl.ops[-4:] == ["create %s for the host's own stack on the LAN (10.31.0.3/24)" % stack,
                           "%s: address 10.31.0.3/24" % stack, "%s: route 10.31.1.0/24 via 10.31.0.2" % stack,
                           "attach %s to LAN lan0" % end]
    assert kernel.links[stack]["addresses"] == ["10.31.0.3/24"] and kernel.links[stack]["up"]
    assert kernel.master_of(end) == plan["lans"]["lan0"]["bridge"] and kernel.links[end]["alias"] == port["alias"]
    assert kernel.routes == [("10.31.1.0", 24, "10.31.0.2", kernel.links[stack]["index"])]
    again = slice_on(plan, kernel, tmp_path)
    again.stage_networks(run)
    again.stage_ports(run)
    assert again.ops == []  # the pair is the experiment's (wanted, not stale) and as planned
