"""Check mode lists every device a swap-in would create, tunnels included (it used to stop at
the bridges: the VXLAN and VLAN devices were never listed), and touches no kernel object."""
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan
from ansible_collections.testbed.containers.plugins.module_utils.slice import Slice

DOC = {"name": "e", "project": "p",
       "nodes": {"a": {"image": "img", "host": "h1"}, "b": {"image": "img", "host": "h2"}},
       "lans": {"lan0": {"members": ["a", "b"]}}}


class ReadOnlyNetlink:
    """An IPRoute on an empty host that fails on any change."""

    def __init__(self, links=()):
        self.links = list(links)

    def link_lookup(self, ifname):
        return [i + 10 for i, name in enumerate(self.links) if name == ifname]

    def get_links(self, index):
        return [{"flags": 1, "index": index}]

    def link(self, *args, **kwargs):
        raise AssertionError("check mode changed a link: %s %s" % (args, kwargs))

    def fdb(self, command, **kwargs):
        if command != "dump":
            raise AssertionError("check mode changed the fdb: %s %s" % (command, kwargs))
        return []


def test_check_mode_lists_the_bridge_and_the_vxlan_with_its_flooding():
    tunnels = {"h1": {"tunnel_address": "192.0.2.1"}, "h2": {"tunnel_address": "192.0.2.2"}}
    plan = make_plan(DOC, ["h1", "h2"], host_vars=tunnels)
    lan = plan["lans"]["lan0"]
    slice_ = Slice(plan, "h1", state_dir="/nonexistent", dry_run=True)
    slice_._ensure_bridges(ReadOnlyNetlink(), {})  # pylint: disable=protected-access
    assert slice_.ops == ["create bridge %s (testbed:p/e/lan0)" % lan["bridge"],
                          "create vxlan %s id %d local 192.0.2.1 (testbed:p/e/lan0/tunnel)" % (lan["vxlan"], lan["vni"]),
                          "vxlan %s: flood to 192.0.2.2" % lan["vxlan"]]


def test_check_mode_lists_the_vlan_device_on_the_trunk():
    plan = make_plan(DOC, ["h1", "h2"], host_vars={"h1": {"trunk_interface": "eth1"}, "h2": {"trunk_interface": "eth1"}})
    lan = plan["lans"]["lan0"]
    slice_ = Slice(plan, "h2", state_dir="/nonexistent", dry_run=True)
    slice_._ensure_bridges(ReadOnlyNetlink(["eth1"]), {})  # pylint: disable=protected-access
    assert slice_.ops == ["create bridge %s (testbed:p/e/lan0)" % lan["bridge"],
                          "create vlan %s id %d on eth1 (testbed:p/e/lan0/vlan)" % (lan["vlan"], lan["vid"])]
