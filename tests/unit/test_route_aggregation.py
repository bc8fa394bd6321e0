"""Big stub-and-router topologies: a node that reaches every other LAN through one router gets
the collapsed set of their subnets instead of one route per LAN, covering exactly the same
addresses through the same gateway."""
import ipaddress

from ansible_collections.testbed.containers.plugins.module_utils import plan


def star(hosts_per_router=30, routers=4):
    """routers on a core LAN, each with hosts on links of their own (Emulab's usual big shape)."""
    nodes, links = {}, {}
    lans = {"core": {"members": ["r%d" % g for g in range(routers)]}}
    for g in range(routers):
        nodes["r%d" % g] = {"image": "busybox", "forwarding": True}
        for i in range(hosts_per_router):
            host = "h%d-%d" % (g, i)
            nodes[host] = {"image": "busybox"}
            links["l%d-%d" % (g, i)] = {"endpoints": [host, "r%d" % g]}
    lans["island"] = {"members": ["h0-0", "h0-1"]}  # a LAN of two hosts with no router: unreachable for others
    return {"name": "star", "nodes": nodes, "lans": lans, "links": links, "addressing": {"pool": "10.0.0.0/14"}}


def covered(routes, address):
    """The gateway of the most specific route for ``address`` (None: no route)."""
    best = None
    for r in routes:
        net = ipaddress.ip_network(r["dest"])
        if ipaddress.ip_address(address) in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, r["via"], r["dev"])
    return best and best[1:]


def test_stub_routes_cover_what_per_lan_routes_cover(monkeypatch):
    doc = star()
    aggregated = plan.make_plan(doc, ["h1"])
    monkeypatch.setattr(plan, "AGGREGATE_ABOVE", 10 ** 9)
    full = plan.make_plan(doc, ["h1"])
    host = aggregated["nodes"]["h1-5"]
    assert len(full["nodes"]["h1-5"]["routes"]) == 120  # every other LAN of its component
    assert 0 < len(host["routes"]) <= 12, host["routes"]  # 124 LANs in 10.0.0.0/14, one of them not reachable
    own = set(i["address"] for i in host["interfaces"])
    for lan_name, lan in full["lans"].items():
        probe = str(next(ipaddress.ip_network(lan["subnet"]).hosts()))
        want = covered(full["nodes"]["h1-5"]["routes"], probe)
        got = covered(host["routes"], probe)
        if want is not None:
            assert got == want, (lan_name, got, want)
        elif lan_name != "island" and probe not in own:
            assert got is None or lan_name in [i["lan"] for i in host["interfaces"]]
    # no route repeats one of the node's connected subnets
    subnets = set(full["lans"][i["lan"]]["subnet"] for i in host["interfaces"])
    assert not [r for r in host["routes"] if r["dest"] in subnets]
    # routers and small topologies keep one route per LAN
    assert aggregated["nodes"]["r0"]["routes"] == full["nodes"]["r0"]["routes"]
    # h0-0 is on two LANs, one without a router: a single gateway still
    assert aggregated["nodes"]["h0-0"]["routes"] != full["nodes"]["h0-0"]["routes"]


def test_below_the_threshold_nothing_changes(monkeypatch):
    doc = star(hosts_per_router=5, routers=3)
    small = plan.make_plan(doc, ["h1"])
    monkeypatch.setattr(plan, "AGGREGATE_ABOVE", 10 ** 9)
    assert plan.make_plan(doc, ["h1"]) == small
