# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Packet capture on the host side of an attachment (playbooks/capture.yml, docs/operate.md).

``locate`` finds, in a recorded plan, the host interface of NODE on LAN (the veth of that
attachment: shaping sits on it, so a capture there sees what reaches the node after the
shaper and what leaves it before) or, for node ``all``, the LAN's bridge on a host of the LAN.
``capture`` runs tcpdump (Debian's package) on it for some seconds or packets with a BPF filter,
never entering the node and never touching its qdiscs; ``count_packets`` reads the pcap.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import struct
import subprocess
import time

TCPDUMP = "/usr/bin/tcpdump"
PCAP_MAGIC = (0xA1B2C3D4, 0xA1B23C4D)  # microsecond and nanosecond pcap files


class CaptureError(Exception):
    pass


def locate(plan, node, lan, host=None):
    """(host, interface) of node ``node`` on LAN ``lan`` of a recorded plan; node ``all``: the
    LAN's bridge on ``host`` (default: the LAN's first host).  Errors name the field and the choices."""
    lans = plan.get("lans", {})
    if lan not in lans:
        raise CaptureError("lan: %s/%s has no LAN or link %r (its LANs and links: %s)"
                           % (plan["project"], plan["name"], lan, ", ".join(sorted(lans)) or "none"))
    if node == "all":
        hosts = lans[lan].get("hosts") or []
        chosen = host or (hosts[0] if hosts else None)
        if chosen not in hosts:
            raise CaptureError("host: LAN %s is on %s, not on %r" % (lan, ", ".join(hosts) or "no host", chosen))
        return chosen, lans[lan]["bridge"]
    nodes = plan.get("nodes", {})
    if node not in nodes:
        raise CaptureError("node: %s/%s has no node %r (its nodes: %s, or all for the whole LAN)"
                           % (plan["project"], plan["name"], node, ", ".join(sorted(nodes))))
    for iface in nodes[node]["interfaces"]:
        if iface["lan"] == lan:
            return nodes[node]["host"], iface["veth"]
    raise CaptureError("lan: node %s is not on %s (its LANs: %s)"
                       % (node, lan, ", ".join(i["lan"] for i in nodes[node]["interfaces"]) or "none"))


def tcpdump_args(interface, path, count=None, bpf=None):
    args = [TCPDUMP, "-i", interface, "-U", "-n", "-w", path]
    if count:
        args += ["-c", str(int(count))]
    if bpf:
        args += [bpf]
    return args


def capture(interface, path, seconds=10, count=None, bpf=None):
    """Capture on ``interface`` into ``path`` until ``count`` packets or ``seconds`` passed; returns
    (packets, seconds taken).  A bad filter or interface raises CaptureError with tcpdump's words."""
    if not os.path.exists(TCPDUMP):
        raise CaptureError("%s is missing on this host: apt-get install tcpdump (setup.sh installs it)" % TCPDUMP)
    if os.path.exists(path):
        os.unlink(path)
    started = time.time()
    proc = subprocess.Popen(tcpdump_args(interface, path, count, bpf), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    try:
        _out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # tcpdump flushes and closes the file on SIGINT
        _out, err = proc.communicate(timeout=10)
    took = time.time() - started
    if proc.returncode not in (0, -signal.SIGINT) or not os.path.exists(path):
        raise CaptureError("tcpdump on %s failed: %s" % (interface, (err or "").strip().splitlines()[-1:] or "no output"))
    return count_packets(path), took


def count_packets(path):
    """The number of packets in a pcap file (microsecond or nanosecond, either byte order)."""
    with open(path, "rb") as f:
        header = f.read(24)
        if len(header) < 24:
            return 0
        for endian in ("<", ">"):
            if struct.unpack(endian + "I", header[:4])[0] in PCAP_MAGIC:
                break
        else:
            raise CaptureError("%s is not a pcap file" % path)
        packets = 0
        while True:
            record = f.read(16)
            if len(record) < 16:
                return packets
            caplen = struct.unpack(endian + "IIII", record)[2]
            f.seek(caplen, 1)
            packets += 1
