"""The preflight's kernel probes for crossing hosts: VXLAN (default) and 802.1Q VLANs (VLAN mode).

The oracle is iproute2 itself: what `ip link add ... type vlan|vxlan` can create here is what the
probe must report (this machine's kernel has VXLAN but no 8021q, ../shared/machine.md)."""
import subprocess

from ansible_collections.testbed.containers.plugins.module_utils import preflight
from ansible_collections.testbed.containers.plugins.module_utils import slice as slice_mod

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


def test_probe_links_of_a_killed_preflight_are_removed_by_the_next_probe_and_by_teardown():
    """A playbook killed while its preflight probed leaves the probe's veth and IFB (seen in the
    kill test); the next preflight, or any teardown on the host, removes them."""
    def left():
        out = sh("ip", "-o", "link").stdout
        return sorted(n for n in ("tbsp99999a", "tbsp99999b", "tbpf99999b") if n + ":" in out or n + "@" in out)

    def leave_debris():
        sh("ip", "link", "add", "tbsp99999a", "type", "veth", "peer", "name", "tbsp99999b")
        sh("ip", "link", "add", "tbpf99999b", "type", "bridge")

    try:
        leave_debris()
        assert left() == ["tbpf99999b", "tbsp99999a", "tbsp99999b"]
        preflight.missing_features(["bridge"])
        assert left() == []
        leave_debris()
        ops = slice_mod.teardown("tbprobe", "gone", state_dir="/tmp/tb-probe-sweep-state")
        assert "remove kernel probe veth tbsp99999a left by a killed preflight" in ops and left() == []
    finally:
        for name in ("tbsp99999a", "tbpf99999b"):
            subprocess.run(["ip", "link", "del", name], check=False, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", "/tmp/tb-probe-sweep-state"], check=False)
