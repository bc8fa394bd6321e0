"""playbooks/storage.yml (role storage) on this machine's real kernel, which has neither an NFS
server nor an NFS client (../shared/machine.md): with two hosts the role must refuse each host
with what to do instead, before any package is installed or file written; with one host it has
nothing to share; absent changes nothing that is not there. The export and mount paths are unit
tests (tests/unit/test_nfs_storage.py); the shared directory itself is tested on the simulated
hosts with an operator-given mount (tests/multihost)."""
import os
import subprocess

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import storage

from helpers import ROOT, VENV_BIN, recap_changed

TWO_HOSTS = """testbed_hosts:
  hosts:
    pc1: {ansible_connection: local, ansible_python_interpreter: "{{ ansible_playbook_python }}"}
    pc2: {ansible_connection: local, ansible_python_interpreter: "{{ ansible_playbook_python }}"}
"""


def kernel_has(role):
    return storage.kernel_missing(role, open("/proc/filesystems").read()) is None


def run(inventory, *extra):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/storage.yml", "-i", inventory]
                          + list(extra), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300, check=False)


def fstab():
    try:
        return open(storage.FSTAB).read()
    except IOError:
        return None


@pytest.fixture
def two_hosts(tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(TWO_HOSTS)
    return str(path)


@pytest.mark.skipif(kernel_has("server") or kernel_has("client"),
                    reason="this kernel has NFS: the refusal cannot be seen here, and the export would install packages")
def test_a_kernel_without_nfs_is_refused_on_every_host_before_anything_is_installed(two_hosts):
    before = fstab()
    proc = run(two_hosts)
    assert proc.returncode != 0, proc.stdout
    out = " ".join(proc.stdout.replace("''", "'").split())
    server, client = out.split("fatal: [pc1]")[1][:600], out.split("fatal: [pc2]")[1][:600]
    assert "kernel has no NFS server (no nfsd in /proc/filesystems" in server, proc.stdout
    assert "kernel has no NFS client (no nfs or nfs4 in /proc/filesystems" in client, proc.stdout
    assert "set testbed_project_shared: true" in server and "set testbed_project_shared: true" in client
    assert "Install the NFS server or client" not in proc.stdout
    assert not os.path.exists(storage.EXPORTS_FILE) and fstab() == before


def test_one_host_has_nothing_to_share_and_absent_removes_nothing(two_hosts):
    before = fstab()
    proc = run(os.path.join(ROOT, "inventories", "localhost.yml"))
    assert proc.returncode == 0, proc.stdout
    assert "One host in the play: its project directory is bind-mounted" in proc.stdout
    assert recap_changed(proc.stdout) == {"localhost": 0}
    proc = run(two_hosts, "-e", "testbed_storage_state=absent")
    assert proc.returncode == 0, proc.stdout
    assert recap_changed(proc.stdout) == {"localhost": 0, "pc1": 0, "pc2": 0}, proc.stdout
    assert fstab() == before and not os.path.exists(storage.EXPORTS_FILE)
