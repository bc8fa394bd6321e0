"""A no-change re-run verifies the slice with one link dump, not a netns entry per node (issue
16), and still repairs what a host-side look can see: a node's host end taken off its bridge is
attached again, a restarted node (new process) is plumbed again in full."""
from helpers import BUSYBOX, DOCKER, dexec, ping, recap_changed, sh

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
    finally:
        playbooks.teardown(path)
