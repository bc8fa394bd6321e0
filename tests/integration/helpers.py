"""Shared helpers of the integration tests: they drive the real playbooks on this machine."""
import json
import os
import re
import subprocess

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
DOCKER = "/usr/bin/docker"
DEBIAN = "testbed/debian:bookworm"
BUSYBOX = "testbed/busybox:latest"


def sh(*args, check=True, timeout=120):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(args), proc.returncode, proc.stdout))
    return proc


class Playbooks:
    """Runs the collection's playbooks with private state and record directories."""

    def __init__(self, tmpdir):
        self.state_dir = os.path.join(str(tmpdir), "state")
        self.record_dir = os.path.join(str(tmpdir), "records")
        self.tmpdir = str(tmpdir)

    def write(self, doc, filename=None):
        path = os.path.join(self.tmpdir, filename or "%s-%s.yml" % (doc.get("project", "default"), doc["name"]))
        with open(path, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        return path

    def run(self, playbook, experiment, check=True, extra=()):
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        args = [os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/%s.yml" % playbook, "-v",
                "-e", "experiment=%s" % experiment, "-e", "testbed_state_dir=%s" % self.state_dir,
                "-e", "testbed_record_dir=%s" % self.record_dir] + list(extra)
        proc = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=600, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("ansible-playbook %s failed (%d):\n%s" % (playbook, proc.returncode, proc.stdout))
        return proc

    def swap_in(self, experiment, **kw):
        return self.run("experiment", experiment, **kw)

    def teardown(self, experiment, **kw):
        return self.run("teardown", experiment, **kw)

    def record(self, project, name):
        with open(os.path.join(self.record_dir, project, "%s.json" % name)) as f:
            return json.load(f)


def recap_changed(output):
    """changed= counts of the PLAY RECAP, per host."""
    return dict((m.group(1), int(m.group(2))) for m in re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M))


def dexec(container, *args, check=True, timeout=60):
    return sh(DOCKER, "exec", container, *args, check=check, timeout=timeout)


def containers(label_filter):
    out = sh(DOCKER, "ps", "-a", "--filter", "label=%s" % label_filter, "--format", "{{.Names}} {{.ID}}").stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def container_ids(project, name):
    out = sh(DOCKER, "ps", "-a", "--filter", "label=testbed.project=%s" % project, "--filter",
             "label=testbed.experiment=%s" % name, "--format",
             '{{.Label "testbed.node"}} {{.ID}}').stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def host_links():
    """The host's interfaces, but Docker's own veths (the eth0 of any container: a removed
    container's veth may vanish a moment after removal; leaked containers are checked apart)."""
    out = sh("ip", "-o", "link").stdout
    return sorted(name for name in (re.match(r"^\d+: ([^:@]+)", line).group(1) for line in out.splitlines())
                  if not name.startswith("veth"))


def iptables_rules():
    """iptables-save of every table without counters or comments lines."""
    out = sh("iptables-save").stdout
    lines = []
    for line in out.splitlines():
        if line.startswith("#"):
            continue
        lines.append(re.sub(r"\[\d+:\d+\]", "", line))
    return lines


def ping(container, target, count=1, wait=1):
    """True when every ping from ``container`` to ``target`` is answered."""
    proc = dexec(container, "ping", "-c", str(count), "-W", str(wait), "-i", "0.2", target, check=False)
    return proc.returncode == 0, proc.stdout
