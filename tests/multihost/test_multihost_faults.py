"""A physical host lost under an experiment (its simulated host's container stopped): a swap-in
fails naming it and leaves the other hosts' slices as they were, a re-run after it returns
converges; a teardown while it is unreachable cleans the others, says what it could not reach
and keeps the record, and a later teardown finishes the job.  (The last test of the multi-host
run: it stops and starts tbhost3.)"""
import time

from hosts import DOCKER, _wait_ready, run
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
        if stopped:
            start_host(sim, "tbhost3")
        swap(sim, tmp_path, "teardown", path, check=False)
    for host in sim.names:
        assert containers(sim, host) == [] and links(sim, host) == before[host], host
