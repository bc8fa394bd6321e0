"""Pure logic of augmentation (module_utils/augment.py): no Docker engine needed."""
import io
import json
import os
import platform
import signal
import tarfile

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import augment
from ansible_collections.testbed.containers.plugins.module_utils.augment import AugmentError

BASE_ID = "sha256:" + "ab" * 32


def plain_attrs(**config):
    conf = {"Entrypoint": None, "Cmd": ["sh"], "User": "", "WorkingDir": "", "Env": ["PATH=/bin"],
            "Labels": None, "OnBuild": None}
    conf.update(config)
    return {"Id": BASE_ID, "Architecture": "amd64", "Config": conf}


# ---- /.testbed/original -------------------------------------------------------------------

def test_original_round_trips_every_character_the_supervisor_must_see():
    orig = {"entrypoint": ["/bin/app", "", "two words", "back\\slash", "new\nline", "literal \\n", "ünï"],
            "cmd": ["-c", "echo \"$HOME\"\n\ttab"], "user": "alice:staff", "workdir": "/srv/my dir",
            "env_has_home": True, "stopsignal": 3, "services": ["sshd", "x-1"]}
    text = augment.render_original(orig)
    assert augment.parse_original(text) == orig
    # one line per element; the escapes the C parser knows, nothing else
    assert "entrypoint new\\nline" in text.splitlines()
    assert "entrypoint literal \\\\n" in text.splitlines()
    assert "entrypoint " in text.splitlines()  # the empty argument keeps its line


def test_original_parser_ignores_comments_and_unknown_keys():
    text = "# note\nformat 1\nfuture-key something\nentrypoint /a\nuser 10:20\n"
    orig = augment.parse_original(text)
    assert orig["entrypoint"] == ["/a"] and orig["user"] == "10:20" and orig["cmd"] == []


def test_original_config_of_a_plain_image():
    attrs = plain_attrs(Entrypoint=["/docker-entrypoint.sh"], Cmd=["nginx", "-g", "daemon off;"], User="www",
                        WorkingDir="/srv", Env=["PATH=/bin", "HOME=/srv"], StopSignal="SIGQUIT")
    orig = augment.original_config(attrs)
    assert orig == {"entrypoint": ["/docker-entrypoint.sh"], "cmd": ["nginx", "-g", "daemon off;"], "user": "www",
                    "workdir": "/srv", "env_has_home": True, "stopsignal": int(signal.SIGQUIT),
                    "services": []}
    assert augment.original_config(plain_attrs(Cmd=None))["cmd"] == []


def test_original_config_of_an_augmented_image_comes_from_its_labels():
    """A commit of a node has the supervisor as ENTRYPOINT: it must never become the original."""
    labels = augment.labels_for({"entrypoint": ["/entrypoint.sh"], "cmd": ["serve"], "user": "app",
                                 "workdir": "/w"}, "basic", "t" * 16, "k", BASE_ID)
    attrs = plain_attrs(Entrypoint=[augment.SUPERVISOR], Cmd=["serve", "--other"], User="0:0", WorkingDir="/w",
                        Labels=labels)
    orig = augment.original_config(attrs)
    assert orig["entrypoint"] == ["/entrypoint.sh"]
    assert orig["user"] == "app"
    assert orig["cmd"] == ["serve", "--other"]  # the commit's CMD: the node's effective one
    assert augment.SUPERVISOR not in json.dumps(orig)


def test_corrupt_entrypoint_label_is_an_error():
    attrs = plain_attrs(Labels={augment.LABEL_VERSION: "1", augment.LABEL_ENTRYPOINT: "not json"})
    with pytest.raises(AugmentError, match="not a JSON list"):
        augment.original_config(attrs)


@pytest.mark.parametrize("value,number", [
    ("SIGQUIT", int(signal.SIGQUIT)), ("QUIT", int(signal.SIGQUIT)), ("sigterm", int(signal.SIGTERM)),
    ("9", 9), (None, 0), ("", 0), ("SIGBOGUS", 0),
    ("SIGRTMIN+3", int(signal.SIGRTMIN) + 3), ("RTMAX-1", int(signal.SIGRTMAX) - 1),
])
def test_stopsignal_numbers(value, number):
    assert augment._stopsignal_number(value) == number


# ---- names and keys -------------------------------------------------------------------------

@pytest.mark.parametrize("ref,tags,name", [
    ("testbed/debian:bookworm", (), "testbed/debian"),
    ("nginx", (), "nginx"),
    ("registry.example:5000/team/App_X:1.2", (), "team/app_x"),
    ("localhost/app@sha256:" + "0" * 64, (), "app"),
    ("localhost:5000/app:1", (), "app"),
    (BASE_ID, ("zoo/img:latest",), "zoo/img"),
    ("abcdef012345", (), "image"),
    ("testbed-augmented/testbed/busybox:basic-0123", (), "testbed/busybox"),
    ("weird/--name..x", (), "weird/name-x"),
])
def test_base_name(ref, tags, name):
    assert augment.base_name(ref, tags) == name


def test_content_key_is_deterministic_and_covers_every_input():
    key = augment.content_key(BASE_ID, "basic", "t1")
    assert key == augment.content_key(BASE_ID, "basic", "t1")
    others = {augment.content_key("sha256:" + "cd" * 32, "basic", "t1"), augment.content_key(BASE_ID, "full", "t1"),
              augment.content_key(BASE_ID, "basic", "t2"),
              augment.content_key(BASE_ID, "basic", "t1", version=augment.AUGMENT_VERSION + 1)}
    assert key not in others and len(others) == 4
    assert augment.augmented_tag("testbed/debian", "basic", key) == "testbed-augmented/testbed/debian:basic-" + key


def test_is_current_needs_level_version_and_tools():
    labels = augment.labels_for({"entrypoint": [], "cmd": [], "user": "", "workdir": ""}, "basic", "tools1", "k",
                                BASE_ID)
    attrs = plain_attrs(Labels=labels)
    assert augment.is_current(attrs, "basic", "tools1")
    assert not augment.is_current(attrs, "basic", "tools2")
    assert not augment.is_current(attrs, "full", "tools1")
    assert not augment.is_current(plain_attrs(), "basic", "tools1")
    old = dict(labels, **{augment.LABEL_VERSION: str(augment.AUGMENT_VERSION - 1)})
    assert not augment.is_current(plain_attrs(Labels=old), "basic", "tools1")


# ---- the build ----------------------------------------------------------------------------------

def test_dockerfile_keeps_cmd_after_entrypoint_and_runs_the_supervisor_as_uid_0():
    orig = {"entrypoint": ["/e"], "cmd": ["echo", "$HOME"], "user": "app", "workdir": "/w", "env_has_home": False,
            "stopsignal": 0}
    text = augment.dockerfile(BASE_ID, orig, {"a.b": 'x "$y" \\z'})
    lines = [l for l in text.splitlines() if not l.startswith("#")]
    assert lines[0] == "FROM " + BASE_ID
    assert lines[1] == "COPY testbed/ /.testbed/"
    assert lines[2] == 'ENTRYPOINT ["/.testbed/bin/supervisor"]'
    assert lines[3] == 'CMD ["echo", "$HOME"]'  # exec form: not expanded by the builder
    assert lines[4] == "USER 0:0"  # numeric: scratch has no /etc/passwd for "root"
    assert lines[5] == 'LABEL a.b="x \\"\\$y\\" \\\\z"'
    assert sum(1 for l in lines if l.startswith(("COPY", "ADD", "RUN"))) == 1  # one layer


def test_dockerfile_without_cmd_writes_none():
    orig = {"entrypoint": ["/e"], "cmd": [], "user": "", "workdir": "", "env_has_home": False, "stopsignal": 0}
    assert "CMD" not in augment.dockerfile(BASE_ID, orig, {"k": "v"})


def test_labels_refuse_line_breaks():
    with pytest.raises(AugmentError, match="line break"):
        augment._label_value("a\nb")


def test_labels_record_the_originals():
    orig = {"entrypoint": ["/e", "x"], "cmd": ["c"], "user": "u:g", "workdir": "/w"}
    labels = augment.labels_for(orig, "basic", "tools", "key", BASE_ID)
    assert json.loads(labels[augment.LABEL_ENTRYPOINT]) == ["/e", "x"]
    assert json.loads(labels[augment.LABEL_CMD]) == ["c"]
    assert (labels[augment.LABEL_USER], labels[augment.LABEL_WORKDIR]) == ("u:g", "/w")
    assert labels[augment.LABEL_LEVEL] == "basic" and labels[augment.LABEL_VERSION] == str(augment.AUGMENT_VERSION)
    assert labels[augment.LABEL_FROM] == BASE_ID and labels[augment.LABEL_TOOLS] == "tools"


def test_build_context_holds_the_tools_owned_by_root():
    files = {"bin/supervisor": b"\x7fELF-sup", "bin/busybox": b"\x7fELF-bb"}
    orig = augment.original_config(plain_attrs(Entrypoint=["/a"]))
    data = augment.build_context(files, orig, "FROM x\n")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = dict((m.name, m) for m in tar.getmembers())
        assert tar.extractfile("Dockerfile").read() == b"FROM x\n"
        assert tar.extractfile("testbed/bin/supervisor").read() == b"\x7fELF-sup"
        assert augment.parse_original(tar.extractfile("testbed/original").read().decode()) == orig
    assert members["testbed/bin/sh"].issym() and members["testbed/bin/sh"].linkname == "busybox"
    assert members["testbed/bin/supervisor"].mode == 0o755
    assert members["testbed/run"].isdir() and members["testbed/node"].isdir()
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert data == augment.build_context(files, orig, "FROM x\n")  # same inputs, same context


def make_tools(directory, supervisor=b"\x7fELF\x02\x01" + b"\0" * 12 + b"\x3e\x00" + b"sup"):
    os.makedirs(directory, exist_ok=True)
    for name, data in (("supervisor", supervisor), ("busybox", b"\x7fELF-bb")):
        path = os.path.join(str(directory), name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o755)


def test_tools_hash_follows_their_content(tmp_path):
    make_tools(tmp_path / "a")
    make_tools(tmp_path / "b", supervisor=b"\x7fELF-other")
    files, hash_a = augment.load_tools("basic", str(tmp_path / "a"))
    assert set(files) == {"bin/supervisor", "bin/busybox", "bin/sh"}
    assert files["bin/sh"] == augment.Link("busybox")
    assert augment.load_tools("basic", str(tmp_path / "a"))[1] == hash_a
    assert augment.load_tools("basic", str(tmp_path / "b"))[1] != hash_a


def test_missing_tools_say_how_to_build_them(tmp_path):
    with pytest.raises(AugmentError, match="build-tools.sh"):
        augment.load_tools("basic", str(tmp_path / "none"))
    make_tools(tmp_path / "basic")
    with pytest.raises(AugmentError, match="dropbearmulti missing: run scripts/build-tools.sh"):
        augment.load_tools("full", str(tmp_path / "basic"))
    with pytest.raises(AugmentError, match="not built by this version"):
        augment.load_tools("fancy", str(tmp_path))


def test_full_level_adds_sshd_service_dropbear_and_tools(tmp_path):
    make_tools(tmp_path)
    with open(os.path.join(str(tmp_path), "dropbearmulti"), "wb") as f:
        f.write(b"\x7fELF-db")
    os.chmod(os.path.join(str(tmp_path), "dropbearmulti"), 0o755)
    with open(os.path.join(str(tmp_path), "busybox"), "w") as f:  # a busybox that lists two applets
        f.write("#!/bin/sh\necho ip; echo ping\n")
    files, full_hash = augment.load_tools("full", str(tmp_path))
    assert files["bin/dropbearmulti"] == b"\x7fELF-db"
    assert files["bin/dropbear"] == files["bin/dropbearkey"] == augment.Link("dropbearmulti")
    assert files["tools/ip"] == files["tools/ping"] == augment.Link("../bin/busybox")
    assert files["tools/scp"] == augment.Link("../bin/dropbearmulti")
    assert b"exec $TB/bin/dropbear -F -E -p 22 " in files["services/sshd"]
    assert full_hash != augment.load_tools("basic", str(tmp_path))[1]
    orig = dict(augment.original_config(plain_attrs(Entrypoint=["/a"])), services=["sshd"])
    data = augment.build_context(files, orig, "FROM x\n")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = dict((m.name, m) for m in tar.getmembers())
        assert "service sshd" in tar.extractfile("testbed/original").read().decode().splitlines()
    assert members["testbed/tools"].isdir() and members["testbed/services"].isdir()
    assert members["testbed/tools/ip"].issym() and members["testbed/tools/ip"].linkname == "../bin/busybox"
    assert members["testbed/services/sshd"].isfile() and members["testbed/services/sshd"].mode == 0o755


def test_tools_dir_defaults(monkeypatch):
    monkeypatch.delenv(augment.TOOLS_ENV, raising=False)
    assert augment.tools_dir() == "/var/cache/testbed/tools"
    monkeypatch.setenv(augment.TOOLS_ENV, "/x")
    assert augment.tools_dir() == "/x" and augment.tools_dir("/y") == "/y"


@pytest.mark.skipif(platform.machine() != "x86_64" or not os.path.exists("/bin/busybox"), reason="amd64 host only")
def test_elf_arch_of_a_real_binary():
    with open("/bin/busybox", "rb") as f:
        assert augment._elf_arch(f.read(64)) == "amd64"
    assert augment._elf_arch(b"#!/bin/sh\n") is None


# ---- planning with a fake engine -------------------------------------------------------------

class FakeImage:
    def __init__(self, attrs, tags=()):
        self.attrs, self.id, self.tags = attrs, attrs["Id"], list(tags)


class FakeImages:
    def __init__(self, images):
        self.images = images

    def get(self, ref):
        if ref not in self.images:
            raise augment.ImageNotFound(ref)
        return self.images[ref]


class FakeClient:
    def __init__(self, images):
        self.images = FakeImages(images)


@pytest.fixture
def tools(tmp_path):
    make_tools(tmp_path / "tools")
    return str(tmp_path / "tools")


def test_plan_builds_then_finds_the_cache(tools):
    base = FakeImage(plain_attrs(Entrypoint=["/e"]), tags=["zoo/e:latest"])
    client = FakeClient({"zoo/e:latest": base})
    plan = augment.plan_augmentation(client, "zoo/e:latest", "basic", tools)
    assert plan["action"] == "build" and plan["ref"].startswith("testbed-augmented/zoo/e:basic-")
    assert plan["orig"]["entrypoint"] == ["/e"] and plan["labels"][augment.LABEL_KEY] == plan["key"]
    assert augment.augment_image(client, "zoo/e:latest", "basic", tools, dry_run=True) == (plan["ref"], True)
    built = FakeImage({"Id": "sha256:" + "ef" * 32, "Config": {"Labels": plan["labels"]}})
    client.images.images[plan["ref"]] = built
    again = augment.plan_augmentation(client, "zoo/e:latest", "basic", tools)
    assert again["action"] == "cached" and again["ref"] == plan["ref"]
    assert augment.augment_image(client, "zoo/e:latest", "basic", tools) == (plan["ref"], False)


def test_plan_returns_a_current_augmented_image_as_it_is(tools):
    _files, tools_hash = augment.load_tools("basic", tools)
    labels = augment.labels_for({"entrypoint": ["/e"], "cmd": [], "user": "", "workdir": ""}, "basic", tools_hash,
                                "k", BASE_ID)
    commit = FakeImage(plain_attrs(Entrypoint=[augment.SUPERVISOR], Labels=labels))
    client = FakeClient({"my/commit:1": commit})
    assert augment.augment_image(client, "my/commit:1", "basic", tools) == ("my/commit:1", False)


def test_plan_rebuilds_an_outdated_augmented_image_from_itself(tools):
    labels = augment.labels_for({"entrypoint": ["/e"], "cmd": [], "user": "app", "workdir": ""}, "basic", "old-tools",
                                "k", "sha256:" + "01" * 32)
    commit = FakeImage(plain_attrs(Entrypoint=[augment.SUPERVISOR], Cmd=["x"], Labels=labels))
    client = FakeClient({"my/commit:1": commit})
    plan = augment.plan_augmentation(client, "my/commit:1", "basic", tools)
    assert plan["action"] == "build" and plan["base_id"] == commit.id
    assert plan["orig"]["entrypoint"] == ["/e"] and plan["orig"]["user"] == "app" and plan["orig"]["cmd"] == ["x"]
    assert "FROM %s" % commit.id in augment.dockerfile(plan["base_id"], plan["orig"], plan["labels"])


def test_plan_errors(tools):
    client = FakeClient({"ob": FakeImage(plain_attrs(OnBuild=["COPY . /app"])),
                         "arm": FakeImage(dict(plain_attrs(), Architecture="arm64"))})
    with pytest.raises(AugmentError, match="not found on this host"):
        augment.plan_augmentation(client, "missing", "basic", tools)
    with pytest.raises(AugmentError, match="ONBUILD"):
        augment.plan_augmentation(client, "ob", "basic", tools)
    with pytest.raises(AugmentError, match="arm64 but the tools"):
        augment.plan_augmentation(client, "arm", "basic", tools)
    assert augment.augment_image(client, "anything", "none", tools) == ("anything", False)


# ---- node runtime ------------------------------------------------------------------------------

def test_runtime_kwargs_and_merge():
    extra = augment.runtime_kwargs("/var/lib/testbed/n1", app_restart="on-failure")
    mount = extra["mounts"][0]
    assert (mount["Target"], mount["Source"], mount["Type"], mount["ReadOnly"]) == \
        ("/.testbed/node", "/var/lib/testbed/n1", "bind", True)
    assert "volumes" not in extra  # volumes= would end up as VOLUME in a docker commit
    assert extra["tmpfs"] == {"/.testbed/run": augment.RUN_TMPFS_OPTIONS}
    assert extra["environment"] == {"TESTBED_APP_RESTART": "on-failure"}
    assert "environment" not in augment.runtime_kwargs("/n")
    base = {"image": "i", "environment": {"A": "1"}, "mounts": ["m0"], "volumes": {"/h": {"bind": "/etc/hosts"}}}
    merged = augment.merge_kwargs(base, extra)
    assert merged["environment"] == {"A": "1", "TESTBED_APP_RESTART": "on-failure"}
    assert merged["mounts"] == ["m0", mount] and merged["volumes"] == base["volumes"]
    assert base["environment"] == {"A": "1"} and base["mounts"] == ["m0"]  # not modified
    assert augment.merge_kwargs({"environment": None}, extra)["environment"] == {"TESTBED_APP_RESTART": "on-failure"}
    with pytest.raises(AugmentError, match="restart policy"):
        augment.runtime_kwargs("/n", app_restart="sometimes")


def test_write_start_command(tmp_path):
    node_dir = str(tmp_path / "nodes" / "a")
    assert augment.write_start_command(node_dir, None) is False
    assert os.path.isdir(node_dir)  # the bind mount needs its source
    assert augment.write_start_command(node_dir, "echo hi", dry_run=True) is True
    assert not os.path.exists(os.path.join(node_dir, "start"))
    assert augment.write_start_command(node_dir, "echo hi") is True
    assert augment.write_start_command(node_dir, "echo hi") is False
    with open(os.path.join(node_dir, "start")) as f:
        assert f.read() == "echo hi"
    assert augment.write_start_command(node_dir, "  ") is True
    assert not os.path.exists(os.path.join(node_dir, "start"))


def test_parse_status():
    st = augment.parse_status("format=1\nsupervisor=running\napp=exited:137\napp_restarts=2\nstart=running\n"
                              "start_pid=9\napp_error=exec /x: No such file or directory\n")
    assert (st["app_state"], st["app_exit"], st["start_state"], st["start_exit"]) == ("exited", 137, "running", None)
    assert st["app_error"] == "exec /x: No such file or directory"
    st = augment.parse_status("app=none\nstart=exited:0\n")
    assert (st["app_state"], st["app_exit"], st["start_state"], st["start_exit"]) == ("none", None, "exited", 0)
    assert augment.parse_status("")["start_state"] is None


@pytest.fixture
def fake_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(augment, "PROC_ROOT", str(tmp_path / "proc" / "%d" / "root"))
    root = tmp_path / "proc" / "42" / "root"
    (root / ".testbed" / "run").mkdir(parents=True)
    return root


def test_mark_ready_and_read_status(fake_proc):
    run = fake_proc / ".testbed" / "run"
    assert augment.read_status(42) == {}
    assert augment.mark_ready(42) is True
    assert (run / "ready").is_file() and not (run / ".ready.tmp").exists()
    assert augment.mark_ready(42) is False
    (run / "status").write_text("app=running\napp_pid=7\nstart=exited:3\n")
    st = augment.read_status(42)
    assert st["app_pid"] == "7" and st["start_exit"] == 3


def test_marker_never_follows_a_symlink_of_the_node(fake_proc, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    run = fake_proc / ".testbed" / "run"
    run.rmdir()
    run.symlink_to(outside)
    with pytest.raises(AugmentError, match="not an augmented node"):
        augment.mark_ready(42)
    with pytest.raises(AugmentError):
        augment.read_status(42)
    assert list(outside.iterdir()) == []
    (fake_proc / ".testbed" / "run").unlink()
    (fake_proc / ".testbed" / "run").mkdir()
    (fake_proc / ".testbed" / "run" / "status").symlink_to(outside / "secret")
    (outside / "secret").write_text("app=running\n")
    with pytest.raises(OSError):
        augment.read_status(42)


def test_not_augmented_or_gone(fake_proc, tmp_path):
    (fake_proc / ".testbed" / "run").rmdir()
    with pytest.raises(AugmentError, match="no /.testbed/run"):
        augment.mark_ready(42)
    with pytest.raises(AugmentError, match="is the node running"):
        augment.mark_ready(43)
