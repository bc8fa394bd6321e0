"""Inputs that try to escape are refused before anything exists, naming the field: names with
shell or path characters (or a trailing newline, which ``$`` in a regex lets through), image
references that would break a Dockerfile line, NUL in commands and environment values, SSH keys
with options or a second line."""
import pytest

from ansible_collections.testbed.containers.plugins.module_utils.model import ExperimentError
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlain"


def doc(node=None, **top):
    d = {"name": "e", "nodes": {"a": dict({"image": "img"}, **(node or {}))}}
    d.update(top)
    return d


def first_error(document):
    with pytest.raises(ExperimentError) as info:
        make_plan(document, ["h1"])
    return info.value.errors[0]


@pytest.mark.parametrize("document, path", [
    ({"name": "e\n", "nodes": {"a": {"image": "img"}}}, "name: invalid experiment name"),
    ({"name": "e", "project": "../etc", "nodes": {"a": {"image": "img"}}}, "project: invalid project name"),
    ({"name": "e", "nodes": {"a\n": {"image": "img"}}}, "nodes.a\n: invalid node name"),
    ({"name": "e", "nodes": {"a;id": {"image": "img"}}}, "nodes.a;id: invalid node name"),
    ({"name": "e", "nodes": {"a": {"image": "img"}}, "lans": {"$(id)": {"members": ["a"]}}}, "lans.$(id): invalid"),
    (doc({"image": "img\nRUN rm -rf /"}), "nodes.a.image: 'img\\nRUN rm -rf /' is not a Docker image reference"),
    (doc({"image": "img\n"}), "nodes.a.image: 'img\\n' is not a Docker image reference"),
    (doc({"image": "Img:latest"}), "nodes.a.image: 'Img:latest' is not a Docker image reference"),
    (doc({"image": "../img"}), "nodes.a.image: '../img' is not a Docker image reference"),
    (doc({"command": ["sh", "-c", "a\x00b"]}), "nodes.a.command: must not contain a NUL character"),
    (doc({"start": "echo a\x00b"}), "nodes.a.start: must not contain a NUL character"),
    (doc({"env": {"X": "a\x00b"}}), "nodes.a.env.X: must be a string, number or boolean without NUL"),
    (doc({"env": {"X\n": "a"}}), "nodes.a.env: must be a mapping of variable names to values"),
    (doc(ssh_keys=['command="id" ' + KEY]), "ssh_keys[0]: not an OpenSSH public key"),
    (doc(ssh_keys=[KEY + " me\nssh-rsa AAAA other"]), "ssh_keys[0]: not an OpenSSH public key"),
    (doc(ssh_keys=[KEY + " me\x00"]), "ssh_keys[0]: not an OpenSSH public key"),
    (doc(users=[{"name": "alice\n"}]), "users[0].name: 'alice\\n' is not an account name"),
])
def test_an_input_that_tries_to_escape_is_refused_naming_its_field(document, path):
    assert first_error(document).startswith(path)


@pytest.mark.parametrize("image", ["testbed/debian:bookworm", "busybox", "reg.example:5000/team/app:1.2-rc_3",
                                   "localhost/a__b/c-d.e:x", "img@sha256:" + "0" * 64, "198.18.255.1:5443/testbed/x:y"])
def test_real_image_references_are_accepted(image):
    assert make_plan(doc({"image": image}), ["h1"])["nodes"]["a"]["image"] == image


def test_quotes_newlines_and_dollars_in_start_commands_and_env_are_carried_as_data():
    start = "echo \"it's $HOME\"\nprintf '%s\\n' `id`"
    plan = make_plan(doc({"start": start, "env": {"X": "a'b\"c\nd$(id)"}}), ["h1"])
    assert plan["nodes"]["a"]["start"] == start
    assert plan["nodes"]["a"]["env"] == {"X": "a'b\"c\nd$(id)"}
