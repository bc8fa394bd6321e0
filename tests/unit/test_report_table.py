"""The node table: the SSH column tells when a full node's own SSH server is not running."""
from ansible_collections.testbed.containers.plugins.module_utils import report


def record(**extra):
    node = {"node": "a", "host": "h", "state": "booted", "container": "tb_p_e_a", "interfaces": [],
            "ssh": "ssh -p 30000 alice@h"}
    node.update(extra)
    return {"project": "p", "name": "e", "nodes": [node]}


def test_ssh_column_shows_a_stopped_sshd_and_nothing_when_it_runs():
    assert report.table(record(sshd="running"))[2].endswith("ssh -p 30000 alice@h")
    assert report.table(record(sshd="exited:1"))[2].endswith("ssh -p 30000 alice@h (sshd exited:1)")
    assert report.table(record())[2].endswith("ssh -p 30000 alice@h")  # exec style: no sshd of its own


def test_sshd_state_is_volatile_so_the_record_does_not_change_with_it():
    assert report.stable(record(sshd="running")) == report.stable(record(sshd="exited:1"))


def test_status_document_has_every_node_with_its_interfaces_and_capture_command():
    from ansible_collections.testbed.containers.plugins.module_utils import plan
    p = plan.make_plan({"name": "e", "project": "p", "nodes": {"a": {"image": "busybox"}, "b": {"image": "busybox"}},
                        "links": {"l": {"endpoints": ["a", "b"], "bandwidth": "10mbit"}}}, ["h"])
    statuses = [[{"node": "a", "host": "h", "state": "booted", "container": "tb_p_e_a", "start": "none",
                  "control_address": "172.30.0.2", "ssh": "ssh -p 30000 root@h"},
                 {"node": "b", "host": "h", "state": "dead", "container": "tb_p_e_b", "reason": "exit 127"}]]
    document = report.status_document(report.merge(p, statuses))
    assert (document["project"], document["name"], document["counts"]) == ("p", "e", {"booted": 1, "dead": 1})
    a, b = document["nodes"]
    assert a["node"] == "a" and a["control_address"] == "172.30.0.2" and b["reason"] == "exit 127"
    iface = b["interfaces"][0]
    assert iface["ifname"] == "eth1" and iface["lan"] == "l" and iface["host_interface"] == p["nodes"]["b"]["interfaces"][0]["veth"]
    assert iface["capture_command"] == "ssh h tcpdump -U -w - -i %s" % iface["host_interface"]
    assert iface["to_node"]["rate_bps"] == 10000000  # a->b is shaped on b's end


def test_capture_locates_attachments_and_counts_pcap_packets(tmp_path):
    import struct

    import pytest
    from ansible_collections.testbed.containers.plugins.module_utils import capture, plan
    p = plan.make_plan({"name": "e", "project": "p", "nodes": {"a": {"image": "busybox"}, "b": {"image": "busybox"}},
                        "lans": {"lan0": {"members": ["a", "b"]}}}, ["h"])
    assert capture.locate(p, "a", "lan0") == ("h", p["nodes"]["a"]["interfaces"][0]["veth"])
    assert capture.locate(p, "all", "lan0") == ("h", p["lans"]["lan0"]["bridge"])
    with pytest.raises(capture.CaptureError) as exc:
        capture.locate(p, "c", "lan0")
    assert str(exc.value) == "node: p/e has no node 'c' (its nodes: a, b, or all for the whole LAN)"
    with pytest.raises(capture.CaptureError) as exc:
        capture.locate(p, "a", "lan9")
    assert str(exc.value) == "lan: p/e has no LAN or link 'lan9' (its LANs and links: lan0)"
    pcap = tmp_path / "x.pcap"
    body = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for size in (60, 98, 42):
        body += struct.pack("<IIII", 1, 2, size, size) + b"\0" * size
    pcap.write_bytes(body)
    assert capture.count_packets(str(pcap)) == 3
    assert capture.tcpdump_args("tbv", "/tmp/x", 5, "icmp") == [capture.TCPDUMP, "-i", "tbv", "-U", "-n", "-w", "/tmp/x",
                                                                "-c", "5", "icmp"]


def test_event_entry_takes_the_earliest_start_the_latest_delay_and_names_failed_hosts():
    from ansible_collections.testbed.containers.plugins.module_utils import report as rep
    entry, failed = rep.event_entry("link lan0 down", 2.0, [
        {"host": "h1", "applied_at": 100.5, "late": 0.2, "operations": ["take down tbx (a on lan0)"]},
        {"host": "h2", "failed": True, "msg": "h2: no interface"},
        {"skipped": True}])
    assert failed == {"h2": "h2: no interface"}
    assert entry["applied_at"] == 100.5 and entry["late"] == 0.2 and entry["at"] == 2.0
    assert entry["result"] == "failed on h2"
    assert entry["hosts"]["h1"]["operations"] == ["take down tbx (a on lan0)"] and entry["hosts"]["h2"]["error"]
    assert "link lan0 down: failed on h2 (+0.20 s late)" in rep.event_line(entry)


def test_placement_line_shows_targets_when_balanced_and_counts_alone_when_filled():
    balanced = {"mode": "balanced", "tolerance": 0.05, "per_host": {"h1": 48, "h2": 52}, "target": {"h1": 50, "h2": 50},
                "spanning": 3, "crossing": 12}
    assert report.placement_line(balanced) == "placement: balanced (±5%), h1 48/50, h2 52/50; 3 LANs span hosts, 12 attachments cross"
    filled = {"mode": "fill", "per_host": {"h1": 3, "h2": 1}, "spanning": 1, "crossing": 1}
    assert report.placement_line(filled) == "placement: fill, h1 3, h2 1; 1 LAN spans hosts, 1 attachment crosses"
    assert report.placement_line(dict(filled, per_host={"h1": 4, "h2": 0}, spanning=0, crossing=0)) == (
        "placement: fill, h1 4, h2 0; no LAN spans hosts")
    assert report.placement_line(None) is None


def test_table_shows_the_placement_under_the_summary_and_a_single_host_table_does_not():
    placed = dict(record(), plan={"placement": {"mode": "fill", "per_host": {"h": 1, "g": 0}, "spanning": 0, "crossing": 0}})
    lines = report.table(placed)
    assert lines[1] == "placement: fill, h 1, g 0; no LAN spans hosts" and lines[2].startswith("NODE")
    assert report.table(record())[1].startswith("NODE")
    assert "placement" not in report.status_document(record())
