#!/usr/bin/env python
"""Noisy-neighbour benchmark: does experiment A's hog move experiment B's shaped throughput and RTT?

Run from the repository root, as root, with a Docker engine running and the images built:

    .venv/bin/python bench/noisy.py [--rounds 5] [--rate 200mbit] [--seconds 3] [--cpus 1] [--memory 256m]

Two experiments on this host, swapped in through ``experiment.yml`` as a user does:

* **B** (``noisyb/quiet``): nodes ``a`` and ``b`` (testbed/debian:bookworm, ``b`` serving iperf3) on a
  LAN shaped to ``--rate``; no limits of their own.
* **A** (``noisya/hog``): node ``hog`` with ``cpus``/``memory``/``pids`` limits (``--cpus``,
  ``--memory``, ``pids: 64``), idle at first.

Each round measures B: TCP throughput of ``a`` to ``b`` (iperf3, ``--seconds``) and the RTT of 50
pings 20 ms apart. ``--rounds`` rounds with A idle, then A starts its hogs inside its limits (a
busy loop per host CPU, a process holding 80% of its memory, a fork bomb stopped by its pids
limit) and ``--rounds`` rounds again. It prints the medians of both phases and their change in
per cent (the reliability issue's bound: 10%), and the hog's CPU use as the engine reports it.
Both experiments are torn down at the end, also on failure.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import subprocess
import sys
import tempfile
import time

# tests/checkout.py links the checkout as ansible_collections.testbed.containers
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import checkout  # noqa: E402  pylint: disable=wrong-import-position

ROOT = checkout.importable("tests/integration")

from helpers import DOCKER, Playbooks  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.testbed.containers.plugins.module_utils import fidelity  # noqa: E402  pylint: disable=wrong-import-position

IMAGE = "testbed/debian:bookworm"
HOG = "tb_noisya_hog_hog"
CLIENT, SERVER = "tb_noisyb_quiet_a", "10.88.0.2"
BOUND = 10.0  # per cent, the bound


def quiet(rate):
    return {"name": "quiet", "project": "noisyb",
            "defaults": {"image": IMAGE, "augment": "none"},
            "nodes": {"a": {"command": ["sleep", "infinity"]}, "b": {"command": ["iperf3", "-s"]}},
            "lans": {"lan0": {"members": [{"node": "a", "ip": "10.88.0.1"}, {"node": "b", "ip": SERVER}],
                              "subnet": "10.88.0.0/24", "bandwidth": rate}}}


def hog(cpus, memory):
    return {"name": "hog", "project": "noisya",
            "nodes": {"hog": {"image": IMAGE, "augment": "none", "command": ["sleep", "infinity"],
                              "cpus": cpus, "memory": memory, "pids": 64}}}


def docker(*args, check=True, timeout=120):
    proc = subprocess.run([DOCKER] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("docker %s: %s" % (" ".join(args), proc.stdout))
    return proc.stdout


def memory_bytes(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].lower()]) if text[-1].lower() in units else int(text)


def start_hogs(memory):
    """A busy loop per host CPU, a process holding 80% of the memory limit, a fork bomb."""
    hold = int(memory_bytes(memory) * 0.8) >> 20
    cpus = os.cpu_count() or 1
    docker("exec", "-d", HOG, "sh", "-c", "for i in $(seq %d); do (while :; do :; done) & done; wait" % cpus)
    # tail keeps the last line of its input in memory: `hold` MiB of zeros with no newline, and an
    # input that never ends (sleep keeps the pipe open)
    docker("exec", "-d", HOG, "sh", "-c", "(head -c %dM /dev/zero; sleep infinity) | tail > /dev/null" % hold)
    docker("exec", "-d", HOG, "sh", "-c", "b() { b | b & }; b")


def usage():
    """The hog node's CPU (per cent of one CPU), resident memory and processes, from docker top
    (docker stats reads nothing on some cgroup setups)."""
    lines = docker("top", HOG, "-o", "pid,pcpu,rss").splitlines()[1:]
    cpu = sum(float(line.split()[1]) for line in lines)
    rss = sum(int(line.split()[2]) for line in lines) / 1024.0
    return "CPU %.0f%% of one CPU, %.0f MiB resident, %d processes" % (cpu, rss, len(lines))


def measure(seconds):
    out = docker("exec", CLIENT, "iperf3", "-c", SERVER, "-t", str(seconds), "-J", check=False,
                 timeout=seconds + 30)
    tcp = fidelity.parse_iperf3(out)
    docker("exec", CLIENT, "ping", "-n", "-q", "-c", "5", "-i", "0.02", SERVER, check=False, timeout=60)  # warm-up
    out = docker("exec", CLIENT, "ping", "-n", "-c", "50", "-i", "0.02", SERVER, check=False, timeout=60)
    rtt = fidelity.rtt_summary(fidelity.parse_ping(out))
    return tcp["bits_per_second"] / 1e6, rtt["median"]


def phase(label, rounds, seconds):
    mbits, rtts = [], []
    for i in range(rounds):
        mbit, rtt = measure(seconds)
        mbits.append(mbit)
        rtts.append(rtt)
        print("  %s round %d: %.1f Mbit/s, RTT median %.3f ms" % (label, i + 1, mbit, rtt))
    return fidelity.median(mbits), fidelity.median(rtts)


def change(before, after):
    return 100.0 * (after - before) / before if before else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", default="200mbit", help="B's LAN bandwidth (default 200mbit)")
    parser.add_argument("--seconds", type=int, default=3, help="iperf3 seconds per round (default 3)")
    parser.add_argument("--cpus", type=float, default=1.0, help="A's cpus limit (default 1)")
    parser.add_argument("--memory", default="256m", help="A's memory limit (default 256m)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="testbed-bench-noisy.")
    playbooks = Playbooks(tmp)
    paths = [playbooks.write(quiet(args.rate)), playbooks.write(hog(args.cpus, args.memory))]
    try:
        start = time.time()
        for path in paths:
            playbooks.swap_in(path)
        print("swapped in B (LAN at %s) and A (cpus %s, memory %s, pids 64) in %.0f s on %d CPUs"
              % (args.rate, args.cpus, args.memory, time.time() - start, os.cpu_count() or 1))
        idle = phase("A idle", args.rounds, args.seconds)
        start_hogs(args.memory)
        time.sleep(3)
        print("A's hog: %s" % usage())
        busy = phase("A hogging", args.rounds, args.seconds)
        tput, rtt = change(idle[0], busy[0]), change(idle[1], busy[1])
        print("| B's figure (median of %d) | A idle | A hogging | change |" % args.rounds)
        print("| --- | ---: | ---: | ---: |")
        print("| TCP throughput, Mbit/s | %.1f | %.1f | %+.1f%% |" % (idle[0], busy[0], tput))
        print("| ping RTT median, ms | %.3f | %.3f | %+.1f%% |" % (idle[1], busy[1], rtt))
        within = abs(tput) <= BOUND and abs(rtt) <= BOUND
        print("within %.0f%%: %s" % (BOUND, "yes" if within else "NO"))
        return 0 if within else 1
    finally:
        for path in reversed(paths):
            playbooks.teardown(path, check=False)


if __name__ == "__main__":
    sys.exit(main())
