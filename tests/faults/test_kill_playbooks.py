"""SIGKILL of the controller at moments spread over a swap-in, a modification and a teardown:
a re-run converges to the whole experiment, a teardown after a kill leaves the host as it was
(bench/faults.py runs the 50-node, 10-kill version)."""
from kills import assert_converged, host_state, run_and_kill, timed_run
from helpers import BUSYBOX

PROJECT = "killtest"


def experiment(nodes=9, name="kills"):
    members = ["n%d" % i for i in range(nodes)]
    third = max(1, nodes // 3)
    return {"name": name, "project": PROJECT,
            "nodes": dict((n, {"image": BUSYBOX, "augment": "basic", "forwarding": n in ("n0", "n%d" % third)})
                          for n in members),
            "lans": {"lan0": {"members": members[:third + 1], "bandwidth": "100mbit"},
                     "lan1": {"members": members[third:2 * third + 1]},
                     "lan2": {"members": [members[0]] + members[2 * third + 1:]}}}


PINGS = [("n1", "n0"), ("n1", "n4"), ("n8", "n4")]


def test_kills_during_swap_in_modify_and_teardown_converge_or_leave_nothing(playbooks):
    doc = experiment()
    path = playbooks.write(doc)
    before = host_state(playbooks.state_dir)
    try:
        clean = timed_run(playbooks, "experiment", path)
        timed_run(playbooks, "teardown", path)
        assert host_state(playbooks.state_dir) == before
        # whole controller tree at 30% and 70% of a clean swap-in; ansible-playbook alone (its
        # workers run on, holding the lock) at 50%
        for fraction, whole in ((0.3, True), (0.7, True), (0.5, False)):
            run_and_kill(playbooks, "experiment", path, clean * fraction, whole)
            playbooks.swap_in(path)
            assert_converged(doc, PINGS)
            run_and_kill(playbooks, "teardown", path, 2.5 + fraction, whole)
            playbooks.teardown(path)
            assert host_state(playbooks.state_dir) == before, "kill at %.0f%%" % (fraction * 100)
        # a modification (a node more on lan2) killed halfway, then run again
        playbooks.swap_in(path)
        doc["nodes"]["n9"] = {"image": BUSYBOX, "augment": "basic"}
        doc["lans"]["lan2"]["members"].append("n9")
        playbooks.write(doc)
        run_and_kill(playbooks, "experiment", path, clean * 0.6)
        playbooks.swap_in(path)
        assert_converged(doc, PINGS + [("n9", "n1")])
    finally:
        playbooks.teardown(path)
    assert host_state(playbooks.state_dir) == before
