"""Experiments from elsewhere run as they are, through experiment.yml: an Emulab NS file (a LAN,
two shaped links, explicit addresses, static routing, a start command), a containerlab topology
(named interfaces, addresses and exec commands) and a compose project (two networks, static
addresses); each torn down to nothing."""
import json
import os
import time

from helpers import ROOT, container_ids, dexec, host_links, ping

PROJECT = "imptest"
EXAMPLES = os.path.join(ROOT, "examples", "imports")
OPTIONS = json.dumps({"import_options": {"project": PROJECT, "os_images": {"UBUNTU22-64-STD": "testbed/debian:bookworm"}}})


def cname(name, node):
    return "tb_%s_%s_%s" % (PROJECT, name, node)


def addresses(container, ifname):
    out = dexec(container, "ip", "-4", "-o", "addr", "show", "dev", ifname).stdout
    return [w for line in out.splitlines() for k, w in enumerate(line.split()) if line.split()[k - 1] == "inet"]


def all_addresses(container):
    """The node's experiment addresses (eth0, the control interface, left out), sorted."""
    out = dexec(container, "ip", "-4", "-o", "addr", "show").stdout
    found = []
    for line in out.splitlines():
        words = line.split()
        if words[1] not in ("lo", "eth0"):
            found.append(words[words.index("inet") + 1])
    return sorted(found)


def iperf_mbit(client, server_address, seconds=3):
    for _attempt in range(20):  # the server's start command runs once the node's interfaces exist
        proc = dexec(client, "iperf3", "-c", server_address, "-t", str(seconds), "-J", check=False, timeout=60)
        if proc.returncode == 0:
            return json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
        time.sleep(0.5)
    raise AssertionError("iperf3 to %s never answered:\n%s" % (server_address, proc.stdout))


def test_an_ns_file_runs_as_it_is(playbooks):
    before = host_links()
    path = os.path.join(EXAMPLES, "routed.ns")
    try:
        out = playbooks.swap_in(path, extra=["-e", OPTIONS]).stdout
        assert "routed.ns" in out
        ids = container_ids(PROJECT, "routed")
        assert sorted(ids) == ["client", "peer", "router", "server"]
        # the file's addresses (NS names no interfaces: ours are eth1, eth2, ... LANs first)
        assert all_addresses(cname("routed", "client")) == ["10.1.1.2/24"]
        assert all_addresses(cname("routed", "router")) == ["10.1.1.1/24", "10.1.2.1/24", "10.1.3.2/24"]
        assert all_addresses(cname("routed", "server")) == ["10.1.2.2/24", "10.1.3.4/24"]
        assert all_addresses(cname("routed", "peer")) == ["10.1.3.3/24"]
        # rtproto Static: the client reaches the server's LAN address through the router
        ok, text = ping(cname("routed", "client"), "10.1.3.4", count=2)
        assert ok, text
        ok, text = ping(cname("routed", "peer"), "10.1.1.2", count=2)
        assert ok, text
        # the start command (tb-set-node-startcmd) runs iperf3 -s; the 10Mb access link is the bottleneck
        mbit = iperf_mbit(cname("routed", "client"), "10.1.2.2")
        assert abs(mbit - 10) <= 1.0, mbit
        mbit = iperf_mbit(cname("routed", "router"), "10.1.2.2")
        assert abs(mbit - 20) <= 2.0, mbit
    finally:
        playbooks.teardown(path, extra=["-e", OPTIONS])
    assert container_ids(PROJECT, "routed") == {}
    assert host_links() == before


def test_a_containerlab_topology_runs_as_it_is(playbooks):
    before = host_links()
    path = os.path.join(EXAMPLES, "pair.clab.yml")
    try:
        playbooks.swap_in(path, extra=["-e", OPTIONS])
        r1, h1 = cname("pair", "r1"), cname("pair", "h1")
        assert addresses(r1, "e1-1") == ["192.168.10.1/24"]
        assert addresses(h1, "eth1") == ["192.168.10.2/24"]
        ok, text = ping(h1, "192.168.10.1", count=2)
        assert ok, text
        deadline = time.time() + 20  # the rest of exec runs as the start command
        while time.time() < deadline and dexec(r1, "test", "-e", "/tmp/exec-ran", check=False).returncode:
            time.sleep(0.3)
        assert dexec(r1, "test", "-e", "/tmp/exec-ran", check=False).returncode == 0
    finally:
        playbooks.teardown(path, extra=["-e", OPTIONS])
    assert container_ids(PROJECT, "pair") == {}
    assert host_links() == before


def test_a_compose_project_runs_as_it_is(playbooks):
    before = host_links()
    path = os.path.join(EXAMPLES, "compose", "compose.yml")
    try:
        playbooks.swap_in(path, extra=["-e", OPTIONS])
        assert sorted(container_ids(PROJECT, "shop")) == ["client", "db", "web"]
        assert addresses(cname("shop", "db"), "eth1") == ["172.28.5.20/24"]
        ok, text = ping(cname("shop", "db"), "172.28.5.10", count=2)
        assert ok, text
        # the client reaches the web server over the front network by its name there (/etc/hosts;
        # the static busybox's wget crashes here, nc does not)
        hosts = dexec(cname("shop", "client"), "cat", "/etc/hosts").stdout
        web_front = [line.split()[0] for line in hosts.splitlines() if "web-front" in line.split()[1:]]
        assert web_front, hosts
        deadline = time.time() + 20
        while True:
            proc = dexec(cname("shop", "client"), "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 %s 80"
                         % web_front[0], check=False)
            if proc.stdout.startswith("HTTP/1.") or time.time() > deadline:
                break
            time.sleep(0.5)
        assert proc.stdout.startswith("HTTP/1."), proc.stdout  # httpd answers (404: it serves an empty directory)
        # the networks stay apart, as in compose: the client does not reach the back network
        ok, _text = ping(cname("shop", "client"), "172.28.5.20", count=1)
        assert not ok
    finally:
        playbooks.teardown(path, extra=["-e", OPTIONS])
    assert container_ids(PROJECT, "shop") == {}
    assert host_links() == before


def test_convert_playbook_and_command_write_our_format(tmp_path):
    import subprocess
    import yaml
    from helpers import VENV_BIN
    source = os.path.join(EXAMPLES, "routed.ns")
    dest = str(tmp_path / "routed.yml")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/convert.yml", "-e", "source=%s" % source,
                           "-e", "dest=%s" % dest, "-e", OPTIONS],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout
    assert "experiment imptest/routed, 4 nodes, 1 LANs, 2 links" in proc.stdout, proc.stdout
    with open(dest) as f:
        text = f.read()
    assert text.startswith("# converted from %s (ns)" % source)
    doc = yaml.safe_load(text)
    assert doc["links"]["access"]["bandwidth"] == "10mbit" and doc["project"] == "imptest"
    # the command prints the same document
    out = subprocess.run([os.path.join(ROOT, "tools", "testbed-convert"), source, "--project", "imptest",
                          "--os-image", "UBUNTU22-64-STD=testbed/debian:bookworm"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout) == doc
    assert "routed.ns:17: info: LAN lan0: members without tb-set-ip get addresses" in out.stderr
    # --strict: the vendor-free pair has no warning, a file with one fails, naming it
    lab = tmp_path / "lab.clab.yml"
    lab.write_text("name: lab\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox, startup-config: a.cfg}\n")
    out = subprocess.run([os.path.join(ROOT, "tools", "testbed-convert"), "--strict", str(lab)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
    assert out.returncode == 1 and out.stdout == ""
    assert "lab.clab.yml:4: error: " in out.stderr and "strict" in out.stderr
