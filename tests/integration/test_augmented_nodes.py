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
