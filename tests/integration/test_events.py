"""Events on a running experiment (playbooks/event.yml, run-events.yml): a link taken down drops
traffic and comes back with its addresses, routes and shaping; shaping changed in place (iperf3);
a node stopped is dead for status.yml and comes back booted and plumbed; exec; a schedule played
on time; and swap-in's boot wait naming a node that dies with the end of its log."""
import json
import os
import re
import subprocess
import time

from helpers import BUSYBOX, DEBIAN, DOCKER, container_ids, dexec, ping, sh

PROJECT = "evtest"


def cname(name, node):
    return "tb_%s_%s_%s" % (PROJECT, name, node)


def doc(name, **extra):
    d = {"name": name, "project": PROJECT,
         "nodes": {"a": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"},
                   "b": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"}},
         "lans": {"lan0": {"members": [{"node": "a", "ip": "10.9.9.1"}, {"node": "b", "ip": "10.9.9.2"}],
                           "subnet": "10.9.9.0/24", "bandwidth": "10mbit"}}}
    d.update(extra)
    return d


def event(playbooks, path, text, check=True):
    return playbooks.run("event", path, check=check, extra=["-e", json.dumps({"event": text}), "-e", "testbed_stop_timeout=1"])


def veth(playbooks, name, node):
    plan = playbooks.record(PROJECT, name)["plan"]
    return [i["veth"] for i in plan["nodes"][node]["interfaces"] if i["lan"] == "lan0"][0]


def link_state(ifname):
    """True when the interface is administratively down."""
    return "UP" not in re.search(r"<([^>]*)>", sh("ip", "link", "show", ifname).stdout).group(1).split(",")


def iperf(name, seconds=3):
    """Mbit/s from a to b, as b counts them."""
    for _attempt in range(20):
        proc = dexec(cname(name, "a"), "iperf3", "-c", "10.9.9.2", "-t", str(seconds), "-J", check=False, timeout=60)
        if proc.returncode == 0:
            return json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
        time.sleep(0.5)
    raise AssertionError("iperf3 never answered:\n" + proc.stdout)


def in_node(name, node, *args):
    return dexec(cname(name, node), *args).stdout


def test_link_shape_node_and_exec_events(playbooks):
    path = playbooks.write(doc("now"))
    try:
        out = playbooks.swap_in(path).stdout
        # the summary: seconds of planning, then each host's phases
        assert re.search(r"seconds per phase: plan \d+\.\d", out), out[-3000:]
        assert re.search(r"localhost: hosts \d+\.\d, images \d+\.\d, networks [\d.]+, nodes [\d.]+, shaping [\d.]+, "
                         r"control [\d.]+, boot [\d.]+ \([\d.]+\)", out), out[-3000:]
        assert ping(cname("now", "a"), "10.9.9.2")[0]
        va, vb = veth(playbooks, "now", "a"), veth(playbooks, "now", "b")
        addrs, routes = in_node("now", "a", "ip", "-o", "-4", "addr"), in_node("now", "a", "ip", "route")
        qdiscs = sh("tc", "qdisc", "show", "dev", va).stdout

        # the whole LAN down: no traffic; up: the same addresses, routes and shaping
        out = event(playbooks, path, "link lan0 down").stdout
        assert "link lan0 down: ok" in out and "take down %s (a on lan0)" % va in out, out
        assert link_state(va) and link_state(vb)
        assert not ping(cname("now", "a"), "10.9.9.2", count=3)[0]
        assert "10.9.9.1/24" in in_node("now", "a", "ip", "-o", "-4", "addr")
        event(playbooks, path, "link lan0 up")
        assert ping(cname("now", "a"), "10.9.9.2", count=2)[0]
        assert in_node("now", "a", "ip", "-o", "-4", "addr") == addrs
        assert in_node("now", "a", "ip", "route") == routes
        assert sh("tc", "qdisc", "show", "dev", va).stdout == qdiscs

        # one attachment down
        event(playbooks, path, "link b:lan0 down")
        assert link_state(vb) and not link_state(va)
        assert not ping(cname("now", "a"), "10.9.9.2", count=2)[0]
        event(playbooks, path, "link b:lan0 up")
        assert ping(cname("now", "a"), "10.9.9.2", count=2)[0]

        # shaping changed in place: same containers, iperf3 follows
        ids = container_ids(PROJECT, "now")
        dexec(cname("now", "b"), "iperf3", "-s", "-D")
        before = iperf("now")
        assert 8 < before < 11, before
        out = event(playbooks, path, "shape lan0 bandwidth=40mbit").stdout
        assert "shape lan0 bandwidth=40mbit: ok" in out, out
        after = iperf("now")
        assert 34 < after < 44, after
        assert container_ids(PROJECT, "now") == ids
        record = playbooks.record(PROJECT, "now")
        assert [i["to_node"]["rate_bps"] for i in record["plan"]["nodes"]["a"]["interfaces"]] == [40000000]

        # exec: output and exit code shown
        out = event(playbooks, path, 'exec a "echo hello from $(hostname); exit 3"').stdout
        assert "hello from a" in out and "exec in node a: exit 3" in out, out

        # a stopped node is dead (status fails); started, it is booted, plumbed and shaped as the event left it
        event(playbooks, path, "node b stop")
        status = playbooks.run("status", path, check=False)
        assert status.returncode != 0 and re.search(r"\bb\s+localhost\s+dead", status.stdout), status.stdout[-3000:]
        assert "last events:" in status.stdout and "node b stop: ok" in status.stdout
        event(playbooks, path, "node b start")
        status = playbooks.run("status", path, extra=["-e", "format=json"]).stdout
        assert ping(cname("now", "a"), "10.9.9.2", count=2)[0]
        assert '"booted": 2' in status, status[-3000:]
        assert "rate 40Mbit" in sh("tc", "class", "show", "dev", vb).stdout
        event(playbooks, path, "node a restart")
        assert ping(cname("now", "a"), "10.9.9.2", count=2)[0]

        # bad events are refused naming the field and the choices, before anything
        out = event(playbooks, path, "link zz down", check=False)
        assert out.returncode != 0 and "zz" in out.stdout and "lan0" in out.stdout, out.stdout[-2000:]
        out = event(playbooks, path, "shape lan0 bandwidth=fast", check=False)
        assert out.returncode != 0 and "bandwidth" in out.stdout, out.stdout[-2000:]
        log = os.path.join(playbooks.record_dir, PROJECT, "now.events.jsonl")
        with open(log) as f:
            entries = [json.loads(line) for line in f]
        assert [e["event"] for e in entries][:2] == ["link lan0 down", "link lan0 up"]
        assert all(e["result"] == "ok" for e in entries)
    finally:
        playbooks.teardown(path)
    assert not os.path.exists(os.path.join(playbooks.record_dir, PROJECT, "now.events.jsonl"))
    assert container_ids(PROJECT, "now") == {}


def test_a_schedule_takes_a_link_down_and_up_on_time(playbooks):
    path = playbooks.write(doc("sched", events=[{"at": "2s", "event": "link lan0 down"},
                                                {"at": "5s", "event": "link lan0 up"}]))
    try:
        playbooks.swap_in(path)
        pinger = subprocess.Popen([DOCKER, "exec", cname("sched", "a"), "ping", "-D", "-n", "-i", "0.1", "-W", "1",
                                   "10.9.9.2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        try:
            out = playbooks.swap_in(path, extra=["-e", "events=run"]).stdout
        finally:
            time.sleep(1)
            sh(DOCKER, "exec", cname("sched", "a"), "pkill", "ping", check=False)
        replies = [float(m.group(1)) for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from", pinger.communicate(timeout=30)[0], re.M)]
        assert "at 2s link lan0 down: ok" in out and "at 5s link lan0 up: ok" in out, out[-3000:]
        with open(os.path.join(playbooks.record_dir, PROJECT, "sched.events.jsonl")) as f:
            down, up = [json.loads(line) for line in f]
        # on time: each event within a second of its schedule, 3 s apart
        assert down["late"] < 1 and up["late"] < 1, (down, up)
        assert 2.5 < up["applied_at"] - down["applied_at"] < 3.5, (down, up)
        # the pings stop when the link goes down and come back when it is up again
        gaps = [(b - a, a, b) for a, b in zip(replies, replies[1:])]
        gap, last_before, first_after = max(gaps)
        assert 2.5 < gap < 4, gaps[-5:]
        assert abs(last_before - down["applied_at"]) < 0.5, (last_before, down)
        assert abs(first_after - up["applied_at"]) < 1.2, (first_after, up)
    finally:
        playbooks.teardown(path)


def test_swap_in_names_a_node_that_dies_at_boot_with_the_end_of_its_log(playbooks):
    d = doc("boot")
    d["nodes"]["crash"] = {"image": BUSYBOX, "augment": "none",
                           "command": ["sh", "-c", "echo mounting /data; echo disk on fire >&2; exit 3"]}
    path = playbooks.write(d)
    try:
        proc = playbooks.swap_in(path, check=False)
        assert proc.returncode != 0
        assert "1 node(s) could not be started: crash on localhost:" in proc.stdout, proc.stdout[-3000:]
        # the last lines of its console (the engine may have restarted it meanwhile: the same lines again)
        logged = re.search(r"crash on localhost: [^\n]*exited with code 3 \(log: ([^)]*)\)", proc.stdout)
        assert logged and "disk on fire" in logged.group(1) and "mounting /data" in logged.group(1), proc.stdout[-3000:]
    finally:
        playbooks.teardown(path)


def test_a_big_slice_prints_its_progress_while_it_converges(playbooks):
    d = {"name": "prog", "project": PROJECT,
         "nodes": dict(("n%d" % i, {"image": BUSYBOX, "augment": "none", "command": ["sleep", "1000"]}) for i in range(8)),
         "lans": {"lan0": {"members": ["n%d" % i for i in range(8)], "subnet": "10.9.7.0/24"}}}
    path = playbooks.write(d)
    extra = ["-e", "testbed_progress_above=4", "-e", "testbed_progress_every=0.2"]
    try:
        out = playbooks.swap_in(path, extra=extra).stdout
        assert "Start converging this host's slice" in out, out[-3000:]
        lines = re.findall(r"progress \[localhost\]: (\w+): nodes (\d+)/8 plumbed", out)
        assert lines, out[-3000:]
        assert "experiment %s/prog: 8 nodes (8 booted)" % PROJECT in out, out[-3000:]
        again = playbooks.swap_in(path, extra=extra).stdout
        assert re.search(r"localhost\s+: ok=\d+\s+changed=0", again), again[-2000:]
    finally:
        playbooks.teardown(path)
    assert container_ids(PROJECT, "prog") == {}


def test_depends_on_starts_nodes_and_their_start_commands_in_order(playbooks):
    """c depends on b, b on a: containers start and start commands run in that order (the kernel's
    uptime, shared by every node, stamps each start command)."""
    stamp = "cat /proc/uptime > /tmp/started; sleep 1000"
    d = {"name": "order", "project": PROJECT,
         "nodes": {"c": {"image": BUSYBOX, "augment": "basic", "command": ["sleep", "1000"], "start": stamp,
                         "depends_on": ["b"]},
                   "b": {"image": BUSYBOX, "augment": "basic", "command": ["sleep", "1000"], "start": stamp,
                         "depends_on": ["a"]},
                   "a": {"image": BUSYBOX, "augment": "basic", "command": ["sleep", "1000"], "start": stamp}},
         "lans": {"lan0": {"members": ["a", "b", "c"], "subnet": "10.9.6.0/24"}}}
    path = playbooks.write(d)
    try:
        playbooks.swap_in(path)
        started = dict((n, sh(DOCKER, "inspect", "-f", "{{.State.StartedAt}}", cname("order", n)).stdout.strip())
                       for n in "abc")
        assert started["a"] < started["b"] < started["c"], started
        stamps = {}
        for node in "abc":
            for _attempt in range(50):
                proc = dexec(cname("order", node), "cat", "/tmp/started", check=False)
                if proc.returncode == 0 and proc.stdout.strip():
                    stamps[node] = float(proc.stdout.split()[0])
                    break
                time.sleep(0.1)
        assert stamps.get("a", 1e9) <= stamps.get("b", 0) <= stamps.get("c", 0), stamps
    finally:
        playbooks.teardown(path)
