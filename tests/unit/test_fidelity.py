"""The fidelity report's pure half (module_utils/fidelity.py): the statistics, the parsers of what
iputils ping, busybox ping and iperf3 -J print, the measurement experiment built from the template
for the inventory's hosts, and the report's overhead rows, delay error, lines and document; and how
the host side (module_utils/measure.py) drives the tools, with a stand-in for them."""
import json
import os

import pytest
import yaml

from ansible_collections.testbed.containers.plugins.module_utils import fidelity, measure, names
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "examples", "fidelity.yml")

# iputils-ping 20221126 (Debian 12), -n: a duplicate, a lost reply and an error line
IPUTILS = """PING 10.10.0.2 (10.10.0.2) 56(84) bytes of data.
64 bytes from 10.10.0.2: icmp_seq=1 ttl=64 time=0.061 ms
64 bytes from 10.10.0.2: icmp_seq=2 ttl=64 time=0.048 ms
64 bytes from 10.10.0.2: icmp_seq=2 ttl=64 time=0.052 ms (DUP!)
64 bytes from 10.10.0.2: icmp_seq=3 ttl=64 time=0.055 ms
From 10.10.0.1 icmp_seq=4 Destination Host Unreachable
64 bytes from 10.10.0.2: icmp_seq=5 ttl=64 time=1.12 ms

--- 10.10.0.2 ping statistics ---
5 packets transmitted, 4 received, +1 duplicates, +1 errors, 20% packet loss, time 41ms
rtt min/avg/max/mdev = 0.048/0.321/1.120/0.461 ms
"""

# iputils when a name resolves (no -n): the address in parentheses, times of 10 ms and more
IPUTILS_NAMES = """PING b1-delay1 (10.10.2.2) 56(84) bytes of data.
64 bytes from b1-delay1 (10.10.2.2): icmp_seq=1 ttl=64 time=20.3 ms
64 bytes from b1-delay1 (10.10.2.2): icmp_seq=2 ttl=64 time=20.1 ms
64 bytes from b1-delay1 (10.10.2.2): icmp_seq=3 ttl=64 time=120 ms

--- b1-delay1 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 22ms
rtt min/avg/max/mdev = 20.100/53.466/120.000/47.141 ms
"""

# BusyBox v1.35.0 (Debian 12's busybox-static), between two network namespaces
BUSYBOX = """PING 192.0.2.2 (192.0.2.2): 56 data bytes
64 bytes from 192.0.2.2: seq=0 ttl=64 time=0.083 ms
64 bytes from 192.0.2.2: seq=1 ttl=64 time=0.073 ms
64 bytes from 192.0.2.2: seq=1 ttl=64 time=0.079 ms (DUP!)
64 bytes from 192.0.2.2: seq=2 ttl=64 time=3.421 ms

--- 192.0.2.2 ping statistics ---
3 packets transmitted, 3 packets received, +1 duplicates, 0% packet loss
round-trip min/avg/max = 0.073/0.914/3.421 ms
"""

# iperf 3.12 (Debian 12) -c 127.0.0.1 -t 1 -J, as printed (tabs and all)
with open(os.path.join(ROOT, "tests", "unit", "samples", "iperf3-3.12-loopback.json")) as _f:
    IPERF3 = _f.read()

# iperf 3.12 -J when nothing listens
IPERF3_REFUSED = """{
\t"start":\t{
\t\t"connected":\t[],
\t\t"version":\t"iperf 3.12",
\t\t"system_info":\t"Linux vm 6.18.44-fc-v1098 #1 SMP PREEMPT_DYNAMIC @0 x86_64"
\t},
\t"intervals":\t[],
\t"end":\t{
\t},
\t"error":\t"unable to connect to server: Connection refused"
}
"""


def template():
    with open(TEMPLATE) as f:
        return yaml.safe_load(f)


# --- statistics ---------------------------------------------------------------------------------
def test_median_of_odd_and_even_counts():
    assert fidelity.median([3, 1, 2]) == 2
    assert fidelity.median([4, 1, 3, 2]) == 2.5
    with pytest.raises(ValueError):
        fidelity.median([])


def test_p99_of_200_samples_is_the_198th_smallest_so_two_outliers_do_not_move_it():
    values = [0.05] * 198 + [5.0, 9.0]
    assert fidelity.percentile(values, 99) == 0.05
    values = [0.05] * 197 + [3.0, 5.0, 9.0]
    assert fidelity.percentile(values, 99) == 3.0
    assert fidelity.percentile(list(range(1, 101)), 99) == 99
    assert fidelity.percentile([7], 99) == 7
    assert fidelity.percentile([1, 2, 3], 100) == 3
    with pytest.raises(ValueError):
        fidelity.percentile([1], 0)


def test_rtt_summary_counts_loss_and_keeps_median_under_p99():
    summary = fidelity.rtt_summary({"samples": [0.2, 0.1, 0.3, 5.0], "transmitted": 5, "received": 4})
    assert summary == {"sent": 5, "received": 4, "loss": 0.2, "min": 0.1, "median": 0.25, "p99": 5.0, "max": 5.0,
                       "mean": 1.4}
    empty = fidelity.rtt_summary({"samples": [], "transmitted": 3, "received": 0})
    assert empty == {"sent": 3, "received": 0, "loss": 1.0}


# --- what the tools print -----------------------------------------------------------------------
def test_iputils_ping_output_gives_the_replies_without_duplicates_and_the_counts():
    parsed = fidelity.parse_ping(IPUTILS)
    assert parsed == {"samples": [0.061, 0.048, 0.055, 1.12], "transmitted": 5, "received": 4, "flavour": "iputils"}
    parsed = fidelity.parse_ping(IPUTILS_NAMES)
    assert parsed["samples"] == [20.3, 20.1, 120.0] and parsed["received"] == 3


def test_busybox_ping_output_gives_the_replies_without_duplicates_and_the_counts():
    parsed = fidelity.parse_ping(BUSYBOX)
    assert parsed == {"samples": [0.083, 0.073, 3.421], "transmitted": 3, "received": 3, "flavour": "busybox"}


def test_ping_output_without_replies_or_summary_gives_no_samples():
    assert fidelity.parse_ping("ping: sendmsg: Network is unreachable\n")["samples"] == []
    assert fidelity.parse_ping(None) == {"samples": [], "transmitted": None, "received": None, "flavour": None}
    summary = fidelity.rtt_summary(fidelity.parse_ping(BUSYBOX.split("\n---", maxsplit=1)[0]))
    assert summary["sent"] == 3 and summary["loss"] == 0.0  # no summary: the replies count


def test_iperf3_json_gives_the_receivers_throughput_and_the_senders_retransmits():
    assert fidelity.parse_iperf3(IPERF3) == {"bits_per_second": 16523917632.981138,
                                             "sent_bits_per_second": 16544983078.0308, "retransmits": 2,
                                             "bytes": 2069626880, "seconds": 1.002}
    # through docker exec, stderr lines may come before the document
    noisy = "iperf3: some warning on stderr\n" + IPERF3
    assert fidelity.parse_iperf3(noisy)["bytes"] == 2069626880


def test_iperf3_errors_are_its_own_words():
    with pytest.raises(fidelity.FidelityError, match="^iperf3: unable to connect to server: Connection refused$"):
        fidelity.parse_iperf3(IPERF3_REFUSED)
    with pytest.raises(fidelity.FidelityError, match="printed no JSON: OCI runtime exec failed"):
        fidelity.parse_iperf3('OCI runtime exec failed: exec: "iperf3": executable file not found in $PATH\n')
    with pytest.raises(fidelity.FidelityError, match="unreadable JSON"):
        fidelity.parse_iperf3(IPERF3[:2000] + "}")
    with pytest.raises(fidelity.FidelityError, match="no end.sum_received"):
        fidelity.parse_iperf3('{"start": {}, "end": {}}')


# --- the measurement experiment ----------------------------------------------------------------
def test_one_host_without_netem_gets_no_delay_link_and_the_delay_is_skipped_with_the_reason():
    experiment, items = fidelity.design(template(), ["localhost"], {"localhost": ["netem"]})
    assert sorted(experiment["nodes"]) == ["a1", "b1"]
    assert all(n["host"] == "localhost" for n in experiment["nodes"].values())
    assert experiment["lans"] == {"plain1": {"members": ["a1", "b1"]},
                                  "qdisc1": {"members": ["a1", "b1"], "bandwidth": "100gbit"}}
    assert "links" not in experiment
    assert [(i["path"], i["skipped"]) for i in items] == [
        ("netns", None), ("lan", None), ("qdisc", None),
        ("delay", "netem missing on localhost: delay cannot be measured")]
    assert items[3]["asked_rtt_ms"] == 20.0
    plan = make_plan(experiment, ["localhost"])
    assert "netem" not in plan["features"] and "htb" in plan["features"]
    assert fidelity.target_address(plan, items[1]) == plan["nodes"]["b1"]["interfaces"][0]["address"]
    assert fidelity.target_address(plan, items[0]) is None


def test_three_hosts_get_their_own_pairs_and_consecutive_hosts_a_cross_host_lan():
    hosts = ["h1", "h2", "h3"]
    experiment, items = fidelity.design(template(), hosts)
    assert experiment["nodes"]["a2"]["host"] == "h2" and experiment["nodes"]["b3"]["host"] == "h3"
    assert experiment["lans"]["vxlan1"] == {"members": ["a1", "b2"]}
    assert experiment["lans"]["vxlan2"] == {"members": ["a2", "b3"]}
    assert experiment["links"]["delay2"] == {"endpoints": ["a2", "b2"], "delay": "10ms"}
    ids = [i["id"] for i in items]
    assert ids[-4:] == ["h1/hosts->h2", "h1/vxlan->h2", "h2/hosts->h3", "h2/vxlan->h3"]
    plan = make_plan(experiment, hosts, host_vars=dict((h, {"tunnel_address": "192.0.2.%d" % n})
                                                       for n, h in enumerate(hosts, 1)))
    assert plan["lans"]["vxlan1"]["hosts"] == ["h1", "h2"] and "vni" in plan["lans"]["vxlan1"]
    hosts_item = items[ids.index("h1/hosts->h2")]
    assert (hosts_item["tools"], hosts_item["server"]) == ("a1", "b2")
    assert fidelity.target_address(plan, hosts_item) == "192.0.2.2"
    vxlan = items[ids.index("h2/vxlan->h3")]
    b3 = dict((i["lan"], i["address"]) for i in plan["nodes"]["b3"]["interfaces"])
    assert fidelity.target_address(plan, vxlan) == b3["vxlan2"]


def test_a_host_without_vxlan_or_shaping_skips_what_it_cannot_carry():
    experiment, items = fidelity.design(template(), ["h1", "h2"], {"h2": ["vxlan", "htb", "ifb"]})
    skipped = dict((i["id"], i["skipped"]) for i in items if i["skipped"])
    assert skipped == {"h2/qdisc": "htb, ifb missing on h2: shaping qdiscs cannot be measured",
                       "h1/hosts->h2": "vxlan missing on h2: the cross-host LAN cannot be measured",
                       "h1/vxlan->h2": "vxlan missing on h2: the cross-host LAN cannot be measured"}
    assert "qdisc2" not in experiment["lans"] and "vxlan1" not in experiment["lans"]
    assert "qdisc1" in experiment["lans"]


def test_directional_delays_are_renamed_and_add_up_to_the_asked_round_trip():
    doc = template()
    doc["links"]["delay"] = {"endpoints": ["a", "b"], "delay": "10ms", "b_to_a": {"delay": "5ms"}}
    experiment, items = fidelity.design(doc, ["localhost"])
    assert experiment["links"]["delay1"] == {"endpoints": ["a1", "b1"], "delay": "10ms", "b1_to_a1": {"delay": "5ms"}}
    assert [i["asked_rtt_ms"] for i in items if i["path"] == "delay"] == [15.0]
    make_plan(experiment, ["localhost"])


@pytest.mark.parametrize("change, message", [
    (lambda d: d["nodes"].update(c={"image": "x"}), "nodes: must be exactly a, b (has a, b, c)"),
    (lambda d: d["lans"].pop("qdisc"), "lans: must be exactly plain, qdisc (has plain)"),
    (lambda d: d["nodes"]["a"].update(host="pc1"), "nodes.a.host: the playbook pins a copy of the node to each host"),
    (lambda d: d["nodes"]["b"].update(command=["sleep", "infinity"]), "nodes.b.command: must be [iperf3, -s]"),
    (lambda d: d["lans"]["qdisc"].pop("bandwidth"), "lans.qdisc.bandwidth: needed"),
    (lambda d: d["links"]["delay"].pop("delay"), "links.delay: delay (or a_to_b.delay) is needed"),
    (lambda d: d["links"]["delay"].update(delay="10"), "links.delay: invalid time '10'"),
])
def test_a_template_that_cannot_measure_is_refused_naming_the_field(change, message):
    doc = template()
    change(doc)
    with pytest.raises(fidelity.FidelityError) as err:
        fidelity.design(doc, ["localhost"])
    assert str(err.value).startswith("template: ") and message in str(err.value)


def test_no_host_is_an_error():
    with pytest.raises(fidelity.FidelityError, match="no physical host"):
        fidelity.design(template(), [])


def test_target_address_errors_name_the_measurement():
    item = fidelity.design(template(), ["h1", "h2"])[1][-2]
    with pytest.raises(fidelity.FidelityError, match="^h1/hosts->h2: the plan has no tunnel address for host h2"):
        fidelity.target_address({"tunnels": {}}, item)
    lan_item = fidelity.design(template(), ["h1"])[1][1]
    with pytest.raises(fidelity.FidelityError, match="node b1 has no interface on plain1"):
        fidelity.target_address({"nodes": {"b1": {"interfaces": []}}}, lan_item)


def test_the_design_is_written_beside_the_record_once(tmp_path):
    changed, result = fidelity.write_design(TEMPLATE, ["localhost"], {"localhost": ["netem"]}, str(tmp_path))
    assert changed and result["path"] == str(tmp_path / "testbed" / "fidelity.fidelity-experiment.yml")
    assert (result["project"], result["name"]) == ("testbed", "fidelity")
    with open(result["path"]) as f:
        written = yaml.safe_load(f)
    assert sorted(written["lans"]) == ["plain1", "qdisc1"]
    assert fidelity.write_design(TEMPLATE, ["localhost"], {"localhost": ["netem"]}, str(tmp_path))[0] is False
    assert [m["path"] for m in result["measurements"]] == ["netns", "lan", "qdisc", "delay"]


def test_a_template_that_is_no_experiment_names_its_field(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: fidelity\nnodes: {a: {image: 3}}\n")
    with pytest.raises(fidelity.FidelityError, match="^template %s: nodes.a.image: " % bad):
        fidelity.write_design(str(bad), ["localhost"], {}, str(tmp_path))


# --- the report ---------------------------------------------------------------------------------
def measured(host, path, median_ms, p99_ms, mbit, **extra):
    item = dict(id="%s/%s" % (host, path), host=host, path=path, client="a1", server="b1", lan=path + "1",
                peer_host=None, tools=None, asked_rtt_ms=None, skipped=None, address="10.10.0.2", error=None,
                rtt={"sent": 200, "received": 200, "loss": 0.0, "min": median_ms / 2, "median": median_ms,
                     "p99": p99_ms, "max": p99_ms * 2, "mean": median_ms},
                tcp={"bits_per_second": mbit * 1e6, "sent_bits_per_second": mbit * 1e6, "retransmits": 0,
                     "bytes": 1, "seconds": 3.0})
    item.update(extra)
    return item


def results():
    return [
        measured("h1", "netns", 0.020, 0.040, 40000),
        measured("h1", "lan", 0.050, 0.090, 30000),
        measured("h1", "qdisc", 0.060, 0.120, 24000),
        measured("h1", "delay", 20.310, 20.500, 900, asked_rtt_ms=20.0),
        measured("h1", "hosts", 0.300, 0.600, 9000, peer_host="h2"),
        measured("h1", "vxlan", 0.400, 0.900, 6000, peer_host="h2"),
        measured("h2", "netns", 0.021, 0.041, 41000),
        measured("h2", "lan", 0.052, 0.095, 31000),
        dict(measured("h2", "qdisc", 0, 0, 0), rtt=None, tcp=None, error="iperf3 to 10.10.1.2:5201: the server is busy"),
        dict(measured("h2", "delay", 0, 0, 0), rtt=None, tcp=None, asked_rtt_ms=20.0,
             skipped="netem missing on h2: delay cannot be measured"),
    ]


def test_overhead_rows_subtract_the_path_beneath_each_layer():
    rows = fidelity.overheads(results())
    assert [(r["host"], r["layer"], r["rtt_median_ms"], r["rtt_p99_ms"], r["tcp_mbit"], r["tcp_percent"])
            for r in rows] == [
        ("h1", "veth + bridge", 0.03, 0.05, -10000.0, -25.0),
        ("h2", "veth + bridge", 0.031, 0.054, -10000.0, -24.4),
        ("h1", "shaping qdiscs (no limit)", 0.01, 0.03, -6000.0, -20.0),
        ("h1", "cross-host LAN (VXLAN)", 0.1, 0.3, -3000.0, -33.3),
    ]
    assert rows[-1]["peer_host"] == "h2" and rows[-1]["over"] == "hosts"


def test_delay_error_against_the_asked_round_trip_and_net_of_the_plain_lan():
    rows = fidelity.delay_errors(results())
    assert rows[0] == {"host": "h1", "asked_rtt_ms": 20.0, "skipped": None, "error": None, "measured_rtt_ms": 20.31,
                       "error_ms": 0.31, "error_percent": 1.55, "error_net_ms": 0.26}
    assert rows[1]["skipped"] == "netem missing on h2: delay cannot be measured" and "error_ms" not in rows[1]


def test_report_lines_and_document():
    settings = {"ping_count": 200, "ping_interval": 0.01, "iperf_seconds": 3, "port": 5201}
    plan = {"project": "testbed", "name": "fidelity", "hosts": ["h1", "h2"]}
    doc = fidelity.document(plan, results(), settings, "2026-12-03T07:00:00Z")
    assert json.loads(json.dumps(doc)) == doc
    assert doc["failed"] == ["h2/qdisc"] and len(doc["overheads"]) == 4
    text = "\n".join(fidelity.lines(doc))
    assert text.startswith("fidelity of testbed/fidelity (2026-12-03T07:00:00Z): 200 ping samples every 0.01 s, iperf3 3 s")
    out = fidelity.lines(doc)
    assert out[1].split() == ["host", "path", "between", "rtt", "median", "rtt", "p99", "loss", "tcp", "Mbit/s", "retr",
                              "note"]
    row = [line for line in out if line.startswith("h1    lan")][0]
    assert "a1 -> b1 on lan1" in row and "0.050 ms" in row and "0.090 ms" in row and "30000.0" in row
    assert [line for line in out if line.startswith("h1    netns  netns veth pair")]
    assert "h1 -> h2" in [line for line in out if " hosts " in line][0]
    assert "asked rtt 20.000 ms" in text
    assert "failed: iperf3 to 10.10.1.2:5201: the server is busy" in text
    assert "skipped: netem missing on h2: delay cannot be measured" in text
    assert "  h1 -> h2  cross-host LAN (VXLAN)" in text and "+0.100 ms" in text and "-3000.0 Mbit/s (-33.3%)" in text
    assert ("  h1: asked rtt 20.000 ms, measured median 20.310 ms: error +0.310 ms (+1.55%), "
            "+0.260 ms net of the unshaped LAN") in text
    assert "  h2: netem missing on h2: delay cannot be measured" in text


def test_report_without_overheads_says_so():
    doc = fidelity.document({"project": "p", "name": "n"}, [measured("h1", "lan", 0.05, 0.09, 100)],
                            {"ping_count": 10, "ping_interval": 0.2, "iperf_seconds": 1}, "now")
    assert "  none (no layer and the path beneath it were both measured)" in fidelity.lines(doc)
    doc = fidelity.document({"project": "p", "name": "n"}, [], {}, "now")
    assert fidelity.lines(doc)[0] == "fidelity of p/n (now): ? ping samples every ? s, iperf3 ? s a path"


def test_the_report_is_written_beside_the_record(tmp_path):
    plan = {"project": "testbed", "name": "fidelity", "hosts": ["h1"]}
    settings = {"ping_count": 200, "ping_interval": 0.01, "iperf_seconds": 3}
    changed, result = fidelity.write_report(plan, results()[:3], settings, str(tmp_path), "now")
    assert changed and result["path"] == str(tmp_path / "testbed" / "fidelity.fidelity.json")
    assert result["lines"][-1] == "written to %s" % result["path"] and result["failures"] == []
    with open(result["path"]) as f:
        assert json.load(f) == result["document"]
    changed, result = fidelity.write_report(plan, results()[:3], settings, str(tmp_path / "dry"), "now", dry_run=True)
    assert not changed and not os.path.exists(result["path"])


# --- the host side's tool handling (module_utils/measure.py), with a stand-in for the tools ----
class FakeTools:
    """Answers each run with the next output of ``outputs`` (rc 0), recording the argv."""

    def __init__(self, *outputs):
        self.outputs, self.calls = list(outputs), []

    def run(self, argv, timeout=None):
        self.calls.append(argv)
        return 0, self.outputs.pop(0)


def test_ping_warms_up_then_measures_with_iputils_numeric_flag():
    tools = FakeTools(IPUTILS_NAMES, IPUTILS)
    summary = measure.ping(tools, "10.10.0.2", 200, 0.01)
    assert tools.calls == [["ping", "-n", "-c", "3", "-i", "0.2", "-w", "5", "10.10.0.2"],
                           ["ping", "-n", "-c", "200", "-i", "0.01", "-w", "7", "10.10.0.2"]]
    assert summary["median"] == 0.058 and summary["received"] == 4


def test_ping_drops_the_numeric_flag_busybox_lacks():
    tools = FakeTools("ping: invalid option -- 'n'\nBusyBox v1.35.0 multi-call binary.\n", BUSYBOX, BUSYBOX)
    assert measure.ping(tools, "192.0.2.2", 3, 0.01)["p99"] == 3.421
    assert [c[:2] for c in tools.calls] == [["ping", "-n"], ["ping", "-c"], ["ping", "-c"]]


def test_ping_without_replies_is_an_error_with_the_tools_words():
    tools = FakeTools("", "PING 10.10.0.9 (10.10.0.9) 56(84) bytes of data.\n\n--- 10.10.0.9 ping statistics ---\n"
                          "5 packets transmitted, 0 received, 100% packet loss, time 4090ms\n")
    with pytest.raises(measure.MeasureError, match="^no reply to ping 10.10.0.9 .*100% packet loss"):
        measure.ping(tools, "10.10.0.9", 5, 0.01)


def test_iperf3_client_retries_while_the_server_refuses_then_reports(monkeypatch):
    monkeypatch.setattr(measure.time, "sleep", lambda _s: None)
    tools = FakeTools(IPERF3_REFUSED, IPERF3_REFUSED, IPERF3)
    assert measure.iperf3_client(tools, "10.10.0.2", 3)["bytes"] == 2069626880
    assert tools.calls[0] == ["iperf3", "-c", "10.10.0.2", "-p", "5201", "-t", "3", "-J", "--connect-timeout", "3000"]
    tools = FakeTools(*[IPERF3_REFUSED] * measure.CONNECT_ATTEMPTS)
    with pytest.raises(measure.MeasureError, match="^iperf3 to 10.10.0.2:5201: unable to connect to server: Connection refused$"):
        measure.iperf3_client(tools, "10.10.0.2", 3)
    tools = FakeTools("iperf3: error - unable to send control message: Bad file descriptor\n")
    with pytest.raises(measure.MeasureError, match="printed no JSON: iperf3: error - unable to send"):
        measure.iperf3_client(tools, "10.10.0.2", 3)
    assert len(tools.calls) == 1  # not a refusal: no retry


def test_baseline_names_carry_the_experiments_kernel_prefix_and_fit_the_kernel():
    plan = {"project": "testbed", "name": "fidelity"}
    prefix = names.kernel_prefix("testbed", "fidelity")
    (ns_a, veth_a, address_a), (ns_b, veth_b, address_b) = measure.baseline_names(plan)
    assert (ns_a, ns_b) == (prefix + "na", prefix + "nb")
    assert veth_a.startswith(prefix + "n") and len(veth_a) == len(veth_b) == 15 and veth_a != veth_b
    assert (address_a, address_b) == ("192.0.2.1", "192.0.2.2")
    assert measure.owner(plan) == "testbed:testbed/fidelity"
