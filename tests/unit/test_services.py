"""The host side of the full level's services: the node's accounts and keys files."""
import os

from ansible_collections.testbed.containers.plugins.module_utils import plan, planned, services

A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@lab"
B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB bob@lab"
C = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC ops@controller"


def read(path):
    with open(path) as f:
        return f.read()


def test_accounts_files_give_root_every_key_and_each_user_its_own(tmp_path):
    node_dir = str(tmp_path / "node")
    users = [{"name": "alice", "ssh_keys": [A]}, {"name": "bob", "ssh_keys": [B, A]}]
    assert services.write_accounts(node_dir, users, [C]) is True
    assert read(os.path.join(node_dir, "users")) == "alice\nbob\n"
    assert read(os.path.join(node_dir, "keys", "alice")) == A + "\n"
    assert read(os.path.join(node_dir, "keys", "bob")) == B + "\n" + A + "\n"
    assert read(os.path.join(node_dir, "keys", "root")) == C + "\n" + A + "\n" + B + "\n"  # once each
    assert services.write_accounts(node_dir, users, [C]) is False  # unchanged: nothing written


def test_a_user_removed_loses_its_keys_file(tmp_path):
    node_dir = str(tmp_path / "node")
    services.write_accounts(node_dir, [{"name": "alice", "ssh_keys": [A]}, {"name": "bob", "ssh_keys": [B]}])
    assert services.write_accounts(node_dir, [{"name": "alice", "ssh_keys": [A]}]) is True
    assert sorted(os.listdir(os.path.join(node_dir, "keys"))) == ["alice", "root"]
    assert read(os.path.join(node_dir, "users")) == "alice\n"


def test_dry_run_reports_without_writing(tmp_path):
    node_dir = str(tmp_path / "node")
    assert services.write_accounts(node_dir, [{"name": "alice", "ssh_keys": [A]}], dry_run=True) is True
    assert not os.path.exists(node_dir)


def test_service_script_listens_on_the_port_it_is_given():
    text = services.sshd_service(2022)
    assert "exec $TB/bin/dropbear -F -E -p 2022 " in text and "%(port)d" not in text


def test_users_default_to_the_controller_user_unless_root():
    assert plan.plan_users(None, "ops", [C, C]) == [{"name": "ops", "ssh_keys": [C]}]
    assert plan.plan_users(None, "root", [C]) == []
    assert plan.plan_users(None, "Not A Name", [C]) == []
    assert plan.plan_users([{"name": "alice", "ssh_keys": [A]}], "ops", [C]) == [{"name": "alice", "ssh_keys": [A]}]


def test_root_keys_are_the_files_the_controllers_and_every_users():
    p = {"ssh_keys": [C], "users": [{"name": "alice", "ssh_keys": [A, C]}, {"name": "bob", "ssh_keys": [B]}]}
    assert planned.root_keys(p) == [C, A, B]
