#!/usr/bin/env python
"""Kill-and-rerun benchmark: SIGKILL the controller at N moments of a swap-in, re-run, check.

Run from the repository root, as root, with a Docker engine running and the images built:

    .venv/bin/python bench/faults.py [--nodes 50] [--kills 10] [--fuzz 0]

The experiment has ``--nodes`` busybox nodes (augment basic) on 3 LANs joined by two routers,
one LAN shaped.  A clean swap-in and teardown give the duration D and the host's state before;
then, for each of ``--kills`` moments spread from 5% to 95% of D (every third one kills only
``ansible-playbook``, whose workers run on holding the experiment lock; the others the whole
process tree), the swap-in is killed, run again and checked (every node running, pings across
the routers, one root qdisc per veth, no iptables rule twice); then a teardown is killed and
run again, and the host must be exactly as after the clean cycle (links, containers, iptables,
files under the state directory, allocations; what differs is printed).  It prints one line per cycle and the survived count.
``--fuzz N`` also runs the experiment-file fuzzer with N documents (tests/unit's strategies).
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

ROOT = checkout.importable("tests/integration", "tests/faults")

from helpers import Playbooks  # noqa: E402  pylint: disable=wrong-import-position
from kills import assert_converged, host_state, run_and_kill, timed_run  # noqa: E402  pylint: disable=wrong-import-position
from test_kill_playbooks import experiment  # noqa: E402  pylint: disable=wrong-import-position


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--fuzz", type=int, default=0, help="also fuzz this many experiment files")
    args = parser.parse_args()
    if args.nodes < 9:
        parser.error("--nodes must be 9 or more (three LANs, two routers)")
    doc = experiment(args.nodes, name="benchkills")
    third = max(1, args.nodes // 3)
    pings = [("n1", "n0"), ("n1", "n%d" % (third + 1)), ("n%d" % (args.nodes - 1), "n%d" % (third + 1))]
    tmp = tempfile.mkdtemp(prefix="testbed-bench-faults.")
    playbooks = Playbooks(tmp)
    path = playbooks.write(doc)
    survived = 0
    try:
        clean = timed_run(playbooks, "experiment", path)
        clean_down = timed_run(playbooks, "teardown", path)
        # after one clean cycle: a host's first swap-in makes what stays for every experiment
        # (the control network dockercnet, its iptables rules, the kernel's ifb0/ifb1 when the
        # ifb module loads), which teardown rightly leaves
        before = host_state(playbooks.state_dir)
        print("clean swap-in %.1f s, teardown %.1f s (%d nodes)" % (clean, clean_down, args.nodes))
        for i in range(args.kills):
            fraction = 0.05 + 0.9 * i / max(1, args.kills - 1)
            whole = i % 3 != 2
            start = time.time()
            finished = run_and_kill(playbooks, "experiment", path, clean * fraction, whole)
            rerun = timed_run(playbooks, "experiment", path)
            ok = True
            try:
                assert_converged(doc, pings)
            except AssertionError as exc:
                ok = False
                print("  not converged: %s" % exc)
            run_and_kill(playbooks, "teardown", path, clean_down * fraction, whole)
            playbooks.teardown(path)
            after = host_state(playbooks.state_dir)
            clean_after = after == before
            for key in sorted(before):
                if after[key] != before[key]:
                    print("  left after teardown (%s): %s; gone: %s" % (
                        key, sorted(set(after[key]) - set(before[key]))[:8], sorted(set(before[key]) - set(after[key]))[:8]))
            survived += ok and clean_after
            print("kill %2d at %3.0f%% (%s)%s: re-run %.1f s, converged %s, teardown clean %s (cycle %.0f s)"
                  % (i + 1, fraction * 100, "tree" if whole else "ansible-playbook only",
                     " [had finished]" if finished else "", rerun, ok, clean_after, time.time() - start))
        print("survived %d/%d kill-and-rerun cycles" % (survived, args.kills))
    finally:
        playbooks.teardown(path, check=False)
    if args.fuzz:
        env = dict(os.environ, TESTBED_FUZZ_EXAMPLES=str(args.fuzz))
        start = time.time()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
                               "tests/unit/test_fuzz_experiment.py"], cwd=ROOT, env=env, check=False)
        verdict = "no failure" if proc.returncode == 0 else "FAILURES"
        print("fuzzed %d documents in %.0f s: %s" % (args.fuzz, time.time() - start, verdict))
    return 0 if survived == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
