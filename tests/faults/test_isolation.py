"""What a node can reach of the host: not the Docker socket, not another experiment's files, no
privilege beyond its capability set; and a fork bomb in one node stops at its pids limit while
a node of another experiment on the same host keeps answering."""
import json
import subprocess
import time

from ansible_collections.testbed.containers.plugins.module_utils import defaults

from helpers import BUSYBOX, DEBIAN, DOCKER, dexec, ping, sh

PROJECT = "isotest"
# Docker's default set plus NET_ADMIN (the experimenter's own routing, tc and iptables inside
# the node); NET_RAW is in Docker's default set (ping)
EXPECTED_CAPS = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
                 "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP", "NET_ADMIN"}
CAP_NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
             "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
             "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
             "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
             "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
             "CHECKPOINT_RESTORE"]


def experiment(name, augment):
    return {"name": name, "project": PROJECT,
            "nodes": {"x": {"image": BUSYBOX, "augment": augment, "pids": 64,
                            **({"command": ["sleep", "infinity"]} if augment == "none" else {})},
                      "y": {"image": BUSYBOX, "augment": augment,
                            **({"command": ["sleep", "infinity"]} if augment == "none" else {})}},
            "lans": {"lan0": {"members": ["x", "y"]}}}


def cname(name, node):
    return "tb_%s_%s_%s" % (PROJECT, name, node)


def capabilities(container):
    pid = sh(DOCKER, "inspect", "-f", "{{.State.Pid}}", container).stdout.strip()
    with open("/proc/%s/status" % pid) as f:
        eff = int([line.split()[1] for line in f if line.startswith("CapEff:")][0], 16)
    return set(name for bit, name in enumerate(CAP_NAMES) if eff & (1 << bit))


def test_nodes_have_their_capability_set_no_socket_and_no_other_experiments_files(playbooks):
    levels = (("capnone", "none"), ("capbasic", "basic"), ("capfull", "full"))
    paths = [playbooks.write(experiment(name, level)) for name, level in levels]
    try:
        for path in paths:
            playbooks.swap_in(path)
        for name in ("capnone", "capbasic", "capfull"):
            ctr = cname(name, "x")
            info = json.loads(sh(DOCKER, "inspect", ctr).stdout)[0]
            assert info["HostConfig"]["Privileged"] is False
            assert capabilities(ctr) == EXPECTED_CAPS, (name, sorted(capabilities(ctr) ^ EXPECTED_CAPS))
            assert info["HostConfig"]["PidsLimit"] == 64
            sources = [m["Source"] for m in info["Mounts"]]
            assert not any("docker.sock" in s or s.startswith("/var/run") or s.startswith("/run") for s in sources)
            # every bind mount is this experiment's own (its node dir, its keys), none another's
            for source in sources:
                assert "/%s/%s/" % (PROJECT, name) in source or source.endswith(ctr), (name, source)
            assert dexec(ctr, "sh", "-c", "test -e /var/run/docker.sock || test -e /run/docker.sock",
                         check=False).returncode != 0
    finally:
        for path in paths:
            playbooks.teardown(path)


def test_a_fork_bomb_stops_at_the_pids_limit_and_the_neighbour_keeps_answering(playbooks):
    bomb, other = playbooks.write(experiment("bomb", "none")), playbooks.write(experiment("calm", "none"))
    try:
        playbooks.swap_in(bomb)
        playbooks.swap_in(other)
        dexec(cname("bomb", "x"), "sh", "-c", "for i in $(seq 300); do sleep 60 & done 2>/dev/null; true",
              check=False, timeout=120)
        count = len(sh(DOCKER, "top", cname("bomb", "x")).stdout.splitlines()) - 1
        assert 32 < count <= 64, count
        ok, out = ping(cname("calm", "x"), "y", count=5)
        assert ok, out
    finally:
        playbooks.teardown(bomb)
        playbooks.teardown(other)


def test_cap_drop_all_leaves_each_level_what_its_services_need_and_they_work(playbooks, tmp_path):
    """cap_drop: [ALL] at each level: PID 1 holds only the level's own set (defaults.LEVEL_CAPS),
    and the level's services still work: a full node's dropbear logs a user in to their home,
    a basic node's supervisor runs the application as the node's user and its start command,
    a plain node with two capabilities dropped keeps the rest."""
    key = str(tmp_path / "id")
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
    with open(key + ".pub") as f:
        pub = f.read().strip()
    doc = {"name": "capdrop", "project": PROJECT, "users": [{"name": "alice", "ssh_keys": [pub]}],
           "nodes": {"f": {"image": DEBIAN, "augment": "full", "command": ["sleep", "infinity"], "cap_drop": ["ALL"]},
                     "b": {"image": BUSYBOX, "augment": "basic", "command": ["sleep", "infinity"], "user": "nobody",
                           "start": "echo started > /tmp/started", "cap_drop": ["ALL"]},
                     "n": {"image": BUSYBOX, "augment": "none", "command": ["sleep", "infinity"],
                           "cap_drop": ["MKNOD", "SETFCAP"]}},
           "lans": {"lan0": {"members": ["f", "b", "n"]}}}
    path = playbooks.write(doc)
    try:
        playbooks.swap_in(path)
        assert capabilities(cname("capdrop", "f")) == set(defaults.LEVEL_CAPS["full"])
        assert capabilities(cname("capdrop", "b")) == set(defaults.LEVEL_CAPS["basic"])
        assert capabilities(cname("capdrop", "n")) == EXPECTED_CAPS - {"MKNOD", "SETFCAP"}
        # full: alice logs in through the node's own dropbear, to her home
        entry = [e for e in playbooks.record(PROJECT, "capdrop")["nodes"] if e["node"] == "f"][0]
        deadline, proc = time.time() + 30, None
        while time.time() < deadline:
            proc = subprocess.run(["ssh", "-p", str(entry["ssh_port"]), "-i", key, "-o", "IdentitiesOnly=yes",
                                   "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                                   "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
                                   "alice@localhost", "id -un; cd; pwd"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, universal_newlines=True, timeout=30, check=False)
            if proc.returncode == 0:
                break
            time.sleep(0.5)
        assert proc.returncode == 0 and proc.stdout.split() == ["alice", "/home/alice"], (proc.stdout, proc.stderr)
        # basic: the application runs as nobody, the start command ran (as root, with the set left)
        users = sh(DOCKER, "top", cname("capdrop", "b"), "-o", "pid,user,args").stdout
        assert any(line.split()[1] in ("nobody", "65534") and "sleep infinity" in line
                   for line in users.splitlines()), users
        deadline = time.time() + 20
        while dexec(cname("capdrop", "b"), "cat", "/tmp/started", check=False).stdout.strip() != "started":
            assert time.time() < deadline, sh(DOCKER, "logs", cname("capdrop", "b"), check=False).stdout
            time.sleep(0.5)
        # and the nodes reach each other on their LAN (f's iputils ping needs no NET_RAW: an ICMP
        # socket; b's busybox ping does, and b has none: n pings it)
        assert "permission denied" in dexec(cname("capdrop", "b"), "ping", "-c", "1", "n", check=False).stdout
        for src, dst in (("f", "b"), ("n", "b")):
            ok, out = ping(cname("capdrop", src), dst)
            assert ok, (src, dst, out)
    finally:
        playbooks.teardown(path)
