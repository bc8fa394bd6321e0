"""A freshly installed host (testbed/barehost: Debian with sshd and python3, no Docker engine, no
testbed Python packages; the inventory names /usr/bin/python3 as its interpreter): hosts.yml
prepares it (the host role installs the engine and the pinned packages and raises the sysctls),
the swap-in that follows installs nothing, the images come from the controller through the testbed
registry, the nodes ping; teardown leaves no node."""
import json
import os
import re

import pytest
import yaml

from hosts import BARE_HOST_IMAGE, simulated_hosts

pytestmark = pytest.mark.timeout(900)


def pins():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "roles", "host", "files", "requirements.txt")) as f:
        return dict(line.split("#")[0].strip().split("==") for line in f if "==" in line.split("#")[0])


@pytest.fixture(scope="module")
def bare_host():
    with simulated_hosts(n=1, name_prefix="tbbare", subnet="10.250.9.0/24", images=(), image=BARE_HOST_IMAGE) as sim:
        try:
            yield sim
        finally:
            sim.remove_registry()


def swap(sim, tmp_path, playbook, path, check=True):
    return sim.ansible_playbook("playbooks/%s.yml" % playbook, "-e", "experiment=%s" % path,
                                "-e", "testbed_record_dir=%s" % os.path.join(str(tmp_path), "records"),
                                "-e", "testbed_registry_enabled=true", check=check)


def task_status(out, task):
    """The status line ('changed', 'ok', 'skipping', ...) Ansible printed for a task of the host role."""
    match = re.search(r"TASK \[testbed\.containers\.host : %s\][^\n]*\n(\w+):" % re.escape(task), out)
    assert match, "task %r not in the output:\n%s" % (task, out)
    return match.group(1)


def test_host_role_installs_a_bare_host_and_the_experiment_runs_on_it(bare_host, tmp_path):
    sim, host = bare_host, "tbbare1"
    assert sim.exec(host, "sh", "-c", "command -v dockerd", check=False).returncode != 0
    assert sim.exec(host, "test", "-e", "/opt/testbed/venv", check=False).returncode != 0
    assert sim.exec(host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"
    # the inventory names the system's Python, as most do: the collection's tasks pick their own
    assert sim.inventory_data()["all"]["children"]["testbed_hosts"]["vars"]["ansible_python_interpreter"] == "/usr/bin/python3"
    doc = {"name": "bare", "project": "mh",
           "nodes": {"a": {"image": "testbed/debian:bookworm", "command": ["sleep", "infinity"]},
                     "b": {"image": "testbed/busybox:latest", "command": ["sleep", "infinity"], "augment": "none"}},
           "lans": {"lan0": {"members": ["a", "b"], "subnet": "10.22.0.0/24"}}}
    path = os.path.join(str(tmp_path), "bare.yml")
    with open(path, "w") as f:
        yaml.safe_dump(doc, f)
    try:
        # the operator prepares the host ahead of time (playbooks/hosts.yml): everything is installed there
        out = sim.ansible_playbook("playbooks/hosts.yml").stdout
        assert re.search(r"tbbare1 ready in [\d.]+ s: installed or started engine\b[^\n]*python", out), out
        for task in ("Install the Docker engine, iptables, iproute2 and python3-venv (Debian packages)",
                     "Install the pinned Python packages into the virtualenv",
                     "Raise the kernel settings hosts with many nodes need",
                     "Copy the augmentation tools (supervisor, busybox, dropbear) from the controller"):
            assert task_status(out, task) == "changed", out
        # the engine from Debian's docker.io, the virtualenv with the role's pins
        code = "import docker, pyroute2; print(docker.__version__, pyroute2.__version__, docker.from_env().version()['Version'])"
        got = sim.exec(host, "/opt/testbed/venv/bin/python", "-c", code).stdout.split()
        want = pins()
        assert got[:2] == [want["docker"], want["pyroute2"]], got
        assert sim.exec(host, "dpkg-query", "-W", "-f", "${Status}", "docker.io").stdout == "install ok installed"
        assert sim.exec(host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
        assert "net.core.somaxconn = 8192" in sim.exec(host, "cat", "/etc/sysctl.d/60-testbed.conf").stdout
        # the swap-in that follows finds nothing missing and installs nothing
        out = swap(sim, tmp_path, "experiment", path).stdout
        assert task_status(out, "Install what is missing") == "skipping", out
        assert task_status(out, "Raise the kernel settings hosts with many nodes need") == "ok", out
        # the probe's digest of the host's tools equals the controller's: no copy over the connection
        tools = "Copy the augmentation tools (supervisor, busybox, dropbear) from the controller"
        assert task_status(out, tools) == "skipping", out
        # the images came through the registry into the new engine; the nodes run and ping
        with open(os.path.join(str(tmp_path), "records", "mh", "bare.json")) as f:
            nodes = dict((n["node"], n) for n in json.load(f)["nodes"])
        assert sorted(nodes) == ["a", "b"]
        ping = sim.exec(host, "docker", "exec", nodes["a"]["container"], "ping", "-c", "2", "-W", "2", "b",
                        check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
    finally:
        swap(sim, tmp_path, "teardown", path, check=False)
    left = sim.exec(host, "docker", "ps", "-aq", "--filter", "label=testbed.experiment=bare", check=False).stdout
    assert left.strip() == ""
