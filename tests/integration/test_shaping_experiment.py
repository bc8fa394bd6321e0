"""Link shaping through experiment.yml: bandwidth per direction measured with iperf3 between two
nodes, changed in place without a restart, and the preflight for delay on a kernel without netem."""
import json
import subprocess
import time

import pytest
from ansible_collections.testbed.containers.plugins.module_utils import netlink, preflight

from helpers import DEBIAN, container_ids, dexec, recap_changed

PROJECT = "shtest"


def has_netem():
    with netlink.IPRoute() as ipr:
        return not preflight.missing_shaping_features(ipr, ["netem"])


def link_doc(name, **link):
    spec = {"endpoints": ["a", "b"]}
    spec.update(link)
    return {"name": name, "project": PROJECT,
            "nodes": {"a": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"},
                      "b": {"image": DEBIAN, "command": ["sleep", "infinity"], "augment": "none"}},
            "links": {"l0": spec}}


def cname(name, node):
    return "tb_%s_%s_%s" % (PROJECT, name, node)


def iperf(name, reverse=False):
    """Mbit/s from a to b (or b to a with reverse), as the receiver counts them."""
    args = ["iperf3", "-c", "b", "-t", "3", "-J"] + (["-R"] if reverse else [])
    proc = dexec(cname(name, "a"), *args, timeout=60)
    return json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6


def within(measured, expected, tolerance=0.10):
    return abs(measured - expected) <= tolerance * expected


def test_bandwidth_per_direction_and_in_place_change(playbooks):
    doc = link_doc("bw", a_to_b={"bandwidth": "10mbit"}, b_to_a={"bandwidth": "50mbit"})
    path = playbooks.write(doc)
    try:
        playbooks.swap_in(path)
        dexec(cname("bw", "b"), "iperf3", "-s", "-D")
        time.sleep(0.5)
        a_to_b, b_to_a = iperf("bw"), iperf("bw", reverse=True)
        assert within(a_to_b, 10), a_to_b
        assert within(b_to_a, 50), b_to_a
        ids = container_ids(PROJECT, "bw")
        # change a->b from 10 to 50 mbit while a ping runs every 100 ms
        pinger = subprocess.Popen(["/usr/bin/docker", "exec", cname("bw", "a"), "ping", "-i", "0.1", "-w", "25",
                                   "b"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        time.sleep(1)
        doc["links"]["l0"]["a_to_b"]["bandwidth"] = "50mbit"
        playbooks.write(doc)
        out = playbooks.swap_in(path).stdout
        assert "change" in out and "50mbit" in out, out
        output = pinger.communicate(timeout=60)[0]
        sent, received = [int(x) for x in
                          __import__("re").search(r"(\d+) packets transmitted, (\d+) received", output).groups()]
        assert sent - received <= 10, output  # at most a second of pings lost
        assert container_ids(PROJECT, "bw") == ids
        assert within(iperf("bw"), 50), "a->b after the change"
        assert recap_changed(playbooks.swap_in(path).stdout) == {"localhost": 0}
    finally:
        playbooks.teardown(path)


@pytest.mark.skipif(has_netem(), reason="this kernel has netem: the preflight has nothing to refuse")
def test_delay_on_a_kernel_without_netem_fails_in_the_preflight_before_anything_exists(playbooks):
    path = playbooks.write(link_doc("delay", delay="20ms"))
    proc = playbooks.swap_in(path, check=False)
    assert proc.returncode != 0
    assert "cannot realize this experiment" in proc.stdout and "netem" in proc.stdout \
        and "CONFIG_NET_SCH_NETEM" in proc.stdout, proc.stdout
    assert container_ids(PROJECT, "delay") == {}


@pytest.mark.skipif(not has_netem(), reason="this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): delay and loss "
                    "cannot be applied here; they run on a kernel that has it")
def test_delay_and_loss_are_measured(playbooks):
    path = playbooks.write(link_doc("delay", delay="20ms", loss=0.1))
    try:
        playbooks.swap_in(path)
        proc = dexec(cname("delay", "a"), "ping", "-c", "200", "-i", "0.01", "-q", "b", check=False, timeout=120)
        rtt = float(__import__("re").search(r"= [\d.]+/([\d.]+)/", proc.stdout).group(1))
        assert within(rtt, 40), proc.stdout  # 20 ms each way
        loss = float(__import__("re").search(r"([\d.]+)% packet loss", proc.stdout).group(1))
        assert 5 <= loss <= 35, proc.stdout  # 10% each way: about 19% of round trips
    finally:
        playbooks.teardown(path)
