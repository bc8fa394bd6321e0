"""The control network dockercnet: SSH through NAT, isolation between experiments, anti-spoofing.

Real sshd, real iptables (nat and filter), real Docker network; traffic only to containers
started here and to the dockercnet gateway (an address on our own bridge).
"""
import json
import os
import subprocess

import pytest

from helpers import BUSYBOX, DEBIAN, DOCKER, ROOT, VENV_BIN, container_ids, dexec, sh

PROJECT = "cntest"


def experiment(name, project=PROJECT, keys=()):
    return {
        "name": name, "project": project, "ssh_keys": list(keys),
        "nodes": {
            "a": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"},
            "b": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"},
        },
        "lans": {"lan0": {"members": ["a", "b"], "subnet": "10.10.0.0/24"}},
    }


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("keys") / "id_ed25519")
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path)
    with open(path + ".pub") as f:
        return path, f.read().strip()


def ssh(port, key_path, command, user="root", host="localhost"):
    return subprocess.run(["ssh", "-p", str(port), "-i", key_path, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "ConnectTimeout=5", "%s@%s" % (user, host), command],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=30,
                          check=False)


def node_entry(playbooks, project, name, node):
    record = playbooks.record(project, name)
    return [n for n in record["nodes"] if n["node"] == node][0]


def gateway():
    out = json.loads(sh(DOCKER, "network", "inspect", "dockercnet").stdout)[0]
    return out["IPAM"]["Config"][0]["Gateway"] if out["IPAM"]["Config"][0].get("Gateway") else \
        str(__import__("ipaddress").ip_network(out["IPAM"]["Config"][0]["Subnet"]).network_address + 1)


def test_ssh_into_nodes_through_the_host_port_with_a_key(playbooks, key):
    key_path, pub = key
    path = playbooks.write(experiment("ssh", keys=[pub]))
    try:
        out = playbooks.swap_in(path).stdout
        for node in ("a", "b"):
            entry = node_entry(playbooks, PROJECT, "ssh", node)
            assert entry["ssh"] == "ssh -p %d root@localhost" % entry["ssh_port"]
            assert entry["ssh"] in out  # the table shows the command on the node's line
            proc = ssh(entry["ssh_port"], key_path, "hostname; ip -o -4 addr show eth1")
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.splitlines()[0] == node
            assert "10.10.0." in proc.stdout
        # a key the experiment does not list is refused
        other = os.path.join(playbooks.tmpdir, "other")
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other)
        entry = node_entry(playbooks, PROJECT, "ssh", "a")
        proc = ssh(entry["ssh_port"], other, "hostname")
        assert proc.returncode != 0 and "Permission denied" in proc.stderr
        # the exec sshd is not reachable directly, only through a node's port
        proc = subprocess.run(["timeout", "5", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/2222 && head -c 4 <&3"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=20,
                              check=False)
        assert "SSH" not in proc.stdout
    finally:
        playbooks.teardown(path)


def test_experiments_cannot_reach_each_other_on_the_control_network(playbooks):
    path_x = playbooks.write(experiment("cnx"))
    path_y = playbooks.write(experiment("cny"))
    try:
        playbooks.swap_in(path_x)
        playbooks.swap_in(path_y)
        x_a = node_entry(playbooks, PROJECT, "cnx", "a")
        y_a = node_entry(playbooks, PROJECT, "cny", "a")
        y_b = node_entry(playbooks, PROJECT, "cny", "b")
        assert len(set([x_a["control_address"], y_a["control_address"], y_b["control_address"]])) == 3
        # a TCP listener in each experiment
        dexec(y_b["container_name"] if "container_name" in y_b else y_b["container"], "sh", "-c",
              "nc -l -p 8080 -e echo hi >/dev/null 2>&1 &")
        dexec(x_a["container"], "sh", "-c", "nc -l -p 8080 >/dev/null 2>&1 &")
        # the gateway answers (the host's testbed services are reachable)...
        gw = gateway()
        assert dexec(x_a["container"], "ping", "-c", "1", "-W", "2", gw, check=False).returncode == 0
        # ...but no node of the other experiment, by ICMP or TCP, in both directions
        for src, dst in ((x_a, y_b), (x_a, y_a), (y_a, x_a), (y_b, x_a)):
            proc = dexec(src["container"], "ping", "-c", "2", "-W", "1", dst["control_address"], check=False)
            assert proc.returncode != 0, (src["node"], dst["node"], proc.stdout)
            proc = dexec(src["container"], "sh", "-c", "timeout 3 nc -w 2 %s 8080 </dev/null; echo rc=$?"
                         % dst["control_address"], check=False)
            assert "hi" not in proc.stdout and "rc=0" not in proc.stdout, proc.stdout
    finally:
        playbooks.teardown(path_x)
        playbooks.teardown(path_y)


def test_a_node_cannot_send_from_an_address_or_mac_not_its_own(playbooks):
    path = playbooks.write(experiment("spoof"))
    try:
        playbooks.swap_in(path)
        node = node_entry(playbooks, PROJECT, "spoof", "a")
        ctr, own = node["container"], node["control_address"]
        gw = gateway()
        assert dexec(ctr, "ping", "-c", "1", "-W", "2", "-I", own, gw, check=False).returncode == 0
        # a second, forged address on eth0: its packets are dropped
        forged = own.rsplit(".", 1)[0] + ".250"
        dexec(ctr, "ip", "addr", "add", forged + "/32", "dev", "eth0")
        proc = dexec(ctr, "ping", "-c", "3", "-W", "1", "-I", forged, gw, check=False)
        assert proc.returncode != 0 and "100% packet loss" in proc.stdout, proc.stdout
        dexec(ctr, "ip", "addr", "del", forged + "/32", "dev", "eth0")
        # a forged MAC: dropped too, even with the node's own address
        dexec(ctr, "ip", "link", "set", "eth0", "address", "02:de:ad:be:ef:01")
        dexec(ctr, "ip", "neigh", "flush", "all", check=False)
        proc = dexec(ctr, "ping", "-c", "3", "-W", "1", "-I", own, gw, check=False)
        assert proc.returncode != 0 and "100% packet loss" in proc.stdout, proc.stdout
    finally:
        playbooks.teardown(path)


def test_two_concurrent_swap_ins_get_distinct_ports_and_addresses(playbooks):
    paths = [playbooks.write(experiment("conc%d" % i)) for i in range(2)]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    procs = [subprocess.Popen([os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/experiment.yml",
                               "-e", "experiment=%s" % p, "-e", "testbed_state_dir=%s" % playbooks.state_dir,
                               "-e", "testbed_record_dir=%s" % playbooks.record_dir],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True) for p in paths]
    try:
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        entries = [node_entry(playbooks, PROJECT, "conc%d" % i, n) for i in range(2) for n in ("a", "b")]
        assert len(set(e["ssh_port"] for e in entries)) == 4
        assert len(set(e["control_address"] for e in entries)) == 4
        for e in entries:
            inspect = json.loads(sh(DOCKER, "inspect", e["container"]).stdout)[0]
            assert inspect["NetworkSettings"]["Networks"]["dockercnet"]["IPAddress"] == e["control_address"]
    finally:
        for p in paths:
            playbooks.teardown(p)


def full_experiment(name, users, keys=()):
    return {
        "name": name, "project": PROJECT, "ssh_keys": list(keys), "users": users,
        "nodes": {
            "a": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "full"},
            "b": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "full"},
            "c": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "basic"},
        },
        "lans": {"lan0": {"members": ["a", "b", "c"], "subnet": "10.10.0.0/24"}},
    }


def wait_ssh(port, key_path, command, user, host="localhost", timeout=20):
    """The node's own sshd starts with the node: allow it a moment after swap-in."""
    import time
    deadline = time.time() + timeout
    while True:
        proc = ssh(port, key_path, command, user=user, host=host)
        if proc.returncode == 0 or time.time() > deadline:
            return proc
        time.sleep(0.5)


def test_full_nodes_answer_ssh_with_their_own_server_as_root_and_as_the_users(playbooks, key, tmp_path):
    key_path, pub = key
    bob = str(tmp_path / "bob")
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", bob)
    with open(bob + ".pub") as f:
        bob_pub = f.read().strip()
    users = [{"name": "alice", "ssh_keys": [pub]}]
    path = playbooks.write(full_experiment("fullssh", users))
    client = "tbtest-sshclient"
    try:
        out = playbooks.swap_in(path).stdout
        entries = dict((n, node_entry(playbooks, PROJECT, "fullssh", n)) for n in ("a", "b", "c"))
        for node in ("a", "b"):
            entry = entries[node]
            assert entry["ssh"] == "ssh -p %d alice@localhost" % entry["ssh_port"]
            assert entry["ssh"] in out
            proc = wait_ssh(entry["ssh_port"], key_path, "id -un; hostname; cd; pwd; ip -o -4 addr show eth1", "alice")
            assert proc.returncode == 0, proc.stderr
            lines = proc.stdout.splitlines()
            assert lines[:3] == ["alice", node, "/home/alice"], proc.stdout
            assert "10.10.0." in proc.stdout
            # root: every experiment user's key; the node's own dropbear answers, not the exec sshd
            proc = ssh(entry["ssh_port"], key_path, "id -u; cat /proc/1/cmdline | tr '\\0' ' '", user="root")
            assert proc.returncode == 0 and proc.stdout.startswith("0\n"), proc.stderr
            assert "/.testbed/bin/supervisor" in proc.stdout
        # the status knows each full node's own server; an exec-style node has none
        assert [entries[n].get("sshd") for n in ("a", "b", "c")] == ["running", "running", None], entries
        # exec style for the basic node of the same experiment
        assert entries["c"]["ssh"] == "ssh -p %d root@localhost" % entries["c"]["ssh_port"]
        proc = ssh(entries["c"]["ssh_port"], key_path, "hostname")
        assert proc.returncode == 0 and proc.stdout.strip() == "c", proc.stderr
        # a key no user lists is refused
        proc = ssh(entries["a"]["ssh_port"], bob, "true", user="alice")
        assert proc.returncode != 0 and "Permission denied" in proc.stderr

        # from another machine's point of view (a container on Docker's default bridge): the
        # host's port leads to the node's sshd (PREROUTING, FORWARD), its control address does not
        sh(DOCKER, "run", "-d", "--rm", "--name", client, "--label", "testbed.test=control", BUSYBOX,
           "sleep", "300")
        host_ip = dexec(client, "sh", "-c", "ip route | awk '/^default/ {print $3}'").stdout.strip()
        banner = dexec(client, "sh", "-c", "echo | nc -w 3 %s %d | head -c 16" % (host_ip, entries["a"]["ssh_port"]),
                       check=False).stdout
        assert banner.startswith("SSH-2.0-dropbear"), banner
        direct = dexec(client, "sh", "-c", "echo | nc -w 3 %s 22 | head -c 16" % entries["a"]["control_address"],
                       check=False).stdout
        assert "SSH" not in direct

        # a user added in place gets an account on the running nodes, which are not recreated
        ids = container_ids(PROJECT, "fullssh")
        playbooks.write(full_experiment("fullssh", users + [{"name": "bob", "ssh_keys": [bob_pub]}]),
                        filename=os.path.basename(path))
        playbooks.swap_in(path)
        assert container_ids(PROJECT, "fullssh") == ids
        proc = wait_ssh(entries["b"]["ssh_port"], bob, "id -un", "bob")
        assert proc.returncode == 0 and proc.stdout.strip() == "bob", proc.stderr

        # a restarted full node answers on the same port again, with the same host key (the
        # agent re-plumbs it; its sshd is a service of the supervisor)
        def host_key():
            out = sh("ssh-keyscan", "-t", "ed25519", "-p", str(entries["a"]["ssh_port"]), "127.0.0.1",
                     check=False).stdout
            return sorted(line.split(None, 1)[1] for line in out.splitlines() if line and not line.startswith("#"))
        key_before = host_key()
        assert key_before, "no host key answered"
        sh(DOCKER, "restart", "-t", "2", entries["a"]["container"])
        proc = wait_ssh(entries["a"]["ssh_port"], key_path, "id -un; ip -o -4 addr show eth1", "alice")
        assert proc.returncode == 0 and proc.stdout.startswith("alice\n") and "10.10.0." in proc.stdout, proc.stderr
        assert host_key() == key_before
    finally:
        sh(DOCKER, "rm", "-f", client, check=False)
        playbooks.teardown(path)
