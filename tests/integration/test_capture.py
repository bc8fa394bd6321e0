"""Packet capture through playbooks/capture.yml: on the host side of a node's attachment and on a
LAN's bridge, with a BPF filter; the pcap reaches the controller and holds the ping's ICMP."""
import os
import subprocess

from helpers import BUSYBOX, DOCKER, sh

PROJECT = "citest"


def doc():
    return {"name": "capture", "project": PROJECT,
            "nodes": {"a": {"image": BUSYBOX, "augment": "none", "command": ["sleep", "1000"]},
                      "b": {"image": BUSYBOX, "augment": "none", "command": ["sleep", "1000"]}},
            "lans": {"lan0": {"members": [{"node": "a", "ip": "10.9.8.1"}, {"node": "b", "ip": "10.9.8.2"}],
                              "subnet": "10.9.8.0/24"}}}


def test_capture_of_a_ping_holds_its_icmp_packets(playbooks, tmp_path):
    path = playbooks.write(doc())
    dest = tmp_path / "pcaps"
    dest.mkdir()
    try:
        playbooks.swap_in(path)
        for node, extra in (("a", ["-e", "filter=icmp"]), ("all", ["-e", "filter=icmp and host 10.9.8.2"])):
            # the ping outlasts the playbook's start on a loaded machine (a 3 s ping once ended before the capture
            # began); it is stopped once the capture is back
            sh(DOCKER, "exec", "-d", "tb_%s_capture_a" % PROJECT, "ping", "-w", "60", "-i", "0.2", "10.9.8.2")
            try:
                proc = playbooks.run("capture", path, extra=["-e", "node=%s" % node, "-e", "lan=lan0",
                                                             "-e", "seconds=3", "-e", "dest=%s" % dest] + extra)
            finally:
                sh(DOCKER, "exec", "tb_%s_capture_a" % PROJECT, "killall", "ping", check=False)
            pcaps = sorted(p for p in os.listdir(str(dest)) if "-%s-lan0-" % node in p)
            assert len(pcaps) == 1, (os.listdir(str(dest)), proc.stdout)
            text = subprocess.run(["tcpdump", "-n", "-r", str(dest / pcaps[0])], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, universal_newlines=True, check=False).stdout
            assert "10.9.8.1 > 10.9.8.2: ICMP echo request" in text, text
            assert "10.9.8.2 > 10.9.8.1: ICMP echo reply" in text, text
            assert " packets on tb" in proc.stdout and str(dest) in proc.stdout
        # a node the experiment lacks is named, with the choices
        proc = playbooks.run("capture", path, check=False, extra=["-e", "node=zz", "-e", "lan=lan0"])
        assert proc.returncode != 0 and "node: citest/capture has no node 'zz' (its nodes: a, b" in proc.stdout
    finally:
        playbooks.teardown(path)
    assert not [line for line in sh("ls", "/tmp").stdout.split() if line.startswith("citest-capture-")]
