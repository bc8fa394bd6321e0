"""report.converge_record (module experiment_report): the controller's record written, kept,
reported and removed, check mode writing nothing."""
import os

from ansible_collections.testbed.containers.plugins.module_utils import plan, report


def status(state, start="none"):
    return [{"node": "a", "host": "h", "state": state, "container": "tb_p_e_a", "start": start,
             "ssh": "ssh -p 30000 root@h"}]


def test_the_record_is_written_once_and_node_news_is_not_a_change(tmp_path):
    p = plan.make_plan({"name": "e", "project": "p", "nodes": {"a": {"image": "busybox"}}}, ["h"])
    d = str(tmp_path)
    path = report.record_path(d, "p", "e")
    assert report.converge_record(p, [status("running")], d, dry_run=True)[:2] == (True, ["write %s" % path])
    assert not os.path.exists(path)
    changed, ops, result = report.converge_record(p, [status("running")], d, timings=[{"host": "h", "nodes": 1.5}],
                                                  plan_seconds=0.2)
    assert changed and ops == ["write %s" % path] and result["path"] == path
    assert report.read_record(d, "p", "e") == result["record"]
    assert result["table"][-2:] == ["seconds per phase: plan 0.2", "  h: nodes 1.5 (1.5)"]
    assert result["dead"] == [] and result["status"]["counts"] == {"running": 1}
    assert report.converge_record(p, [status("running")], d)[:2] == (False, [])
    # the node booted: the record is rewritten, but the experiment did not change
    assert report.converge_record(p, [status("booted", "running")], d)[:2] == (False, ["write %s" % path])
    assert report.converge_record(p, [status("dead")], d, write=False)[:2] == (False, [])


def test_absent_removes_the_record_once(tmp_path):
    p = plan.make_plan({"name": "e", "project": "p", "nodes": {"a": {"image": "busybox"}}}, ["h"])
    d = str(tmp_path)
    report.converge_record(p, [status("booted")], d)
    path = report.record_path(d, "p", "e")
    assert report.converge_record(p, [], d, state="absent", dry_run=True) == (
        True, ["remove %s" % path], {"path": path})
    assert os.path.exists(path)
    assert report.converge_record(p, [], d, state="absent")[:2] == (True, ["remove %s" % path])
    assert report.converge_record(p, [], d, state="absent")[:2] == (False, [])
