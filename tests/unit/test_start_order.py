"""depends_on: the start order of nodes (model errors with field paths, and the waves a host
starts its nodes in)."""
from __future__ import absolute_import, division, print_function

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import model, plan
from ansible_collections.testbed.containers.plugins.module_utils.planned import start_waves


def doc(**deps):
    nodes = dict((n, {"image": "testbed/busybox:latest"}) for n in ("a", "b", "c", "d"))
    for node, after in deps.items():
        nodes[node]["depends_on"] = after
    return {"name": "order", "nodes": nodes}


def errors(document):
    with pytest.raises(model.ExperimentError) as exc:
        model.validate(document)
    return exc.value.errors


def test_depends_on_names_nodes_of_the_experiment():
    assert errors(doc(b=["zz"])) == ["nodes.b.depends_on: node 'zz' is not in the experiment (its nodes: a, b, c, d)"]
    assert errors(doc(b=["b"])) == ["nodes.b.depends_on: a node cannot start after itself"]
    assert errors(doc(b="a")) == ["nodes.b.depends_on: must be a list of node names (the nodes that start first)"]


def test_a_cycle_is_refused_naming_it():
    found = errors(doc(a=["c"], b=["a"], c=["b"]))
    assert len(found) == 1 and "the start order has a cycle: " in found[0], found
    assert found[0].startswith("nodes.") and " -> " in found[0]


def test_the_plan_carries_the_order_only_when_set():
    planned = plan.make_plan(doc(b=["a"], c=["a", "b", "a"]), ["h1"])
    assert planned["nodes"]["b"]["depends_on"] == ["a"]
    assert planned["nodes"]["c"]["depends_on"] == ["a", "b"]
    assert "depends_on" not in planned["nodes"]["a"]


def test_waves_follow_the_order_on_one_host():
    planned = plan.make_plan(doc(b=["a"], c=["b"], d=["a"]), ["h1"])
    assert start_waves(planned, ["a", "b", "c", "d"]) == [["a"], ["b", "d"], ["c"]]
    unordered = plan.make_plan(doc(), ["h1"])
    assert start_waves(unordered, ["a", "b", "c", "d"]) == [["a", "b", "c", "d"]]


def test_a_dependency_on_another_host_does_not_hold_a_node_back():
    document = doc(b=["a"], c=["b"])
    document["nodes"]["a"]["host"] = "h1"
    for node in ("b", "c", "d"):
        document["nodes"][node]["host"] = "h2"
    planned = plan.make_plan(document, ["h1", "h2"])
    assert start_waves(planned, ["b", "c", "d"]) == [["b", "d"], ["c"]]
