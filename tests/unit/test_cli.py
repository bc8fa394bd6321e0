"""The testbed command (tools/testbed, tools/testbed_cli.py): the ansible-playbook command line of
every subcommand, -i/-e/-v pass-through, the configuration it runs with, the JSON documents of
status and list, the ssh command of a node, exit statuses. A fake ansible-playbook (a script that
records its arguments and writes the document a playbook would) stands in for Ansible
(tests/integration/test_cli.py runs the real playbooks)."""
import io
import json
import os
import shlex
import subprocess
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import testbed_cli as cli  # noqa: E402  pylint: disable=wrong-import-position

FAKE = "/opt/fake/bin/ansible-playbook"
STATUS = {"project": "citest", "name": "cli", "counts": {"booted": 1, "absent": 1},
          "nodes": [{"node": "a", "host": "localhost", "state": "booted", "ssh": "ssh -p 30000 root@localhost"},
                    {"node": "b", "host": "localhost", "state": "absent", "ssh": None}]}


def dry(*argv, environ=None):
    """The command line `testbed ARGV --dry-run` prints: (added environment, argv)."""
    out = io.StringIO()
    assert cli.main(["--dry-run"] + list(argv), ansible_playbook=FAKE, environ=environ or {}, out=out) == 0
    words = shlex.split(out.getvalue().splitlines()[0])
    env = dict(w.split("=", 1) for w in words if "=" in w and w.startswith("ANSIBLE_"))
    return env, words[len(env):]


def own_vars(argv):
    """The command's own variables: the JSON extra var that follows the playbook."""
    assert argv[0] == FAKE
    values = [argv[i + 1] for i, word in enumerate(argv) if word == "-e" and argv[i + 1].startswith("{")]
    return json.loads(values[0]) if values else {}


def playbook(argv):
    return os.path.relpath(argv[1], ROOT)


@pytest.mark.parametrize("argv, expected_playbook, expected_vars", [
    (["up", "lab.yml"], "playbooks/experiment.yml", {"experiment": "HERE/lab.yml"}),
    (["down", "lab.yml"], "playbooks/teardown.yml", {"experiment": "HERE/lab.yml"}),
    (["status"], "playbooks/status.yml", {}),
    (["status", "lab.yml"], "playbooks/status.yml", {"experiment": "HERE/lab.yml"}),
    (["status", "lab.yml", "--json"], "playbooks/status.yml",
     {"experiment": "HERE/lab.yml", "format": "json", "status_file": "TMPDIR/status.json"}),
    (["ssh", "a", "lab.yml"], "playbooks/status.yml",
     {"experiment": "HERE/lab.yml", "fail_on_dead": False, "format": "json", "status_file": "TMPDIR/status.json"}),
    (["list"], "playbooks/list.yml", {}),
    (["list", "--json"], "playbooks/list.yml", {"format": "json", "list_file": "TMPDIR/list.json"}),
    (["capture", "a", "lan0", "lab.yml", "--seconds", "3", "--filter", "icmp and host 10.0.0.2", "--dest", "pcaps"],
     "playbooks/capture.yml", {"experiment": "HERE/lab.yml", "node": "a", "lan": "lan0", "seconds": 3,
                               "filter": "icmp and host 10.0.0.2", "dest": "pcaps"}),
    (["capture", "all", "lan0", "--count", "5"], "playbooks/capture.yml", {"node": "all", "lan": "lan0", "count": 5}),
    (["event", "shape lan0 delay=20ms loss=0.1%"], "playbooks/event.yml", {"event": "shape lan0 delay=20ms loss=0.1%"}),
    (["event", "exec a echo 'it''s' \"x\"", "lab.yml"], "playbooks/event.yml",
     {"experiment": "HERE/lab.yml", "event": "exec a echo 'it''s' \"x\""}),
    (["graph", "lab.yml", "--dest", "pic", "--formats", "svg"], "playbooks/visualize.yml",
     {"experiment": "HERE/lab.yml", "dest": "pic", "formats": "svg"}),
    (["snapshot", "a", "lab.yml", "--image", "me/a:v1"], "playbooks/snapshot.yml",
     {"experiment": "HERE/lab.yml", "node": "a", "snapshot_image": "me/a:v1"}),
    (["prepare"], "playbooks/hosts.yml", {}),
])
def test_every_command_runs_its_playbook_with_its_variables_as_one_json_extra_var(argv, expected_playbook, expected_vars):
    _env, line = dry(*argv)
    assert playbook(line) == expected_playbook
    expected = json.loads(json.dumps(expected_vars).replace("HERE", os.getcwd()))
    assert own_vars(line) == expected
    assert line.count("-e") == (1 if expected else 0)  # nothing else is added


def test_the_experiment_file_is_passed_as_an_absolute_path_wherever_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert own_vars(dry("up", "sub/../lab.yml")[1]) == {"experiment": str(tmp_path / "lab.yml")}
    assert own_vars(dry("up", "/abs/lab.yml")[1]) == {"experiment": "/abs/lab.yml"}


def test_inventories_extra_vars_and_verbosity_pass_through_before_or_after_the_command():
    _env, line = dry("-i", "hosts.yml", "-e", "testbed_group=lab", "up", "lab.yml", "-i", "more.yml",
                     "-e", "@vars.yml", "-vv", "-e", '{"x": 1}')
    assert line[2:6] == ["-i", "hosts.yml", "-i", "more.yml"]
    # the command's own variables first, so that the user's -e wins over them
    assert line[6] == "-e" and json.loads(line[7]) == {"experiment": os.path.abspath("lab.yml")}
    assert line[8:] == ["-e", "testbed_group=lab", "-e", "@vars.yml", "-e", '{"x": 1}', "-vv"]


def test_arguments_after_a_double_dash_go_to_ansible_playbook():
    assert dry("up", "lab.yml", "--", "--check", "--diff")[1][-2:] == ["--check", "--diff"]
    # the double dash of `testbed ssh` belongs to ssh, not to ansible-playbook
    assert "hostname" not in dry("ssh", "a", "--", "hostname")[1]


def test_a_checkout_runs_with_its_own_ansible_cfg_and_short_output():
    env, _line = dry("list")
    assert env == {"ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"}
    # what the user set is kept; -v shows everything
    assert dry("list", environ={"ANSIBLE_CONFIG": "/mine.cfg", "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "true"})[0] == {}
    assert dry("list", "-v")[0] == {"ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg")}


def test_an_installed_collection_runs_with_the_users_configuration():
    installed = "/home/u/.ansible/collections/ansible_collections/testbed/containers"
    assert cli.installed(installed) and not cli.installed(ROOT)
    env, added = cli.environment({"PATH": "/bin"}, root=installed)
    assert added == dict(cli.QUIET_ENV) and "ANSIBLE_CONFIG" not in env and env["PATH"] == "/bin"


def test_ansible_playbook_beside_this_python_wins_over_path(tmp_path):
    (tmp_path / "venv").mkdir()
    beside = tmp_path / "venv" / "ansible-playbook"
    beside.write_text("#!/bin/sh\n")
    beside.chmod(0o755)
    python = str(tmp_path / "venv" / "python")
    assert cli.find_ansible_playbook(python, which=lambda name: "/usr/bin/" + name) == str(beside)
    beside.chmod(0o644)  # not executable: the one on PATH
    assert cli.find_ansible_playbook(python, which=lambda name: "/usr/bin/" + name) == "/usr/bin/ansible-playbook"
    with pytest.raises(cli.CliError, match="ansible-playbook not found beside .* nor on PATH"):
        cli.find_ansible_playbook(python, which=lambda name: None)


def test_a_playbook_the_collection_lacks_is_named(tmp_path):
    with pytest.raises(cli.CliError, match="hosts.yml: no such playbook in this collection"):
        cli.playbook_path("hosts", root=str(tmp_path))


def test_convert_runs_the_converter_with_its_options():
    out = io.StringIO()
    assert cli.main(["convert", "lab.ns", "-o", "out.yml", "--format", "ns", "--strict", "--dry-run"], out=out) == 0
    assert shlex.split(out.getvalue()) == [os.path.join(ROOT, "tools", "testbed-convert"), "lab.ns", "-o", "out.yml",
                                           "--format", "ns", "--strict"]


def test_convert_writes_the_experiment_file(tmp_path):
    source = os.path.join(ROOT, "tests", "unit", "import_sources", "clab", "bridge.clab.yml")
    dest = tmp_path / "out.yml"
    assert cli.main(["convert", source, "-o", str(dest)], err=io.StringIO()) == 0
    assert "nodes:" in dest.read_text()


# --- the document of status and list, the ssh command -------------------------------------------

def test_ssh_command_is_the_one_the_status_shows_with_the_extra_arguments_after_it():
    assert cli.ssh_command(STATUS, "a") == ["ssh", "-p", "30000", "root@localhost"]
    assert cli.ssh_command(STATUS, "a", ["-o", "BatchMode=yes", "hostname"]) == \
        ["ssh", "-p", "30000", "root@localhost", "-o", "BatchMode=yes", "hostname"]


def test_ssh_to_a_node_the_experiment_lacks_or_that_is_not_swapped_in_is_refused_with_its_reason():
    with pytest.raises(cli.CliError, match=r"node: citest/cli has no node 'zz' \(its nodes: a, b\)"):
        cli.ssh_command(STATUS, "zz")
    with pytest.raises(cli.CliError, match="node b of citest/cli has no ssh command .state absent.: swap it in first"):
        cli.ssh_command(STATUS, "b")


def test_a_missing_or_broken_document_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(cli.CliError, match="wrote no status document"):
        cli.read_document(str(tmp_path / "none.json"), "status")
    (tmp_path / "bad.json").write_text("ok: [localhost]")
    with pytest.raises(cli.CliError, match="the list document is not JSON"):
        cli.read_document(str(tmp_path / "bad.json"), "list")


FAKE_SCRIPT = """#!%(python)s
# a stand-in for ansible-playbook: records its argv and environment, writes the document the
# playbook would (status_file / list_file of its JSON extra var), prints, exits FAKE_STATUS
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps({"argv": sys.argv, "config": os.environ.get("ANSIBLE_CONFIG")}) + "\\n")
for word in sys.argv:
    if word.startswith("{"):
        variables = json.loads(word)
        for key in ("status_file", "list_file"):
            if key in variables and os.environ.get("FAKE_DOCUMENT"):
                with open(variables[key], "w") as f:
                    f.write(os.environ["FAKE_DOCUMENT"])
print("PLAY RECAP ok=1 (the fake's output)")
sys.exit(int(os.environ.get("FAKE_STATUS", "0")))
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake ansible-playbook; returns a function that runs `testbed ARGV` with it: the exit
    status (code), stdout (out), stderr (err), its recorded calls and the execvp calls (execs)."""
    script = tmp_path / "bin" / "ansible-playbook"
    script.parent.mkdir()
    script.write_text(FAKE_SCRIPT % {"python": sys.executable})
    script.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))

    def call(*argv, status=0, document=None):
        monkeypatch.setenv("FAKE_STATUS", str(status))
        monkeypatch.setenv("FAKE_DOCUMENT", json.dumps(document) if document is not None else "")
        out, err, execs = io.StringIO(), io.StringIO(), []
        code = cli.main(list(argv), ansible_playbook=str(script), out=out, err=err,
                        execvp=lambda file, args: execs.append(args))
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return types.SimpleNamespace(code=code, out=out.getvalue(), err=err.getvalue(), calls=calls, execs=execs)
    return call


def test_the_exit_status_is_ansible_playbooks(fake, capfd):
    assert fake("up", "lab.yml").code == 0
    assert "the fake's output" in capfd.readouterr().out  # streamed, not captured
    assert fake("up", "lab.yml", status=2).code == 2
    assert fake("down", "lab.yml", status=4).code == 4


def test_status_json_prints_only_the_document_and_removes_its_file(fake):
    result = fake("status", "lab.yml", "--json", document=STATUS)
    assert result.code == 0 and json.loads(result.out) == STATUS and result.err == ""
    assert result.calls[0]["config"] == os.path.join(ROOT, "ansible.cfg")
    assert not os.path.exists(own_vars([FAKE] + result.calls[0]["argv"][1:])["status_file"])


def test_status_json_of_a_failed_run_prints_the_document_and_ansibles_output_on_stderr(fake):
    # status.yml writes the document, then fails when a node is dead
    result = fake("status", "--json", status=2, document=STATUS)
    assert result.code == 2 and json.loads(result.out) == STATUS and "the fake's output" in result.err
    # no document at all (the plan failed): ansible-playbook's output, its exit status
    result = fake("status", "--json", status=2)
    assert result.code == 2 and result.out == "" and "the fake's output" in result.err
    result = fake("list", "--json", status=0)
    assert result.code == 1 and result.out == "" and "the fake's output" in result.err


def test_list_json_prints_the_list_document(fake):
    document = {"hosts": [{"host": "localhost", "reachable": True, "error": "",
                           "experiments": [{"experiment": "citest/cli", "project": "citest", "name": "cli", "nodes": ["a"]}]}]}
    result = fake("list", "--json", "-i", "hosts.yml", document=document)
    assert result.code == 0 and json.loads(result.out) == document
    assert result.calls[0]["argv"][2:4] == ["-i", "hosts.yml"]


def test_ssh_execs_the_nodes_ssh_command_with_the_arguments_after_the_double_dash(fake):
    result = fake("ssh", "a", "lab.yml", "--", "-o", "BatchMode=yes", "hostname", document=STATUS)
    assert result.code == 0 and result.out == ""
    assert result.execs == [["ssh", "-p", "30000", "root@localhost", "-o", "BatchMode=yes", "hostname"]]
    argv = result.calls[0]["argv"]
    assert own_vars([FAKE] + argv[1:])["fail_on_dead"] is False and "hostname" not in argv
    result = fake("ssh", "zz", document=STATUS)
    assert result.code == 1 and result.execs == [] and "testbed ssh: node: citest/cli has no node 'zz'" in result.err
    result = fake("ssh", "a", status=4)  # no document (the plan failed): ansible-playbook's output
    assert result.code == 4 and result.execs == [] and "the fake's output" in result.err
    # another host unreachable (exit 4) does not keep us from this node; its output is shown
    result = fake("ssh", "a", status=4, document=STATUS)
    assert result.execs == [["ssh", "-p", "30000", "root@localhost"]] and "the fake's output" in result.err


def test_the_wrapper_runs_the_command_from_any_directory(tmp_path):
    proc = subprocess.run([os.path.join(ROOT, "tools", "testbed"), "up", "lab.yml", "--dry-run"], cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    words = shlex.split(proc.stdout)
    assert os.path.join(ROOT, "playbooks", "experiment.yml") in words
    assert '{"experiment": "%s"}' % (tmp_path / "lab.yml") in words
    proc = subprocess.run([os.path.join(ROOT, "tools", "testbed"), "up"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60, check=False)
    assert proc.returncode == 2 and "the following arguments are required: FILE" in proc.stderr
