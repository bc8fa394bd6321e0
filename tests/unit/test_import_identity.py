"""A converted file and its source plan identically: the plan role and the converter share
importers.load, and the YAML the converter writes reads back as the same document."""
import os
import shutil

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import importers, model, plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples", "imports")
OPTIONS = {"os_images": {"UBUNTU22-64-STD": "testbed/debian:bookworm"}}
# with no packing the nodes spread over both hosts (balanced placement): LANs span them
TUNNELS = {"h1": {"tunnel_address": "192.0.2.1"}, "h2": {"tunnel_address": "192.0.2.2"}}


@pytest.mark.parametrize("source,fmt", [("routed.ns", "ns"), ("pair.clab.yml", "clab"),
                                        (os.path.join("compose", "compose.yml"), "compose")])
def test_a_converted_file_plans_as_its_source(tmp_path, source, fmt):
    path = os.path.join(EXAMPLES, source)
    got_fmt, doc, notes = importers.load(path, None, OPTIONS)
    assert got_fmt == fmt
    model.validate(doc)
    converted = tmp_path / "converted.yml"
    converted.write_text(importers.render_yaml(doc, notes, path, fmt))
    original_plan, _notes = plan.load_and_plan(path, ["h1", "h2"], host_vars=TUNNELS, import_options=OPTIONS)
    converted_plan, converted_notes = plan.load_and_plan(str(converted), ["h1", "h2"], host_vars=TUNNELS)
    assert converted_notes == []
    assert converted_plan == original_plan
    # every note of the source is a comment of the converted file
    text = converted.read_text()
    for note in notes:
        assert "# %s" % note in text


def test_format_detection_by_name_and_by_option(tmp_path):
    assert importers.detect_format("lab.ns") == "ns" and importers.detect_format("x/lab.tcl") == "ns"
    assert importers.detect_format("lab.clab.yml") == "clab" and importers.detect_format("lab.clab.yaml") == "clab"
    for name in ("compose.yml", "compose.yaml", "docker-compose.yml", "docker-compose.prod.yaml"):
        assert importers.detect_format(name) == "compose", name
    assert importers.detect_format("demo.yml") == "native" and importers.detect_format("compose-notes.yml") == "native"
    assert importers.detect_format("lab.yml", "ns") == "ns"
    with pytest.raises(ValueError) as exc:
        importers.detect_format("lab.yml", "gns3")
    assert "experiment_format must be one of native, ns, clab, compose" in str(exc.value)
    # a file in another format with our own extension: experiment_format says what it is
    shutil.copy(os.path.join(EXAMPLES, "pair.clab.yml"), str(tmp_path / "lab.yml"))
    fmt, doc, _notes = importers.load(str(tmp_path / "lab.yml"), "clab")
    assert fmt == "clab" and sorted(doc["nodes"]) == ["h1", "r1"]


def test_strict_makes_warnings_errors(tmp_path):
    source = tmp_path / "lab.clab.yml"
    source.write_text("name: lab\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox, startup-config: a.cfg}\n")
    _fmt, _doc, notes = importers.load(str(source))
    assert [n.level for n in notes if "startup-config" in n.message] == ["warning"]
    with pytest.raises(importers.ImportFailed) as exc:
        importers.load(str(source), None, {"strict": True})
    assert "%s:4: error: " % source in str(exc.value) and "(strict: warnings are errors)" in str(exc.value)


def test_a_broken_file_of_ours_names_its_line(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\nnodes:\n  a: {image: [\n")
    with pytest.raises(model.ExperimentError) as exc:
        plan.load_and_plan(str(bad), ["h"])
    assert str(exc.value).startswith("%s:4: error: not valid YAML" % bad)
