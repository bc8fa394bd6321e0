"""playbooks/snapshot.yml: a node's container committed into an image that a node of another
experiment then runs, its changes kept; errors name the field before anything is committed."""
import json

from helpers import BUSYBOX, DEBIAN, DOCKER, dexec, ping, sh

PROJECT = "sntest"


def cname(name, node):
    return "tb_%s_%s_%s" % (PROJECT, name, node)


def images(repository):
    """REPO:TAG of the local images of ``repository`` (all images for "")."""
    out = sh(DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}", *([repository] if repository else [])).stdout
    return sorted(out.split())


def test_snapshot_of_a_node_runs_as_another_experiments_node_with_its_changes(playbooks):
    src = {"name": "src", "project": PROJECT,
           "nodes": {"srv": {"image": DEBIAN, "command": ["sleep", "infinity"], "start": "echo configured > /etc/motd"},
                     "peer": {"image": BUSYBOX, "command": ["sleep", "infinity"], "augment": "none"}},
           "lans": {"lan0": {"members": ["srv", "peer"]}}}
    repo = "testbed-snapshot/%s-src-srv" % PROJECT
    mine = "sntest/configured:v1"
    src_path = playbooks.write(src)
    dst = {"name": "dst", "project": PROJECT,
           "nodes": {"copy": {"image": repo + ":latest", "command": ["sleep", "infinity"]},
                     "copy2": {"image": mine, "command": ["sleep", "infinity"], "augment": "none"}},
           "lans": {"lan0": {"members": ["copy", "copy2"]}}}
    dst_path = playbooks.write(dst)
    try:
        playbooks.swap_in(src_path)
        dexec(cname("src", "srv"), "sh", "-c", "echo hello-from-the-snapshot > /root/data")
        # errors name the field, nothing is committed
        proc = playbooks.run("snapshot", src_path, check=False, extra=("-e", "node=ghost"))
        assert proc.returncode != 0 and "node: sntest/src has no node ghost (its nodes: " in " ".join(proc.stdout.split()), \
            proc.stdout
        proc = playbooks.run("snapshot", src_path, check=False, extra=("-e", "node=srv", "-e", "snapshot_image=Bad/Name"))
        assert proc.returncode != 0 and "image: 'Bad/Name' is not a valid repository name" in " ".join(proc.stdout.split()), \
            proc.stdout
        assert images(repo) == [] and images("sntest/configured") == []
        proc = playbooks.run("snapshot", src_path, extra=("-e", "node=srv"))
        assert "snapshot of srv: %s:" % repo in " ".join(proc.stdout.split()), proc.stdout
        tags = images(repo)
        assert len(tags) == 2 and repo + ":latest" in tags, tags
        playbooks.run("snapshot", src_path, extra=("-e", "node=srv", "-e", "snapshot_image=" + mine))
        assert images("sntest/configured") == [mine]
        attrs = json.loads(sh(DOCKER, "image", "inspect", mine).stdout)[0]
        labels = attrs["Config"]["Labels"]
        assert labels["testbed.snapshot.of"] == "%s/src/srv" % PROJECT
        # the node's labels and the augmentation's are blanked (Docker merges a commit's labels)
        assert [labels[k] for k in ("testbed.project", "testbed.experiment", "testbed.node",
                                    "testbed.config-hash", "testbed.augment.version")] == [""] * 5, labels
        # testbed/debian has no entrypoint: the supervisor's is gone
        assert not attrs["Config"]["Entrypoint"] and attrs["Config"]["Cmd"] == ["sleep", "infinity"], attrs["Config"]
        # the source node is still running after the (paused) commit
        assert ping(cname("src", "srv"), "peer")[0]
        # another experiment runs the snapshot: augmented again (basic) and as it is (none); the
        # file written in the node is there, the node boots, its start command ran again
        playbooks.swap_in(dst_path)
        for node in ("copy", "copy2"):
            assert dexec(cname("dst", node), "cat", "/root/data").stdout == "hello-from-the-snapshot\n"
        assert ping(cname("dst", "copy"), "copy2")[0]
        states = dict((n["node"], n["state"]) for n in playbooks.record(PROJECT, "dst")["nodes"])
        assert states == {"copy": "booted", "copy2": "booted"}, states
        assert dexec(cname("dst", "copy"), "cat", "/etc/motd").stdout == "configured\n"
    finally:
        playbooks.teardown(dst_path, check=False)
        playbooks.teardown(src_path, check=False)
        # the snapshots and what augmenting them made (testbed-augmented/testbed-snapshot/...)
        leftover = [ref for ref in images("") if PROJECT in ref]
        if leftover:
            sh(DOCKER, "rmi", "-f", *leftover, check=False)
    assert [ref for ref in images("") if PROJECT in ref] == []
