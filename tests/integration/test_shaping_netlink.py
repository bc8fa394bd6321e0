"""Link shaping on real netlink: htb/ifb through pyroute2, measured with iperf3.

Everything happens in two network namespaces created here ("host" holds the shaped host end
of the veth and its IFB, "node" the other end) and deleted in a finally; no traffic leaves
them. This kernel has no netem (see ../shared/machine.md): tests that need it skip, and the
error apply() gives without it is checked instead.
"""
import json
import os
import subprocess
import time

import pytest
from pyroute2 import IPRoute

from ansible_collections.testbed.containers.plugins.module_utils import preflight, shaping, shaping_requests
from ansible_collections.testbed.containers.plugins.module_utils.shaping import Shape, ShapingError

IP = "/usr/sbin/ip"
TC = "/usr/sbin/tc"
IPERF3 = "/usr/bin/iperf3"
MBIT = 10 ** 6
VETH = "tbtst00v5a9e1c3"          # PREFIX(7) + 'v' + 7 hex, like the planner's names
IFB = "tbtst00i5a9e1c3"
ALIAS = "testbed:shape-test/exp/node/lan0"
HOST_ADDR, NODE_ADDR = "192.0.2.1", "192.0.2.2"
NO_NETEM = "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): delay, jitter and loss cannot be applied here"


@pytest.fixture(scope="module", autouse=True)
def engine_and_images():
    """Overrides the package's autouse fixture: these tests need neither Docker nor images."""
    yield


def run(*args, check=True, timeout=30):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(args), proc.returncode, proc.stdout))
    return proc


class Pair:
    def __init__(self, host, node):
        self.host, self.node = host, node

    def ipr(self):
        """A new netlink handle inside the host namespace (flags=0: never create a namespace)."""
        return IPRoute(netns=self.host, flags=0)


@pytest.fixture
def pair():
    tag = "tbtest-shape-%d" % os.getpid()
    host, node = tag + "-h", tag + "-n"
    created = []
    try:
        for ns in (host, node):
            run(IP, "netns", "add", ns)
            created.append(ns)
        run(IP, "-n", host, "link", "add", VETH, "type", "veth", "peer", "name", "eth1", "netns", node)
        run(IP, "-n", host, "addr", "add", HOST_ADDR + "/30", "dev", VETH)
        run(IP, "-n", node, "addr", "add", NODE_ADDR + "/30", "dev", "eth1")
        for ns, dev in ((host, VETH), (host, "lo"), (node, "eth1"), (node, "lo")):
            run(IP, "-n", ns, "link", "set", dev, "up")
        yield Pair(host, node)
    finally:
        for ns in created:  # deleting a namespace deletes the veth and the IFB in it
            run(IP, "netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def netem_missing():
    """Independent of the code under test: ask tc itself, in a namespace of our own."""
    ns = "tbtest-shape-%d-probe" % os.getpid()
    run(IP, "netns", "add", ns)
    try:
        proc = run(IP, "netns", "exec", ns, TC, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
                   check=False)
        return proc.returncode != 0
    finally:
        run(IP, "netns", "del", ns, check=False)


# ----------------------------------------------------------------------------------------------
# reading the kernel through a second handle


def qdiscs(ipr, name):
    index = ipr.link_lookup(ifname=name)[0]
    return [q for q in ipr.get_qdiscs(index=index) if q["index"] == index]


def root_qdisc(ipr, name):
    for q in qdiscs(ipr, name):
        if q["parent"] == shaping.TC_H_ROOT:
            return q
    return None


def htb_class_rate_bits(ipr, name):
    index = ipr.link_lookup(ifname=name)[0]
    for c in ipr.get_classes(index=index):
        if c["handle"] == 0x10001 and c.get_attr("TCA_KIND") == "htb":
            opts = c.get_attr("TCA_OPTIONS")
            return (opts.get_attr("TCA_HTB_RATE64") or opts.get_attr("TCA_HTB_PARMS")["rate"]) * 8
    return None


def sent_bytes(qdisc):
    return qdisc.get_attr("TCA_STATS2").get_attr("TCA_STATS_BASIC")["bytes"]


def assert_shaped(ipr, name, bits):
    root = root_qdisc(ipr, name)
    assert root is not None and root.get_attr("TCA_KIND") == "htb" and root["handle"] == 0x10000
    assert root.get_attr("TCA_OPTIONS").get_attr("TCA_HTB_INIT")["defcls"] == 1
    assert htb_class_rate_bits(ipr, name) == bits


def redirect_target(ipr):
    index = ipr.link_lookup(ifname=VETH)[0]
    for f in ipr.get_filters(index=index, parent=0xFFFF0000):
        act = f.get_nested("TCA_OPTIONS", "TCA_U32_ACT", "TCA_ACT_PRIO_1")
        if act is not None and act.get_attr("TCA_ACT_KIND") == "mirred":
            return act.get_nested("TCA_ACT_OPTIONS", "TCA_MIRRED_PARMS")["ifindex"]
    return None


def traffic(pair):
    """A short TCP transfer: data to the node through the veth, acks back through the IFB."""
    assert iperf3(pair, amount="256K") > 0


# ----------------------------------------------------------------------------------------------
# netlink state


def test_preflight_probe_reports_exactly_the_missing_features(pair, netem_missing):
    with pair.ipr() as ipr:
        missing = preflight.missing_shaping_features(ipr)
        assert [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                if link.get_attr("IFLA_IFNAME").startswith("tbsp")] == [], "probe objects left behind"
    expected = [("netem", "CONFIG_NET_SCH_NETEM")] if netem_missing else []
    assert missing == expected


def test_shape_both_ways_is_htb_on_the_veth_and_on_its_ifb(pair):
    shape = Shape(rate_bps=10 * MBIT)
    with pair.ipr() as ipr:
        ops = shaping.apply(ipr, VETH, shape, shape, alias=ALIAS)
    assert any("classid 1:1 htb rate 10mbit" in op for op in ops) and "create ifb %s (%s)" % (IFB, ALIAS) in ops
    with pair.ipr() as check:
        assert_shaped(check, VETH, 10 * MBIT)
        assert_shaped(check, IFB, 10 * MBIT)
        ifb = check.get_links(check.link_lookup(ifname=IFB)[0])[0]
        assert ifb.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "ifb"
        assert ifb.get_attr("IFLA_IFALIAS") == ALIAS and ifb["flags"] & 1
        assert ifb.get_attr("IFLA_TXQLEN") == shaping.IFB_TXQLEN
        ingress = [q for q in qdiscs(check, VETH) if q["parent"] == shaping.TC_H_INGRESS]
        assert [q.get_attr("TCA_KIND") for q in ingress] == ["ingress"]
        assert redirect_target(check) == ifb["index"]
    traffic(pair)  # the redirect and the IFB pass traffic both ways


def test_second_apply_changes_nothing_and_dry_run_agrees(pair):
    shape = Shape(rate_bps=10 * MBIT)
    with pair.ipr() as ipr:
        assert shaping.apply(ipr, VETH, shape, shape, alias=ALIAS)
        assert shaping.apply(ipr, VETH, shape, shape, alias=ALIAS) == []
        assert shaping.apply(ipr, VETH, shape, shape, alias=ALIAS, dry_run=True) == []


def test_dry_run_reports_without_touching_the_kernel(pair):
    shape = Shape(rate_bps=10 * MBIT)
    with pair.ipr() as ipr:
        ops = shaping.apply(ipr, VETH, shape, shape, alias=ALIAS, dry_run=True)
        assert len(ops) == 7 and ops[2] == "create ifb %s (%s)" % (IFB, ALIAS)
        assert root_qdisc(ipr, VETH).get_attr("TCA_KIND") == "noqueue"
        assert ipr.link_lookup(ifname=IFB) == []
        assert shaping.apply(ipr, VETH, shape, shape, alias=ALIAS) == ops


def test_rate_change_is_done_in_place_without_recreating_the_qdiscs(pair):
    with pair.ipr() as ipr:
        shaping.apply(ipr, VETH, Shape(rate_bps=10 * MBIT), Shape(rate_bps=10 * MBIT), alias=ALIAS)
        traffic(pair)
        before = {name: sent_bytes(root_qdisc(ipr, name)) for name in (VETH, IFB)}
        ifb_index = ipr.link_lookup(ifname=IFB)[0]
        ops = shaping.apply(ipr, VETH, Shape(rate_bps=50 * MBIT), Shape(rate_bps=50 * MBIT), alias=ALIAS)
    assert ops == [
        "%s: tc class change dev %s parent 1: classid 1:1 htb rate 50mbit ceil 50mbit burst 6250b (was rate 10mbit)"
        % (name, name) for name in (VETH, IFB)]
    with pair.ipr() as check:
        for name in (VETH, IFB):
            assert_shaped(check, name, 50 * MBIT)
            # a recreated qdisc would start counting from zero again
            assert before[name] > 0 and sent_bytes(root_qdisc(check, name)) >= before[name]
        assert check.link_lookup(ifname=IFB) == [ifb_index]
    with pair.ipr() as ipr:
        assert shaping.apply(ipr, VETH, Shape(rate_bps=50 * MBIT), Shape(rate_bps=50 * MBIT), alias=ALIAS) == []


def test_removing_the_shape_removes_qdiscs_ingress_and_ifb(pair):
    shape = Shape(rate_bps=10 * MBIT)
    with pair.ipr() as ipr:
        shaping.apply(ipr, VETH, shape, shape, alias=ALIAS)
        ops = shaping.apply(ipr, VETH, None, None, alias=ALIAS)
        assert ops == ["%s: tc qdisc del dev %s root handle 1:" % (VETH, VETH),
                       "%s: tc qdisc del dev %s ingress" % (VETH, VETH),
                       "delete ifb %s" % IFB]
        assert shaping.apply(ipr, VETH, None, None, alias=ALIAS) == []
    with pair.ipr() as check:
        assert root_qdisc(check, VETH).get_attr("TCA_KIND") == "noqueue"
        assert [q for q in qdiscs(check, VETH) if q["parent"] == shaping.TC_H_INGRESS] == []
        assert check.link_lookup(ifname=IFB) == []
    traffic(pair)


def test_one_direction_only_leaves_the_other_unshaped(pair):
    with pair.ipr() as ipr:
        shaping.apply(ipr, VETH, Shape(rate_bps=10 * MBIT), Shape(rate_bps=20 * MBIT), alias=ALIAS)
        ops = shaping.apply(ipr, VETH, None, Shape(rate_bps=20 * MBIT), alias=ALIAS)
        assert ops == ["%s: tc qdisc del dev %s root handle 1:" % (VETH, VETH)]
        assert_shaped(ipr, IFB, 20 * MBIT)


def test_apply_many_converges_several_attachments_from_one_qdisc_dump(pair):
    second = "tbtst00v0c4f1d2"
    run(IP, "-n", pair.host, "link", "add", second, "type", "veth", "peer", "name", "eth2", "netns", pair.node)
    run(IP, "-n", pair.host, "link", "set", second, "up")
    items = [{"veth": VETH, "to_node": Shape(rate_bps=10 * MBIT), "from_node": None, "alias": ALIAS},
             {"veth": second, "to_node": {"rate_bps": 20 * MBIT}, "from_node": {"rate_bps": 30 * MBIT},
              "alias": ALIAS.replace("lan0", "lan1")}]
    with pair.ipr() as ipr:
        assert len(shaping.apply_many(ipr, items)) == 2 + 7
        assert shaping.apply_many(ipr, items) == []
    with pair.ipr() as check:
        assert_shaped(check, VETH, 10 * MBIT)
        assert_shaped(check, second, 20 * MBIT)
        assert_shaped(check, shaping.ifb_name(second), 30 * MBIT)
        assert check.link_lookup(ifname=IFB) == []


def test_an_ifb_of_another_owner_is_not_taken_over(pair):
    run(IP, "-n", pair.host, "link", "add", IFB, "type", "ifb")
    run(IP, "-n", pair.host, "link", "set", IFB, "alias", "testbed:someone/else/node/lan0")
    with pair.ipr() as ipr:
        with pytest.raises(ShapingError, match="refusing to take it over"):
            shaping.apply(ipr, VETH, None, Shape(rate_bps=10 * MBIT), alias=ALIAS)


def test_delay_jitter_loss_are_applied_with_netem(pair, netem_missing):
    if netem_missing:
        pytest.skip(NO_NETEM)
    shape = Shape(rate_bps=10 * MBIT, delay_us=10_000, jitter_us=1_000, loss=0.01)
    with pair.ipr() as ipr:
        shaping.apply(ipr, VETH, shape, shape, alias=ALIAS)
        for name in (VETH, IFB):
            layout = shaping.read_egress(ipr, ipr.link_lookup(ifname=name)[0])
            assert layout.leaf.kind == "netem" and layout.leaf.state == shaping_requests.desired_layout(shape).leaf.state
        assert shaping.apply(ipr, VETH, shape, shape, alias=ALIAS) == []
        ops = shaping.apply(ipr, VETH, Shape(rate_bps=10 * MBIT, delay_us=20_000), shape, alias=ALIAS)
        assert len(ops) == 1 and "qdisc change" in ops[0] and "netem" in ops[0]


def test_delay_without_netem_fails_naming_netem_and_its_kernel_option(pair, netem_missing):
    if not netem_missing:
        pytest.skip("this kernel has netem: the error for its absence cannot be provoked here")
    with pair.ipr() as ipr:
        with pytest.raises(ShapingError) as err:
            shaping.apply(ipr, VETH, Shape(rate_bps=10 * MBIT, delay_us=5_000), None, alias=ALIAS)
    message = str(err.value)
    assert VETH in message and "netem" in message and "CONFIG_NET_SCH_NETEM" in message
    assert "delay" in message


# ----------------------------------------------------------------------------------------------
# measured bandwidth


def iperf3(pair, reverse=False, seconds=3, amount=None):
    """Throughput in bit/s from the host namespace to the node (reverse: node to host), as
    received, over ``seconds`` (or for ``amount`` bytes)."""
    port = 5201 + os.getpid() % 1000
    server = subprocess.Popen(["ip", "netns", "exec", pair.node, IPERF3, "-s", "-1", "-B", NODE_ADDR,
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 5
        while str(port) not in run(IP, "netns", "exec", pair.node, "ss", "-ltnH").stdout:
            assert time.time() < deadline, "iperf3 server did not start"
            time.sleep(0.05)
        args = [IP, "netns", "exec", pair.host, IPERF3, "-c", NODE_ADDR, "-p", str(port), "-J"]
        args += ["-n", amount] if amount else ["-t", str(seconds)]
        args += ["-R"] if reverse else []
        result = json.loads(run(*args, timeout=seconds + 20).stdout)
        return result["end"]["sum_received"]["bits_per_second"]
    finally:
        server.kill()
        server.wait()


def assert_rate(measured, target):
    assert abs(measured - target) <= 0.1 * target, "measured %.2f Mbit/s, shaped at %.0f Mbit/s" % (
        measured / MBIT, target / MBIT)


def test_measured_throughput_follows_10_then_50_mbit_changed_in_place(pair, record_property):
    with pair.ipr() as ipr:
        shaping.apply(ipr, VETH, Shape(rate_bps=10 * MBIT), Shape(rate_bps=10 * MBIT), alias=ALIAS)
        at10 = iperf3(pair)
        shaping.apply(ipr, VETH, Shape(rate_bps=50 * MBIT), Shape(rate_bps=50 * MBIT), alias=ALIAS)
        at50 = iperf3(pair)
    record_property("mbit_at_10", at10 / MBIT)
    record_property("mbit_at_50", at50 / MBIT)
    print("measured: %.2f Mbit/s at 10mbit, %.2f Mbit/s at 50mbit" % (at10 / MBIT, at50 / MBIT))
    assert_rate(at10, 10 * MBIT)
    assert_rate(at50, 50 * MBIT)


def test_asymmetric_shape_gives_each_direction_its_own_rate(pair, record_property):
    with pair.ipr() as ipr:
        shaping.apply(ipr, VETH, Shape(rate_bps=10 * MBIT), Shape(rate_bps=50 * MBIT), alias=ALIAS)
    to_node = iperf3(pair)
    from_node = iperf3(pair, reverse=True)
    record_property("mbit_to_node", to_node / MBIT)
    record_property("mbit_from_node", from_node / MBIT)
    print("measured: to node %.2f Mbit/s (10mbit), from node %.2f Mbit/s (50mbit)"
          % (to_node / MBIT, from_node / MBIT))
    assert_rate(to_node, 10 * MBIT)
    assert_rate(from_node, 50 * MBIT)


def test_unshaped_link_is_much_faster_than_the_shapes(pair):
    """Guards the oracle: the measurements above mean something only if the veth is faster."""
    assert iperf3(pair, seconds=1) > 200 * MBIT
