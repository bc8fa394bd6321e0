"""The preflight's kernel probes for crossing hosts: VXLAN (default) and 802.1Q VLANs (VLAN mode).

The oracle is iproute2 itself: what `ip link add ... type vlan|vxlan` can create here is what the
probe must report (this machine's kernel has VXLAN but no 8021q, ../shared/machine.md)."""
import subprocess

from ansible_collections.testbed.containers.plugins.module_utils import preflight

from helpers import sh


def ip_can(*args):
    """Can iproute2 create this link? (created on a throwaway veth and removed at once)"""
    sh("ip", "link", "add", "tbtpf0", "type", "veth", "peer", "name", "tbtpf0p")
    try:
        proc = subprocess.run(["ip", "link", "add"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, check=False)
        if proc.returncode == 0:
            subprocess.run(["ip", "link", "del", args[args.index("name") + 1]], check=False)
        return proc.returncode == 0
    finally:
        subprocess.run(["ip", "link", "del", "tbtpf0"], check=False)


def probe_links():
    out = sh("ip", "-o", "link").stdout
    return [line for line in out.splitlines() if preflight.PROBE in line]


def test_vxlan_and_vlan_probes_report_what_the_kernel_lacks():
    has_vlan = ip_can("link", "tbtpf0", "name", "tbtpf0.5", "type", "vlan", "id", "5")
    has_vxlan = ip_can("name", "tbtpfx", "type", "vxlan", "id", "16777001", "dstport", "4789")
    expected = ([] if has_vxlan else [("vxlan", "CONFIG_VXLAN")]) + \
        ([] if has_vlan else [("vlan", "CONFIG_VLAN_8021Q")])
    assert preflight.missing_features(["bridge", "veth", "vxlan", "vlan"]) == expected
    assert probe_links() == [], "probe objects left behind"
