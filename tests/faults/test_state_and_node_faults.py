"""Faults of the host's state and of single nodes: a full disk under the state directory, a
second swap-in of a locked experiment, a node whose command cannot run."""
import json
import os
import subprocess

from faults import wait_for
from helpers import BUSYBOX, DOCKER, ROOT, VENV_BIN, sh

PROJECT = "fltest"


def experiment(name, nodes=2):
    return {"name": name, "project": PROJECT,
            "nodes": dict(("n%d" % i, {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"})
                          for i in range(nodes)),
            "lans": {"lan0": {"members": ["n%d" % i for i in range(nodes)]}}}


def containers(name):
    return sh(DOCKER, "ps", "-aq", "--filter", "label=testbed.project=%s" % PROJECT, "--filter",
              "label=testbed.experiment=%s" % name).stdout.split()


def test_a_full_state_disk_fails_clearly_and_keeps_the_previous_record(playbooks):
    os.makedirs(playbooks.state_dir)
    sh("mount", "-t", "tmpfs", "-o", "size=1m", "testbed-full", playbooks.state_dir)
    path = playbooks.write(experiment("diskfull"))
    try:
        playbooks.swap_in(path)
        record_path = os.path.join(playbooks.state_dir, "experiments", PROJECT, "diskfull", "record.json")
        with open(record_path) as f:
            before = f.read()
        filler = os.path.join(playbooks.state_dir, "filler")
        sh("dd", "if=/dev/zero", "of=" + filler, "bs=64k", check=False)  # until ENOSPC
        doc = experiment("diskfull", nodes=3)
        playbooks.write(doc)
        proc = playbooks.swap_in(path, check=False)
        assert proc.returncode != 0
        assert "No space left on device" in proc.stdout and "the previous version is kept" in proc.stdout, \
            proc.stdout[-3000:]
        with open(record_path) as f:
            assert f.read() == before
        assert len(containers("diskfull")) == 2, "a node was created although the record could not be written"
        assert [n for n in os.listdir(os.path.dirname(record_path)) if ".tmp" in n] == []
        os.unlink(filler)
        playbooks.swap_in(path)
        assert len(containers("diskfull")) == 3
    finally:
        playbooks.teardown(path, check=False)
        sh("umount", playbooks.state_dir, check=False)
    assert containers("diskfull") == []


def test_a_second_swap_in_of_a_locked_experiment_names_the_holder(playbooks):
    path = playbooks.write(experiment("locked", nodes=8))
    lock = os.path.join(playbooks.state_dir, "locks", "%s.locked.lock" % PROJECT)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    common = ["-e", "experiment=%s" % path, "-e", "testbed_state_dir=%s" % playbooks.state_dir,
              "-e", "testbed_record_dir=%s" % playbooks.record_dir]
    first = subprocess.Popen([os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/experiment.yml"] + common,
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True)
    try:
        def held():
            try:
                with open(lock) as f:
                    return json.load(f).get("what") == "swap-in"
            except (IOError, OSError, ValueError):
                return False
        assert wait_for(held, 120) is not None, "the first swap-in never took the lock"
        second = playbooks.swap_in(path, check=False, extra=("-e", "testbed_lock_timeout=1"))
        if first.poll() is None:  # the first still holds it: the second gave up naming it
            assert second.returncode != 0
            assert "experiment %s/locked is locked by swap-in of experiment %s/locked, pid" % (PROJECT, PROJECT) \
                in second.stdout, second.stdout[-3000:]
            assert "testbed_lock_timeout" in second.stdout
        out = first.communicate(timeout=600)[0]
        assert first.returncode == 0, out[-3000:]
        # whole, not half-merged: a re-run changes nothing
        again = playbooks.swap_in(path).stdout
        assert "changed=0" in again.split("PLAY RECAP")[-1], again[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
        playbooks.teardown(path)
    assert containers("locked") == []


def test_a_node_that_cannot_start_is_reported_dead_with_the_engines_reason(playbooks):
    doc = experiment("deadnode")
    doc["nodes"]["n1"]["command"] = ["/no/such/program"]
    path = playbooks.write(doc)
    try:
        proc = playbooks.swap_in(path, check=False)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stdout
        table = proc.stdout
        assert "1 node(s) could not be started: n1 on localhost:" in table, table[-3000:]
        row = [line for line in table.splitlines() if line.lstrip(' "').startswith("n1 ")]
        assert row and "dead (" in row[0] and "/no/such/program" in row[0], table[-3000:]
        record = playbooks.record(PROJECT, "deadnode")
        nodes = dict((n["node"], n) for n in record["nodes"])
        assert nodes["n0"]["state"] == "booted"
        assert nodes["n1"]["state"] == "dead" and "/no/such/program" in nodes["n1"]["reason"], nodes["n1"]
        # status fails on a dead node (automation notices), unless told to only report
        status = playbooks.run("status", path, check=False, extra=["-e", "status_file=%s" % playbooks.tmpdir + "/st.json"])
        assert status.returncode != 0 and "/no/such/program" in status.stdout
        with open(playbooks.tmpdir + "/st.json") as f:
            document = json.load(f)
        assert document["counts"] == {"booted": 1, "dead": 1} or document["counts"].get("dead") == 1, document
        assert [n["node"] for n in document["nodes"] if n["state"] == "dead"] == ["n1"]
        status = playbooks.run("status", path, extra=["-e", "fail_on_dead=false"])
        assert status.returncode == 0 and "/no/such/program" in status.stdout
    finally:
        playbooks.teardown(path)
    assert containers("deadnode") == []
