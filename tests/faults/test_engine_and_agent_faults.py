"""The host agent and the Docker engine fail under a running experiment: every node is back on
its LANs with the same addresses, routes, shaping and firewall within 30 s, without a playbook
run (issue: an agent killed stayed dead, a dockerd restart left nodes off their LANs)."""
import os
import signal

import pytest

from faults import addresses, read_pid, restart_dockerd, wait_for
from helpers import BUSYBOX, DEBIAN, DOCKER, dexec, ping, sh

PROJECT = "fltest"
RECOVERY_SECONDS = 30


def experiment(name):
    return {
        "name": name, "project": PROJECT,
        "nodes": {
            "a": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"},
            "b": {"image": BUSYBOX, "augment": "basic", "start": "echo started"},
            "r": {"image": BUSYBOX, "augment": "basic", "forwarding": True},
            "c": {"image": BUSYBOX, "augment": "basic"},
        },
        "lans": {"lan0": {"members": ["a", "b", "r"], "bandwidth": "50mbit"},
                 "lan1": {"members": ["r", "c"]}},
    }


def cname(name, node):
    return "tb_%s_%s_%s" % (PROJECT, name, node)


def snapshot(name):
    """What the nodes' plumbing looks like: addresses, routes, /etc/hosts of every node."""
    return dict((node, (addresses(cname(name, node)), dexec(cname(name, node), "ip", "-4", "route").stdout,
                        dexec(cname(name, node), "cat", "/etc/hosts").stdout)) for node in ("a", "b", "r", "c"))


def all_reach(name):
    return ping(cname(name, "a"), "c")[0] and ping(cname(name, "c"), "b")[0] and ping(cname(name, "b"), "a")[0]


def htb_on_lan0_veths():
    out = sh("tc", "qdisc", "show").stdout
    return out.count("qdisc htb") >= 3


def spoof_rules_name_current_veths(name):
    rules = sh("iptables-save", "-t", "filter").stdout
    for node in ("a", "b", "r", "c"):
        link = dexec(cname(name, node), "cat", "/sys/class/net/eth0/iflink").stdout.strip()
        veth = [line.split(": ")[1].split("@")[0] for line in sh("ip", "-o", "link").stdout.splitlines()
                if line.startswith(link + ": ")]
        if not veth or "--physdev-in %s " % veth[0] not in rules:
            return False
    return True


def test_a_killed_agent_and_a_killed_supervisor_come_back_and_replumb(playbooks):
    path = playbooks.write(experiment("agent"))
    try:
        playbooks.swap_in(path)
        before = snapshot("agent")
        for victim in ("agent.pid", "supervisor.pid"):
            old_agent = read_pid("agent.pid")
            assert old_agent is not None, "no agent runs after a swap-in"
            os.kill(read_pid(victim), signal.SIGKILL)
            took = wait_for(lambda: read_pid("agent.pid") not in (None, old_agent)
                            and read_pid("supervisor.pid") is not None, 10)
            assert took is not None, "%s killed: no new agent within 10 s" % victim
            print("%s killed: new agent in %.1f s" % (victim, took))
            # the new agent does its job: a node restarted now is re-plumbed
            sh(DOCKER, "restart", "-t", "1", cname("agent", "a"))
            took = wait_for(lambda: all_reach("agent"), RECOVERY_SECONDS)
            assert took is not None, "node a not back on lan0 within %d s after a restart" % RECOVERY_SECONDS
            print("node restarted after the %s kill: back in %.1f s" % (victim.split(".", maxsplit=1)[0], took))
            assert snapshot("agent") == before
        # the old agent is gone, one agent runs
        agents = sh("pgrep", "-f", "module_utils import agent; agent.main()", check=False).stdout.split()
        assert len(agents) == 2, agents  # the supervisor and its agent
    finally:
        playbooks.teardown(path)


def test_nodes_are_back_on_their_lans_after_a_dockerd_restart(playbooks):
    path = playbooks.write(experiment("engine"))
    try:
        playbooks.swap_in(path)
        before = snapshot("engine")
        assert all_reach("engine") and htb_on_lan0_veths()
        restart_dockerd()
        took = wait_for(lambda: all_reach("engine"), RECOVERY_SECONDS)
        assert took is not None, "nodes not back on their LANs %d s after dockerd answered" % RECOVERY_SECONDS
        print("dockerd restarted: every node back on its LANs %.1f s after the engine answered" % took)
        assert wait_for(lambda: htb_on_lan0_veths() and spoof_rules_name_current_veths("engine"), 10) is not None
        assert snapshot("engine") == before
        status = playbooks.run("status", path).stdout
        assert status.count("booted") >= 4, status
    finally:
        playbooks.teardown(path)


@pytest.mark.parametrize("subnet", ["172.30.0.0/16", "172.30.9.0/24", "198.18.255.0/24", "169.254.240.0/24"])
def test_a_lan_on_a_reserved_range_is_refused_before_anything_exists(playbooks, subnet):
    doc = experiment("reserved")
    doc["lans"]["lan0"]["subnet"] = subnet
    proc = playbooks.swap_in(playbooks.write(doc), check=False)
    assert proc.returncode != 0
    assert "lans.lan0.subnet: %s overlaps" % subnet in proc.stdout, proc.stdout
    assert sh(DOCKER, "ps", "-aq", "--filter", "label=testbed.project=%s" % PROJECT).stdout.strip() == ""
    assert not os.path.exists(os.path.join(playbooks.state_dir, "experiments"))


def test_a_lan_on_a_route_of_the_host_is_refused_by_the_preflight(playbooks):
    route = [line.split()[0] for line in sh("ip", "-4", "route", "show", "dev", "docker0").stdout.splitlines()
             if "/" in line.split()[0]]
    assert route, "docker0 has no route: is dockerd running with its default bridge?"
    doc = experiment("onroute")
    doc["lans"]["lan1"]["subnet"] = route[0]
    proc = playbooks.swap_in(playbooks.write(doc), check=False)
    assert proc.returncode != 0
    assert "lans.lan1: subnet %s overlaps the route %s dev docker0 of host localhost" % (route[0], route[0]) \
        in proc.stdout, proc.stdout
    assert sh(DOCKER, "ps", "-aq", "--filter", "label=testbed.project=%s" % PROJECT).stdout.strip() == ""
    assert not os.path.exists(os.path.join(playbooks.state_dir, "experiments"))
