"""What a node can reach of the host: not the Docker socket, not another experiment's files, no
privilege beyond its capability set; and a fork bomb in one node stops at its pids limit while
a node of another experiment on the same host keeps answering."""
import json

from helpers import BUSYBOX, DOCKER, dexec, ping, sh

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
