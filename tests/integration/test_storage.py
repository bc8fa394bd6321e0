"""Storage on the real engine (issue 19): a node's named volume keeps its files across a recreate
(modify in place) and a restart; the project's shared directory is the same directory in every
node, and a full node's account has its home there with the project-wide uid; a volume dropped
from the file goes at the next swap-in; teardown removes the volumes but the one marked keep
(whose keep was changed after it was made), and leaves the project's files."""
import json
import os

from ansible_collections.testbed.containers.plugins.module_utils import names
from helpers import BUSYBOX, DOCKER, container_ids, dexec, sh

PROJECT = "citest"
NAME = "storage"


def doc(env="1", keep=False, scratch=True):
    volumes = [{"name": "data", "path": "/data"}, {"name": "cache", "path": "/cache", "keep": keep}]
    if scratch:
        volumes.append({"name": "scratch", "path": "/scratch"})
    return {"name": NAME, "project": PROJECT, "storage": {"project": True, "homes": True}, "users": ["alice"],
            "defaults": {"image": BUSYBOX, "augment": "none"},
            "nodes": {"a": {"command": ["sleep", "3600"], "env": {"V": env}, "volumes": volumes},
                      "b": {"command": ["sleep", "3600"]},
                      "c": {"command": ["sleep", "3600"], "augment": "full"}}}


def volumes():
    out = sh(DOCKER, "volume", "ls", "-q", "--filter", "label=testbed.project=%s" % PROJECT,
             "--filter", "label=testbed.experiment=%s" % NAME).stdout
    return sorted(out.split())


def test_volumes_survive_recreate_and_restart_and_the_project_directory_is_shared(playbooks, tmp_path):
    root = os.path.join(str(tmp_path), "projects")
    extra = ["-e", "testbed_project_root=%s" % root]
    path = playbooks.write(doc())
    try:
        out = playbooks.swap_in(path, extra=extra).stdout
        assert "make volume tb_citest_storage_a_data (node a, /data)" in out, out
        assert volumes() == ["tb_citest_storage_a_cache", "tb_citest_storage_a_data", "tb_citest_storage_a_scratch"]
        labels = json.loads(sh(DOCKER, "volume", "inspect", "tb_citest_storage_a_data").stdout)[0]["Labels"]
        assert labels["testbed.node"] == "a" and labels["testbed.keep"] == "false", labels
        project_dir = os.path.join(root, PROJECT)
        assert oct(os.stat(project_dir).st_mode & 0o7777) == "0o1777"
        ids = container_ids(PROJECT, NAME)
        dexec(ids["a"], "sh", "-c", "echo kept > /data/f && echo c > /cache/f && echo from-a > /proj/citest/note")
        # the project's directory: the same files in b, and on the host
        assert dexec(ids["b"], "cat", "/proj/citest/note").stdout.strip() == "from-a"
        with open(os.path.join(project_dir, "note")) as f:
            assert f.read().strip() == "from-a"
        # storage.homes: the full node's account has its home there, with the project-wide uid
        uid = names.account_uid("alice")
        passwd = dexec(ids["c"], "grep", "^alice:", "/etc/passwd").stdout.strip()
        assert passwd.startswith("alice:x:%d:%d:testbed user:/proj/citest/users/alice:" % (uid, uid)), passwd
        assert os.stat(os.path.join(project_dir, "users", "alice")).st_uid == uid

        # modify in place: a's env changes (a recreate), its scratch volume leaves the file, the
        # cache volume becomes keep: true (its label stays as made; the host's record says keep)
        playbooks.write(doc(env="2", keep=True, scratch=False), os.path.basename(path))
        out = playbooks.swap_in(path, extra=extra).stdout
        assert "recreate node a" in out, out
        assert "remove volume tb_citest_storage_a_scratch (no longer in the experiment)" in out, out
        after = container_ids(PROJECT, NAME)
        assert after["a"] != ids["a"]
        assert dexec(after["a"], "cat", "/data/f").stdout.strip() == "kept"
        assert volumes() == ["tb_citest_storage_a_cache", "tb_citest_storage_a_data"]

        # a restart of the node (the engine's): the files are still there
        sh(DOCKER, "restart", "-t", "0", after["a"])
        assert dexec(after["a"], "cat", "/data/f").stdout.strip() == "kept"
    finally:
        out = playbooks.teardown(path).stdout
    assert "keep volume tb_citest_storage_a_cache (keep: true)" in out, out
    assert "remove volume tb_citest_storage_a_data" in out, out
    try:
        assert not container_ids(PROJECT, NAME)
        assert volumes() == ["tb_citest_storage_a_cache"]
        # the project's files outlive the experiment (they are the project's, not the experiment's)
        assert os.path.exists(os.path.join(root, PROJECT, "note"))
    finally:
        sh(DOCKER, "volume", "rm", "-f", "tb_citest_storage_a_cache", check=False)
    assert volumes() == []
