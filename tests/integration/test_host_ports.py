"""Mixed mode on the real kernel (issue 19): a NIC of the physical host as a member of an
experiment LAN, `{host: localhost, interface: NIC}`. The machine behind the NIC takes the planned
address and routes and reaches the nodes, through the LAN's router too; the LAN's shaping is on
the NIC; a re-run changes nothing; teardown gives the NIC back as it was (out of the bridge, down
as before, no qdisc, no IFB) and removes everything else.

The NIC here: one end of a veth pair whose other end is in a network namespace of this test,
the machine plugged into that NIC."""
import pytest

from helpers import BUSYBOX, container_ids, host_links, iptables_rules, recap_changed, sh

PROJECT = "citest"
NAME = "ports"
NIC = "pcnic0"
NETNS = "tbpctest"


def own_links():
    return [name for name in host_links() if name != "dockercnet"]  # (the first swap-in here makes it)


def own_rules():
    return [rule for rule in iptables_rules() if "testbed" in rule.lower()]


def routes():
    """The host's routes, without the carrier flag: dockercnet's route says linkdown while no
    container is on it, and the bridge may take a moment to say so again after a teardown."""
    return sh("ip", "route").stdout.replace(" linkdown", "")


def nsexec(*args, check=False):
    return sh("ip", "netns", "exec", NETNS, *args, check=check)  # (ping: busybox-static, from setup.sh)


def link_of(ifname):
    return sh("ip", "-o", "link", "show", ifname).stdout


@pytest.fixture
def machine():
    sh("ip", "link", "del", NIC, check=False)
    sh("ip", "netns", "del", NETNS, check=False)
    sh("ip", "netns", "add", NETNS)
    try:
        sh("ip", "link", "add", NIC, "type", "veth", "peer", "name", "c0", "netns", NETNS)
        sh("ip", "-n", NETNS, "link", "set", "c0", "up")
        yield
    finally:
        sh("ip", "link", "del", NIC, check=False)
        sh("ip", "netns", "del", NETNS, check=False)


def test_a_hosts_nic_joins_a_lan_and_is_given_back_as_it_was(playbooks, machine):
    doc = {"name": NAME, "project": PROJECT, "defaults": {"image": BUSYBOX, "augment": "none"},
           "nodes": {"a": {"command": ["sleep", "3600"]}, "r": {"command": ["sleep", "3600"], "forwarding": True},
                     "b": {"command": ["sleep", "3600"]}},
           "lans": {"lan0": {"members": ["a", "r", {"host": "localhost", "interface": NIC, "to_node": {"bandwidth": "5Mbit"}}],
                             "subnet": "10.77.0.0/24",
                             "bandwidth": "20Mbit"},
                    "lan1": {"members": ["r", "b"], "subnet": "10.77.1.0/24"}}}
    path = playbooks.write(doc)
    links_before, rules_before = own_links(), own_rules()
    assert "state DOWN" in link_of(NIC) and " master " not in link_of(NIC)
    try:
        out = playbooks.swap_in(path).stdout
        assert "attach %s to LAN lan0" % NIC in out, out
        port, = playbooks.record(PROJECT, NAME)["plan"]["lans"]["lan0"]["ports"]
        assert port["address"] == "10.77.0.3" and port["routes"][0]["dest"] == "10.77.1.0/24", port
        assert "port localhost:%s on lan0: the machine behind it takes 10.77.0.3/24; routes 10.77.1.0/24 via " \
               "10.77.0.2" % NIC in out, out
        # the machine behind the NIC takes what the plan gives it
        nsexec("ip", "addr", "add", "%s/%d" % (port["address"], port["prefixlen"]), "dev", "c0", check=True)
        for route in port["routes"]:
            nsexec("ip", "route", "add", route["dest"], "via", route["via"], check=True)
        for target in ("10.77.0.1", "10.77.1.2"):  # a, and b behind the router r
            ping = nsexec("busybox", "ping", "-c", "2", "-W", "2", "-i", "0.3", target)
            assert ping.returncode == 0, (target, ping.stdout)
        # the nodes know it by name; the NIC's own bandwidth towards the machine, the LAN's a node's way
        a = container_ids(PROJECT, NAME)["a"]
        hosts = sh("docker", "exec", a, "cat", "/etc/hosts").stdout
        assert "%s\tlocalhost-%s" % (port["address"], NIC) in hosts, hosts
        assert "rate 5Mbit" in sh("tc", "class", "show", "dev", NIC).stdout
        veth_a = [i["veth"] for i in playbooks.record(PROJECT, NAME)["plan"]["nodes"]["a"]["interfaces"]][0]
        assert "rate 20Mbit" in sh("tc", "class", "show", "dev", veth_a).stdout
        assert port["to_node"]["rate_bps"] == 5 * 10 ** 6 and port["from_node"]["rate_bps"] == 20 * 10 ** 6, port
        again = playbooks.swap_in(path).stdout
        assert "attach %s" % NIC not in again and recap_changed(again)["localhost"] == 0, again
    finally:
        out = playbooks.teardown(path).stdout
    assert "detach %s from LAN lan0" % NIC in out and "set %s down (as it was)" % NIC in out, out
    link = link_of(NIC)
    assert " master " not in link and "state DOWN" in link, link
    assert "htb" not in sh("tc", "qdisc", "show", "dev", NIC).stdout
    assert own_links() == links_before
    assert own_rules() == rules_before
    assert not container_ids(PROJECT, NAME)


def test_the_hosts_own_stack_joins_a_lan_reaches_the_nodes_and_teardown_removes_it(playbooks):
    """{host: localhost}: this machine itself takes an address on lan0 (a veth pair of ours, one
    end on the bridge) and the route to lan1 through the router; teardown removes pair and route."""
    doc = {"name": NAME + "-stack", "project": PROJECT, "defaults": {"image": BUSYBOX, "augment": "none"},
           "nodes": {"a": {"command": ["sleep", "3600"]}, "r": {"command": ["sleep", "3600"], "forwarding": True},
                     "b": {"command": ["sleep", "3600"]}},
           "lans": {"lan0": {"members": ["a", "r", {"host": "localhost"}], "subnet": "10.78.0.0/24"},
                    "lan1": {"members": ["r", "b"], "subnet": "10.78.1.0/24"}}}
    path = playbooks.write(doc)
    links_before, rules_before = own_links(), own_rules()
    routes_before = routes()
    try:
        out = playbooks.swap_in(path).stdout
        port, = playbooks.record(PROJECT, NAME + "-stack")["plan"]["lans"]["lan0"]["ports"]
        assert "host localhost on lan0: its own stack has 10.78.0.3/24 (%s); routes 10.78.1.0/24 via 10.78.0.2" \
            % port["stack"] in out, out
        assert "10.78.0.3/24" in sh("ip", "-o", "addr", "show", "dev", port["stack"]).stdout
        assert "10.78.1.0/24 via 10.78.0.2 dev %s" % port["stack"] in sh("ip", "route").stdout
        for target in ("10.78.0.1", "10.78.1.2"):  # a, and b behind the router r
            ping = sh("busybox", "ping", "-c", "2", "-W", "2", "-i", "0.3", target, check=False)
            assert ping.returncode == 0, (target, ping.stdout)
        a = container_ids(PROJECT, NAME + "-stack")["a"]
        assert "10.78.0.3\tlocalhost" not in sh("docker", "exec", a, "cat", "/etc/hosts").stdout  # localhost is the node's
        again = playbooks.swap_in(path).stdout
        assert recap_changed(again)["localhost"] == 0, again
    finally:
        playbooks.teardown(path)
    assert own_links() == links_before
    assert own_rules() == rules_before
    assert routes() == routes_before
    assert not container_ids(PROJECT, NAME + "-stack")
