"""Swap-in, modify in place and swap-out on this host, through the real playbooks.

Real Docker engine, real netlink and iptables: every assertion reads the actual state.
"""
import json
import os

import pytest
from ansible_collections.testbed.containers.plugins.module_utils.names import kernel_prefix

from helpers import (DEBIAN, BUSYBOX, DOCKER, container_ids, dexec, host_links, iptables_rules, ping,
                     recap_changed, sh)

PROJECT = "citest"


def three_nodes(name, project=PROJECT, extra_nodes=None, lan1_members=None):
    doc = {
        "name": name,
        "project": project,
        "nodes": {
            "client": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"},
            "router": {"image": DEBIAN, "command": ["sleep", "infinity"], "forwarding": True, "augment": "none"},
            "server": {"image": DEBIAN, "command": ["sleep", "infinity"], "cpus": 0.5, "memory": "256m",
                       "augment": "none"},
        },
        "lans": {
            "lan0": {"members": ["client", "router"], "subnet": "10.10.0.0/24"},
            "lan1": {"members": lan1_members or ["router", {"node": "server", "ip": "10.9.1.20"}],
                     "subnet": "10.9.1.0/24"},
        },
    }
    doc["nodes"].update(extra_nodes or {})
    return doc


def cname(name, node, project=PROJECT):
    return "tb_%s_%s_%s" % (project, name, node)


@pytest.fixture
def baseline():
    """The host as it is before a test (after host preparation: dockercnet exists)."""
    sh(DOCKER, "network", "inspect", "dockercnet", check=False)
    return {"links": host_links(), "containers": sh(DOCKER, "ps", "-aq").stdout.split(),
            "iptables": iptables_rules()}


def assert_back_to(baseline, playbooks):
    assert host_links() == baseline["links"]
    assert sorted(sh(DOCKER, "ps", "-aq").stdout.split()) == sorted(baseline["containers"])
    assert iptables_rules() == baseline["iptables"]
    experiments = os.path.join(playbooks.state_dir, "experiments")
    assert not os.path.exists(experiments) or not any(os.scandir(experiments)), os.listdir(experiments)


def test_three_nodes_ping_across_lans_by_name_and_teardown_leaves_nothing(playbooks):
    path = playbooks.write(three_nodes("ping"))
    playbooks.swap_in(path)  # creates dockercnet on a fresh host: the baseline comes after it
    playbooks.teardown(path)
    before = {"links": host_links(), "containers": sh(DOCKER, "ps", "-aq").stdout.split(),
              "iptables": iptables_rules()}
    try:
        out = playbooks.swap_in(path).stdout
        assert "server  localhost  booted" in out.replace("  ", "  "), out
        ok, text = ping(cname("ping", "client"), "server")
        assert ok, text
        ok, text = ping(cname("ping", "server"), "client-lan0")
        assert ok, text
        ok, text = ping(cname("ping", "client"), "router-lan1")
        assert ok, text
        hosts = dexec(cname("ping", "client"), "cat", "/etc/hosts").stdout
        assert "10.9.1.20\tserver server-lan1" in hosts
        assert "10.10.0.2\trouter router-lan0" in hosts
        assert "10.9.1.1\trouter-lan1" in hosts
        inspect = json.loads(sh(DOCKER, "inspect", cname("ping", "server")).stdout)[0]
        assert inspect["Config"]["Hostname"] == "server"
        assert inspect["Config"]["Labels"]["testbed.project"] == PROJECT
        assert inspect["Config"]["Labels"]["testbed.experiment"] == "ping"
        assert inspect["Config"]["Labels"]["testbed.node"] == "server"
        assert inspect["HostConfig"]["NanoCpus"] == 500000000
        assert inspect["HostConfig"]["Memory"] == 256 * 1024 ** 2
        assert list(inspect["NetworkSettings"]["Networks"]) == ["dockercnet"]
        router_links = dexec(cname("ping", "router"), "ip", "-o", "link").stdout
        assert " eth1@" in router_links and " eth2@" in router_links
        record = playbooks.record(PROJECT, "ping")
        server = [n for n in record["nodes"] if n["node"] == "server"][0]
        assert server["interfaces"][0]["address"] == "10.9.1.20"
        assert server["container_id"] == inspect["Id"]
        new_links = [link for link in host_links() if link not in before["links"]
                     and link.startswith(kernel_prefix(PROJECT, "ping"))]
        assert len(new_links) == 2 + 4  # two bridges, four veths (plus Docker's own for eth0)
        assert all(len(link) <= 15 for link in new_links)
        for link in new_links:
            assert "alias testbed:%s/ping/" % PROJECT in sh("ip", "link", "show", link).stdout
    finally:
        playbooks.teardown(path)
    assert host_links() == before["links"]
    assert sorted(sh(DOCKER, "ps", "-aq").stdout.split()) == sorted(before["containers"])
    assert iptables_rules() == before["iptables"]
    assert not os.path.exists(os.path.join(playbooks.record_dir, PROJECT, "ping.json"))


def preflight_result(output):
    """ok, changed or skipping: how the host role's preflight task ended on localhost."""
    after = output.split("TASK [testbed.containers.host : Check the Docker engine", 1)[1]
    return after.split("\n", 2)[1].split(":", 1)[0]


def test_second_run_changes_nothing(playbooks):
    path = playbooks.write(three_nodes("idem"))
    try:
        first = playbooks.swap_in(path).stdout
        assert recap_changed(first)["localhost"] > 0
        ids = container_ids(PROJECT, "idem")
        second = playbooks.swap_in(path).stdout
        assert recap_changed(second) == {"localhost": 0}, second
        assert "operations: []" in second, second
        assert container_ids(PROJECT, "idem") == ids
        # the host passed this preflight since it booted, its agent runs: the re-run skips it; without
        # the stamp (or with another experiment's LANs) it runs again, and stamps the host again
        assert preflight_result(second) == "skipping", second
        os.unlink("/var/lib/testbed/preflight.stamp")
        third = playbooks.swap_in(path).stdout
        assert preflight_result(third) == "ok" and recap_changed(third) == {"localhost": 0}, third
        assert os.path.exists("/var/lib/testbed/preflight.stamp")
    finally:
        playbooks.teardown(path)


def test_two_experiments_with_same_names_and_subnets_are_isolated(playbooks):
    # Same node names, LAN names and subnets; each has one address the other lacks.
    doc_a = three_nodes("iso", project="alpha", extra_nodes={
        "only-a": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"}},
        lan1_members=["router", {"node": "server", "ip": "10.9.1.20"}, {"node": "only-a", "ip": "10.9.1.31"}])
    doc_b = three_nodes("iso", project="beta", extra_nodes={
        "only-b": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"}},
        lan1_members=["router", {"node": "server", "ip": "10.9.1.20"}, {"node": "only-b", "ip": "10.9.1.32"}])
    path_a, path_b = playbooks.write(doc_a), playbooks.write(doc_b)
    try:
        playbooks.swap_in(path_a)
        playbooks.swap_in(path_b)
        a_client, b_client = cname("iso", "client", "alpha"), cname("iso", "client", "beta")
        a_server, b_server = cname("iso", "server", "alpha"), cname("iso", "server", "beta")
        # each reaches its own nodes...
        assert ping(a_client, "10.9.1.31")[0] and ping(b_client, "10.9.1.32")[0]
        assert ping(a_server, "10.9.1.31")[0] and ping(b_server, "10.9.1.32")[0]
        # ...and never the other's, routed or on the same subnet: 100% loss
        for src, dst in ((a_client, "10.9.1.32"), (a_server, "10.9.1.32"),
                         (b_client, "10.9.1.31"), (b_server, "10.9.1.31")):
            proc = dexec(src, "ping", "-c", "3", "-W", "1", "-i", "0.2", dst, check=False)
            assert proc.returncode != 0 and "100% packet loss" in proc.stdout, (src, dst, proc.stdout)
        # the same address in both answers with each experiment's own MAC
        mac_a = dexec(a_server, "cat", "/sys/class/net/eth1/address").stdout.strip()
        mac_b = dexec(b_server, "cat", "/sys/class/net/eth1/address").stdout.strip()
        assert mac_a != mac_b
        dexec(cname("iso", "router", "alpha"), "ping", "-c", "1", "-W", "1", "10.9.1.20")
        neigh = dexec(cname("iso", "router", "alpha"), "ip", "neigh", "show", "10.9.1.20").stdout
        assert mac_a in neigh and mac_b not in neigh
        # tearing one down leaves the other running
        playbooks.teardown(path_b)
        assert container_ids("beta", "iso") == {}
        assert ping(a_client, "server")[0]
    finally:
        playbooks.teardown(path_a)
        playbooks.teardown(path_b)


def test_modify_in_place_keeps_untouched_nodes(playbooks):
    doc = three_nodes("modify", extra_nodes={
        "gone": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"}})
    doc["lans"]["lan0"]["members"].append("gone")
    path = playbooks.write(doc)
    try:
        playbooks.swap_in(path)
        before = container_ids(PROJECT, "modify")
        assert set(before) == {"client", "router", "server", "gone"}
        client_mac = dexec(cname("modify", "client"), "cat", "/sys/class/net/eth1/address").stdout
        # remove 'gone', add 'extra' on lan1, add client to lan1 (a membership change), fixed new LAN
        del doc["nodes"]["gone"]
        doc["lans"]["lan0"]["members"].remove("gone")
        doc["nodes"]["extra"] = {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"}
        doc["lans"]["lan1"]["members"] += ["extra", "client"]
        playbooks.write(doc)
        out = playbooks.swap_in(path).stdout
        after = container_ids(PROJECT, "modify")
        assert set(after) == {"client", "router", "server", "extra"}
        for node in ("client", "router", "server"):
            assert after[node] == before[node], node
        # the client kept eth1 (and its MAC) and gained eth2 on lan1
        links = dexec(cname("modify", "client"), "ip", "-o", "-4", "addr").stdout
        assert "eth1" in links and "eth2" in links and "10.9.1." in links, links
        assert dexec(cname("modify", "client"), "cat", "/sys/class/net/eth1/address").stdout == client_mac
        assert ping(cname("modify", "extra"), "client-lan0")[0]
        assert ping(cname("modify", "server"), "extra")[0]
        hosts = dexec(cname("modify", "server"), "cat", "/etc/hosts").stdout
        assert "extra" in hosts and "gone" not in hosts
        assert recap_changed(playbooks.swap_in(path).stdout) == {"localhost": 0}
        # drop the client from lan1 again: its eth2 goes, nothing restarts
        doc["lans"]["lan1"]["members"].remove("client")
        playbooks.write(doc)
        playbooks.swap_in(path)
        assert container_ids(PROJECT, "modify") == after
        assert "eth2" not in dexec(cname("modify", "client"), "ip", "-o", "link").stdout
        assert ping(cname("modify", "client"), "extra")[0]
        assert "remove" in out
    finally:
        playbooks.teardown(path)


@pytest.mark.parametrize("doc, message", [
    ({"name": "bad", "nodes": {"a": {"image": DEBIAN}}, "lans": {"lan0": {"members": ["a", "srv"]}}},
     "lans.lan0.members[1]: unknown node 'srv'"),
    ({"name": "Bad_Name", "nodes": {"a": {"image": DEBIAN}}}, "name: invalid experiment name 'Bad_Name'"),
    ({"name": "bad", "nodes": {"a": {"image": DEBIAN, "colour": "red"}}}, "nodes.a.colour: unknown key"),
])
def test_invalid_files_create_nothing(playbooks, doc, message):
    path = playbooks.write(doc, "bad.yml")
    proc = playbooks.swap_in(path, check=False)
    assert proc.returncode != 0
    assert message in proc.stdout, proc.stdout
    assert [link for link in host_links() if link.startswith(kernel_prefix("default", doc["name"]))] == []
    assert container_ids("default", doc["name"]) == {}
    assert not os.path.exists(os.path.join(playbooks.state_dir, "experiments"))


def test_missing_image_fails_before_anything_is_created(playbooks):
    doc = three_nodes("noimage")
    doc["nodes"]["server"]["image"] = "testbed/does-not-exist:1"
    proc = playbooks.swap_in(playbooks.write(doc), check=False)
    assert proc.returncode != 0 and "testbed/does-not-exist:1" in proc.stdout, proc.stdout
    assert [link for link in host_links() if link.startswith(kernel_prefix(PROJECT, "noimage"))] == []
    assert container_ids(PROJECT, "noimage") == {}


def test_failed_swap_in_is_cleaned_by_teardown_and_converged_by_rerun(playbooks):
    doc = three_nodes("halfway")
    doc["nodes"]["server"]["command"] = ["/no/such/program"]
    path = playbooks.write(doc)
    before_links = host_links()
    try:
        proc = playbooks.swap_in(path, check=False)
        assert proc.returncode != 0 and "server" in proc.stdout, proc.stdout
        # halfway: the other nodes and the bridges exist
        assert set(container_ids(PROJECT, "halfway")) >= {"client", "router"}
        assert len(host_links()) > len(before_links)
        doc["nodes"]["server"]["command"] = ["sleep", "infinity"]
        playbooks.write(doc)
        playbooks.swap_in(path)
        assert ping(cname("halfway", "client"), "server")[0]
        doc["nodes"]["server"]["command"] = ["/no/such/program"]
        playbooks.write(doc)
        assert playbooks.swap_in(path, check=False).returncode != 0
    finally:
        playbooks.teardown(path)
    assert host_links() == before_links
    assert container_ids(PROJECT, "halfway") == {}
