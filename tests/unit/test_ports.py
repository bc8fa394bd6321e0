"""Mixed mode (issue 19): a physical host's NIC as a member of an experiment LAN; validation,
its planned address, routes and shaping, and the LAN reaching that host."""
import pytest

from ansible_collections.testbed.containers.plugins.module_utils import model, names, plan

BB = "testbed/busybox:latest"


def doc(lan0_members=None, **extra):
    d = {"name": "mx", "project": "p",
         "nodes": {"a": {"image": BB, "host": "h1"}, "r": {"image": BB, "host": "h1", "forwarding": True},
                   "b": {"image": BB, "host": "h1"}},
         "lans": {"lan0": {"members": lan0_members or ["a", "r", {"host": "h2", "interface": "eth2"}],
                           "subnet": "10.30.0.0/24", "bandwidth": "10Mbit"},
                  "lan1": {"members": ["r", "b"], "subnet": "10.30.1.0/24"}}}
    d.update(extra)
    return d


def errors_of(document, hosts=("h1", "h2")):
    with pytest.raises(model.ExperimentError) as exc:
        plan.make_plan(document, list(hosts), host_vars={"h1": {"tunnel_address": "192.0.2.1"},
                                                         "h2": {"tunnel_address": "192.0.2.2"}})
    return exc.value.errors


def make(document, previous=None):
    host_vars = {"h1": {"tunnel_address": "192.0.2.1"}, "h2": {"tunnel_address": "192.0.2.2"}}
    return plan.make_plan(document, ["h1", "h2"], previous, host_vars=host_vars)


def test_a_hosts_nic_on_a_lan_is_planned_with_address_routes_and_shaping():
    p = make(doc())
    port, = p["lans"]["lan0"]["ports"]
    assert (port["host"], port["interface"], port["address"], port["prefixlen"]) == ("h2", "eth2", "10.30.0.3", 24)
    assert port["alias"] == "testbed:p/mx/lan0/port/h2/eth2" and port["ifb"] == names.port_ifb("p", "mx", "h2", "eth2")
    assert port["ifb"].startswith(p["kernel_prefix"]) and len(port["ifb"]) == 15
    assert port["to_node"]["rate_bps"] == 10 ** 7 and port["from_node"]["rate_bps"] == 10 ** 7
    # the machine behind the NIC reaches lan1 through r, like a node on lan0 would
    assert port["routes"] == [{"dest": "10.30.1.0/24", "via": "10.30.0.2", "dev": "eth2", "lan": "lan1"}]
    # the LAN now spans h2 (a tunnel there), h2 is one of the plan's hosts, the nodes stay put
    assert p["lans"]["lan0"]["hosts"] == ["h1", "h2"] and "vxlan" in p["lans"]["lan0"]
    assert p["hosts"] == ["h1", "h2"] and set(n["host"] for n in p["nodes"].values()) == {"h1"}
    assert ["10.30.0.3", "h2-eth2"] in p["etc_hosts"]
    assert "@lan0/0" not in p["nodes"]


def test_a_fixed_address_and_the_earlier_one_are_kept():
    fixed = make(doc(["a", "r", {"host": "h2", "interface": "eth2", "ip": "10.30.0.99"}]))
    assert fixed["lans"]["lan0"]["ports"][0]["address"] == "10.30.0.99"
    first = make(doc())
    # a new member added before it: the port keeps its address
    again = make(doc(["a", "r", {"node": "b", "ip": "10.30.0.50"}, {"host": "h2", "interface": "eth2"}]), first)
    assert again["lans"]["lan0"]["ports"][0]["address"] == first["lans"]["lan0"]["ports"][0]["address"]


def test_a_lan_without_ports_plans_as_before():
    p = make({"name": "mx", "project": "p", "nodes": {"a": {"image": BB}}, "lans": {"l": {"members": ["a"]}}})
    assert "ports" not in p["lans"]["l"] and p["hosts"] == ["h1"]


@pytest.mark.parametrize("member, message", [
    ({"host": "h9", "interface": "eth2"}, "lans.lan0.members[2].host: unknown host 'h9'"),
    ({"host": "h2", "interface": "dockercnet"}, "lans.lan0.members[2].interface: dockercnet is the host's loopback"),
    ({"host": "h2", "interface": "bad name"}, "lans.lan0.members[2].interface: invalid interface name"),
    ({"host": "h2", "interface": "eth2", "ip": "10.31.0.5"}, "lans.lan0.members[2].ip: 10.31.0.5 is not a host address"),
    ({"host": "h2", "interface": "eth2", "ip": "10.30.0.1"}, "lans.lan0.members[2].ip: 10.30.0.1 is already a member"),
    ({"host": "h2", "interface": "eth2", "mtu": 9000}, "lans.lan0.members[2].mtu: unknown key"),
    ({"host": "h2", "interface": "eth2", "bandwidth": "fast"}, "lans.lan0.members[2].bandwidth: "),
    ({"host": "h2", "interface": "eth2", "to_node": {"delay": "soon"}}, "lans.lan0.members[2].to_node.delay: "),
])
def test_bad_ports_are_refused_with_their_field(member, message):
    errors = errors_of(doc(["a", "r", member]))
    assert any(e.startswith(message) for e in errors), errors


def test_a_nic_on_two_lans_and_a_port_on_a_link_are_refused():
    d = doc()
    d["lans"]["lan1"]["members"].append({"host": "h2", "interface": "eth2"})
    assert "lans.lan1.members[2]: eth2 of host h2 is already on LAN lan0: a NIC joins one LAN" in errors_of(d)
    d = doc(links={"l0": {"endpoints": ["a", {"host": "h2", "interface": "eth3"}]}})
    assert any(e.startswith("links.l0.endpoints[1]: a host's interface joins a LAN") for e in errors_of(d))
    d = doc(["a", "r"])
    d["lans"]["lan2"] = {"members": [{"host": "h2", "interface": "eth3"}]}
    assert "lans.lan2.members: must list at least one node besides the hosts' interfaces" in errors_of(d)


def test_the_table_says_what_the_machine_behind_each_nic_takes():
    from ansible_collections.testbed.containers.plugins.module_utils import report
    assert report.port_lines(make(doc())) == [
        "port h2:eth2 on lan0: the machine behind it takes 10.30.0.3/24; routes 10.30.1.0/24 via 10.30.0.2"]
    assert report.port_lines({}) == []


def test_a_hosts_nic_takes_its_own_shaping_over_the_lans_like_a_node_member():
    port_member = {"host": "h2", "interface": "eth2", "bandwidth": "2Mbit", "from_node": {"delay": "5ms"}}
    p = make(doc(["a", "r", port_member]))
    port, = p["lans"]["lan0"]["ports"]
    assert port["to_node"]["rate_bps"] == 2 * 10 ** 6  # its own bandwidth over the LAN's 10Mbit
    assert port["from_node"]["rate_bps"] == 2 * 10 ** 6 and port["from_node"]["delay_us"] == 5000
    a, = [i for i in p["nodes"]["a"]["interfaces"] if i["lan"] == "lan0"]
    assert a["to_node"]["rate_bps"] == 10 ** 7  # the nodes keep the LAN's


def test_a_hosts_own_stack_on_a_lan_is_a_veth_pair_with_an_address_routes_and_a_name():
    p = make(doc(["a", "r", {"host": "h2"}]))
    port, = p["lans"]["lan0"]["ports"]
    assert (port["stack"], port["interface"]) == names.stack_names("p", "mx", "h2", "lan0")
    assert port["stack"].startswith(p["kernel_prefix"]) and names.is_stack(port["stack"]) and len(port["interface"]) == 15
    assert port["address"] == "10.30.0.3" and [(r["dest"], r["via"], r["dev"]) for r in port["routes"]] == [
        ("10.30.1.0/24", "10.30.0.2", port["stack"])]  # on the host, through its stack's end
    assert ["10.30.0.3", "h2"] in plan.hosts_entries(p)
    assert "h2" in p["lans"]["lan0"]["hosts"]


def test_a_hosts_stack_joins_one_lan():
    document = doc(["a", "r", {"host": "h2"}])
    document["lans"]["lan1"]["members"].append({"host": "h2"})
    assert errors_of(document) == ["lans.lan1.members[2]: the own stack of host h2 is already on LAN lan0: a host's "
                                   "stack joins one LAN of an experiment (its routes reach the others)"]
