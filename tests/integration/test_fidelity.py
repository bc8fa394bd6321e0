"""The fidelity report through playbooks/fidelity.yml on this machine: it swaps in its own
measurement experiment, measures the netns baseline, the plain LAN and the LAN with unlimited
qdiscs (and the 10 ms link where the kernel has netem; here it is skipped with the reason), prints
the table and the overhead of each layer, writes the JSON document beside the record, swaps the
experiment out and leaves nothing behind; a second run with other settings works the same."""
import json
import os
import subprocess

import yaml
from ansible_collections.testbed.containers.plugins.module_utils import measure, names, netlink, preflight

from helpers import DOCKER, ROOT, VENV_BIN, sh

PROJECT = "fidtest"
NAME = "fidelity"


def has_netem():
    with netlink.IPRoute() as ipr:
        return not preflight.missing_shaping_features(ipr, ["netem"])


def run_fidelity(playbooks, template, *extra, check=True):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    args = [os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/fidelity.yml", "-v",
            "-e", "template=%s" % template, "-e", "testbed_state_dir=%s" % playbooks.state_dir,
            "-e", "testbed_record_dir=%s" % playbooks.record_dir] + list(extra)
    proc = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=900, check=False)
    if check:
        assert proc.returncode == 0, "fidelity.yml failed (%d):\n%s" % (proc.returncode, proc.stdout)
    return proc


def write_template(playbooks):
    with open(os.path.join(ROOT, "examples", "fidelity.yml")) as f:
        doc = yaml.safe_load(f)
    doc["project"] = PROJECT
    return playbooks.write(doc, "fidelity-template.yml")


def report(playbooks):
    with open(os.path.join(playbooks.record_dir, PROJECT, "%s.fidelity.json" % NAME)) as f:
        return json.load(f)


def check_measured(entry, count):
    rtt, tcp = entry["rtt"], entry["tcp"]
    assert entry["error"] is None and entry["skipped"] is None, entry
    assert rtt["sent"] == count and rtt["received"] >= count * 0.95, entry
    assert 0 < rtt["min"] <= rtt["median"] <= rtt["p99"] <= rtt["max"], entry
    assert tcp["bits_per_second"] > 0 and tcp["bytes"] > 0 and tcp["seconds"] > 0, entry


def check_nothing_left():
    out = sh(DOCKER, "ps", "-a", "--filter", "label=testbed.project=%s" % PROJECT, "--format", "{{.Names}}").stdout
    assert not out.strip(), out
    prefix = names.kernel_prefix(PROJECT, NAME)
    leftover_ns = [n for n in os.listdir("/run/netns") if n.startswith(prefix)] if os.path.isdir("/run/netns") else []
    assert not leftover_ns, leftover_ns
    with netlink.IPRoute() as ipr:
        assert not netlink.owned_links(ipr, prefix)
    assert not measure.marked_processes(names.firewall_comment(PROJECT, NAME))
    assert not [f for f in os.listdir("/tmp") if f.startswith(prefix + "-fidelity-")]


def test_fidelity_report_measures_each_layer_and_leaves_nothing_behind(playbooks):
    template = write_template(playbooks)
    generated = os.path.join(playbooks.record_dir, PROJECT, "%s.fidelity-experiment.yml" % NAME)
    try:
        # (fewer samples and a shorter iperf3 than the defaults, 200 and 3 s: the suite's time)
        proc = run_fidelity(playbooks, template, "-e", "ping_count=100", "-e", "iperf_seconds=1")
        out = proc.stdout
        # the table, the overheads and the delay line, as printed
        assert "fidelity of %s/%s" % (PROJECT, NAME) in out and "100 ping samples every 0.01 s, iperf3 1 s" in out
        assert "host       path   between" in out, out
        assert "localhost  netns  netns veth pair" in out and "localhost  lan    a1 -> b1 on plain1" in out
        assert "localhost  qdisc  a1 -> b1 on qdisc1" in out
        assert "overhead each layer adds:" in out and "veth + bridge" in out and "shaping qdiscs (no limit)" in out
        doc = report(playbooks)
        assert (doc["project"], doc["name"], doc["hosts"], doc["failed"]) == (PROJECT, NAME, ["localhost"], [])
        assert doc["settings"]["ping_count"] == 100 and doc["settings"]["iperf_seconds"] == 1
        by_path = dict((m["path"], m) for m in doc["measurements"])
        assert sorted(by_path) == ["delay", "lan", "netns", "qdisc"]
        for path in ("netns", "lan", "qdisc"):
            check_measured(by_path[path], 100)
        assert by_path["netns"]["address"] == "192.0.2.2"
        layers = dict((o["layer"], o) for o in doc["overheads"])
        assert sorted(layers) == ["shaping qdiscs (no limit)", "veth + bridge"]
        for row in layers.values():
            assert row["host"] == "localhost" and row["tcp_percent"] is not None
            assert isinstance(row["rtt_median_ms"], float) and isinstance(row["rtt_p99_ms"], float)
        delay = by_path["delay"]
        if has_netem():
            check_measured(delay, 200)
            assert delay["asked_rtt_ms"] == 20.0 and abs(doc["delay"][0]["error_ms"]) < 2.0, doc["delay"]
        else:
            reason = "netem missing on localhost: delay cannot be measured"
            assert delay["skipped"] == reason and delay["rtt"] is None and delay["tcp"] is None
            assert doc["delay"][0]["skipped"] == reason
            assert "skipped: %s" % reason in out and "  localhost: %s" % reason in out
            with open(generated) as f:
                assert "links" not in yaml.safe_load(f)  # the link that needs netem was left out
        # swapped out: the record is gone, the report and the experiment it measured stay
        assert not os.path.exists(os.path.join(playbooks.record_dir, PROJECT, "%s.json" % NAME))
        assert os.path.exists(generated)
        check_nothing_left()

        # repeatable, with other settings
        run_fidelity(playbooks, template, "-e", "ping_count=20", "-e", "ping_interval=0.05", "-e", "iperf_seconds=1")
        doc = report(playbooks)
        assert doc["settings"]["ping_count"] == 20 and doc["failed"] == []
        check_measured(dict((m["path"], m) for m in doc["measurements"])["lan"], 20)
        check_nothing_left()

        # the experiment is the playbook's own
        proc = run_fidelity(playbooks, template, "-e", "experiment=other.yml", check=False)
        assert proc.returncode != 0, proc.stdout
        assert "fidelity.yml swaps in a measurement experiment of its own" in " ".join(proc.stdout.split()), proc.stdout
    finally:
        if os.path.exists(generated):
            playbooks.teardown(generated, check=False)
        measure.cleanup({"project": PROJECT, "name": NAME})
