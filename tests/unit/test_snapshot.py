"""Snapshot names and the committed image's configuration (pure logic of module_utils/snapshot.py)."""
import json

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import augment, snapshot

NOW = 1795000000  # 2026-11-17 ...


def test_default_repository_is_a_valid_lower_case_name():
    assert snapshot.default_repository("My_Proj", "Demo", "Server1") == "testbed-snapshot/my-proj-demo-server1"
    repo, tags = snapshot.image_and_tags(None, "p", "n", "x", NOW)
    assert repo == "testbed-snapshot/p-n-x" and tags[1] == "latest" and len(tags[0]) == 15


@pytest.mark.parametrize("image,want", [
    ("lab/server:v1", ("lab/server", ["v1"])),
    ("registry.local:5000/lab/server:v1", ("registry.local:5000/lab/server", ["v1"])),
    ("lab/server", ("lab/server", None)),
    ("registry.local:5000/lab/server", ("registry.local:5000/lab/server", None)),
])
def test_given_image_names(image, want):
    repo, tags = snapshot.image_and_tags(image, "p", "n", "x", NOW)
    assert repo == want[0]
    assert tags == (want[1] or [tags[0], "latest"])


@pytest.mark.parametrize("image,message", [
    ("Lab/Server", "image: 'Lab/Server' is not a valid repository name"),
    ("lab//server", "is not a valid repository name"),
    ("lab/server:bad tag", "image: tag 'bad tag' is not valid"),
    ("lab/server@sha256:abc", "is a digest reference"),
])
def test_bad_image_names_name_the_field(image, message):
    with pytest.raises(snapshot.SnapshotError) as err:
        snapshot.image_and_tags(image, "p", "n", "x", NOW)
    assert message in str(err.value)


def test_image_config_drops_the_nodes_labels_and_hostname():
    config = {"Hostname": "srv", "Image": "abc", "Cmd": ["sleep", "infinity"], "Entrypoint": ["/app"],
              "Labels": {"testbed.project": "p", "testbed.experiment": "n", "testbed.node": "srv",
                         "testbed.config-hash": "h", "org.example": "kept"}}
    conf = snapshot.image_config(config, "p", "n", "srv", NOW)
    assert "Hostname" not in conf and "Image" not in conf
    assert conf["Entrypoint"] == ["/app"] and conf["Cmd"] == ["sleep", "infinity"]
    assert conf["Labels"]["org.example"] == "kept" and conf["Labels"]["testbed.snapshot.of"] == "p/n/srv"
    assert [conf["Labels"][k] for k in snapshot.NODE_LABELS] == ["", "", "", ""]


def test_image_config_of_an_augmented_node_restores_the_original_configuration():
    config = {"Entrypoint": [augment.SUPERVISOR], "Cmd": ["nginx"], "User": "", "WorkingDir": "/",
              "Labels": {augment.LABEL_VERSION: "5", augment.LABEL_ENTRYPOINT: json.dumps(["/docker-entrypoint.sh"]),
                         augment.LABEL_USER: "www", augment.LABEL_WORKDIR: "/srv", augment.LABEL_LEVEL: "basic"}}
    conf = snapshot.image_config(config, "p", "n", "srv", NOW)
    assert conf["Entrypoint"] == ["/docker-entrypoint.sh"] and conf["Cmd"] == ["nginx"]
    assert conf["User"] == "www" and conf["WorkingDir"] == "/srv"
    config["Labels"][augment.LABEL_USER] = ""
    config["Labels"][augment.LABEL_ENTRYPOINT] = "[]"
    conf = snapshot.image_config(config, "p", "n", "srv", NOW)
    assert conf["User"] == "0:0" and conf["Entrypoint"] == []
    assert set(v for k, v in conf["Labels"].items() if k.startswith(augment.LABEL)) == {""}, conf["Labels"]
    assert not augment.is_augmented({"Config": conf})
