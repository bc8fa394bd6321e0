"""A no-change re-run verifies the slice with one link dump, not a netns entry per node (issue
16), and still repairs what a host-side look can see: a node's host end taken off its bridge is
attached again, a restarted node (new process) is plumbed again in full."""
from helpers import BUSYBOX, DOCKER, dexec, ping, recap_changed, sh

from ansible_collections.testbed.containers.plugins.module_utils import slice as slice_mod

PROJECT = "fastpath"


def doc(name):
    return {"name": name, "project": PROJECT,
            "nodes": dict((n, {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"})
                          for n in ("a", "b")),
            "lans": {"lan0": {"members": ["a", "b"], "subnet": "10.31.0.0/24"}}}


def test_no_change_rerun_skips_plumbing_but_repairs_a_detached_host_end(playbooks):
    path = playbooks.write(doc("fp"))
    try:
        playbooks.swap_in(path)
        record = playbooks.record(PROJECT, "fp")
        nodes = dict((n["node"], n) for n in record["nodes"])
        ok, out = ping(nodes["a"]["container"], "b")
        assert ok, out

        again = playbooks.swap_in(path).stdout
        assert recap_changed(again)["localhost"] == 0, again

        # the host end of a's lan0 attachment taken off the bridge: the re-run sees it in the dump
        host_end = nodes["a"]["interfaces"][0]["veth"]
        sh("ip", "link", "set", host_end, "nomaster")
        assert not ping(nodes["a"]["container"], "b")[0]
        fixed = playbooks.swap_in(path).stdout
        assert "attach %s to its bridge" % host_end in fixed, fixed
        ok, out = ping(nodes["a"]["container"], "b")
        assert ok, out

        # a node whose process changed (docker restart; the host agent re-plumbs it too): the re-run
        # plumbs it in full, its LAN address is there
        sh(DOCKER, "restart", "-t", "1", nodes["b"]["container"])
        playbooks.swap_in(path)
        addrs = dexec(nodes["b"]["container"], "ip", "-o", "addr", "show").stdout
        assert "10.31.0." in addrs, addrs
        ok, out = ping(nodes["a"]["container"], "b", count=2)
        assert ok, out

        # status reads the interfaces from the host side, in one dump: an interface deleted inside
        # a node takes its host end with it, and the node is running, not booted
        states = slice_mod.status(PROJECT, "fp", playbooks.state_dir, with_resources=False)
        assert [states[n]["state"] for n in ("a", "b")] == ["booted", "booted"], states
        dexec(nodes["a"]["container"], "ip", "link", "del", "eth1")
        states = slice_mod.status(PROJECT, "fp", playbooks.state_dir, with_resources=False)
        assert [states[n]["state"] for n in ("a", "b")] == ["running", "booted"], states
        assert host_end not in sh("ip", "-o", "link").stdout
    finally:
        playbooks.teardown(path)
