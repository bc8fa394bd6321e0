"""experiment_plan, experiment_import and experiment_report run as action plugins in the controller's process
(plugins/action/, plugin_utils/controller_action.py): through a real ``ansible`` run they
validate the module's argument spec, return the module's result, report errors and warnings as
the module did, and honour check mode. No Docker: the planner and the record are pure files."""
import json
import os
import subprocess

import yaml

from helpers import ROOT, VENV_BIN


def ansible(module, args, *extra):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible"), "localhost", "-i", "inventories/localhost.yml",
                           "-m", "testbed.containers.%s" % module, "-a", json.dumps(args)] + list(extra),
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120, check=False)
    text = proc.stdout  # "localhost | SUCCESS => {...}" (or FAILED!), the result as JSON
    assert "localhost | " in text and " => {" in text, text
    result = json.loads(text[text.index(" => {") + 4:])
    result["failed"] = "localhost | FAILED! => {" in text  # the callback leaves the key out
    # and prints the warnings before the result, each as [WARNING]: ... (joined: they wrap)
    result["warnings"] = [" ".join(w.split()) for w in text[:text.index(" => {")].split("[WARNING]: ")[1:]]
    return result


def write(tmp_path, doc):
    path = tmp_path / ("%s.yml" % doc["name"])
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_the_plan_action_plans_warns_and_refuses_like_the_module(tmp_path):
    good = write(tmp_path, {"name": "act", "project": "ctl", "storage": {"project": True},
                            "nodes": {"a": {"image": "testbed/busybox:latest"}, "b": {"image": "testbed/busybox:latest"}},
                            "lans": {"lan0": {"members": ["a", "b"]}}})
    result = ansible("experiment_plan", {"path": good, "hosts": ["localhost", "pc2"], "record_dir": str(tmp_path),
                                         "host_vars": {"pc2": {"max_nodes": 1, "tunnel_address": "192.0.2.2"},
                                                       "localhost": {"max_nodes": 1, "tunnel_address": "192.0.2.1"}}})
    assert not result.get("failed"), result
    assert result["changed"] is False and (result["project"], result["name"]) == ("ctl", "act")
    assert sorted(result["plan"]["nodes"]) == ["a", "b"] and result["plan"]["lans"]["lan0"]["subnet"]
    assert result["changed_nodes"] == {"localhost": 1, "pc2": 1}
    assert any("files written on a node are seen only by the nodes of the same host" in w
               for w in result.get("warnings", [])), result.get("warnings")
    bad = write(tmp_path, {"name": "bad", "nodes": {"a": {"image": "testbed/busybox:latest"}},
                           "lans": {"lan0": {"members": ["a", "zz"]}}})
    result = ansible("experiment_plan", {"path": bad, "hosts": ["localhost"]})
    assert result["failed"] and result["errors"] == ["lans.lan0.members[1]: unknown node 'zz' (known nodes: a)"]
    assert result["msg"].startswith("invalid experiment %s:" % bad)
    result = ansible("experiment_plan", {"path": good, "hosts": ["localhost"], "colour": "blue"})
    assert result["failed"] and "colour" in result["msg"], result


def test_the_report_action_writes_the_record_and_check_mode_does_not(tmp_path):
    path = write(tmp_path, {"name": "rep", "project": "ctl", "nodes": {"a": {"image": "testbed/busybox:latest"}}})
    plan = ansible("experiment_plan", {"path": path, "hosts": ["localhost"]})["plan"]
    records = tmp_path / "records"
    status = [[{"node": "a", "host": "localhost", "state": "booted", "container": "tb_ctl_rep_a"}]]
    result = ansible("experiment_report", {"plan": plan, "statuses": status, "record_dir": str(records)}, "--check")
    assert not result.get("failed"), result
    assert not (records / "ctl" / "rep.json").exists()
    result = ansible("experiment_report", {"plan": plan, "statuses": status, "record_dir": str(records)})
    assert result["changed"] is True and any("a" in line and "booted" in line for line in result["table"])
    record = json.loads((records / "ctl" / "rep.json").read_text())
    assert record["plan"]["name"] == "rep" and record["nodes"][0]["node"] == "a" and record["nodes"][0]["state"] == "booted"
    again = ansible("experiment_report", {"plan": plan, "statuses": [], "record_dir": str(records), "state": "absent"})
    assert again["changed"] is True and not (records / "ctl" / "rep.json").exists()


def test_the_import_action_converts_warns_writes_and_refuses_like_the_module(tmp_path):
    source = tmp_path / "lab.clab.yml"
    source.write_text("name: lab\nmgmt:\n  mtu: 1400\ntopology:\n  nodes:\n    a: {kind: linux, image: alpine:3.20}\n"
                      "    b: {kind: linux, image: alpine:3.20}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n")
    dest = tmp_path / "lab.yml"
    result = ansible("experiment_import", {"path": str(source), "dest": str(dest)}, "--check")
    assert not result["failed"], result
    assert result["changed"] is True and not dest.exists()
    assert (result["format"], result["project"], result["name"]) == ("clab", "default", "lab")
    assert any("mgmt.mtu is not carried over" in w for w in result["warnings"]), result["warnings"]
    result = ansible("experiment_import", {"path": str(source), "dest": str(dest)})
    assert result["changed"] is True and yaml.safe_load(dest.read_text())["nodes"]["a"]["image"] == "alpine:3.20"
    assert ansible("experiment_import", {"path": str(source), "dest": str(dest)})["changed"] is False
    strict = ansible("experiment_import", {"path": str(source), "strict": True})
    assert strict["failed"] and strict["msg"].startswith("cannot convert %s:" % source), strict
    assert any("mgmt.mtu" in note["message"] for note in strict["notes"]), strict["notes"]
    missing = ansible("experiment_import", {"path": str(tmp_path / "none.yml")})
    assert missing["failed"] and "cannot convert" in missing["msg"] and missing["notes"] == [], missing
    unknown = ansible("experiment_import", {"path": str(source), "options": {"colour": "blue"}})
    assert unknown["failed"] and "unknown import option 'colour'" in unknown["msg"], unknown
