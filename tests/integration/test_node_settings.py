"""A node's own container settings and named interfaces, on the real engine: entrypoint, user
and workdir (Docker's for a plain node, the supervisor's for an augmented one), binds, added
capabilities, sysctls, labels, a published port, and interfaces named as the file says."""
import json
import os
import socket
import time

from helpers import BUSYBOX, DEBIAN, DOCKER, container_ids, dexec, ping, sh

PROJECT = "citest"


def settings_doc(data_dir):
    return {
        "name": "settings", "project": PROJECT,
        "nodes": {
            "plain": {"image": DEBIAN, "augment": "none", "entrypoint": ["sleep"], "command": ["infinity"],
                      "user": "nobody", "workdir": "/tmp", "binds": ["%s:/data:ro" % data_dir],
                      "cap_add": ["SYS_NICE"], "sysctls": {"net.ipv4.ip_default_ttl": "33"},
                      "labels": {"app": "web"}},
            "aug": {"image": BUSYBOX, "user": "nobody", "workdir": "/tmp",
                    "entrypoint": ["/bin/sh", "-c", "echo $(id -u) $(pwd) > /tmp/app.out; "
                                   "while true; do echo hello-from-aug | nc -l -p 8080; done"],
                    "ports": ["127.0.0.1:18080:8080"]},
        },
        "lans": {"lan0": {"members": [{"node": "plain", "interface": "lan-a", "ip": "10.9.7.1"},
                                      {"node": "aug", "interface": "net1", "ip": "10.9.7.2"}],
                          "subnet": "10.9.7.0/24"}},
    }


def read_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                data = conn.recv(100)
                if data:
                    return data
        except OSError:
            pass
        if time.time() > deadline:
            return b""
        time.sleep(0.3)


def test_node_settings_reach_the_container(playbooks, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "hello.txt").write_text("from the host\n")
    path = playbooks.write(settings_doc(str(data_dir)))
    try:
        playbooks.swap_in(path)
        ids = container_ids(PROJECT, "settings")
        plain = json.loads(sh(DOCKER, "inspect", ids["plain"]).stdout)[0]
        assert plain["Config"]["Entrypoint"] == ["sleep"] and plain["Config"]["Cmd"] == ["infinity"]
        assert plain["Config"]["User"] == "nobody" and plain["Config"]["WorkingDir"] == "/tmp"
        assert plain["Config"]["Labels"]["app"] == "web"
        assert "SYS_NICE" in plain["HostConfig"]["CapAdd"]
        assert dexec(ids["plain"], "id", "-u").stdout.strip() == "65534"
        assert dexec(ids["plain"], "cat", "/data/hello.txt").stdout == "from the host\n"
        assert dexec(ids["plain"], "touch", "/data/x", check=False).returncode != 0  # read-only
        assert dexec(ids["plain"], "cat", "/proc/sys/net/ipv4/ip_default_ttl").stdout.strip() == "33"
        # named interfaces, with the file's addresses, reach each other
        assert "inet 10.9.7.1/24" in dexec(ids["plain"], "ip", "-4", "addr", "show", "lan-a").stdout
        assert "inet 10.9.7.2/24" in dexec(ids["aug"], "ip", "-4", "addr", "show", "net1").stdout
        ok, out = ping(ids["plain"], "10.9.7.2", count=2)
        assert ok, out
        # the augmented node's application ran as the node's user, in its workdir, with its entrypoint
        deadline = time.time() + 15
        while time.time() < deadline and dexec(ids["aug"], "cat", "/tmp/app.out", check=False).returncode:
            time.sleep(0.3)
        assert dexec(ids["aug"], "cat", "/tmp/app.out").stdout.strip() == "65534 /tmp"
        # its port is published on the host
        assert read_port(18080) == b"hello-from-aug\n"
        # a second run changes nothing
        again = playbooks.swap_in(path)
        assert "recreate node" not in again.stdout
        # the status document, for automation: every node, its interfaces and where to capture them
        out = os.path.join(str(tmp_path), "status.json")
        shown = playbooks.run("status", path, extra=["-e", "format=json", "-e", "status_file=%s" % out]).stdout
        assert '"capture_command": "ssh localhost tcpdump -U -w - -i ' in shown
        with open(out) as f:
            document = json.load(f)
        assert document["counts"] == {"booted": 2}, document
        nodes = dict((n["node"], n) for n in document["nodes"])
        assert sorted(nodes) == ["aug", "plain"]
        lan_a = nodes["plain"]["interfaces"][0]
        assert (lan_a["ifname"], lan_a["address"], lan_a["prefixlen"]) == ("lan-a", "10.9.7.1", 24)
        assert lan_a["host_interface"] in sh("ip", "-o", "link").stdout
        assert nodes["aug"]["control_address"] and nodes["aug"]["ssh"].startswith("ssh ")
    finally:
        playbooks.teardown(path)
    assert not container_ids(PROJECT, "settings")


def test_a_bind_of_a_missing_host_path_is_refused_naming_it(playbooks, tmp_path):
    doc = {"name": "badbind", "project": PROJECT,
           "nodes": {"a": {"image": BUSYBOX, "augment": "none", "command": ["sleep", "1000"],
                           "binds": [os.path.join(str(tmp_path), "missing") + ":/data"]}}}
    path = playbooks.write(doc)
    try:
        proc = playbooks.swap_in(path, check=False)
        assert proc.returncode != 0
        assert "bind source %s does not exist on host localhost" % os.path.join(str(tmp_path), "missing") in proc.stdout
    finally:
        playbooks.teardown(path)
    assert not container_ids(PROJECT, "badbind")
