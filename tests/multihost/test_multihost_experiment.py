"""experiment.yml against three simulated physical hosts over SSH: placement, LANs spanning
hosts over VXLAN, static routes across hosts, isolation, modify in place, teardown."""
import json
import os
import re
import subprocess

import yaml

from hosts import PROJECTS_ROOT

DEBIAN = "testbed/debian:bookworm"
BUSYBOX = "testbed/busybox:latest"


def node(image=DEBIAN, **kw):
    spec = {"image": image, "command": ["sleep", "infinity"], "augment": "none"}
    spec.update(kw)
    return spec


def write(tmp_path, doc):
    path = os.path.join(str(tmp_path), "%s-%s.yml" % (doc["project"], doc["name"]))
    with open(path, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return path


def swap(sim, tmp_path, playbook, path, *extra, check=True, verbose=False):
    return sim.ansible_playbook("playbooks/%s.yml" % playbook, "-e", "experiment=%s" % path,
                                "-e", "testbed_record_dir=%s" % os.path.join(str(tmp_path), "records"),
                                *(["-v"] if verbose else []), *extra, check=check)


def record(tmp_path, project, name):
    with open(os.path.join(str(tmp_path), "records", project, "%s.json" % name)) as f:
        return dict((n["node"], n) for n in json.load(f)["nodes"])


def inner(sim, host, container, *cmd, check=False):
    return sim.exec(host, "docker", "exec", container, *cmd, check=check)


def ping(sim, host, container, target):
    proc = inner(sim, host, container, "ping", "-c", "2", "-W", "2", "-i", "0.3", target)
    return proc.returncode == 0, proc.stdout


def links(sim, host):
    """The host's interfaces but Docker's veths and dockercnet (host preparation makes it once)."""
    out = sim.exec(host, "ip", "-o", "link").stdout
    return sorted(re.match(r"^\d+: ([^:@]+)", line).group(1) for line in out.splitlines()
                  if not re.match(r"^\d+: (veth|dockercnet)", line))


def remove_images(sim, part):
    """Removes from every host the images whose REPO:TAG contains ``part``."""
    for host in sim.names:
        refs = sim.exec(host, "docker", "images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        doomed = [ref for ref in refs if part in ref]
        if doomed:
            sim.exec(host, "docker", "rmi", "-f", *doomed, check=False)


def spanning(name, project="mh", extra_b=None):
    h1, h2, h3 = "tbhost1", "tbhost2", "tbhost3"
    doc = {
        "name": name, "project": project,
        "nodes": {"n1": node(host=h1), "n2": node(BUSYBOX, host=h2), "n3": node(host=h3),
                  "r": node(host=h1, forwarding=True), "n4": node(host=h2)},
        "lans": {"lan0": {"members": ["n1", "n2", "n3", "r"], "subnet": "10.20.0.0/24"},
                 "lan1": {"members": ["r", "n4"], "subnet": "10.20.1.0/24"}},
    }
    if extra_b:
        doc["nodes"]["x"] = node(BUSYBOX, host=h3)
        doc["lans"]["lan0"]["members"].append({"node": "x", "ip": extra_b})
    return doc


def test_lan_spanning_three_hosts_routes_isolation_modify_and_teardown(testbed_hosts, tmp_path):
    sim = testbed_hosts
    before = dict((h, links(sim, h)) for h in sim.names)
    path_a = write(tmp_path, spanning("span", "mha", extra_b="10.20.0.51"))
    path_b = write(tmp_path, spanning("span", "mhb", extra_b="10.20.0.52"))
    try:
        out = swap(sim, tmp_path, "experiment", path_a).stdout
        rec = record(tmp_path, "mha", "span")
        assert [rec[n]["host"] for n in ("n1", "n2", "n3", "r", "n4")] == \
            ["tbhost1", "tbhost2", "tbhost3", "tbhost1", "tbhost2"], out
        c = dict((n, (rec[n]["host"], rec[n]["container"])) for n in rec)
        # the LAN spans all three hosts: ping by name across hosts, through VXLAN
        for src, dst in (("n1", "n2"), ("n2", "n3"), ("n3", "n1"), ("n3", "x")):
            ok, text = ping(sim, c[src][0], c[src][1], dst)
            assert ok, (src, dst, text)
        # a static route across hosts: n3 (tbhost3) -> r (tbhost1) -> n4 (tbhost2)
        ok, text = ping(sim, c["n3"][0], c["n3"][1], "n4")
        assert ok, text
        assert "10.20.1.0/24 via 10.20.0." in inner(sim, c["n3"][0], c["n3"][1], "ip", "route").stdout
        # interfaces on spanning LANs leave room for the VXLAN header
        assert "mtu 1450" in inner(sim, c["n1"][0], c["n1"][1], "ip", "link", "show", "eth1").stdout
        # a second experiment with the same names and subnets on the same hosts
        swap(sim, tmp_path, "experiment", path_b)
        rec_b = record(tmp_path, "mhb", "span")
        cb = dict((n, (rec_b[n]["host"], rec_b[n]["container"])) for n in rec_b)
        assert ping(sim, cb["n1"][0], cb["n1"][1], "10.20.0.52")[0]
        for src in ("n1", "n3"):
            proc = inner(sim, c[src][0], c[src][1], "ping", "-c", "3", "-W", "1", "-i", "0.3", "10.20.0.52")
            assert proc.returncode != 0 and "100% packet loss" in proc.stdout, proc.stdout
            proc = inner(sim, cb[src][0], cb[src][1], "ping", "-c", "3", "-W", "1", "-i", "0.3", "10.20.0.51")
            assert proc.returncode != 0 and "100% packet loss" in proc.stdout, proc.stdout
        # modify in place: add a node on tbhost3 to lan1; nothing else moves or restarts
        ids = dict((n, rec[n]["container_id"]) for n in rec)
        doc = spanning("span", "mha", extra_b="10.20.0.51")
        doc["nodes"]["n5"] = node(BUSYBOX, host="tbhost3")
        doc["lans"]["lan1"]["members"].append("n5")
        write(tmp_path, doc)
        out = swap(sim, tmp_path, "experiment", path_a).stdout
        rec = record(tmp_path, "mha", "span")
        assert dict((n, rec[n]["container_id"]) for n in ids) == ids
        ok, text = ping(sim, rec["n5"]["host"], rec["n5"]["container"], "n4")
        assert ok, text
        again = swap(sim, tmp_path, "experiment", path_a).stdout
        assert re.findall(r"changed=(\d+)", again) == ["0"] * len(re.findall(r"changed=(\d+)", again)), again
    finally:
        swap(sim, tmp_path, "teardown", path_a, check=False)
        swap(sim, tmp_path, "teardown", path_b, check=False)
    for host in sim.names:
        assert links(sim, host) == before[host], host
        assert sim.exec(host, "docker", "ps", "-aq", "--filter", "label=testbed.project").stdout.strip() == ""


def test_packing_factor_spreads_nodes_and_the_project_directory_is_shared(testbed_hosts, tmp_path):
    sim = testbed_hosts
    doc = {"name": "pack", "project": "mh", "placement": {"packing": 2}, "storage": {"project": True},
           "nodes": dict(("p%d" % i, node(BUSYBOX)) for i in range(5)),
           "lans": {"lan0": {"members": ["p%d" % i for i in range(5)]}}}
    path = write(tmp_path, doc)
    shared = ("-e", "testbed_project_root=%s" % PROJECTS_ROOT, "-e", "testbed_project_shared=true")
    try:
        swap(sim, tmp_path, "experiment", path, *shared)
        rec = record(tmp_path, "mh", "pack")
        counts = {}
        for entry in rec.values():
            counts[entry["host"]] = counts.get(entry["host"], 0) + 1
        assert sorted(counts.values()) == [1, 2, 2], counts
        # the LAN spans the hosts: the first node reaches the last
        ok, text = ping(sim, rec["p0"]["host"], rec["p0"]["container"], "p4")
        assert ok, text
        # the project's directory: one file system under every host's project root, so a file a
        # node writes on one host is read by a node on another
        there = next(n for n in sorted(rec) if rec[n]["host"] != rec["p0"]["host"])
        inner(sim, rec["p0"]["host"], rec["p0"]["container"], "sh", "-c", "echo from-p0 > /proj/mh/note", check=True)
        assert inner(sim, rec[there]["host"], rec[there]["container"], "cat", "/proj/mh/note").stdout.strip() == \
            "from-p0"
        # not declared shared: swapped in as it is, with a warning naming the hosts
        out = swap(sim, tmp_path, "experiment", path).stdout
        assert "storage.project: the experiment spans hosts" in re.sub(r"\s+", " ", out), out
        doc["placement"]["packing"] = 1
        write(tmp_path, doc)
        proc = swap(sim, tmp_path, "experiment", path, check=False)
        assert proc.returncode != 0 and "placement.packing" in proc.stdout and "2 over" in proc.stdout, proc.stdout
        # the file no longer fits the hosts: teardown (which reads only project and name) still
        # removes everything
        swap(sim, tmp_path, "teardown", path)
        for host in sim.names:
            assert "tb_mh_pack" not in sim.exec(host, "docker", "ps", "-a", "--format", "{{.Names}}").stdout
            assert "mh/pack/" not in sim.exec(host, "cat", "/var/lib/testbed/control.json", check=False).stdout
    finally:
        swap(sim, tmp_path, "teardown", path, check=False)


def test_images_only_on_the_controller_reach_the_hosts_through_the_registry(testbed_hosts, tmp_path):
    """The controller publishes the experiment's images to the testbed registry (TLS, a login);
    a host pulls only what it lacks: the image built here only, not testbed/busybox, which the
    hosts have."""
    sim = testbed_hosts
    tag = "testbed-mh/only-on-controller:1"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM %s\nRUN echo built-on-the-controller > /marker\n" % BUSYBOX)
    sim_run = __import__("hosts").run
    sim_run("/usr/bin/docker", "build", "-q", "-t", tag, str(ctx))
    doc = {"name": "images", "project": "mh",
           "nodes": {"a": node(tag, host="tbhost1", augment="basic"), "b": node(tag, host="tbhost2"),
                     "c": node(BUSYBOX, host="tbhost2")},
           "lans": {"lan0": {"members": ["a", "b", "c"], "subnet": "10.21.0.0/24"}}}
    path = write(tmp_path, doc)
    try:
        for host in ("tbhost1", "tbhost2"):
            assert sim.exec(host, "docker", "image", "inspect", tag, check=False).returncode != 0
        out = swap(sim, tmp_path, "experiment", path, verbose=True).stdout
        assert re.search(r"pushed:\n\s+- \S+/testbed-mh/only-on-controller:1", out), out
        pulls = re.findall(r"pull (\S+) from the testbed registry", out)
        assert sorted(pulls) == [tag, tag], out  # once per host that lacks it, never testbed/busybox
        nodes = record(tmp_path, "mh", "images")
        for name, host in (("a", "tbhost1"), ("b", "tbhost2")):
            got = inner(sim, host, nodes[name]["container"], "cat", "/marker").stdout
            assert got == "built-on-the-controller\n", got
        assert ping(sim, "tbhost1", nodes["a"]["container"], "b")[0]
        # the hosts log in to the registry: without credentials it refuses (401)
        probe = ("import glob, ssl, urllib.request, urllib.error\n"
                 "ctx = ssl.create_default_context(cafile=glob.glob('/etc/docker/certs.d/*/ca.crt')[0])\n"
                 "try:\n"
                 "    print(urllib.request.urlopen('https://198.18.255.1:5443/v2/', context=ctx, timeout=5).status)\n"
                 "except urllib.error.HTTPError as exc:\n"
                 "    print(exc.code)\n")
        proc = sim.exec("tbhost3", "/opt/testbed/venv/bin/python", "-c", probe, check=False)
        assert proc.stdout.strip() == "401", proc.stdout + proc.stderr
        # the augmented image tbhost1 made is cached in the registry; a node of the same image and
        # level on tbhost3, added in place, pulls it instead of augmenting again
        assert "push augmented image testbed-augmented/" in out, out
        doc["nodes"]["d"] = node(tag, host="tbhost3", augment="basic")
        doc["lans"]["lan0"]["members"].append("d")
        write(tmp_path, doc)
        out = swap(sim, tmp_path, "experiment", path, verbose=True).stdout
        assert "pull augmented image %s (basic) from the testbed registry" % tag in out, out
        nodes = record(tmp_path, "mh", "images")
        assert inner(sim, "tbhost3", nodes["d"]["container"], "cat", "/marker").stdout == "built-on-the-controller\n"
        # a swap-in with nothing new pulls nothing
        out = swap(sim, tmp_path, "experiment", path, verbose=True).stdout
        assert "from the testbed registry" not in out
    finally:
        swap(sim, tmp_path, "teardown", path, check=False)
        sim_run("/usr/bin/docker", "rmi", "-f", tag, check=False)
        remove_images(sim, "only-on-controller")


def test_a_dedicated_host_takes_one_experiment_only(testbed_hosts, tmp_path):
    """testbed_mode: dedicated on tbhost3 (an extra inventory): the plan role reads the host's
    record, so a second experiment pinned there is refused with the holder's name; once the
    first is gone, it fits."""
    sim = testbed_hosts
    extra = tmp_path / "dedicated.yml"
    extra.write_text(yaml.safe_dump({"all": {"children": {"testbed_hosts": {
        "hosts": {"tbhost3": {"testbed_mode": "dedicated"}}}}}}))
    first = {"name": "deda", "project": "mh", "nodes": {"a": node(BUSYBOX, host="tbhost3"),
                                                        "b": node(BUSYBOX, host="tbhost1")},
             "lans": {"lan0": {"members": ["a", "b"], "subnet": "10.22.0.0/24"}}}
    second = {"name": "dedb", "project": "mh", "nodes": {"x": node(BUSYBOX, host="tbhost3")}}
    p1, p2 = write(tmp_path, first), write(tmp_path, second)

    def play(playbook, path, check=True):
        return sim.ansible_playbook("-i", str(extra), "playbooks/%s.yml" % playbook, "-e", "experiment=%s" % path,
                                    "-e", "testbed_record_dir=%s" % os.path.join(str(tmp_path), "records"),
                                    check=check)
    up = [p1]  # what the finally tears down
    try:
        play("experiment", p1)
        play("experiment", p1)  # its own experiment may keep the host (modify in place)
        up.append(p2)
        proc = play("experiment", p2, check=False)
        assert proc.returncode != 0
        assert "nodes.x.host: tbhost3 is dedicated to mh/deda" in proc.stdout, proc.stdout
        assert "tb_mh_dedb_x" not in sim.exec("tbhost3", "docker", "ps", "-a", "--format", "{{.Names}}").stdout
        up.remove(p2)  # refused before anything existed
        play("teardown", p1)
        up = [p2]
        play("experiment", p2)
        assert "tb_mh_dedb_x" in sim.exec("tbhost3", "docker", "ps", "--format", "{{.Names}}").stdout
    finally:
        for path in up:
            play("teardown", path, check=False)


def test_vlan_mode_is_planned_and_refused_by_the_preflight_of_a_kernel_without_8021q(testbed_hosts, tmp_path):
    """testbed_trunk_interface on every host puts spanning LANs in VLAN mode; these hosts share
    this machine's kernel, which has no 802.1Q devices: the preflight says so, naming each host
    and CONFIG_VLAN_8021Q, before anything exists."""
    sim = testbed_hosts
    if sim.exec("tbhost1", "sh", "-c", "ip link add tbv0 type veth peer name tbv0p && "
                "ip link add link tbv0 name tbv0.5 type vlan id 5; rc=$?; ip link del tbv0; exit $rc",
                check=False).returncode == 0:
        import pytest
        pytest.skip("this kernel has 802.1Q VLAN devices: the preflight has nothing to refuse")
    extra = tmp_path / "trunks.yml"
    extra.write_text(yaml.safe_dump({"all": {"children": {"testbed_hosts": {
        "hosts": dict((h, {"testbed_trunk_interface": "eth0"}) for h in sim.names)}}}}))
    doc = {"name": "vlan", "project": "mh",
           "nodes": {"a": node(BUSYBOX, host="tbhost1"), "b": node(BUSYBOX, host="tbhost2")},
           "lans": {"lan0": {"members": ["a", "b"], "subnet": "10.23.0.0/24"}}}
    path = write(tmp_path, doc)
    proc = sim.ansible_playbook("-i", str(extra), "playbooks/experiment.yml", "-e", "experiment=%s" % path,
                                "-e", "testbed_record_dir=%s" % os.path.join(str(tmp_path), "records"),
                                "-e", "testbed_registry_enabled=false", check=False)
    try:
        assert proc.returncode != 0
        for host in ("tbhost1", "tbhost2"):
            assert re.search(r"host %s cannot realize this experiment: .*vlan.*CONFIG_VLAN_8021Q" % host,
                             proc.stdout), proc.stdout
            assert "tb_mh_vlan" not in sim.exec(host, "docker", "ps", "-a", "--format", "{{.Names}}").stdout
    finally:
        swap(sim, tmp_path, "teardown", path, check=False)


def test_cpus_and_memory_capacity_spread_nodes_and_limit_their_containers(testbed_hosts, tmp_path):
    """Hosts that offer testbed_cpus / testbed_memory take nodes up to them: three nodes asking
    0.6 CPUs and 300 MB each on hosts of 1 CPU / 512 MB land one per host, their containers
    limited to that; a fourth does not fit, and the error names the resources and the node."""
    sim = testbed_hosts
    extra = tmp_path / "capacity.yml"
    extra.write_text(yaml.safe_dump({"all": {"children": {"testbed_hosts": {
        "hosts": dict((h, {"testbed_cpus": 1, "testbed_memory": "512m"}) for h in sim.names)}}}}))
    doc = {"name": "cap", "project": "mh",
           "nodes": dict(("c%d" % i, node(BUSYBOX, cpus=0.6, memory="300m")) for i in range(3)),
           "lans": {"lan0": {"members": ["c0", "c1", "c2"], "subnet": "10.24.0.0/24"}}}
    path = write(tmp_path, doc)

    def play(playbook, check=True):
        return sim.ansible_playbook("-i", str(extra), "playbooks/%s.yml" % playbook, "-e", "experiment=%s" % path,
                                    "-e", "testbed_record_dir=%s" % os.path.join(str(tmp_path), "records"),
                                    check=check)
    try:
        play("experiment")
        rec = record(tmp_path, "mh", "cap")
        assert sorted(entry["host"] for entry in rec.values()) == sorted(sim.names), rec
        for entry in rec.values():
            limits = sim.exec(entry["host"], "docker", "inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}",
                              entry["container"]).stdout.split()
            assert limits == [str(600000000), str(300 * 1024 * 1024)], limits
        ok, text = ping(sim, rec["c0"]["host"], rec["c0"]["container"], "c2")
        assert ok, text
        doc["nodes"]["c3"] = node(BUSYBOX, cpus=0.6, memory="300m")
        write(tmp_path, doc)
        proc = play("experiment", check=False)
        assert proc.returncode != 0
        assert ("nodes: 1 node does not fit in what the hosts' testbed_cpus and testbed_memory leave (c3)"
                in proc.stdout), proc.stdout
        assert "tb_mh_cap_c3" not in "".join(sim.exec(h, "docker", "ps", "-a", "--format", "{{.Names}}").stdout
                                             for h in sim.names)
    finally:
        play("teardown", check=False)


def test_a_snapshot_on_one_host_runs_on_another_through_the_registry(testbed_hosts, tmp_path):
    """snapshot.yml commits a node on tbhost1 and pushes it to the testbed registry (the
    experiment spans hosts); a node added in place on tbhost3 with the snapshot as its image pulls
    it from there and has the node's changes."""
    sim = testbed_hosts
    repo = "testbed-snapshot/mh-snap-a"
    doc = {"name": "snap", "project": "mh",
           "nodes": {"a": node(BUSYBOX, host="tbhost1"), "b": node(BUSYBOX, host="tbhost2")},
           "lans": {"lan0": {"members": ["a", "b"], "subnet": "10.25.0.0/24"}}}
    path = write(tmp_path, doc)
    try:
        swap(sim, tmp_path, "experiment", path)
        nodes = record(tmp_path, "mh", "snap")
        inner(sim, "tbhost1", nodes["a"]["container"], "sh", "-c", "echo made-on-tbhost1 > /data", check=True)
        out = sim.ansible_playbook("playbooks/snapshot.yml", "-e", "experiment=%s" % path, "-e", "node=a",
                                   "-e", "testbed_record_dir=%s" % os.path.join(str(tmp_path), "records")).stdout
        flat = " ".join(out.split())  # the yaml callback folds long messages
        assert re.search(r"snapshot of a: %s:\d{8}-\d{6}, :latest .* on tbhost1, pushed to \S+/%s:" % (repo, repo), flat), out
        doc["nodes"]["c"] = node("%s:latest" % repo, host="tbhost3")
        doc["lans"]["lan0"]["members"].append("c")
        write(tmp_path, doc)
        out = swap(sim, tmp_path, "experiment", path, verbose=True).stdout
        assert "pull %s:latest from the testbed registry" % repo in out, out
        nodes = record(tmp_path, "mh", "snap")
        assert inner(sim, "tbhost3", nodes["c"]["container"], "cat", "/data").stdout == "made-on-tbhost1\n"
        assert ping(sim, "tbhost3", nodes["c"]["container"], "a")[0]
    finally:
        swap(sim, tmp_path, "teardown", path, check=False)
        remove_images(sim, "mh-snap-a")


def test_capture_and_link_events_for_a_node_on_a_remote_host(testbed_hosts, tmp_path):
    """capture.yml and event.yml find the host a node runs on: a LAN spanning tbhost1 and tbhost2."""
    sim = testbed_hosts
    doc = {"name": "ops", "project": "mhops",
           "nodes": {"n1": node(host="tbhost1"), "n2": node(host="tbhost2")},
           "lans": {"lan0": {"members": ["n1", "n2"], "subnet": "10.21.0.0/24"}}}
    path = write(tmp_path, doc)
    records = os.path.join(str(tmp_path), "records")

    def play(playbook, *extra, check=True):
        return sim.ansible_playbook("playbooks/%s.yml" % playbook, "-e", "experiment=%s" % path,
                                    "-e", "testbed_record_dir=%s" % records, *extra, check=check)
    try:
        swap(sim, tmp_path, "experiment", path)
        rec = record(tmp_path, "mhops", "ops")
        c1, c2 = rec["n1"]["container"], rec["n2"]["container"]
        assert ping(sim, "tbhost1", c1, "n2")[0]
        # capture on n2's attachment, on tbhost2, while n1 pings it
        # the ping outlasts the playbook's start on a loaded machine; stopped once the capture is back
        sim.exec("tbhost1", "docker", "exec", "-d", c1, "ping", "-w", "60", "-i", "0.2", "n2")
        dest = tmp_path / "pcaps"
        dest.mkdir()
        try:
            out = play("capture", "-e", "node=n2", "-e", "lan=lan0", "-e", "seconds=3", "-e", "filter=icmp",
                       "-e", "dest=%s" % dest).stdout
        finally:
            sim.exec("tbhost1", "docker", "exec", c1, "killall", "ping", check=False)
        assert "of tbhost2 in" in out, out[-2000:]
        pcaps = os.listdir(str(dest))
        assert len(pcaps) == 1, pcaps
        text = subprocess.run(["tcpdump", "-n", "-r", str(dest / pcaps[0])], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, check=False).stdout
        assert "> 10.21.0.2: ICMP echo request" in text, text
        # a link event for the remote node's attachment, then for the LAN on both hosts
        for event, hosts in (("link n2:lan0", ["tbhost2"]), ("link lan0", ["tbhost1", "tbhost2"])):
            out = play("event", "-e", json.dumps({"event": event + " down"})).stdout
            for host in hosts:
                assert "[localhost -> %s" % host in out, out[-3000:]
            assert not ping(sim, "tbhost1", c1, "10.21.0.2")[0]
            play("event", "-e", json.dumps({"event": event + " up"}))
            assert ping(sim, "tbhost1", c1, "10.21.0.2")[0]
    finally:
        swap(sim, tmp_path, "teardown", path, check=False)
    for host in sim.names:
        assert sim.exec(host, "docker", "ps", "-aq", "--filter", "label=testbed.project=mhops").stdout.strip() == ""


def test_a_containerlab_topology_runs_across_hosts_as_it_is(testbed_hosts, tmp_path):
    """A clab file with named interfaces (e1-1) and exec commands, its two nodes on two hosts
    (testbed_max_nodes: 1): the link crosses hosts over VXLAN and the exec addresses answer."""
    sim = testbed_hosts
    extra = tmp_path / "one-each.yml"
    extra.write_text(yaml.safe_dump({"all": {"children": {"testbed_hosts": {
        "hosts": dict((h, {"testbed_max_nodes": 1}) for h in sim.names)}}}}))
    path = tmp_path / "pair.clab.yml"
    path.write_text(yaml.safe_dump({"name": "mhpair", "topology": {
        "kinds": {"linux": {"image": DEBIAN}},
        "nodes": {"r1": {"kind": "linux", "exec": ["ip addr add 192.168.30.1/24 dev e1-1"]},
                  "h1": {"kind": "linux", "exec": ["ip address add 192.168.30.2/24 dev eth1"]}},
        "links": [{"endpoints": ["r1:e1-1", "h1:eth1"]}]}}))
    records = os.path.join(str(tmp_path), "records")

    def play(playbook, check=True):
        return sim.ansible_playbook("-i", str(extra), "playbooks/%s.yml" % playbook, "-e", "experiment=%s" % path,
                                    "-e", "testbed_record_dir=%s" % records, check=check)
    try:
        play("experiment")
        with open(os.path.join(records, "default", "mhpair.json")) as f:
            rec = dict((n["node"], n) for n in json.load(f)["nodes"])
        assert rec["r1"]["host"] != rec["h1"]["host"], rec
        assert "e1-1" in inner(sim, rec["r1"]["host"], rec["r1"]["container"], "ip", "link", "show", "e1-1").stdout
        for _attempt in range(20):
            ok, text = ping(sim, rec["r1"]["host"], rec["r1"]["container"], "192.168.30.2")
            if ok:
                break
        assert ok, text
    finally:
        play("teardown", check=False)
    for host in sim.names:
        assert "mhpair" not in sim.exec(host, "docker", "ps", "-a", "--format", "{{.Names}}").stdout
