from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan

DEMO = {
    "name": "demo",
    "nodes": {"client": {"image": "i"}, "router": {"image": "i", "forwarding": True}, "server": {"image": "i"}},
    "lans": {"lan0": {"members": ["client", "router"]},
             "lan1": {"members": ["router", {"node": "server", "ip": "10.9.1.20"}], "subnet": "10.9.1.0/24"}},
}


def test_demo_plan_routes_client_to_server_through_router():
    plan = make_plan(DEMO, ["localhost"])
    client = plan["nodes"]["client"]
    assert client["interfaces"][0]["ifname"] == "eth1"
    assert client["interfaces"][0]["address"] == "10.10.0.1"
    assert client["routes"] == [{"dest": "10.9.1.0/24", "via": "10.10.0.2", "dev": "eth1", "lan": "lan1"}]
    assert plan["nodes"]["server"]["interfaces"][0]["address"] == "10.9.1.20"
    assert plan["nodes"]["router"]["routes"] == []


def test_plan_is_deterministic():
    assert make_plan(DEMO, ["localhost"]) == make_plan(DEMO, ["localhost"])
