"""The plan's placement summary (``plan["placement"]``, issue 16): there only when the inventory
has more than one host; its figures for the report; a change of it alone touches no node."""
from ansible_collections.testbed.containers.plugins.module_utils import engine, plan, planned, report

TUNNELS = dict(("h%d" % i, {"tunnel_address": "192.0.2.%d" % i}) for i in (1, 2, 3, 4))


def doc(lans=2, size=4, **extra):
    """``lans`` LANs of ``size`` busybox nodes each."""
    nodes, members = {}, {}
    for lan in range(lans):
        names = ["n%d-%d" % (lan, i) for i in range(size)]
        nodes.update((n, {"image": "busybox"}) for n in names)
        members["lan%d" % lan] = {"members": names}
    result = {"name": "e", "project": "p", "nodes": nodes, "lans": members}
    result.update(extra)
    return result


def test_a_single_host_plan_has_no_placement_summary():
    assert "placement" not in plan.make_plan(doc(), ["h1"])


def test_a_balanced_plan_carries_mode_tolerance_counts_and_targets():
    p = plan.make_plan(doc(lans=3, size=4), ["h1", "h2"], host_vars=TUNNELS)
    summary = p["placement"]
    assert summary["mode"] == "balanced" and summary["tolerance"] == 0.05
    assert summary["target"] == {"h1": 6, "h2": 6}
    assert summary["per_host"] == dict((h, len(planned.slice_of(p, h))) for h in ("h1", "h2")) == {"h1": 6, "h2": 6}
    spanning = [n for n, lan in p["lans"].items() if len(lan["hosts"]) > 1]
    assert summary["spanning"] == len(spanning) == 1
    assert summary["crossing"] == 2  # the split LAN's 2 members away from its majority host
    assert sorted(summary) == ["crossing", "mode", "per_host", "spanning", "target", "tolerance"]


def test_a_filled_plan_has_no_target_nor_tolerance_and_lists_every_inventory_host():
    p = plan.make_plan(doc(lans=1, size=3, placement={"packing": 4}), ["h1", "h2", "h3"], host_vars=TUNNELS)
    assert p["placement"] == {"mode": "fill", "per_host": {"h1": 3, "h2": 0, "h3": 0}, "spanning": 0, "crossing": 0}


def test_a_change_of_the_summary_alone_changes_no_node_nor_its_settings_hash():
    first = plan.make_plan(doc(lans=2, size=4), ["h1", "h2"], host_vars=TUNNELS)
    # a host more in the inventory: the targets change, the nodes stay where they were
    second = plan.make_plan(doc(lans=2, size=4), ["h1", "h2", "h3"], first, host_vars=TUNNELS)
    assert first["placement"] != second["placement"]
    assert second["placement"]["per_host"] == dict(first["placement"]["per_host"], h3=0)
    assert dict(first, placement=None) == dict(second, placement=None)
    for node in first["nodes"]:
        assert engine.container_spec(first, node, "sha256:1", "/h")[1] == engine.container_spec(second, node, "sha256:1", "/h")[1]


def test_status_table_and_document_show_the_placement_from_the_plan(tmp_path):
    p = plan.make_plan(doc(lans=3, size=4), ["h1", "h2"], host_vars=TUNNELS)
    _changed, _ops, result = report.converge_record(p, [], str(tmp_path))
    assert result["table"][1] == "placement: balanced (±5%), h1 6/6, h2 6/6; 1 LAN spans hosts, 2 attachments cross"
    assert result["table"][2].startswith("NODE")
    assert result["status"]["placement"] == p["placement"]
    # status.yml re-plans from the record and shows the same (its record is not rewritten)
    again = plan.make_plan(doc(lans=3, size=4), ["h1", "h2"], report.read_record(str(tmp_path), "p", "e")["plan"],
                           host_vars=TUNNELS)
    assert again == p
    assert report.converge_record(again, [], str(tmp_path), write=False)[2]["table"][1] == result["table"][1]
