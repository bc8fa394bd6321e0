"""images.augment_images (module image_augment) with the augmentation steps stood in for: what
is built, what is found, what check mode says, and what a failure keeps."""
import pytest

from ansible_collections.testbed.containers.plugins.module_utils import augment, images

CLI = object()


@pytest.fixture
def steps(monkeypatch):
    """``plan_augmentation`` plans a build for images named in ``build``, finds the others cached;
    ``augment_image`` records what it builds."""
    state = {"build": {"a"}, "built": [], "fail": set()}

    def plan(cli, ref, level, tools_dir=None):
        assert cli is CLI and level == "basic"
        if ref in state["fail"]:
            raise augment.AugmentError("%s: no such image" % ref)
        return {"action": "build" if ref in state["build"] else "cached", "ref": "aug/%s:%s-k" % (ref, level)}

    def build(cli, ref, level, tools_dir=None):
        state["built"].append(ref)
        return "aug/%s:%s-k" % (ref, level), True

    monkeypatch.setattr(augment, "plan_augmentation", plan)
    monkeypatch.setattr(augment, "augment_image", build)
    return state


def test_each_distinct_image_is_built_or_found_once(steps):
    changed, ops, result = images.augment_images(["a", "b", "a"], "basic", cli=CLI)
    assert changed and ops == ["augment image a (basic) as aug/a:basic-k"] and steps["built"] == ["a"]
    assert result["refs"] == {"a": "aug/a:basic-k", "b": "aug/b:basic-k"}
    assert [(e["image"], e["result"], e["changed"]) for e in result["images"]] == [
        ("a", "built", True), ("b", "cached", False)]


def test_check_mode_names_the_builds_and_builds_nothing(steps):
    changed, ops, result = images.augment_images(["a", "b"], "basic", dry_run=True, cli=CLI)
    assert changed and ops == ["augment image a (basic)"] and steps["built"] == []
    assert result["images"][0]["result"] == "built"


def test_level_none_needs_no_engine_and_changes_nothing():
    changed, ops, result = images.augment_images(["a", "a", "b"], "none")
    assert (changed, ops, result["refs"]) == (False, [], {"a": "a", "b": "b"})
    assert [e["result"] for e in result["images"]] == ["none", "none"]


def test_a_failure_keeps_the_entries_of_the_images_done_before(steps):
    steps["fail"].add("b")
    with pytest.raises(images.AugmentFailed, match="^b: no such image$") as err:
        images.augment_images(["a", "b"], "basic", cli=CLI)
    assert [e["image"] for e in err.value.images] == ["a"]
