"""Per-node resource limits on the real engine (issue 19): a node made with cpus, memory, pids and
cpu_shares; its memory and cpu_shares changed in the file are a docker update of the same
container (the engine shows the new values), not a recreate; the status shows what the node uses
against its limits, a busy node's CPU use included."""
import json
import os

from helpers import BUSYBOX, DOCKER, container_ids, recap_changed, sh

PROJECT = "citest"
NAME = "resources"
MIB = 1024 ** 2


def doc(memory, cpu_shares):
    return {"name": NAME, "project": PROJECT,
            "nodes": {"busy": {"image": BUSYBOX, "augment": "none", "command": ["sh", "-c", "while :; do :; done"],
                               "cpus": 1, "memory": memory, "pids": 64, "cpu_shares": cpu_shares}}}


def host_config(container):
    return json.loads(sh(DOCKER, "inspect", container).stdout)[0]["HostConfig"]


def test_limits_change_in_place_and_the_status_shows_the_use(playbooks, tmp_path):
    path = playbooks.write(doc("256m", 512))
    try:
        playbooks.swap_in(path)
        before = container_ids(PROJECT, NAME)["busy"]
        limits = host_config(before)
        assert (limits["NanoCpus"], limits["Memory"], limits["PidsLimit"], limits["CpuShares"]) == \
            (10 ** 9, 256 * MIB, 64, 512), limits

        # memory and cpu_shares changed in the file: the same container, updated
        playbooks.write(doc("384m", 1024), os.path.basename(path))
        changed = playbooks.swap_in(path).stdout
        assert "update node busy limits (memory 256m -> 384m, cpu_shares 512 -> 1024)" in changed, changed
        assert "recreate node" not in changed, changed
        after = container_ids(PROJECT, NAME)["busy"]
        assert after == before
        limits = host_config(after)
        assert (limits["NanoCpus"], limits["Memory"], limits["PidsLimit"], limits["CpuShares"]) == \
            (10 ** 9, 384 * MIB, 64, 1024), limits

        # a re-run finds the limits as planned: nothing to update
        again = playbooks.swap_in(path).stdout
        assert "update node busy" not in again and recap_changed(again)["localhost"] == 0, again

        # the status: the node's use against its (new) limits, in the JSON and in the table
        out = os.path.join(str(tmp_path), "status.json")
        table = playbooks.run("status", path, extra=["-e", "status_file=%s" % out]).stdout
        with open(out) as f:
            document = json.load(f)
        used = document["nodes"][0]["resources"]
        assert used["memory_limit"] == 384 * MIB, used
        assert used["cpus_limit"] == 1, used
        assert 0 < used["memory_bytes"] < 384 * MIB and 1 <= used["pids"] <= 64, used
        assert used["cpu_percent"] > 20, used  # the busy loop
        host = document["hosts"]["localhost"]
        assert host["nodes"]["placed"] == 1 and host["cpus"]["asked"] == 1 and host["memory"]["asked"] == 384 * MIB, host
        assert "CPU/MEMORY" in table and "/384m" in table and "host localhost: nodes 1" in table, table
    finally:
        playbooks.teardown(path)
    assert not container_ids(PROJECT, NAME)
