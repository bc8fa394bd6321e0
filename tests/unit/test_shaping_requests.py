import pytest
from pyroute2.netlink.rtnl.tcmsg import sched_htb, sched_netem

from ansible_collections.testbed.containers.plugins.module_utils import shaping
from ansible_collections.testbed.containers.plugins.module_utils.names import ifb_name, veth_name
from ansible_collections.testbed.containers.plugins.module_utils.shape import Shape, as_shape, needed_features
from ansible_collections.testbed.containers.plugins.module_utils.shaping_requests import (
    EgressLayout,
    Observed,
    TcRequest,
    desired_layout,
    egress_requests,
    ingress_requests,
    netem_limit,
    plan_egress,
)

ROOT = 0xFFFFFFFF
DEV = 7
MBIT = 10 ** 6


def htb_root(index=DEV):
    return TcRequest("add", "htb", index, 0x10000, ROOT, {"default": 1})


def htb_class(rate_bytes, burst, quantum, command="add-class", index=DEV):
    return TcRequest(command, "htb", index, 0x10001, 0x10000,
                     {"rate": rate_bytes, "ceil": rate_bytes, "burst": burst, "cburst": burst, "quantum": quantum})


def test_rate_only_is_an_htb_root_and_one_class_in_bytes_per_second():
    assert egress_requests(DEV, Shape(rate_bps=10 * MBIT)) == [
        htb_root(),
        htb_class(1_250_000, 3200, 125_000),
    ]


def test_rate_delay_jitter_loss_adds_a_netem_leaf_sized_for_the_bandwidth_delay_product():
    shape = Shape(rate_bps=1000 * MBIT, delay_us=50_000, jitter_us=2_000, loss=0.01)
    # 1 gbit/s x 52 ms = 4333 packets of 1500 bytes, twice that as the queue
    assert egress_requests(DEV, shape) == [
        htb_root(),
        htb_class(125_000_000, 125_000, 200_000),
        TcRequest("add", "netem", DEV, 0x100000, 0x10001,
                  {"delay": 50_000, "jitter": 2_000, "loss": 1.0, "limit": 8667}),
    ]


def test_netem_limit_is_never_below_its_default_of_1000():
    assert netem_limit(Shape(rate_bps=10 * MBIT, delay_us=20_000)) == 1000
    assert netem_limit(Shape(rate_bps=10 * MBIT, loss=0.1)) == 1000


def test_delay_only_is_netem_as_root_sized_for_a_nominal_10gbit_line():
    assert egress_requests(DEV, Shape(delay_us=5_000)) == [
        TcRequest("add", "netem", DEV, 0x100000, ROOT, {"delay": 5_000, "jitter": 0, "loss": 0.0, "limit": 8334}),
    ]


def test_an_explicit_queue_is_the_netem_limit():
    requests = egress_requests(DEV, Shape(rate_bps=10 * MBIT, delay_us=100_000, limit_packets=100))
    assert requests[-1] == TcRequest("add", "netem", DEV, 0x100000, 0x10001,
                                     {"delay": 100_000, "jitter": 0, "loss": 0.0, "limit": 100})


def test_a_queue_without_netem_is_a_pfifo_leaf():
    assert egress_requests(DEV, Shape(rate_bps=50 * MBIT, limit_packets=50)) == [
        htb_root(),
        htb_class(6_250_000, 6_250, 200_000),
        TcRequest("add", "pfifo", DEV, 0x100000, 0x10001, {"limit": 50}),
    ]


def test_empty_shape_builds_nothing():
    assert egress_requests(DEV, Shape()) == []
    assert egress_requests(DEV, as_shape(None)) == []


def test_ingress_redirects_everything_to_the_ifb():
    assert ingress_requests(5, 9) == [
        TcRequest("add", "ingress", 5, 0xFFFF0000, 0xFFFFFFF1, {}),
        TcRequest("add-filter", "u32", 5, 0, 0xFFFF0000, {
            "prio": 1, "protocol": 3, "target": 0x10001, "keys": ["0x0/0x0+0"],
            "action": {"kind": "mirred", "direction": "egress", "action": "redirect", "ifindex": 9},
        }),
    ]


def test_pyroute2_takes_our_integers_as_bytes_per_second_and_netem_loss_as_percent():
    cls = htb_class(1_250_000, 3200, 125_000).kwargs
    parms = dict(sched_htb.get_class_parameters(cls)["attrs"])["TCA_HTB_PARMS"]
    assert parms["rate"] == 1_250_000 and parms["ceil"] == 1_250_000
    netem = sched_netem.get_parameters({"delay": 5000, "loss": 1.0, "limit": 1000})
    assert netem["loss"] == (2 ** 32 - 1) // 100


def test_rates_of_4_gbyte_per_second_and_more_go_in_rate64():
    cls = desired_layout(Shape(rate_bps=40 * 10 ** 9)).cls
    attrs = dict(sched_htb.get_class_parameters(cls.kwargs)["attrs"])
    assert attrs["TCA_HTB_RATE64"] == 5 * 10 ** 9
    assert cls.state["rate"] == 5 * 10 ** 9


def observed(layout):
    """What read_egress would report for a layout the kernel had applied as asked."""
    def obs(obj):
        return None if obj is None else Observed(obj.kind, obj.handle, obj.parent, dict(obj.state))
    return EgressLayout(obs(layout.root), obs(layout.cls), obs(layout.leaf))


def commands(steps):
    return [(r.command, r.kind, hex(r.handle)) for r, _old in steps]


def test_unchanged_shape_plans_nothing():
    for shape in (Shape(rate_bps=10 * MBIT), Shape(rate_bps=10 * MBIT, delay_us=5000, loss=0.01),
                  Shape(delay_us=1000), Shape()):
        assert plan_egress(DEV, observed(desired_layout(shape)), shape) == []


def test_rate_change_is_a_class_change_in_place():
    before = observed(desired_layout(Shape(rate_bps=10 * MBIT)))
    steps = plan_egress(DEV, before, Shape(rate_bps=50 * MBIT))
    assert [r for r, _old in steps] == [htb_class(6_250_000, 6_250, 200_000, command="change-class")]
    assert steps[0][1] is before.cls


def test_netem_parameters_change_in_place():
    before = observed(desired_layout(Shape(rate_bps=10 * MBIT, delay_us=5000)))
    steps = plan_egress(DEV, before, Shape(rate_bps=10 * MBIT, delay_us=8000))
    assert commands(steps) == [("change", "netem", "0x100000")]


def test_adding_delay_to_a_rate_adds_only_the_netem_leaf():
    before = observed(desired_layout(Shape(rate_bps=10 * MBIT)))
    assert commands(plan_egress(DEV, before, Shape(rate_bps=10 * MBIT, loss=0.01))) == [
        ("add", "netem", "0x100000")]


def test_switching_the_leaf_kind_deletes_then_adds_it():
    before = observed(desired_layout(Shape(rate_bps=10 * MBIT, limit_packets=30)))
    steps = plan_egress(DEV, before, Shape(rate_bps=10 * MBIT, delay_us=1000))
    assert commands(steps) == [("del", None, "0x100000"), ("add", "netem", "0x100000")]
    assert steps[0][0].parent == 0x10001


def test_netem_root_to_htb_rebuilds_the_root():
    before = observed(desired_layout(Shape(delay_us=1000)))
    steps = plan_egress(DEV, before, Shape(rate_bps=10 * MBIT, delay_us=1000))
    assert commands(steps) == [("del", None, "0x100000"), ("add", "htb", "0x10000"),
                               ("add-class", "htb", "0x10001"), ("add", "netem", "0x100000")]


def test_a_foreign_root_qdisc_is_replaced_and_an_empty_shape_removes_ours():
    foreign = EgressLayout(root=Observed("tbf", 0x80010000, ROOT, {}))
    assert commands(plan_egress(DEV, foreign, Shape(rate_bps=MBIT)))[0] == ("del", None, "0x80010000")
    ours = observed(desired_layout(Shape(rate_bps=MBIT)))
    assert [r for r, _old in plan_egress(DEV, ours, Shape())] == [TcRequest("del", None, DEV, 0x10000, ROOT, {})]


def test_missing_class_is_added_back():
    before = observed(desired_layout(Shape(rate_bps=MBIT)))
    before.cls = None
    assert commands(plan_egress(DEV, before, Shape(rate_bps=MBIT))) == [("add-class", "htb", "0x10001")]


def test_requests_describe_themselves_as_tc_commands():
    reqs = egress_requests(DEV, Shape(rate_bps=10 * MBIT, delay_us=20_000, jitter_us=2_000, loss=0.01))
    assert [r.describe("tbXv") for r in reqs] == [
        "tc qdisc add dev tbXv root handle 1: htb default 1",
        "tc class add dev tbXv parent 1: classid 1:1 htb rate 10mbit ceil 10mbit burst 3200b",
        "tc qdisc add dev tbXv parent 1:1 handle 10: netem limit 1000 delay 20ms 2ms loss 1%",
    ]
    redirect = ingress_requests(3, 4)[1]
    assert redirect.describe("tbXv", {4: "tbXi"}).endswith("action mirred egress redirect dev tbXi")


def test_ifb_name_replaces_the_v_of_our_veth_names():
    veth = veth_name("proj", "exp", "node-with-a-long-name", "lan0")
    assert len(veth) == 15 and veth[7] == "v"
    ifb = ifb_name(veth)
    assert ifb == veth[:7] + "i" + veth[8:]
    assert ifb_name("tb02c8cvfba9256") == "tb02c8cifba9256"


@pytest.mark.parametrize("veth", ["eth0", "veth1234567890ab", "tb02c8cbfba9256", "x"])
def test_ifb_name_of_other_names_is_short_and_distinct(veth):
    ifb = ifb_name(veth)
    assert len(ifb) <= 15 and ifb != veth
    assert ifb == ifb_name(veth)


def test_shape_from_experiment_file_values():
    shape = Shape.from_spec({"bandwidth": "10mbit", "delay": "20ms", "jitter": "2ms", "loss": "1%", "queue": 100})
    assert shape == Shape(rate_bps=10 * MBIT, delay_us=20_000, jitter_us=2_000, loss=0.01, limit_packets=100)
    assert Shape.from_spec(None).empty
    assert Shape.from_spec({"bandwidth": "2mbit"}).describe() == "rate 2mbit"


@pytest.mark.parametrize("spec, message", [
    ({"bandwith": "1mbit"}, "unknown shaping parameter"),
    ({"bandwidth": "1 lightyear"}, "invalid rate"),
    ({"delay": "5"}, "needs a unit"),
    ({"loss": 2}, "between 0 and 1"),
    ({"queue": 0}, "invalid queue"),
    ({"queue": 10}, "needs a bandwidth, a delay or a loss"),
    ({"jitter": "1ms"}, "jitter needs a delay"),
])
def test_shape_from_spec_errors_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        Shape.from_spec(spec)


def test_needed_features_for_the_preflight():
    rate = Shape(rate_bps=MBIT)
    assert needed_features([(rate, Shape())]) == ["htb"]
    assert needed_features([(rate, Shape(delay_us=10))]) == ["htb", "netem", "ifb", "ingress", "u32", "mirred"]
    assert needed_features([(Shape(), Shape())]) == []


def test_netem_as_read_back_compares_equal_to_what_was_asked():
    """The netem fields the kernel reports (ticks, u32 loss) are what the desired state holds,
    so an unchanged netem is left alone; checked on a message pyroute2 encodes and decodes."""
    from pyroute2.netlink.rtnl import RTM_NEWQDISC
    from pyroute2.netlink.rtnl.tcmsg import tcmsg

    for shape in (Shape(rate_bps=10 * MBIT, delay_us=20_000, jitter_us=2_000, loss=0.01),
                  Shape(delay_us=7, loss=0.333)):
        leaf = desired_layout(shape).leaf or desired_layout(shape).root
        msg = tcmsg()
        msg["header"]["type"] = RTM_NEWQDISC
        msg["index"], msg["handle"], msg["parent"] = DEV, leaf.handle, leaf.parent
        msg["attrs"] = [["TCA_KIND", "netem"], ["TCA_OPTIONS", sched_netem.get_parameters(dict(leaf.kwargs))]]
        msg.encode()
        back = tcmsg(msg.data)
        back.decode()
        assert shaping._observe(back) == Observed("netem", leaf.handle, leaf.parent, leaf.state)
