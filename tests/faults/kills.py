"""Kill a playbook at a chosen moment, then check that the experiment converged whole or left
nothing behind.  Used by tests/faults (small sizes) and bench/faults.py (the larger runs)."""
import json
import os
import re
import signal
import subprocess
import time

from ansible_collections.testbed.containers.plugins.module_utils import names
from helpers import DOCKER, ROOT, VENV_BIN, host_links, iptables_rules, ping, sh


def descendants(pid):
    """``pid`` and every process below it (Ansible's workers setsid, so a process group is not
    enough: follow the parent links)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (IOError, OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def kill(pid, whole_tree=True):
    """SIGKILL ``pid`` (and, with ``whole_tree``, every process below it, stopped first so none
    starts another meanwhile)."""
    victims = descendants(pid) if whole_tree else [pid]
    for victim in victims:
        try:
            os.kill(victim, signal.SIGSTOP)
        except OSError:
            pass
    for victim in victims:
        try:
            os.kill(victim, signal.SIGKILL)
        except OSError:
            pass


def playbook_args(playbooks, playbook, path, extra=()):
    return [os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/%s.yml" % playbook, "-e", "experiment=%s" % path,
            "-e", "testbed_state_dir=%s" % playbooks.state_dir, "-e", "testbed_record_dir=%s" % playbooks.record_dir] \
        + list(extra)


def run_and_kill(playbooks, playbook, path, after, whole_tree=True):
    """Run ``playbook`` and SIGKILL it ``after`` seconds in; returns whether it had finished."""
    proc = subprocess.Popen(playbook_args(playbooks, playbook, path), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    deadline = time.time() + after
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    finished = proc.poll() is not None
    if not finished:
        kill(proc.pid, whole_tree)
    proc.wait()
    return finished


def timed_run(playbooks, playbook, path):
    start = time.time()
    playbooks.run(playbook, path)
    return time.time() - start


def experiment_rules(project, name):
    """The experiment's iptables rules (table-qualified lines with its comment)."""
    owner = "testbed:%s/%s " % (project, name)
    return [line for line in iptables_rules() if owner in line]


def assert_converged(doc, pings):
    """Every node of ``doc`` runs and is plumbed; ``pings`` ((node, target) pairs) answer;
    shaping and firewall rules exist exactly once."""
    project, name = doc.get("project", "default"), doc["name"]
    for node in doc["nodes"]:
        ctr = "tb_%s_%s_%s" % (project, name, node)
        state = sh(DOCKER, "inspect", "-f", "{{.State.Running}}", ctr, check=False).stdout.strip()
        assert state == "true", "%s is not running after the re-run" % ctr
    for src, dst in pings:
        ok, out = ping("tb_%s_%s_%s" % (project, name, src), dst, count=2)
        assert ok, "%s -> %s: %s" % (src, dst, out)
    rules = experiment_rules(project, name)
    comments = [re.search(r'--comment "?([^"]+)"?', line).group(1) for line in rules]
    assert len(comments) == len(set(comments)), "a rule exists twice: %s" % sorted(comments)
    prefix = names.kernel_prefix(project, name)
    veths = [link for link in host_links() if link.startswith(prefix) and link[len(prefix)] == "v"]
    for veth in veths:
        roots = [line for line in sh("tc", "qdisc", "show", "dev", veth).stdout.splitlines() if " root " in line]
        assert len(roots) == 1, (veth, roots)
    return prefix


def host_state(state_dir):
    """What teardown must bring back: links, containers, iptables, files under the state dir."""
    files = []
    for base, _dirs, names in os.walk(state_dir):
        files.extend(os.path.relpath(os.path.join(base, n), state_dir) for n in names)
    try:
        with open("/var/lib/testbed/control.json") as f:
            allocations = sorted(json.load(f).get("nodes", {}))
    except (IOError, OSError, ValueError):
        allocations = []
    return {"links": host_links(), "containers": sorted(sh(DOCKER, "ps", "-aq").stdout.split()),
            "iptables": iptables_rules(), "files": sorted(f for f in files if not f.startswith("locks/")),
            "allocations": allocations}
