"""The topology picture: DOT source of a 3-host plan (host boxes, LANs inside or between them, a
link, shaping, state colours), graphviz's SVG of it, and the module's check mode."""
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import picture
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTS = ["h1", "h2", "h3"]
HOST_VARS = dict((h, {"tunnel_address": "192.0.2.%d" % i}) for i, h in enumerate(HOSTS, 1))
DOT = "/usr/bin/dot"
SVG = "{http://www.w3.org/2000/svg}"

# a and b on h1, c on h2, d-1 on h3: lan0 (a, b, c) spans h1 and h2 and is shaped; lan1 (a, b)
# stays on h1; the link wan (c, d-1) joins h2 and h3, shaped differently each way
DOC = {
    "name": "pic",
    "project": "p-1",
    "nodes": {"a": {"image": "testbed/debian:bookworm", "host": "h1"}, "b": {"image": "img", "host": "h1"},
              "c": {"image": "img", "host": "h2"}, "d-1": {"image": "img", "host": "h3"}},
    "lans": {"lan0": {"members": ["a", "b", {"node": "c", "bandwidth": "5mbit"}], "bandwidth": "10mbit",
                      "delay": "20ms", "loss": 0.001},
             "lan1": {"members": ["a", "b"]}},
    "links": {"wan": {"endpoints": ["c", "d-1"], "bandwidth": "10mbit", "delay": "5ms",
                      "c_to_d-1": {"bandwidth": "2mbit"}}},
}
RECORD = {"nodes": [{"node": "a", "host": "h1", "state": "booted"}, {"node": "b", "host": "h1", "state": "running"},
                    {"node": "c", "host": "h2", "state": "dead"}, {"node": "d-1", "host": "h3", "state": "absent"}]}


@pytest.fixture(scope="module")
def plan():
    return make_plan(DOC, HOSTS, host_vars=HOST_VARS)


def addr(plan_, node, lan):
    iface = [i for i in plan_["nodes"][node]["interfaces"] if i["lan"] == lan][0]
    return "%s %s/%d" % (iface["ifname"], iface["address"], iface["prefixlen"])


def clusters(source):
    """cluster id -> the lines inside it."""
    found, current = {}, None
    for line in source.splitlines():
        match = re.match(r'^  subgraph "(cluster_[^"]*)" \{$', line)
        if match:
            current = found.setdefault(match.group(1), [])
        elif line == "  }":
            current = None
        elif current is not None:
            current.append(line)
    return found


def test_plan_has_the_placement_the_picture_is_about(plan):
    assert [plan["nodes"][n]["host"] for n in ("a", "b", "c", "d-1")] == ["h1", "h1", "h2", "h3"]
    assert plan["lans"]["lan0"]["hosts"] == ["h1", "h2"] and plan["lans"]["lan1"]["hosts"] == ["h1"]
    assert plan["lans"]["wan"]["kind"] == "link"


def test_one_cluster_per_host_holding_its_nodes_and_its_one_host_lans(plan):
    source = picture.dot_source(plan)
    boxes = clusters(source)
    assert sorted(boxes) == ["cluster_0_h1", "cluster_1_h2", "cluster_2_h3"]
    assert '    graph [label="h1", labeljust=l, style=rounded, color=grey40];' in boxes["cluster_0_h1"]
    inside = dict((c, [re.match(r'^    "([^"]+)" \[', line).group(1) for line in lines if re.match(r'^    "[^"]+" \[', line)])
                  for c, lines in boxes.items())
    assert inside == {"cluster_0_h1": ["node:a", "node:b", "lan:lan1"], "cluster_1_h2": ["node:c"],
                      "cluster_2_h3": ["node:d-1"]}
    # lan0 spans two hosts: between the boxes; the link is an edge, not a LAN shape
    assert re.search(r'^  "lan:lan0" \[shape=ellipse.*label="lan0\\n10\.10\.0\.0/24"\];$', source, re.M)
    assert '"lan:wan"' not in source


def test_nodes_are_boxes_with_name_and_image_and_plain_without_a_record(plan):
    source = picture.dot_source(plan)
    assert '"node:a" [shape=box, style="rounded", label="a\\ntestbed/debian:bookworm"];' in source
    assert "fillcolor=\"palegreen\"" not in source and "state:" not in source


def test_lan_edges_carry_interface_address_and_shaping(plan):
    source = picture.dot_source(plan)
    assert '"node:a" -- "lan:lan0" [label="%s\\n10mbit 20ms 0.1%%"];' % addr(plan, "a", "lan0") in source
    assert '"node:b" -- "lan:lan1" [label="%s"];' % addr(plan, "b", "lan1") in source
    # c's own bandwidth replaces the LAN's, both ways: one text
    assert '"node:c" -- "lan:lan0" [label="%s\\n5mbit 20ms 0.1%%"];' % addr(plan, "c", "lan0") in source


def test_a_member_shaped_differently_each_way_shows_both_directions():
    doc = {"name": "dirs", "nodes": {"a": {"image": "img"}, "b": {"image": "img"}},
           "lans": {"lan0": {"members": [{"node": "a", "to_node": {"bandwidth": "10mbit"},
                                          "from_node": {"bandwidth": "5mbit"}}, "b"]}}}
    source = picture.dot_source(make_plan(doc, ["h1"]))
    assert '"node:a" -- "lan:lan0" [label="eth1 10.10.0.1/24\\nto: 10mbit / from: 5mbit"];' in source
    assert '"node:b" -- "lan:lan0" [label="eth1 10.10.0.2/24"];' in source


def test_a_link_is_one_edge_with_both_addresses_and_each_direction(plan):
    source = picture.dot_source(plan)
    edges = [line for line in source.splitlines() if '"node:c" -- "node:d-1"' in line]
    assert edges == ['  "node:c" -- "node:d-1" [label="wan %s\\nc %s\\nd-1 %s\\nc->d-1: 2mbit 5ms\\nd-1->c: 10mbit 5ms",'
                     ' penwidth=2];' % (plan["lans"]["wan"]["subnet"], addr(plan, "c", "wan"), addr(plan, "d-1", "wan"))]
    assert not [line for line in source.splitlines() if "lan:wan" in line]


def test_shape_words():
    assert picture.shape_words(None) == ""
    assert picture.shape_words({"rate_bps": 10 ** 7, "delay_us": 20000, "jitter_us": 5000, "loss": 0.001,
                                "limit_packets": 100}) == u"10mbit 20ms\u00b15ms 0.1% queue 100"
    assert picture.attachment_words({"to_node": {"rate_bps": 10 ** 7}, "from_node": None}) == "to: 10mbit / from: none"


def test_record_colours_nodes_by_state(plan):
    source = picture.dot_source(plan, RECORD)
    for node, state in (("a", "booted"), ("b", "running"), ("c", "dead"), ("d-1", "absent")):
        line = [x for x in source.splitlines() if x.startswith('    "node:%s" [' % node)][0]
        assert 'style="rounded,filled"' in line and 'fillcolor="%s"' % picture.STATE_COLORS[state] in line, line
        assert "\\n%s\"" % state in line
    assert picture.STATE_COLORS == {"booted": "palegreen", "running": "khaki1", "dead": "lightcoral",
                                    "absent": "lightgrey"}
    assert "state: booted green, running yellow, dead red, absent grey" in source
    # a node the record does not know stays plain
    partial = picture.dot_source(plan, {"nodes": RECORD["nodes"][:1]})
    assert '"node:b" [shape=box, style="rounded", label="b\\nimg"];' in partial


def test_output_is_deterministic(plan):
    assert picture.dot_source(plan, RECORD) == picture.dot_source(json.loads(json.dumps(plan)), RECORD)


def test_identifiers_and_labels_are_quoted_and_escaped():
    assert picture.quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\\nd"'
    doc = {"name": "q", "nodes": {"a": {"image": "img"}}, "lans": {}}
    odd = make_plan(doc, ["h1"])
    odd["hosts"] = ['rack-1.lab "east"']
    odd["nodes"]["a"].update(host='rack-1.lab "east"', image='img"; evil="1')
    source = picture.dot_source(odd)
    assert 'subgraph "cluster_0_rack-1.lab \\"east\\"" {' in source
    assert 'label="a\\nimg\\"; evil=\\"1"' in source


@pytest.mark.skipif(not os.path.exists(DOT), reason="graphviz is not installed (%s missing): apt-get install graphviz"
                    % DOT)
def test_render_writes_svg_and_png_showing_every_node_lan_and_host(plan, tmp_path):
    files = picture.render(picture.dot_source(plan, RECORD), str(tmp_path / "sub" / "pic"))
    assert files == [str(tmp_path / "sub" / "pic.svg"), str(tmp_path / "sub" / "pic.png")]
    with open(files[1], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    root = ET.parse(files[0]).getroot()
    texts = set((t.text or "").strip() for t in root.iter(SVG + "text"))
    for word in ["a", "b", "c", "d-1", "lan0", "lan1", "h1", "h2", "h3", "10mbit 20ms 0.1%", addr(plan, "a", "lan0"),
                 "c->d-1: 2mbit 5ms", "p-1/pic"]:
        assert word in texts, (word, sorted(texts))
    titles = dict((g.get("class"), set()) for g in root.iter(SVG + "g"))
    for g in root.iter(SVG + "g"):
        title = g.find(SVG + "title")
        if title is not None:
            titles[g.get("class")].add(title.text)
    assert titles["cluster"] == set(["cluster_0_h1", "cluster_1_h2", "cluster_2_h3"])
    assert set(["node:a", "node:b", "node:c", "node:d-1", "lan:lan0", "lan:lan1"]) <= titles["node"]
    fills = set(p.get("fill") for p in root.iter(SVG + "path")) | set(p.get("fill") for p in root.iter(SVG + "polygon"))
    assert "lightcoral" in fills and "palegreen" in fills


def test_render_names_the_missing_command(monkeypatch, tmp_path):
    monkeypatch.setattr(picture.shutil, "which", lambda name: None)
    with pytest.raises(picture.PictureError, match=r"dot command is missing.*apt-get install graphviz"):
        picture.render("graph g {}", str(tmp_path / "x"))
    assert not os.listdir(str(tmp_path))


@pytest.mark.skipif(not os.path.exists(DOT), reason="graphviz is not installed (%s missing)" % DOT)
def test_render_rejects_a_bad_format_and_reports_dot_errors(tmp_path):
    with pytest.raises(picture.PictureError, match="invalid output format"):
        picture.render("graph g {}", str(tmp_path / "x"), ["svg; rm -rf /"])
    with pytest.raises(picture.PictureError, match=r"dot -Tsvg .* failed"):
        picture.render("graph g {", str(tmp_path / "x"), ["svg"])


def run_module(args, tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, ".collections")] + sys.path))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "plugins", "modules", "experiment_visualize.py"),
                           str(path)], stdout=subprocess.PIPE, universal_newlines=True, env=env, check=False)
    return json.loads(proc.stdout)


def test_module_check_mode_returns_the_source_and_writes_nothing(plan, tmp_path):
    result = run_module({"plan": plan, "record": RECORD, "dest": str(tmp_path / "out" / "pic"),
                         "_ansible_check_mode": True}, tmp_path)
    assert result["changed"] is False and result["files"] == [], result
    assert result["dot"] == picture.dot_source(plan, RECORD)
    assert not os.path.exists(str(tmp_path / "out"))


@pytest.mark.skipif(not os.path.exists(DOT), reason="graphviz is not installed (%s missing)" % DOT)
def test_module_writes_each_format(plan, tmp_path):
    result = run_module({"plan": plan, "dest": str(tmp_path / "pic"), "formats": ["svg", "dot"]}, tmp_path)
    assert result["changed"] is True and result["files"] == [str(tmp_path / "pic.svg"), str(tmp_path / "pic.dot")]
    assert all(os.path.getsize(f) > 0 for f in result["files"])
