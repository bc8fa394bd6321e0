"""Augmented nodes in a swapped-in experiment: the start command runs after the interfaces exist,
its output and exit status are logged in the node and reported by status."""
from helpers import BUSYBOX, DEBIAN, DOCKER, container_ids, dexec, ping, recap_changed, sh

PROJECT = "augtest"


def doc(start_b="ip -o -4 addr show eth1; ping -c 1 -W 2 a; exit 7"):
    return {
        "name": "start", "project": PROJECT,
        "defaults": {"augment": "basic"},
        "nodes": {
            # no command: the Debian image's CMD (bash) exits at once; the supervisor keeps the node up
            "a": {"image": DEBIAN},
            "b": {"image": BUSYBOX, "start": start_b},
        },
        "lans": {"lan0": {"members": ["a", "b"]}},
    }


def cname(node):
    return "tb_%s_start_%s" % (PROJECT, node)


def test_start_command_runs_after_plumbing_and_its_exit_code_is_reported(playbooks):
    path = playbooks.write(doc())
    try:
        out = playbooks.swap_in(path).stdout
        # the app exited, the node is up; the start command saw eth1 and reached its peer by name
        assert sh(DOCKER, "inspect", "-f", "{{.State.Running}}", cname("a")).stdout.strip() == "true"
        log = ""
        for _attempt in range(50):
            log = dexec(cname("b"), "/.testbed/bin/sh", "-c", "cat /var/log/testbed/start_command.log",
                        check=False).stdout
            if "exit_status=" in log:
                break
            sh("sleep", "0.2")
        assert "exit_status=7" in log, log
        stdout = dexec(cname("b"), "/.testbed/bin/sh", "-c", "cat /var/log/testbed/start_command.out").stdout
        assert "eth1" in stdout and "10.10.0." in stdout and "1 packets received" in stdout, stdout
        status = playbooks.run("status", path).stdout
        assert "exit=7" in status, status
        assert ping(cname("a"), "b")[0]
        # idempotent with augmentation: no rebuild, nothing changed
        ids = container_ids(PROJECT, "start")
        again = playbooks.swap_in(path).stdout
        assert recap_changed(again) == {"localhost": 0}, again
        assert container_ids(PROJECT, "start") == ids
        assert "SSH" in out
    finally:
        playbooks.teardown(path)
    assert container_ids(PROJECT, "start") == {}


def test_restart_policy_of_the_application_is_set_per_node_and_changed_in_place(playbooks):
    """`restart:` is the supervisor's policy for the node's application; the node stays up either way."""
    import time
    spec = {"name": "restart", "project": PROJECT,
            "nodes": {"a": {"image": BUSYBOX, "command": ["sh", "-c", "echo once; exit 3"], "restart": "on-failure"},
                      "b": {"image": BUSYBOX, "command": ["sh", "-c", "exit 3"]}}}
    path = playbooks.write(spec)
    name = "tb_%s_restart_%%s" % PROJECT

    def status(node):
        text = dexec(name % node, "/.testbed/bin/sh", "-c", "cat /.testbed/run/status").stdout
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    try:
        playbooks.swap_in(path)
        time.sleep(2)
        a, b = status("a"), status("b")
        assert a["app_restart"] == "on-failure" and int(a["app_restarts"]) >= 2, a  # 100 ms back-off, doubling
        assert b["app_restart"] == "no" and b["app_restarts"] == "0" and b["app"] == "exited:3", b
        # changed in place: the node is recreated with the new policy
        spec["nodes"]["a"]["restart"] = "no"
        playbooks.write(spec)
        playbooks.swap_in(path)
        time.sleep(0.5)
        a = status("a")
        assert a["app_restart"] == "no" and a["app"] == "exited:3", a
    finally:
        playbooks.teardown(path)
