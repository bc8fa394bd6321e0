"""The control network bridged to a host NIC (issue 19, ``testbed_control.control_interface``):
a machine on the testbed's control LAN reaches a node's control address without NAT, the node
cannot open a connection to it, a NIC with an address is refused before any node exists, and
teardown gives the NIC back unbridged with the firewall as before.

The control LAN here: a veth pair whose host end (``tbctl0``) is the NIC and whose other end is
in a network namespace of this test, the machine on the control LAN, with an address of the
host's control subnet (on-link, as Emulab's control net is one subnet)."""
import ipaddress
import json

import pytest

from helpers import BUSYBOX, DOCKER, container_ids, dexec, iptables_rules, sh

PROJECT = "citest"
NAME = "ctlif"
NIC = "tbctl0"
NETNS = "tbctltest"


def control_subnet():
    proc = sh(DOCKER, "network", "inspect", "dockercnet", check=False)
    if proc.returncode == 0:
        return ipaddress.ip_network(json.loads(proc.stdout)[0]["IPAM"]["Config"][0]["Subnet"])
    return ipaddress.ip_network("172.30.0.0/16")


def master_of(ifname):
    out = sh("ip", "-o", "link", "show", ifname).stdout
    return out.split(" master ")[1].split()[0] if " master " in out else None


@pytest.fixture
def control_lan():
    """The NIC and the machine behind it; removed afterwards."""
    subnet = control_subnet()
    client = str(subnet.network_address + subnet.num_addresses - 6)
    sh("ip", "link", "del", NIC, check=False)
    sh("ip", "netns", "del", NETNS, check=False)
    sh("ip", "netns", "add", NETNS)
    try:
        sh("ip", "link", "add", NIC, "type", "veth", "peer", "name", "c0", "netns", NETNS)
        sh("ip", "-n", NETNS, "addr", "add", "%s/%d" % (client, subnet.prefixlen), "dev", "c0")
        sh("ip", "-n", NETNS, "link", "set", "c0", "up")
        sh("ip", "-n", NETNS, "link", "set", "lo", "up")
        yield client
    finally:
        sh("ip", "link", "del", NIC, check=False)
        sh("ip", "netns", "del", NETNS, check=False)


def test_the_control_lan_reaches_nodes_without_nat_and_nodes_reach_nothing_there(playbooks, control_lan):
    client = control_lan
    doc = {"name": NAME, "project": PROJECT,
           "nodes": {"a": {"image": BUSYBOX, "augment": "none", "command": ["sleep", "3600"]}}}
    path = playbooks.write(doc)
    extra = ["-e", json.dumps({"testbed_control": {"control_interface": NIC}})]

    # a NIC with an address is refused, naming the setting, before any node exists
    sh("ip", "addr", "add", "192.0.2.7/32", "dev", NIC)
    proc = playbooks.swap_in(path, check=False, extra=extra)
    assert proc.returncode != 0, proc.stdout
    assert "testbed_control.control_interface: %s carries 192.0.2.7" % NIC in proc.stdout, proc.stdout
    assert not container_ids(PROJECT, NAME)
    sh("ip", "addr", "flush", "dev", NIC)
    rules_before = iptables_rules()  # (the refused run may have made dockercnet, with Docker's rules)
    try:
        out = playbooks.swap_in(path, extra=extra).stdout
        assert "attach %s to dockercnet (control LAN)" % NIC in out, out
        assert master_of(NIC) == "dockercnet"
        address = next(n for n in playbooks.record(PROJECT, NAME)["nodes"] if n["node"] == "a")["control_address"]
        # the control LAN's machine reaches the node's control address directly (no NAT, no port)
        ping = sh("ip", "netns", "exec", NETNS, "busybox", "ping", "-c", "2", "-W", "2", "-i", "0.3", address, check=False)
        assert ping.returncode == 0, ping.stdout
        # the node cannot open anything towards the control LAN (only replies go out the NIC)
        back = dexec(container_ids(PROJECT, NAME)["a"], "ping", "-c", "2", "-W", "1", "-i", "0.3", client, check=False)
        assert back.returncode != 0 and "100% packet loss" in back.stdout, back.stdout
        # a re-run finds the NIC attached: nothing to do
        again = playbooks.swap_in(path, extra=extra).stdout
        assert "attach %s" % NIC not in again, again
    finally:
        out = playbooks.teardown(path).stdout
    assert "detach %s from dockercnet" % NIC in out, out
    assert master_of(NIC) is None
    assert iptables_rules() == rules_before
