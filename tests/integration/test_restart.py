"""Plumbing survives restarts: the host agent re-plumbs a node whose container starts again."""
import time

from helpers import BUSYBOX, DEBIAN, DOCKER, dexec, ping, sh

PROJECT = "rstest"


def experiment():
    return {
        "name": "restart", "project": PROJECT,
        "nodes": {
            "a": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"},
            "b": {"image": BUSYBOX, "augment": "basic", "start": "echo started"},
        },
        "lans": {"lan0": {"members": ["a", "b"], "bandwidth": "50mbit"}},
    }


def cname(node):
    return "tb_%s_restart_%s" % (PROJECT, node)


def wait_for(predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def addresses(node):
    return dexec(cname(node), "ip", "-o", "-4", "addr", "show", "eth1", check=False).stdout


def test_docker_restart_and_reboot_inside_a_node_are_replumbed_by_the_agent(playbooks):
    path = playbooks.write(experiment())
    try:
        playbooks.swap_in(path)
        before_a, before_b = addresses("a"), addresses("b")
        assert "10.10.0." in before_a and "10.10.0." in before_b
        sh(DOCKER, "restart", "-t", "1", cname("a"))
        assert wait_for(lambda: ping(cname("a"), "b")[0], 10), addresses("a")
        assert addresses("a") == before_a
        # shaping is back on the new veth
        qdiscs = sh("tc", "qdisc", "show").stdout
        assert qdiscs.count("htb") >= 2, qdiscs
        # reboot inside the augmented node: its supervisor exits, Docker restarts it, the agent re-plumbs
        started = sh(DOCKER, "inspect", "-f", "{{.State.StartedAt}}", cname("b")).stdout
        dexec(cname("b"), "/.testbed/bin/busybox", "reboot", check=False)
        assert wait_for(lambda: sh(DOCKER, "inspect", "-f", "{{.State.StartedAt}}", cname("b")).stdout != started
                        and ping(cname("b"), "a")[0], 20)
        assert addresses("b") == before_b
        status = playbooks.run("status", path).stdout
        assert "b       localhost  booted" in status or "booted" in status.split("\nb ")[-1], status
    finally:
        playbooks.teardown(path)
