"""Experiment LANs stay out of the address ranges the hosts keep for themselves: the control
network, the exec-SSH range and the registry's address (found when tried: a LAN with the
control network's subnet gave node a the control gateway's address)."""
import ipaddress

import pytest

from ansible_collections.testbed.containers.plugins.module_utils.model import ExperimentError
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan


def doc(subnet=None, pool=None):
    lan = {"members": ["a", "b"]}
    if subnet:
        lan["subnet"] = subnet
    d = {"name": "e", "nodes": {"a": {"image": "img"}, "b": {"image": "img"}}, "lans": {"lan0": lan}}
    if pool:
        d["addressing"] = {"pool": pool}
    return d


def errors_of(document, host_vars=None, registry_address=None):
    with pytest.raises(ExperimentError) as info:
        make_plan(document, ["h1"], host_vars=host_vars, registry_address=registry_address)
    return info.value.errors


@pytest.mark.parametrize("subnet, what", [
    ("172.30.0.0/16", "the control network dockercnet (172.30.0.0/16, testbed_control.control_subnet)"),
    ("172.30.5.0/24", "the control network dockercnet (172.30.0.0/16, testbed_control.control_subnet)"),
    ("172.16.0.0/12", "the control network dockercnet (172.30.0.0/16, testbed_control.control_subnet)"),
    ("169.254.241.0/24", "the exec-SSH address range (169.254.240.0/20, testbed_control.exec_subnet)"),
    ("198.18.255.0/24", "the testbed registry's address 198.18.255.1 (testbed_registry_address)"),
])
def test_a_lan_subnet_overlapping_a_reserved_range_is_refused_naming_the_field(subnet, what):
    assert errors_of(doc(subnet)) == [
        "lans.lan0.subnet: %s overlaps %s: choose a subnet outside it (or leave subnet out to have one allocated)"
        % (subnet, what)]


def test_the_hosts_own_control_settings_and_registry_address_are_the_ones_reserved():
    host_vars = {"h1": {"control_subnet": "10.200.0.0/16", "exec_subnet": "10.201.0.0/20"}}
    # the defaults are free then
    make_plan(doc("172.30.0.0/16"), ["h1"], host_vars=host_vars, registry_address="10.202.0.1")
    assert errors_of(doc("10.200.3.0/24"), host_vars)[0].startswith(
        "lans.lan0.subnet: 10.200.3.0/24 overlaps the control network dockercnet (10.200.0.0/16")
    assert errors_of(doc("10.202.0.0/24"), host_vars, "10.202.0.1")[0].startswith(
        "lans.lan0.subnet: 10.202.0.0/24 overlaps the testbed registry's address 10.202.0.1")


def test_a_bad_control_setting_in_the_inventory_names_the_host():
    assert errors_of(doc(), {"h1": {"control_subnet": "banana"}}) == [
        "inventory.h1.testbed_control.control_subnet: 'banana' is not an IPv4 network such as 172.30.0.0/16"]


def test_allocated_subnets_skip_the_reserved_ranges():
    plan = make_plan(doc(pool="172.30.0.0/15"), ["h1"])
    subnet = ipaddress.ip_network(plan["lans"]["lan0"]["subnet"])
    assert subnet == ipaddress.ip_network("172.31.0.0/24")
    assert all(ipaddress.ip_address(i["address"]) not in ipaddress.ip_network("172.30.0.0/16")
               for node in plan["nodes"].values() for i in node["interfaces"])


def test_a_pool_inside_a_reserved_range_says_so():
    assert errors_of(doc(pool="172.30.0.0/16")) == [
        "lans.lan0: no free /24 subnet left in the pool 172.30.0.0/16 (it overlaps the control network dockercnet "
        "(172.30.0.0/16, testbed_control.control_subnet)): widen addressing.pool or give this LAN a subnet"]


def test_a_lan_overlapping_a_route_of_the_host_is_a_preflight_problem_naming_lan_and_route():
    from ansible_collections.testbed.containers.plugins.module_utils import preflight
    lans = {"lan0": {"kind": "lan", "subnet": "192.168.7.0/24", "hosts": ["h1"]},
            "l1": {"kind": "link", "subnet": "10.10.1.0/24", "hosts": ["h1", "h2"]},
            "far": {"kind": "lan", "subnet": "192.168.7.0/24", "hosts": ["h2"]}}
    routes = [(ipaddress.ip_network("192.168.0.0/16"), "eth0"), (ipaddress.ip_network("10.10.1.0/24"), "tb12345b1"),
              (ipaddress.ip_network("172.30.0.0/16"), "dockercnet"), (ipaddress.ip_network("10.0.0.0/8"), "wg0")]
    assert preflight.route_conflicts(lans, "h1", routes) == [
        "links.l1: subnet 10.10.1.0/24 overlaps the route 10.0.0.0/8 dev wg0 of host h1: give the LAN a subnet "
        "(or addressing.pool) outside it",
        "lans.lan0: subnet 192.168.7.0/24 overlaps the route 192.168.0.0/16 dev eth0 of host h1: give the LAN a "
        "subnet (or addressing.pool) outside it"]


def test_another_experiments_lan_on_the_hosts_own_stack_is_a_route_conflict_and_ours_is_not():
    from ansible_collections.testbed.containers.plugins.module_utils import names, preflight
    ours = names.stack_names("p", "e", "h1", "lan0")[0]
    theirs = names.stack_names("p", "other", "h1", "lan0")[0]
    lans = {"lan0": {"kind": "lan", "subnet": "10.9.0.0/24", "hosts": ["h1"], "bridge": names.bridge_name("p", "e", "lan0")}}
    routes = [(ipaddress.ip_network("10.9.0.0/24"), ours), (ipaddress.ip_network("10.9.0.0/24"), names.veth_name("p", "x", "a", "l"))]
    assert preflight.route_conflicts(lans, "h1", routes) == []
    assert preflight.route_conflicts(lans, "h1", routes + [(ipaddress.ip_network("10.9.0.0/25"), theirs)]) == [
        "lans.lan0: subnet 10.9.0.0/24 overlaps the route 10.9.0.0/25 dev %s of host h1: give the LAN a subnet "
        "(or addressing.pool) outside it" % theirs]
