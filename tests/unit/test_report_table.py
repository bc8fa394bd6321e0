"""The node table: the SSH column tells when a full node's own SSH server is not running."""
from ansible_collections.testbed.containers.plugins.module_utils import report


def record(**extra):
    node = {"node": "a", "host": "h", "state": "booted", "container": "tb_p_e_a", "interfaces": [],
            "ssh": "ssh -p 30000 alice@h"}
    node.update(extra)
    return {"project": "p", "name": "e", "nodes": [node]}


def test_ssh_column_shows_a_stopped_sshd_and_nothing_when_it_runs():
    assert report.table(record(sshd="running"))[2].endswith("ssh -p 30000 alice@h")
    assert report.table(record(sshd="exited:1"))[2].endswith("ssh -p 30000 alice@h (sshd exited:1)")
    assert report.table(record())[2].endswith("ssh -p 30000 alice@h")  # exec style: no sshd of its own


def test_sshd_state_is_volatile_so_the_record_does_not_change_with_it():
    assert report.stable(record(sshd="running")) == report.stable(record(sshd="exited:1"))
