"""Node container settings (entrypoint, user, workdir, binds, cap_add, sysctls, labels, ports),
named interfaces and per-member LAN shaping: validation, the plan, the container's arguments."""
import pytest

from ansible_collections.testbed.containers.plugins.module_utils import augment, engine, model, plan


def doc(node=None, lan=None, **extra):
    nodes = {"a": dict({"image": "busybox"}, **(node or {})), "b": {"image": "busybox"}, "c": {"image": "busybox"}}
    d = {"name": "x", "nodes": nodes}
    if lan is not None:
        d["lans"] = {"lan0": lan}
    d.update(extra)
    return d


def errors_of(document):
    with pytest.raises(model.ExperimentError) as exc:
        model.validate(document)
    return exc.value.errors


def test_container_settings_are_normalized_and_planned():
    p = plan.make_plan(doc({"entrypoint": "/bin/app", "user": "1000:1000", "workdir": "/srv",
                            "binds": ["/tmp/data:/data:ro", "/tmp/logs/:/logs"], "cap_add": ["cap_sys_nice", "NET_ADMIN"],
                            "sysctls": {"net.ipv4.tcp_ecn": 1}, "labels": {"app": "web"}, "ports": ["8080:80", "127.0.0.1:53:53/udp"]}),
                       ["h"])
    a = p["nodes"]["a"]
    assert a["entrypoint"] == ["/bin/app"] and a["user"] == "1000:1000" and a["workdir"] == "/srv"
    assert a["binds"] == [{"source": "/tmp/data", "target": "/data", "read_only": True},
                          {"source": "/tmp/logs", "target": "/logs", "read_only": False}]
    assert a["cap_add"] == ["SYS_NICE", "NET_ADMIN"]
    assert a["sysctls"] == {"net.ipv4.tcp_ecn": "1"} and a["labels"] == {"app": "web"}
    assert a["ports"] == [{"host_ip": "", "host_port": 8080, "port": 80, "protocol": "tcp"},
                          {"host_ip": "127.0.0.1", "host_port": 53, "port": 53, "protocol": "udp"}]
    # nodes that set none of them plan exactly as before (no new keys)
    assert not set(p["nodes"]["b"]) & {"entrypoint", "user", "workdir", "binds", "cap_add", "sysctls", "labels", "ports"}


def test_container_arguments_of_a_plain_and_an_augmented_node():
    p = plan.make_plan(doc({"entrypoint": [], "user": "nobody", "workdir": "/srv", "augment": "none", "cap_add": ["SYS_NICE"],
                            "binds": ["/tmp:/data"], "ports": ["8080:80"], "labels": {"app": "web"},
                            "sysctls": {"net.core.somaxconn": "1024"}}), ["h"])
    kwargs, digest = engine.container_spec(p, "a", "sha256:1", "/tmp/hosts")
    assert kwargs["entrypoint"] == [""] and kwargs["user"] == "nobody" and kwargs["working_dir"] == "/srv"
    assert kwargs["cap_add"] == ["NET_ADMIN", "NET_RAW", "SYS_NICE"]
    assert kwargs["ports"] == {"80/tcp": [8080]}
    assert kwargs["labels"]["app"] == "web" and kwargs["labels"]["testbed.node"] == "a"
    assert kwargs["sysctls"] == {"net.core.somaxconn": "1024", "net.ipv4.ip_forward": "0"}
    assert [m["Target"] for m in kwargs["mounts"]] == ["/etc/hosts", "/data"]
    _kwargs_b, digest_b = engine.container_spec(p, "b", "sha256:1", "/tmp/hosts")
    assert digest != digest_b
    # augmented: the supervisor gets them from the node directory, not Docker
    p = plan.make_plan(doc({"entrypoint": ["/bin/app", "-v"], "user": "nobody"}), ["h"])
    kwargs, _digest = engine.container_spec(p, "a", "sha256:1", "/tmp/hosts")
    assert "entrypoint" not in kwargs and "user" not in kwargs
    text = augment.render_app_overrides(["/bin/app", "-v"], "nobody", None, None)
    assert text.splitlines()[1:] == ["entrypoint-set", "entrypoint /bin/app", "entrypoint -v", "drop-cmd 1", "user nobody"]
    assert "drop-cmd" not in augment.render_app_overrides(["/bin/app"], None, None, ["arg"])
    assert augment.render_app_overrides(None, None, None, ["x"]) is None


@pytest.mark.parametrize("node,want", [
    ({"binds": ["/var/run/docker.sock:/sock"]}, "nodes.a.binds[0]: /var/run/docker.sock is the host's own"),
    ({"binds": ["/tmp/../etc:/x"]}, "nodes.a.binds[0]: /tmp/../etc is the host's own"),
    ({"binds": ["data:/data"]}, "nodes.a.binds[0]: must be HOST_PATH:NODE_PATH or HOST_PATH:NODE_PATH:ro"),
    ({"binds": ["/tmp/a:/.testbed/node"]}, "nodes.a.binds[0]: /.testbed/node belongs to the testbed"),
    ({"binds": ["/tmp/a:/d", "/tmp/b:/d/"]}, "nodes.a.binds[1]: /d is already mounted"),
    ({"cap_add": ["SYS_ADMIN"]}, "nodes.a.cap_add[0]: 'SYS_ADMIN' is not a capability a node may add"),
    ({"sysctls": {"kernel.panic": "1"}}, "nodes.a.sysctls.kernel.panic: not a sysctl of the node's own namespaces"),
    ({"sysctls": {"net.ipv4.ip_forward": "1"}}, "nodes.a.sysctls.net.ipv4.ip_forward: is set by the testbed"),
    ({"labels": {"testbed.node": "z"}}, "nodes.a.labels.testbed.node: label names must be non-empty and not start with"),
    ({"ports": ["80"]}, "nodes.a.ports[0]: must be [HOST_IP:]HOST_PORT:NODE_PORT"),
    ({"ports": ["70000:80"]}, "nodes.a.ports[0]: must be [HOST_IP:]HOST_PORT:NODE_PORT"),
    ({"ports": ["8080:80", "8080:81"]}, "nodes.a.ports[1]: host port 8080/tcp is already published by nodes.a.ports[0]"),
    ({"user": "a b"}, "nodes.a.user: must be USER or USER:GROUP"),
    ({"workdir": "srv"}, "nodes.a.workdir: must be an absolute path"),
    ({"entrypoint": {"x": 1}}, "nodes.a.entrypoint: must be a string or a list of strings"),
])
def test_bad_container_settings_name_the_field(node, want):
    got = errors_of(doc(node))
    assert any(e.startswith(want) for e in got), got


def test_named_interfaces_are_kept_and_checked():
    p = plan.make_plan(doc(lan={"members": ["a", {"node": "b", "interface": "net7"}]},
                           links={"l": {"endpoints": [{"node": "a", "interface": "eth1"}, "b"]}}), ["h"])
    ifs = dict((n, [(i["ifname"], i["lan"]) for i in node["interfaces"]]) for n, node in p["nodes"].items())
    assert ifs["a"] == [("eth1", "l"), ("eth2", "lan0")]
    assert ifs["b"] == [("eth1", "l"), ("net7", "lan0")]
    assert errors_of(doc(lan={"members": [{"node": "a", "interface": "eth0"}]})) == [
        "lans.lan0.members[0].interface: eth0 is the node's control interface: name another one (eth1, ...)"]
    assert errors_of(doc(lan={"members": [{"node": "a", "interface": "x/y"}]}))[0].startswith(
        "lans.lan0.members[0].interface: invalid interface name 'x/y'")
    got = errors_of(doc(lan={"members": [{"node": "a", "interface": "e1"}]},
                        links={"l": {"endpoints": [{"node": "a", "interface": "e1"}, "b"]}}))
    assert got == ["links.l.endpoints[0].interface: node 'a' already has an interface e1 "
                   "(lans.lan0.members[0].interface): name another one"]


def test_a_renamed_interface_keeps_its_lan_and_address_on_re_plan():
    first = plan.make_plan(doc(lan={"members": ["a", "b"]}), ["h"])
    second = plan.make_plan(doc(lan={"members": [{"node": "a", "interface": "net1"}, "b"]}), ["h"], previous=first)
    a1, a2 = first["nodes"]["a"]["interfaces"][0], second["nodes"]["a"]["interfaces"][0]
    assert (a1["ifname"], a2["ifname"]) == ("eth1", "net1") and a1["address"] == a2["address"]


def test_member_shaping_replaces_the_lans_for_that_member():
    p = plan.make_plan(doc(lan={"members": ["a", {"node": "b", "delay": "30ms"},
                                            {"node": "c", "to_node": {"bandwidth": "1mbit"}, "from_node": {"loss": 0.1}}],
                                "delay": "10ms"}), ["h"])
    shapes = dict((n, (node["interfaces"][0]["to_node"], node["interfaces"][0]["from_node"])) for n, node in p["nodes"].items())
    assert shapes["a"][0]["delay_us"] == 10000 and shapes["a"][1]["delay_us"] == 10000
    assert shapes["b"][0]["delay_us"] == 30000 and shapes["b"][1]["delay_us"] == 30000
    assert shapes["c"][0] == dict(shapes["a"][0], rate_bps=1000000)
    assert shapes["c"][1]["loss"] == 0.1 and shapes["c"][1]["delay_us"] == 10000
    assert errors_of(doc(lan={"members": [{"node": "a", "delay": "soon"}]}))[0].startswith("lans.lan0.members[0].delay:")
    # links take per-direction keys (A_to_B), not per-member ones
    assert errors_of(doc(links={"l": {"endpoints": [{"node": "a", "delay": "1ms"}, "b"]}}))[0].startswith(
        "links.l.endpoints[0].delay: unknown key")


def caps_of(node):
    p = plan.make_plan(doc(node), ["h"])
    kwargs, _digest = engine.container_spec(p, "a", "sha256:1", "/tmp/hosts")
    return kwargs["cap_add"], kwargs.get("cap_drop")


def test_cap_drop_keeps_what_the_augmentation_level_needs():
    # no cap_drop: Docker's default set plus the testbed's NET_ADMIN, NET_RAW, nothing dropped
    assert caps_of({}) == (["NET_ADMIN", "NET_RAW"], None)
    # single capabilities: dropped, but those the level's services need stay
    assert caps_of({"augment": "none", "cap_drop": ["mknod", "CAP_SETUID", "NET_RAW"]}) == (
        ["NET_ADMIN"], ["MKNOD", "SETUID", "NET_RAW"])
    assert caps_of({"augment": "basic", "cap_drop": ["MKNOD", "SETUID", "NET_ADMIN"]}) == (["NET_RAW"], ["MKNOD"])
    # ALL: only what the node adds back and what its level needs
    assert caps_of({"augment": "none", "cap_drop": ["ALL"]}) == ([], ["ALL"])
    assert caps_of({"augment": "none", "cap_drop": ["ALL"], "cap_add": ["NET_BIND_SERVICE"]}) == (
        ["NET_BIND_SERVICE"], ["ALL"])
    assert caps_of({"augment": "basic", "cap_drop": ["ALL"]}) == (["KILL", "SETGID", "SETUID"], ["ALL"])
    assert caps_of({"augment": "full", "cap_drop": ["ALL", "NET_RAW"], "cap_add": ["SYS_NICE"]}) == (
        ["SYS_NICE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "NET_BIND_SERVICE", "SETGID", "SETUID"], ["ALL"])
    # in the plan and the settings hash only when set: a node without it is recreated by nothing
    p = plan.make_plan(doc({"cap_drop": ["MKNOD"]}), ["h"])
    assert p["nodes"]["a"]["cap_drop"] == ["MKNOD"] and "cap_drop" not in p["nodes"]["b"]
    assert "cap_drop" in engine.node_settings(p, "a", "sha256:1", "/tmp/hosts")
    assert "cap_drop" not in engine.node_settings(p, "b", "sha256:1", "/tmp/hosts")


@pytest.mark.parametrize("node,want", [
    ({"cap_drop": ["SYS_ADMIN"]}, "nodes.a.cap_drop[0]: 'SYS_ADMIN' is not a capability of a node: use one of ALL, "),
    ({"cap_drop": "MKNOD"}, "nodes.a.cap_drop: must be a list of capability names"),
    ({"cap_drop": ["MKNOD", "SYS_NICE"], "cap_add": ["SYS_NICE"]},
     "nodes.a.cap_drop[1]: 'SYS_NICE' is not a capability of a node"),
    ({"cap_drop": ["NET_RAW"], "cap_add": ["NET_RAW"]}, "nodes.a.cap_drop[0]: NET_RAW is in cap_add too"),
])
def test_bad_cap_drop_names_the_field(node, want):
    got = errors_of(doc(node))
    assert any(e.startswith(want) for e in got), got
