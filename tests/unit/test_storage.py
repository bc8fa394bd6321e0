"""Storage (issue 19): per-node volumes and the project's shared directory; their validation,
the plan, the container's mounts and the settings hash."""
import pytest

from ansible_collections.testbed.containers.plugins.module_utils import engine, model, plan


def doc(node=None, **extra):
    nodes = {"a": dict({"image": "busybox"}, **(node or {})), "b": {"image": "busybox"}}
    d = {"name": "x", "project": "p", "nodes": nodes}
    d.update(extra)
    return d


def errors_of(document, hosts=("h",), host_vars=None):
    with pytest.raises(model.ExperimentError) as exc:
        plan.make_plan(document, list(hosts), host_vars=host_vars)
    return exc.value.errors


def mounts(p, node):
    kwargs, _digest = engine.container_spec(p, node, "sha256:1", "/x/hosts")
    return [(m["Target"], m["Source"], m["Type"], m["ReadOnly"]) for m in kwargs["mounts"]]


def digest(p, node):
    return engine.container_spec(p, node, "sha256:1", "/x/hosts")[1]


def test_named_volumes_and_host_directories_are_planned_and_mounted():
    p = plan.make_plan(doc({"volumes": [{"name": "data", "path": "/data/"},
                                        {"name": "logs", "path": "/var/log/app", "keep": True, "read_only": True},
                                        {"source": "/srv/shared", "path": "/shared", "read_only": True}]}), ["h"])
    a = p["nodes"]["a"]
    assert a["volumes"] == [
        {"name": "data", "target": "/data", "read_only": False, "keep": False, "volume": "tb_p_x_a_data"},
        {"name": "logs", "target": "/var/log/app", "read_only": True, "keep": True, "volume": "tb_p_x_a_logs"}]
    assert a["binds"] == [{"source": "/srv/shared", "target": "/shared", "read_only": True}]
    assert ("/data", "tb_p_x_a_data", "volume", False) in mounts(p, "a")
    assert ("/var/log/app", "tb_p_x_a_logs", "volume", True) in mounts(p, "a")
    assert ("/shared", "/srv/shared", "bind", True) in mounts(p, "a")
    # a node without volumes plans as before: no key, the same hash as a plan without the feature
    assert "volumes" not in p["nodes"]["b"] and "storage" not in p
    assert digest(p, "b") == digest(plan.make_plan(doc(), ["h"]), "b")


def test_keep_is_not_a_container_setting_but_a_volume_is():
    base = plan.make_plan(doc({"volumes": [{"name": "data", "path": "/data"}]}), ["h"])
    kept = plan.make_plan(doc({"volumes": [{"name": "data", "path": "/data", "keep": True}]}), ["h"])
    moved = plan.make_plan(doc({"volumes": [{"name": "data", "path": "/srv"}]}), ["h"])
    assert digest(base, "a") == digest(kept, "a")  # changing keep recreates nothing
    assert digest(base, "a") != digest(moved, "a")
    assert digest(base, "a") != digest(plan.make_plan(doc(), ["h"]), "a")


@pytest.mark.parametrize("volumes, message", [
    ({"name": "data"}, "nodes.a.volumes: must be a list of {name: NAME, path: /NODE/PATH}"),
    ([{"name": "data"}], "nodes.a.volumes[0].path: is required"),
    ([{"name": "data", "path": "data"}], "nodes.a.volumes[0].path: must be an absolute path inside the node"),
    ([{"name": "Data!", "path": "/d"}], "nodes.a.volumes[0].name: invalid volume name 'Data!'"),
    ([{"path": "/d"}], "nodes.a.volumes[0]: give either name: (a volume of the node) or source: (a host directory), "
                       "not neither"),
    ([{"name": "d", "source": "/srv", "path": "/d"}], "nodes.a.volumes[0]: give either name:"),
    ([{"source": "/etc", "path": "/d"}], "nodes.a.volumes[0].source: /etc is the host's own"),
    ([{"source": "/srv", "path": "/d", "keep": True}], "nodes.a.volumes[0].keep: applies to named volumes"),
    ([{"name": "d", "path": "/d", "keep": "yes"}], "nodes.a.volumes[0].keep: must be true or false"),
    ([{"name": "d", "path": "/d", "size": 3}], "nodes.a.volumes[0].size: unknown key"),
    ([{"name": "d", "path": "/d"}, {"name": "d", "path": "/e"}], "nodes.a.volumes[1].name: volume 'd' is already"),
    ([{"name": "d", "path": "/.testbed/x"}], "nodes.a.volumes[0].path: /.testbed/x belongs to the testbed"),
    ([{"name": "d", "path": "/etc/hosts"}], "nodes.a.volumes[0].path: /etc/hosts belongs to the testbed"),
])
def test_bad_volumes_are_refused_with_their_field(volumes, message):
    errors = errors_of(doc({"volumes": volumes}))
    assert any(e.startswith(message) for e in errors), errors


def test_a_volume_and_a_bind_on_one_path_are_refused():
    errors = errors_of(doc({"binds": ["/srv/a:/data"], "volumes": [{"name": "d", "path": "/data"}]}))
    assert errors == ["nodes.a.volumes[0].path: /data is already mounted (by binds or volumes): one mount per node path"]


def test_project_directory_is_mounted_in_every_node_from_each_hosts_root():
    d = doc({"host": "h1"}, storage={"project": True})
    d["nodes"]["b"]["host"] = "h2"
    p = plan.make_plan(d, ["h1", "h2"], host_vars={"h1": {"project_root": "/srv/proj/"}, "h2": {}})
    assert p["storage"] == {"project": {"path": "/proj/p", "shared": False, "sources": {
        "h1": "/srv/proj/p", "h2": plan.DEFAULT_PROJECT_ROOT + "/p"}}}
    assert ("/proj/p", "/srv/proj/p", "bind", False) in mounts(p, "a")
    assert ("/proj/p", plan.DEFAULT_PROJECT_ROOT + "/p", "bind", False) in mounts(p, "b")
    warnings = plan.storage_warnings(p)
    assert len(warnings) == 1 and warnings[0].startswith("storage.project: the experiment spans hosts h1, h2")
    shared = plan.make_plan(d, ["h1", "h2"], host_vars={"h1": {"project_shared": True}, "h2": {"project_shared": True}})
    assert shared["storage"]["project"]["shared"] is True and plan.storage_warnings(shared) == []
    # the directory's place is part of the node's settings: moving it recreates the node
    assert digest(p, "a") != digest(plan.make_plan(doc({"host": "h1"}), ["h1", "h2"]), "a")


def test_project_directory_on_one_host_and_at_a_chosen_path():
    p = plan.make_plan(doc(storage={"project": True, "path": "/groups/p/"}), ["h"])
    assert p["storage"]["project"] == {"path": "/groups/p", "shared": True,
                                       "sources": {"h": plan.DEFAULT_PROJECT_ROOT + "/p"}}
    assert plan.storage_warnings(p) == []
    assert "storage" not in plan.make_plan(doc(storage={"project": False}), ["h"])


@pytest.mark.parametrize("storage, node, message", [
    ({"project": "yes"}, None, "storage.project: must be true"),
    ({"project": True, "path": "proj"}, None, "storage.path: must be an absolute path"),
    ({"project": True, "path": "/.testbed"}, None, "storage.path: /.testbed belongs to the testbed"),
    ({"path": "/proj/x"}, None, "storage.path: is where the project's directory is mounted: set storage.project"),
    ({"project": True, "nfs": True}, None, "storage.nfs: unknown key"),
    ({"project": True}, {"binds": ["/srv/x:/proj/p/x"]}, "nodes.a: mounts /proj/p/x, which meets the project's"),
    ({"project": True}, {"volumes": [{"name": "d", "path": "/proj"}]}, "nodes.a: mounts /proj, which meets"),
])
def test_bad_storage_is_refused_with_its_field(storage, node, message):
    errors = errors_of(doc(node, storage=storage))
    assert any(e.startswith(message) for e in errors), errors


def test_a_relative_project_root_in_the_inventory_is_refused():
    errors = errors_of(doc(storage={"project": True}), host_vars={"h": {"project_root": "proj"}})
    assert errors == ["testbed_project_root of host h: must be an absolute host path without ':', got 'proj'"]


def test_a_snapshot_names_the_mounts_it_leaves_out():
    from ansible_collections.testbed.containers.plugins.module_utils import snapshot
    attrs = {"Mounts": [{"Destination": "/etc/hosts"}, {"Destination": "/.testbed/node"}, {"Destination": "/data"},
                        {"Destination": "/proj/p"}, {"Destination": "/.testbed"}]}
    assert snapshot.left_out(attrs) == ["/data", "/proj/p"]
    assert snapshot.left_out({}) == []


def test_homes_on_the_project_directory_have_one_uid_everywhere(tmp_path):
    from ansible_collections.testbed.containers.plugins.module_utils import names, services
    d = doc(storage={"project": True, "homes": True}, users=["alice", {"name": "bob"}])
    p = plan.make_plan(d, ["h"])
    alice, bob = p["users"]
    assert alice["home"] == "/proj/p/users/alice" and alice["uid"] == names.account_uid("alice")
    assert bob["home"] == "/proj/p/users/bob" and 2000 <= bob["uid"] < 60000 and bob["uid"] != alice["uid"]
    # the same user in another experiment of the project (in another order) gets the same uid
    other = plan.make_plan(dict(doc(storage={"project": True, "homes": True}, users=["bob", "alice"]), name="y"),
                           ["h"])
    assert dict((u["name"], u["uid"]) for u in other["users"]) == {"alice": alice["uid"], "bob": bob["uid"]}
    # the node's users file carries uid and home; without homes, only the names (as before)
    node_dir = str(tmp_path / "n")
    services.write_accounts(node_dir, p["users"])
    with open(node_dir + "/users") as f:
        assert f.read() == "alice %d /proj/p/users/alice\nbob %d /proj/p/users/bob\n" % (alice["uid"], bob["uid"])
    assert "uid" not in plan.make_plan(doc(storage={"project": True}, users=["alice"]), ["h"])["users"][0]


def test_uid_collisions_are_probed_away():
    from ansible_collections.testbed.containers.plugins.module_utils import names
    users = [{"name": "a", "ssh_keys": []}, {"name": "a2", "ssh_keys": []}]
    first = names.account_uid("a")
    original = names.account_uid
    try:
        names.account_uid = lambda user, attempt=0: first if attempt == 0 else original(user, attempt)
        got = plan.shared_homes(users, "/proj/p")
    finally:
        names.account_uid = original
    assert got[0]["uid"] == first and got[1]["uid"] == original("a2", 1) != first


@pytest.mark.parametrize("storage, message", [
    ({"homes": True}, "storage.homes: puts the homes on the project's directory: set storage.project: true too"),
    ({"project": True, "homes": 1}, "storage.homes: must be true"),
])
def test_bad_homes_are_refused(storage, message):
    errors = errors_of(doc(storage=storage))
    assert any(e.startswith(message) for e in errors), errors
