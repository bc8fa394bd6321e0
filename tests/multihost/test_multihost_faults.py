"""A physical host lost under an experiment (its simulated host's container stopped): a swap-in
fails naming it and leaves the other hosts' slices as they were, a re-run after it returns
converges; a teardown while it is unreachable cleans the others, says what it could not reach
and keeps the record, and a later teardown finishes the job.  (The last test of the multi-host
run: it stops and starts tbhost3.)"""
import os
import subprocess
import time

from hosts import DOCKER, ROOT, VENV_BIN, _wait_ready, run
from test_multihost_experiment import BUSYBOX, links, node, ping, record, swap, write


def experiment(extra=False):
    doc = {"name": "lost", "project": "mhfault",
           "nodes": {"a": node(BUSYBOX, host="tbhost1"), "b": node(BUSYBOX, host="tbhost2"),
                     "c": node(BUSYBOX, host="tbhost3"), "r": node(BUSYBOX, host="tbhost1", forwarding=True)},
           "lans": {"lan0": {"members": ["a", "b", "c", "r"], "subnet": "10.30.0.0/24"}}}
    if extra:
        doc["nodes"]["d"] = node(BUSYBOX, host="tbhost2")
        doc["lans"]["lan0"]["members"].append("d")
    return doc


def containers(sim, host):
    return sim.exec(host, "docker", "ps", "-aq", "--filter", "label=testbed.project=mhfault").stdout.split()


def stop_host(name):
    run(DOCKER, "stop", "-t", "5", name)


def start_host(sim, name):
    run(DOCKER, "start", name)
    # (the ready marker of the last run is still there; sshd answers only once dockerd does)
    _wait_ready(sim.host(name), time.monotonic() + 120)


def tear_down_and_check(sim, tmp_path, path, stopped, before):
    """tbhost3 back if it is stopped, the experiment torn down, every host's links as before and no container."""
    if stopped:
        start_host(sim, "tbhost3")
    swap(sim, tmp_path, "teardown", path, check=False)
    for host in sim.names:
        assert containers(sim, host) == [] and links(sim, host) == before[host], host


def test_a_lost_host_fails_the_swap_in_by_name_and_teardown_finishes_when_it_returns(testbed_hosts, tmp_path):
    sim = testbed_hosts
    before = dict((h, links(sim, h)) for h in sim.names)
    path = write(tmp_path, experiment())
    stopped = False
    try:
        swap(sim, tmp_path, "experiment", path)
        ids = dict((h, containers(sim, h)) for h in ("tbhost1", "tbhost2"))
        # tbhost3 lost; a modification (d on tbhost2) fails naming it, before anything changes
        stop_host("tbhost3")
        stopped = True
        write(tmp_path, experiment(extra=True))
        proc = swap(sim, tmp_path, "experiment", path, check=False)
        assert proc.returncode != 0 and "tbhost3" in proc.stdout and "UNREACHABLE" in proc.stdout, proc.stdout[-3000:]
        assert dict((h, containers(sim, h)) for h in ("tbhost1", "tbhost2")) == ids
        rec = record(tmp_path, "mhfault", "lost")
        assert ping(sim, rec["a"]["host"], rec["a"]["container"], "b")[0]  # across the two hosts left
        # back: the re-run converges, d included, across all three hosts
        start_host(sim, "tbhost3")
        stopped = False
        swap(sim, tmp_path, "experiment", path)
        rec = record(tmp_path, "mhfault", "lost")
        for src, dst in (("a", "c"), ("c", "d"), ("d", "a")):
            ok, text = ping(sim, rec[src]["host"], rec[src]["container"], dst)
            assert ok, (src, dst, text)
        # a teardown while tbhost3 is unreachable: the others clean, the record kept, it says so
        stop_host("tbhost3")
        stopped = True
        proc = swap(sim, tmp_path, "teardown", path, check=False)
        assert proc.returncode != 0, proc.stdout[-3000:]
        assert "could not tear down tbhost3" in proc.stdout and "run teardown.yml again" in proc.stdout, \
            proc.stdout[-3000:]
        for host in ("tbhost1", "tbhost2"):
            assert containers(sim, host) == [] and links(sim, host) == before[host], host
        assert record(tmp_path, "mhfault", "lost")
        start_host(sim, "tbhost3")
        stopped = False
        swap(sim, tmp_path, "teardown", path)
    finally:
        tear_down_and_check(sim, tmp_path, path, stopped, before)


def test_a_host_lost_in_the_middle_of_its_slice_fails_by_name_and_a_rerun_converges(testbed_hosts, tmp_path):
    """tbhost3 stopped while its slice is creating nodes: the swap-in fails naming it, the slices
    of tbhost1 and tbhost2 are whole and work, and once it is back a re-run converges all three."""
    sim = testbed_hosts
    before = dict((h, links(sim, h)) for h in sim.names)
    many = dict(("m%d" % i, node(BUSYBOX, host="tbhost3")) for i in range(12))
    doc = {"name": "mid", "project": "mhfault",
           "nodes": dict({"a": node(BUSYBOX, host="tbhost1"), "b": node(BUSYBOX, host="tbhost2")}, **many),
           "lans": {"lan0": {"members": ["a", "b"] + sorted(many), "subnet": "10.30.1.0/24"}}}
    path = write(tmp_path, doc)
    stopped = False
    try:
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", sim.inventory, "playbooks/experiment.yml",
               "-e", "experiment=%s" % path, "-e", "testbed_record_dir=%s" % os.path.join(str(tmp_path), "records")]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=sim.ansible_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and len(containers(sim, "tbhost3")) < 2:
            time.sleep(0.2)
        assert proc.poll() is None, "the swap-in ended before tbhost3 had nodes:\n" + proc.stdout.read()[-3000:]
        stop_host("tbhost3")
        stopped = True
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode != 0 and "tbhost3" in out, out[-3000:]
        assert "fatal: [tbhost3]" in out or "UNREACHABLE" in out, out[-3000:]
        # the other hosts' slices are whole: a (tbhost1) reaches b (tbhost2) over the LAN
        assert len(containers(sim, "tbhost1")) == 1 and len(containers(sim, "tbhost2")) == 1
        ok, text = ping(sim, "tbhost1", "tb_mhfault_mid_a", "b")
        assert ok, text
        # back: the re-run converges the half-made slice of tbhost3
        start_host(sim, "tbhost3")
        stopped = False
        swap(sim, tmp_path, "experiment", path)
        rec = record(tmp_path, "mhfault", "mid")
        assert all(rec[n]["state"] in ("booted", "running") for n in rec), rec
        ok, text = ping(sim, "tbhost1", rec["a"]["container"], "m11")
        assert ok, text
    finally:
        tear_down_and_check(sim, tmp_path, path, stopped, before)
