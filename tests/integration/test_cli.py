"""The testbed command as a user types it (tools/testbed, from another directory): up, status
--json, ssh NODE -- hostname, list, down, on this host's real engine; after down nothing of the
experiment is left (containers, kernel links, the host's records, the controller's record).
Also list.yml on a local inventory of three hosts (no Docker) and a swap-in that fails."""
import json
import os
import subprocess

from ansible_collections.testbed.containers.plugins.module_utils.names import kernel_prefix

from helpers import BUSYBOX, DEBIAN, ROOT, container_ids, host_links, sh

PROJECT = "clitest"
TESTBED = os.path.join(ROOT, "tools", "testbed")


def run_testbed(cwd, *argv, timeout=600):
    """`testbed ARGV` run from ``cwd``: the CompletedProcess (stdout and stderr apart)."""
    return subprocess.run([TESTBED] + list(argv), cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))


def private(playbooks):
    """The -e options that keep the test's slice state and records apart (as tests/integration/helpers)."""
    return ["-e", "testbed_state_dir=%s" % playbooks.state_dir, "-e", "testbed_record_dir=%s" % playbooks.record_dir]


def new_key(folder):
    """A fresh SSH key pair: (private key path, public key)."""
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "id_ed25519"))
    return str(folder / "id_ed25519"), (folder / "id_ed25519.pub").read_text().strip()


def two_nodes(name, pub):
    return {"name": name, "project": PROJECT, "ssh_keys": [pub],
            "nodes": {"a": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"},
                      "b": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"}},
            "lans": {"lan0": {"members": ["a", "b"], "subnet": "10.77.0.0/24"}}}


def listed(document, experiment):
    """{host: nodes} of ``experiment`` in a list document."""
    return dict((h["host"], e["nodes"]) for h in document["hosts"] for e in h["experiments"]
                if e["experiment"] == experiment)


def test_up_status_ssh_list_and_down_as_a_user_types_them(playbooks, tmp_path):
    key_path, pub = new_key(tmp_path)
    path = playbooks.write(two_nodes("cli", pub))
    elsewhere = tmp_path / "elsewhere"  # the command works from any directory
    elsewhere.mkdir()
    extra = private(playbooks)
    prefix = kernel_prefix(PROJECT, "cli")
    try:
        up = run_testbed(elsewhere, "up", path, *extra)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "experiment %s/cli: 2 nodes (2 booted)" % PROJECT in up.stdout, up.stdout  # the table, streamed
        assert "skipping:" not in up.stdout  # the short output

        status = run_testbed(elsewhere, "status", path, "--json", *extra)
        assert status.returncode == 0, status.stdout + status.stderr
        document = json.loads(status.stdout)  # the document alone on stdout
        assert (document["project"], document["name"], document["counts"]) == (PROJECT, "cli", {"booted": 2})
        a = [n for n in document["nodes"] if n["node"] == "a"][0]
        assert a["ssh"].startswith("ssh -p ") and a["ssh"].endswith(" root@localhost"), a

        for node in ("a", "b"):
            ssh = run_testbed(elsewhere, "ssh", node, path, *extra, "--", "-i", key_path, "-o", "IdentitiesOnly=yes",
                              "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                              "-o", "ConnectTimeout=10", "hostname", timeout=180)
            assert ssh.returncode == 0, ssh.stdout + ssh.stderr
            assert ssh.stdout.strip() == node, ssh.stdout

        table = run_testbed(elsewhere, "list", *extra)
        assert table.returncode == 0, table.stdout + table.stderr
        assert "%s/cli" % PROJECT in table.stdout and "2 node(s): a, b" in table.stdout, table.stdout
        document = json.loads(run_testbed(elsewhere, "list", "--json", *extra).stdout)
        assert listed(document, "%s/cli" % PROJECT) == {"localhost": ["a", "b"]}
    finally:
        down = run_testbed(elsewhere, "down", path, *extra)
    assert down.returncode == 0, down.stdout + down.stderr
    assert container_ids(PROJECT, "cli") == {}
    assert not [link for link in host_links() if link.startswith(prefix)]
    assert not os.path.exists(os.path.join(playbooks.record_dir, PROJECT, "cli.json"))
    experiments = os.path.join(playbooks.state_dir, "experiments")
    assert not os.path.exists(experiments) or not any(os.scandir(experiments)), os.listdir(experiments)
    document = json.loads(run_testbed(elsewhere, "list", "--json", *extra).stdout)
    assert listed(document, "%s/cli" % PROJECT) == {}
    # status of an experiment that is gone: every node absent, and ssh says so
    ssh = run_testbed(elsewhere, "ssh", "a", path, *extra, "--", "hostname")
    assert ssh.returncode == 1 and "node a of %s/cli has no ssh command (state absent)" % PROJECT in ssh.stderr, ssh.stderr


def test_up_of_a_file_with_errors_exits_non_zero_with_the_message(playbooks, tmp_path):
    doc = {"name": "clibad", "project": PROJECT, "nodes": {"a": {"image": BUSYBOX, "augment": "none"}},
           "lans": {"lan0": {"members": ["a", "zz"]}}}
    up = run_testbed(tmp_path, "up", playbooks.write(doc), *private(playbooks))
    assert up.returncode != 0
    assert "lans.lan0.members[1]" in up.stdout and "zz" in up.stdout, up.stdout
    assert container_ids(PROJECT, "clibad") == {}


def test_list_shows_each_hosts_experiments_and_the_hosts_without_any(tmp_path):
    """playbooks/list.yml on three local "hosts" (host_dir apart): no Docker involved."""
    full, empty, broken = tmp_path / "full", tmp_path / "empty", tmp_path / "broken"
    full.mkdir()
    (broken / "control.json").mkdir(parents=True)
    (full / "control.json").write_text(json.dumps({"version": 1, "nodes": {
        "clitest/l/b": {"port": 30001}, "clitest/l/a": {"port": 30000}, "clitest/l2/x": {"port": 30002}}}))
    hosts = dict((name, {"ansible_connection": "local", "ansible_python_interpreter": os.path.join(ROOT, ".venv", "bin", "python"),
                         "testbed_control": {"host_dir": str(path)}})
                 for name, path in (("h1", full), ("h2", empty), ("h3", broken)))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"testbed_hosts": {"hosts": hosts}}))
    out_file = tmp_path / "list.json"
    proc = run_testbed(tmp_path, "list", "-i", str(inventory), "-e", "list_file=%s" % out_file, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 experiment(s) on 3 host(s)" in proc.stdout, proc.stdout
    assert "h1  clitest/l   2 node(s): a, b" in proc.stdout and "h1  clitest/l2  1 node(s): x" in proc.stdout, proc.stdout
    assert "h2  no experiment" in proc.stdout and "h3  Source is a directory" in proc.stdout, proc.stdout
    document = json.loads(out_file.read_text())
    assert [h["host"] for h in document["hosts"]] == ["h1", "h2", "h3"]
    assert document["hosts"][0]["experiments"] == [
        {"experiment": "clitest/l", "project": "clitest", "name": "l", "nodes": ["a", "b"]},
        {"experiment": "clitest/l2", "project": "clitest", "name": "l2", "nodes": ["x"]}]
    assert document["hosts"][1] == {"host": "h2", "reachable": True, "error": "", "experiments": []}
