"""Ten experiments swapped in at once on one host (ten ansible-playbook processes): all
converge with the same node names and subnets, no allocation collides, all ten tear down
clean."""
import json
import os
import subprocess

from kills import host_state, playbook_args
from helpers import BUSYBOX, DOCKER, ROOT, ping, sh

PROJECT = "conctest"
COUNT = 10


def experiment(i):
    return {"name": "c%d" % i, "project": PROJECT,
            "nodes": {"a": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"},
                      "b": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"}},
            "lans": {"lan0": {"members": ["a", "b"], "subnet": "10.77.0.0/24"}}}


def run_all(playbooks, playbook, paths):
    procs = [subprocess.Popen(playbook_args(playbooks, playbook, path), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True,
                              env=dict(os.environ, ANSIBLE_NOCOLOR="1")) for path in paths]
    outputs = [proc.communicate(timeout=900)[0] for proc in procs]
    failed = [(path, out[-2000:]) for path, proc, out in zip(paths, procs, outputs) if proc.returncode != 0]
    assert not failed, failed


def test_ten_experiments_swapped_in_at_once_converge_apart_and_tear_down_clean(playbooks):
    before = host_state(playbooks.state_dir)
    paths = [playbooks.write(experiment(i)) for i in range(COUNT)]
    try:
        run_all(playbooks, "experiment", paths)
        # ten host_agent calls at once started one supervised agent, not ten (seen: 15 supervisors)
        agents = sh("pgrep", "-f", "module_utils import agent; agent.main()", check=False).stdout.split()
        assert len(agents) == 2, agents
        with open("/var/lib/testbed/control.json") as f:
            mine = dict((k, v) for k, v in json.load(f)["nodes"].items() if k.startswith(PROJECT + "/"))
        assert len(mine) == 2 * COUNT
        for key in ("port", "address", "exec_address"):
            values = [entry[key] for entry in mine.values()]
            assert len(set(values)) == len(values), (key, sorted(values))
        for i in range(COUNT):
            ok, out = ping("tb_%s_c%d_a" % (PROJECT, i), "b")
            assert ok, (i, out)
            ips = sh(DOCKER, "exec", "tb_%s_c%d_a" % (PROJECT, i), "ip", "-o", "-4", "addr", "show", "eth1").stdout
            assert "10.77.0.1/24" in ips, ips
    finally:
        run_all(playbooks, "teardown", paths)
    assert host_state(playbooks.state_dir) == before
