"""Per-node resource limits (issue 19): cpus, memory, pids, cpu_shares and blkio_weight are
validated with their field paths, planned only when set, left out of the settings hash, and
changed in place by a docker update; nodes made with the version-2 hash (limits in it) are not
recreated for that alone."""
import pytest

from ansible_collections.testbed.containers.plugins.module_utils import engine, names, plan
from ansible_collections.testbed.containers.plugins.module_utils.slice import Slice

from .test_node_container_keys import errors_of


def doc(a=None, defaults=None):
    d = {"name": "x", "project": "p", "nodes": {"a": dict({"image": "busybox"}, **(a or {})), "b": {"image": "busybox"}}}
    if defaults is not None:
        d["defaults"] = defaults
    return d


# --- the experiment file ---------------------------------------------------------------------
def test_cpu_shares_and_blkio_weight_are_planned_only_when_set():
    p = plan.make_plan(doc({"cpu_shares": 512, "blkio_weight": 300}), ["h"])
    assert p["nodes"]["a"]["cpu_shares"] == 512 and p["nodes"]["a"]["blkio_weight"] == 300
    assert "cpu_shares" not in p["nodes"]["b"] and "blkio_weight" not in p["nodes"]["b"]


def test_defaults_give_every_node_its_limits_and_a_node_overrides_them():
    p = plan.make_plan(doc({"cpu_shares": 2048, "memory": "64m"},
                           defaults={"cpus": 0.5, "memory": "256m", "pids": 200, "cpu_shares": 512, "blkio_weight": 100}),
                       ["h"])
    a, b = p["nodes"]["a"], p["nodes"]["b"]
    assert (a["cpus"], a["memory"], a["pids"], a["cpu_shares"], a["blkio_weight"]) == (0.5, 64 * 1024 ** 2, 200, 2048, 100)
    assert (b["cpus"], b["memory"], b["pids"], b["cpu_shares"], b["blkio_weight"]) == (0.5, 256 * 1024 ** 2, 200, 512, 100)


@pytest.mark.parametrize("node, want", [
    ({"cpu_shares": 1}, "nodes.a.cpu_shares: must be a whole number from 2 to 262144 (Docker's relative CPU weight: "
                        "a node without it has 1024), got 1"),
    ({"cpu_shares": 262145}, "nodes.a.cpu_shares: must be a whole number from 2 to 262144"),
    ({"cpu_shares": "512"}, "nodes.a.cpu_shares: must be a whole number from 2 to 262144"),
    ({"cpu_shares": True}, "nodes.a.cpu_shares: must be a whole number from 2 to 262144"),
    ({"cpu_shares": 1.5}, "nodes.a.cpu_shares: must be a whole number from 2 to 262144"),
    ({"blkio_weight": 9}, "nodes.a.blkio_weight: must be a whole number from 10 to 1000 (Docker's relative block I/O "
                          "weight), got 9"),
    ({"blkio_weight": 1001}, "nodes.a.blkio_weight: must be a whole number from 10 to 1000"),
])
def test_bad_limits_name_the_field(node, want):
    errors = errors_of(doc(node))
    assert len(errors) == 1 and errors[0].startswith(want), errors


def test_a_bad_default_is_reported_once_at_its_own_path():
    assert errors_of(doc(defaults={"cpu_shares": 0, "memory": "lots"})) == [
        "defaults.memory: invalid memory 'lots': write a size such as 256m or 1g",
        "defaults.cpu_shares: must be a whole number from 2 to 262144 (Docker's relative CPU weight: a node without it "
        "has 1024), got 0"]


# --- the container and its settings hash --------------------------------------------------------
def spec(document, node="a"):
    return engine.container_spec(plan.make_plan(document, ["h"]), node, "sha256:1", "/h/hosts", "172.30.0.5")


def test_limits_reach_the_container_but_not_its_settings_hash():
    kwargs, digest = spec(doc({"cpus": 0.5, "memory": "256m", "pids": 100, "cpu_shares": 512, "blkio_weight": 300}))
    assert (kwargs["nano_cpus"], kwargs["mem_limit"], kwargs["pids_limit"]) == (500000000, 256 * 1024 ** 2, 100)
    assert (kwargs["cpu_shares"], kwargs["blkio_weight"]) == (512, 300)
    assert digest == spec(doc())[1] == kwargs["labels"][names.LABEL_CONFIG]
    bare, _digest = spec(doc())
    assert "cpu_shares" not in bare and "blkio_weight" not in bare and "nano_cpus" not in bare
    assert spec(doc({"restart": "always"}))[1] != digest  # the other settings still are in it


# hashes version 2 gave these nodes (git show 6c2298b:plugins/module_utils/engine.py), image sha256:1,
# hosts /h/hosts, control address 172.30.0.5; and the limits their containers were made with
VERSION_2 = [
    ({"image": "busybox"}, "d805c804441ba6c8", {"NanoCpus": 0, "Memory": 0, "PidsLimit": 4096}),
    ({"image": "busybox", "cpus": 0.5, "memory": "256m", "pids": 100}, "11cbf80f1117a21c",
     {"NanoCpus": 500000000, "Memory": 268435456, "PidsLimit": 100}),
    ({"image": "busybox", "cpus": 2, "memory": "1g", "restart": "always", "labels": {"app": "web"}}, "29955dcc37dc8150",
     {"NanoCpus": 2000000000, "Memory": 1073741824, "PidsLimit": 4096}),
    ({"image": "busybox", "cpus": 1.0}, "50fc7b460a8e07c4", {"NanoCpus": 1000000000, "Memory": 0, "PidsLimit": 4096}),
]


@pytest.mark.parametrize("node, old_digest, host_config", VERSION_2)
def test_a_version_2_hash_is_recognised_from_the_limits_its_container_has(node, old_digest, host_config):
    p = plan.make_plan({"name": "x", "nodes": {"n": node}}, ["h"])
    settings = engine.node_settings(p, "n", "sha256:1", "/h/hosts", "172.30.0.5")
    assert old_digest in engine.legacy_digests(settings, host_config)
    assert old_digest != engine.container_spec(p, "n", "sha256:1", "/h/hosts", "172.30.0.5")[1]
    # another image is another node: its old hash is not accepted
    assert old_digest not in engine.legacy_digests(dict(settings, image_id="sha256:2"), host_config)


class FakeContainer:
    """A node's container as engine.list_nodes and an inspect show it."""

    def __init__(self, digest, host_config, status="running", pid=4242):
        self.labels = {names.LABEL_CONFIG: digest}
        self.id, self.name, self.status = "c0ffee", "tb_p_x_a", status
        self.attrs = {"HostConfig": host_config, "State": {"Running": status == "running", "Pid": pid if status == "running" else 0}}

    def reload(self):
        pass


def test_a_container_of_the_current_hash_with_other_limits_is_updated_not_recreated():
    p = plan.make_plan(doc({"cpus": 1, "memory": "512m", "cpu_shares": 512}), ["h"])
    settings = engine.node_settings(p, "a", "sha256:1", "/h/hosts", "172.30.0.5")
    _kwargs, digest = engine.container_spec(p, "a", "sha256:1", "/h/hosts", "172.30.0.5")
    ctr = FakeContainer(digest, {"NanoCpus": 500000000, "Memory": 256 * 1024 ** 2, "PidsLimit": 4096, "CpuShares": 0})
    verdict, changes = engine.in_place_changes(ctr, p["nodes"]["a"], digest, settings)
    assert verdict == "update"
    assert changes == [("cpus", 0.5, 1), ("memory", 256 * 1024 ** 2, 512 * 1024 ** 2), ("cpu_shares", None, 512)]
    assert engine.describe_changes(changes) == "cpus 0.5 -> 1, memory 256m -> 512m, cpu_shares none -> 512"
    assert engine.update_bodies(changes) == [("cpus", {"NanoCpus": 1000000000}),
                                             ("memory", {"Memory": 512 * 1024 ** 2, "MemorySwap": 1024 * 1024 ** 2}),
                                             ("cpu_shares", {"CpuShares": 512})]
    same = FakeContainer(digest, {"NanoCpus": 1000000000, "Memory": 512 * 1024 ** 2, "PidsLimit": 4096, "CpuShares": 512})
    assert engine.in_place_changes(same, p["nodes"]["a"], digest, settings) == ("update", [])


def test_a_removed_limit_or_another_setting_recreates_the_node():
    p = plan.make_plan(doc(), ["h"])
    settings = engine.node_settings(p, "a", "sha256:1", "/h/hosts", "172.30.0.5")
    _kwargs, digest = engine.container_spec(p, "a", "sha256:1", "/h/hosts", "172.30.0.5")
    limited = FakeContainer(digest, {"NanoCpus": 500000000, "PidsLimit": 4096})
    assert engine.in_place_changes(limited, p["nodes"]["a"], digest, settings) == (
        "recreate", "cpus 0.5 -> none cannot be removed in place")
    other = FakeContainer("0123456789abcdef", {"PidsLimit": 4096})
    assert engine.in_place_changes(other, p["nodes"]["a"], digest, settings) == ("recreate", "its settings changed")


def test_a_version_2_node_whose_limits_alone_changed_is_updated_in_place():
    node, old_digest, host_config = VERSION_2[1]
    p = plan.make_plan({"name": "x", "nodes": {"n": dict(node, memory="384m", cpu_shares=256)}}, ["h"])
    settings = engine.node_settings(p, "n", "sha256:1", "/h/hosts", "172.30.0.5")
    _kwargs, digest = engine.container_spec(p, "n", "sha256:1", "/h/hosts", "172.30.0.5")
    verdict, changes = engine.in_place_changes(FakeContainer(old_digest, host_config), p["nodes"]["n"], digest, settings)
    assert verdict == "update" and [c[0] for c in changes] == ["memory", "cpu_shares"]


class FakeResponse:
    def __init__(self, status, data):
        self.status_code, self.data, self.text = status, data, str(data)

    def json(self):
        return self.data


class FakeApi:
    base_url, api_version, timeout = "http+docker://localhost", "1.41", 60

    def __init__(self, refuse=()):
        self.posts, self.refuse, self.started = [], refuse, []

    def post(self, url, json=None, timeout=None):  # pylint: disable=redefined-outer-name
        self.posts.append((url, json, timeout))
        if any(key in json for key in self.refuse):
            return FakeResponse(500, {"message": "Cannot update container c0ffee: failed to write \"8388608\" to "
                                                 "\"memory.limit_in_bytes\": device or resource busy"})
        return FakeResponse(200, {"Warnings": ["Your kernel does not support swap limit capabilities"]})

    def start(self, container_id):
        self.started.append(container_id)


class FakeClient:
    def __init__(self, refuse=()):
        self.api = FakeApi(refuse)


def test_the_update_request_is_the_engines_and_a_refusal_names_the_field():
    cli = FakeClient(refuse=("Memory",))
    changes = [("memory", 256 * 1024 ** 2, 8 * 1024 ** 2), ("cpu_shares", None, 512)]
    warnings, refused = engine.update_limits(cli, "c0ffee", changes)
    assert [(url, body) for url, body, _t in cli.api.posts] == [
        ("http+docker://localhost/v1.41/containers/c0ffee/update", {"Memory": 8 * 1024 ** 2, "MemorySwap": 16 * 1024 ** 2}),
        ("http+docker://localhost/v1.41/containers/c0ffee/update", {"CpuShares": 512})]
    assert warnings == ["Your kernel does not support swap limit capabilities"]
    assert [field for field, _error in refused] == ["memory"] and "device or resource busy" in refused[0][1]
    words = engine.refusal_words("srv", "memory", changes, refused[0][1])
    assert words.startswith("node srv: the engine refused to change memory 256m -> 8m in place (Cannot update container")
    assert words.endswith("the node keeps its current memory: a limit below what the node uses now cannot be set; lower "
                          "its use first, or remove the node and swap in again")


def test_the_update_url_is_the_one_the_sdk_builds():
    docker = pytest.importorskip("docker")
    api = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")
    cli = FakeClient()
    cli.api.base_url, cli.api.api_version = api.base_url, api.api_version
    engine.update_resources(cli, "c0ffee", {"CpuShares": 2})
    assert cli.api.posts[0][0] == api._url("/containers/{0}/update", "c0ffee")  # pylint: disable=protected-access


def converge(document, ctr, dry_run, cli=None):
    """Slice._converge_node of node a with a fake engine (plumbing stubbed out); returns (slice, result)."""
    p = plan.make_plan(document, ["h"])
    slice_ = Slice(p, "h", state_dir="/nonexistent", dry_run=dry_run)
    slice_.plumb = lambda *_args: ("tbveth", "02:00:00:00:00:01")
    images = {("busybox", "none"): "busybox"}
    result = slice_._converge_node(cli or FakeClient(), "a", ctr, images, {"busybox": "sha256:1"}, {}, {},  # pylint: disable=protected-access
                                   {"address": "172.30.0.5", "port": 30000})
    return slice_, result


def test_the_slice_updates_a_node_in_place_and_says_so():
    document = doc({"augment": "none", "cpus": 1, "memory": "512m"})
    p = plan.make_plan(document, ["h"])
    hosts = Slice(p, "h", state_dir="/nonexistent", dry_run=True).paths.hosts("a")
    _kwargs, digest = engine.container_spec(p, "a", "sha256:1", hosts, "172.30.0.5")
    ctr = FakeContainer(digest, {"NanoCpus": 500000000, "Memory": 256 * 1024 ** 2, "PidsLimit": 4096})
    slice_, _result = converge(document, ctr, dry_run=True)
    assert slice_.ops == ["update node a limits (cpus 0.5 -> 1, memory 256m -> 512m)"]
    cli = FakeClient(refuse=("Memory",))
    slice_, result = converge(document, ctr, dry_run=False, cli=cli)
    assert slice_.ops == ["update node a limits (cpus 0.5 -> 1, memory 256m -> 512m)"]
    assert result["container"] == "c0ffee" and result["pid"] == 4242  # the same container, still plumbed
    assert [body for _u, body, _t in cli.api.posts] == [{"NanoCpus": 1000000000},
                                                        {"Memory": 512 * 1024 ** 2, "MemorySwap": 1024 * 1024 ** 2}]
    assert slice_.warnings[0] == "node a: Your kernel does not support swap limit capabilities"
    assert slice_.warnings[1].startswith("node a: the engine refused to change memory 256m -> 512m in place")


def test_a_node_the_engine_restarted_a_moment_ago_is_not_booted_yet():
    from ansible_collections.testbed.containers.plugins.module_utils import engine

    class Ctr:
        def __init__(self, count, started):
            self.attrs = {"RestartCount": count, "State": {"StartedAt": started}}
    now = 1764748800.5  # 2025-12-03T08:00:00.5Z
    assert engine.restarted_within(Ctr(2, "2025-12-03T08:00:00.123456789Z"), 3, now=now)
    assert not engine.restarted_within(Ctr(2, "2025-12-03T07:59:50.0Z"), 3, now=now)
    assert not engine.restarted_within(Ctr(0, "2025-12-03T08:00:00.4Z"), 3, now=now)
    assert not engine.restarted_within(Ctr(1, ""), 3, now=now)
