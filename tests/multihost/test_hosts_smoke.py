"""The simulated physical hosts work as the multi-host code needs them: reachable by Ansible over
SSH, an inner Docker engine with the project's images, the pinned Python set, a host firewall like
a real host's, and VXLAN between hosts over the testbed network; teardown leaves nothing."""
import ipaddress
import json
import os
import re

import pytest
import yaml

from hosts import (DOCKER, LABEL, ROOT, _owned, cgroup_parent, default_workdir, run, simulated_hosts)

pytestmark = pytest.mark.timeout(900)


def pins():
    with open(os.path.join(ROOT, "roles", "host", "files", "requirements.txt")) as f:
        return dict(line.split("#")[0].strip().split("==") for line in f if "==" in line.split("#")[0])


def test_inventory(testbed_hosts):
    with open(testbed_hosts.inventory) as f:
        inv = yaml.safe_load(f)
    group = inv["all"]["children"]["testbed_hosts"]
    assert sorted(group["hosts"]) == sorted(testbed_hosts.names)
    assert len(group["hosts"]) == len(testbed_hosts.hosts) >= 3
    subnet = ipaddress.ip_network(testbed_hosts.subnet)
    for name, hostvars in group["hosts"].items():
        assert hostvars["ansible_host"] == hostvars["testbed_tunnel_address"] == testbed_hosts.host(name).address
        assert ipaddress.ip_address(hostvars["ansible_host"]) in subnet
    assert group["vars"]["ansible_user"] == "root"
    # no interpreter: Ansible's discovery, as in most inventories (the collection's tasks use the venv)
    assert "ansible_python_interpreter" not in group["vars"]
    assert os.path.exists(group["vars"]["ansible_ssh_private_key_file"])


def test_ansible_ping(testbed_hosts):
    proc = testbed_hosts.ansible("testbed_hosts", "-m", "ansible.builtin.ping")
    for name in testbed_hosts.names:
        assert re.search(r"^%s \| SUCCESS" % re.escape(name), proc.stdout, re.M), proc.stdout


def test_inner_engine_runs_project_images(testbed_hosts):
    for name in testbed_hosts.names:
        testbed_hosts.exec(name, "docker", "run", "--rm", "testbed/busybox:latest", "true")
        assert testbed_hosts.exec(name, "docker", "info", "-f", "{{.Driver}}").stdout.strip() == "overlay2"
    # the same over SSH, the way the modules will drive it
    proc = testbed_hosts.ansible("testbed_hosts", "-m", "ansible.builtin.command",
                                 "-a", "docker run --rm testbed/debian:bookworm ip -br link show lo")
    assert proc.stdout.count("CHANGED") == len(testbed_hosts.names), proc.stdout


def test_pinned_python_set_on_hosts(testbed_hosts):
    """Decision 12: one pinned set via pip in a venv on every host, and its Docker SDK reaches the
    inner engine."""
    want = pins()
    code = ("import docker, pyroute2, yaml; "
            "print(docker.__version__, pyroute2.__version__, yaml.__version__, docker.from_env().version()['Version'])")
    for name in testbed_hosts.names:
        out = testbed_hosts.ssh(name, "/opt/testbed/venv/bin/python -c \"%s\"" % code).stdout.split()
        assert out[:3] == [want["docker"], want["pyroute2"], want["PyYAML"]], (name, out)
        assert out[3].startswith("20.10"), out


def test_host_firewall_like_a_real_host(testbed_hosts):
    """dockerd on each host sets FORWARD DROP and bridge-nf-call-iptables as on a real machine, so
    decision 1 (DOCKER-USER accept rules per experiment bridge) is exercised, not bypassed."""
    for name in testbed_hosts.names:
        assert testbed_hosts.exec(name, "iptables", "-S", "FORWARD").stdout.splitlines()[0] == "-P FORWARD DROP"
        assert testbed_hosts.exec(name, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables").stdout.strip() == "1"
        assert "nf_tables" in testbed_hosts.exec(name, "iptables", "-V").stdout


VX_SETUP = r"""
set -eu
peer=$1 addr=$2
ip netns add tbvx0
ip link add vx0 type vxlan id 42 remote "$peer" dstport 4789 dev eth0
ip link add tbvxbr0 type bridge
ip link set vx0 master tbvxbr0
ip link add tbvxh0 mtu 1450 type veth peer name tbvxn0 mtu 1450
ip link set tbvxh0 master tbvxbr0
ip link set tbvxn0 netns tbvx0
ip -n tbvx0 addr add "$addr" dev tbvxn0
ip -n tbvx0 link set lo up
ip -n tbvx0 link set tbvxn0 up
ip link set vx0 up
ip link set tbvxh0 up
ip link set tbvxbr0 up
"""
VX_CLEANUP = r"""
iptables -D DOCKER-USER -i tbvxbr0 -o tbvxbr0 -m comment --comment tbvx-smoke -j ACCEPT 2>/dev/null
ip netns del tbvx0 2>/dev/null
ip link del tbvxh0 2>/dev/null
ip link del vx0 2>/dev/null
ip link del tbvxbr0 2>/dev/null
true
"""
ACCEPT = ["iptables", "-I", "DOCKER-USER", "-i", "tbvxbr0", "-o", "tbvxbr0",
          "-m", "comment", "--comment", "tbvx-smoke", "-j", "ACCEPT"]


def test_vxlan_between_hosts_carries_ping(testbed_hosts):
    """Two inner network namespaces on two hosts, each behind a bridge with a VXLAN (id 42, UDP 4789)
    over the testbed network: the kernel path the multi-host LANs use."""
    a, b = testbed_hosts.hosts[:2]
    addr = {a.name: "10.251.42.1", b.name: "10.251.42.2"}
    try:
        for me, peer in ((a, b), (b, a)):
            testbed_hosts.exec(me.name, "bash", "-s", peer.address, addr[me.name] + "/24", input=VX_SETUP)
        ping = ("ip", "netns", "exec", "tbvx0", "ping", "-c", "3", "-i", "0.2", "-W", "1")
        # bridged traffic goes through FORWARD (policy DROP) until the bridge is accepted (decision 1)
        blocked = testbed_hosts.exec(a.name, *ping, addr[b.name], check=False)
        assert blocked.returncode != 0, blocked.stdout
        for h in (a, b):
            testbed_hosts.exec(h.name, *ACCEPT)
        proc = testbed_hosts.exec(a.name, *ping, addr[b.name], check=False)
        assert proc.returncode == 0 and " 0% packet loss" in proc.stdout, proc.stdout + proc.stderr
        proc = testbed_hosts.exec(b.name, *ping, addr[a.name])
        assert " 0% packet loss" in proc.stdout
        # it really went through the tunnel
        for h in (a, b):
            stats = json.loads(testbed_hosts.exec(h.name, "ip", "-s", "-j", "link", "show", "vx0").stdout)[0]
            assert stats["stats64"]["tx"]["packets"] >= 3 and stats["stats64"]["rx"]["packets"] >= 3, stats
    finally:
        for h in (a, b):
            testbed_hosts.exec(h.name, "bash", "-c", VX_CLEANUP, check=False)


def assert_nothing_left(prefix, names):
    assert not any(_owned(prefix)), _owned(prefix)
    assert not os.path.exists(default_workdir(prefix))
    for name in names:
        assert run(DOCKER, "volume", "inspect", "%s-docker" % name, check=False).returncode != 0
        leftovers = [c for c in os.listdir("/sys/fs/cgroup")
                     if os.path.isdir(os.path.join("/sys/fs/cgroup", c, cgroup_parent(name)))]
        assert not leftovers, leftovers


def test_teardown_after_failure_in_block():
    prefix = "tbhchk"
    with pytest.raises(RuntimeError, match="boom"):
        with simulated_hosts(n=1, name_prefix=prefix, subnet="10.250.1.0/24",
                             images=("testbed/busybox:latest",)) as sim:
            assert run(DOCKER, "inspect", "-f", "{{index .Config.Labels \"%s\"}}" % LABEL,
                       sim.names[0]).stdout.strip() == prefix
            # an inner container running at teardown (its cgroups are on the outer machine)
            sim.exec(sim.names[0], "docker", "run", "-d", "testbed/busybox:latest", "sleep", "1000")
            raise RuntimeError("boom")
    assert_nothing_left(prefix, ["%s1" % prefix])


def test_teardown_after_failure_during_start():
    """A host that dies while starting (here: an image whose command exits at once) fails the start
    with its log, and what was made is removed."""
    prefix = "tbhbad"
    with pytest.raises(RuntimeError, match="simulated host tbhbad1 is exited"):
        with simulated_hosts(n=1, name_prefix=prefix, subnet="10.250.2.0/24", images=(),
                             image="testbed/busybox:latest"):
            pytest.fail("start should have failed")
    assert_nothing_left(prefix, ["%s1" % prefix])
