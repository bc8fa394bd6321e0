"""The host role's kernel settings on a host that is itself a container (issue 17, item 3).

A network namespace of its own lacks the neighbour-table limits (``net.ipv4.neigh.default.*``
belong to the init namespace), as an LXC-based testbed host or our simulated hosts do. The
role's sysctl tasks run there in check mode (nothing is written to this machine's kernel): the
defaults the kernel lacks are skipped with one warning naming them; the same key set by the
user is an error naming it."""
import json
import os
import subprocess

from helpers import ROOT, VENV_BIN

PLAY = """- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: testbed.containers.host
        tasks_from: sysctl
"""


def run_in_own_netns(tmp_path, extra=()):
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: %s\n" % os.path.join(VENV_BIN, "python"))
    args = ["unshare", "--net", os.path.join(VENV_BIN, "ansible-playbook"), "--check", "-i",
            str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")] + list(extra)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120, check=False)


def test_defaults_the_kernel_lacks_are_skipped_with_one_warning(tmp_path):
    proc = run_in_own_netns(tmp_path)
    assert proc.returncode == 0, proc.stdout
    out = " ".join(proc.stdout.split())
    assert out.count("lacks the kernel setting(s)") == 1, proc.stdout
    assert ("lacks the kernel setting(s) net.ipv4.neigh.default.gc_thresh1, net.ipv4.neigh.default.gc_thresh2, "
            "net.ipv4.neigh.default.gc_thresh3") in out, proc.stdout
    assert "failed=0" in out


def test_a_setting_the_user_gave_is_still_an_error(tmp_path):
    settings = {"kernel.pid_max": 4194304, "net.ipv4.neigh.default.gc_thresh1": 2048}
    extra = ["-e", json.dumps({"testbed_host_sysctls": settings})]
    proc = run_in_own_netns(tmp_path, extra)
    assert proc.returncode != 0, proc.stdout
    assert "settings.net.ipv4.neigh.default.gc_thresh1: " in proc.stdout
    assert "remove it from the settings" in proc.stdout
