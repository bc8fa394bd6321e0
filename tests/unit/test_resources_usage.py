"""What the nodes use (issue 19): cgroup directories found from /proc/PID/cgroup and the mounts,
both cgroup versions read from recorded files, CPU use from two readings, the table's column and
per-host lines, the status document, and the preflight's refusal of blkio_weight."""
from ansible_collections.testbed.containers.plugins.module_utils import preflight, report, resources

CTR = "/docker/4c0ffee"
# this machine's layout (Debian 12, Docker 20.10, cgroup v1 with an empty unified hierarchy)
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_CGROUP = """\
8:pids:%(c)s
7:blkio:%(c)s
4:memory:%(c)s
2:cpuacct:%(c)s
1:cpu:%(c)s
0::%(c)s
""" % {"c": CTR}
V2_MOUNTINFO = "25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
V2_CGROUP = "0::/system.slice/docker-4c0ffee.scope\n"


def files(mapping):
    def read(path):
        if path not in mapping:
            raise IOError(2, "No such file", path)
        return mapping[path]
    return read


def test_cgroup_v1_directories_one_per_controller():
    dirs = resources.cgroup_dirs(V1_CGROUP, resources.parse_mountinfo(V1_MOUNTINFO))
    assert dirs == {"version": 1, "cpuacct": "/sys/fs/cgroup/cpuacct" + CTR, "cpu": "/sys/fs/cgroup/cpu" + CTR,
                    "memory": "/sys/fs/cgroup/memory" + CTR, "pids": "/sys/fs/cgroup/pids" + CTR}


def test_cgroup_v1_co_mounted_controllers_and_a_host_that_is_itself_a_container():
    # cpu,cpuacct in one hierarchy; the mount's root is the simulated host's own cgroup
    mountinfo = ("50 40 0:30 /docker/outer /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
                 "51 40 0:32 /docker/outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    proc = "3:cpu,cpuacct:/docker/outer/docker/inner\n2:memory:/docker/outer/docker/inner\n"
    dirs = resources.cgroup_dirs(proc, resources.parse_mountinfo(mountinfo))
    assert dirs == {"version": 1, "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/docker/inner",
                    "cpu": "/sys/fs/cgroup/cpu,cpuacct/docker/inner", "memory": "/sys/fs/cgroup/memory/docker/inner"}


def test_cgroup_v2_one_directory():
    dirs = resources.cgroup_dirs(V2_CGROUP, resources.parse_mountinfo(V2_MOUNTINFO))
    assert set(dirs.values()) == {2, "/sys/fs/cgroup/system.slice/docker-4c0ffee.scope"}


def test_a_v1_reading_counts_memory_as_docker_stats_does_and_the_limits():
    base = dict((c, "/sys/fs/cgroup/%s%s" % (c, CTR)) for c in ("cpuacct", "cpu", "memory", "pids"))
    read = files({base["cpuacct"] + "/cpuacct.usage": "1500000000\n",
                  base["memory"] + "/memory.usage_in_bytes": "10485760\n",
                  base["memory"] + "/memory.limit_in_bytes": "268435456\n",
                  base["memory"] + "/memory.stat": "cache 12288\nrss 73728\ntotal_inactive_file 2097152\n",
                  base["cpu"] + "/cpu.cfs_quota_us": "50000\n", base["cpu"] + "/cpu.cfs_period_us": "100000\n",
                  base["pids"] + "/pids.current": "3\n", base["pids"] + "/pids.max": "4096\n"})
    usage = resources.read_usage(dict(base, version=1), read)
    assert usage == {"cpu_ns": 1500000000, "memory_bytes": 8388608, "memory_limit": 268435456, "cpus_limit": 0.5,
                     "pids": 3, "pids_limit": 4096}
    unlimited = files({base["cpuacct"] + "/cpuacct.usage": "1\n", base["memory"] + "/memory.usage_in_bytes": "4096\n",
                       base["memory"] + "/memory.limit_in_bytes": "9223372036854771712\n",
                       base["cpu"] + "/cpu.cfs_quota_us": "-1\n", base["pids"] + "/pids.max": "max\n"})
    usage = resources.read_usage(dict(base, version=1), unlimited)
    assert (usage["memory_limit"], usage["cpus_limit"], usage["pids"], usage["pids_limit"]) == (None, None, None, None)


def test_a_v2_reading():
    d = "/sys/fs/cgroup/system.slice/docker-4c0ffee.scope"
    read = files({d + "/cpu.stat": "usage_usec 2500000\nuser_usec 2000000\n", d + "/memory.current": "20971520\n",
                  d + "/memory.max": "max\n", d + "/memory.stat": "anon 100\ninactive_file 1048576\n",
                  d + "/cpu.max": "200000 100000\n", d + "/pids.current": "7\n", d + "/pids.max": "100\n"})
    usage = resources.read_usage({"version": 2, "cpuacct": d, "cpu": d, "memory": d, "pids": d}, read)
    assert usage == {"cpu_ns": 2500000000, "memory_bytes": 19922944, "memory_limit": None, "cpus_limit": 2.0, "pids": 7,
                     "pids_limit": 100}


def test_cpu_percent_is_of_one_cpu_between_two_readings():
    assert resources.cpu_percent(1000000000, 1250000000, 0.5) == 50.0
    assert resources.cpu_percent(0, 1500000000, 0.5) == 300.0  # three CPUs busy
    assert resources.cpu_percent(5, 4, 0.5) is None  # the node restarted between the readings
    assert resources.cpu_percent(0, 1, 0) is None


def test_sample_reads_every_node_twice_with_one_pause_and_leaves_out_a_stopped_one():
    d = "/sys/fs/cgroup/system.slice/docker-4c0ffee.scope"
    counter = {"usec": 1000000}
    state = {"/proc/self/mountinfo": V2_MOUNTINFO, "/proc/10/cgroup": V2_CGROUP, d + "/memory.current": "1048576\n",
             d + "/memory.max": "268435456\n", d + "/pids.current": "2\n", d + "/pids.max": "4096\n"}

    def read(path):
        if path == d + "/cpu.stat":
            return "usage_usec %d\n" % counter["usec"]
        return files(state)(path)

    pauses, now = [], [100.0]

    def sleep(seconds):
        pauses.append(seconds)
        counter["usec"] += 400000  # 0.4 s of CPU in the pause
        now[0] += seconds

    used = resources.sample({"a": 10, "gone": 11}, read=read, sleep=sleep, clock=lambda: now[0])
    assert pauses == [resources.SAMPLE_SECONDS]
    assert used == {"a": {"cpu_percent": 80.0, "memory_bytes": 1048576, "memory_limit": 268435456, "cpus_limit": None,
                          "pids": 2, "pids_limit": 4096}}
    assert resources.sample({}, sleep=sleep) == {} and len(pauses) == 1  # no node: no pause


def test_blkio_weight_is_refused_on_cgroup_v1_without_blkio_weight_and_allowed_with_it():
    mounts = resources.parse_mountinfo(V1_MOUNTINFO)
    why = resources.blkio_weight_problem(mounts, exists=lambda path: False)
    assert why.startswith("cgroup v1 without /sys/fs/cgroup/blkio/blkio.weight, the only weight Docker sets")
    assert resources.blkio_weight_problem(mounts, exists=lambda path: path.endswith("/blkio.weight")) is None
    problems = preflight.blkio_weight_problems("h1", why)
    assert problems[0].startswith("nodes set blkio_weight, which the Docker engine cannot apply on host h1: cgroup v1 ")
    assert "remove blkio_weight from the experiment file" in problems[0]
    assert preflight.blkio_weight_problems("h1", None) == []


def test_blkio_weight_on_cgroup_v2_needs_the_io_controller_and_a_weight_file():
    mounts = resources.parse_mountinfo(V2_MOUNTINFO)
    no_io = resources.blkio_weight_problem(mounts, read=files({"/sys/fs/cgroup/cgroup.controllers": "cpu memory pids\n"}))
    assert no_io == "cgroup v2 without the io controller (/sys/fs/cgroup/cgroup.controllers: cpu memory pids)"
    read = files({"/sys/fs/cgroup/cgroup.controllers": "cpu io memory pids\n"})

    def listdir(_path):
        return ["system.slice"]

    with_weight = {"/sys/fs/cgroup/system.slice/io.max", "/sys/fs/cgroup/system.slice/io.bfq.weight"}
    assert resources.blkio_weight_problem(mounts, read, exists=with_weight.__contains__, listdir=listdir) is None
    without = resources.blkio_weight_problem(mounts, read, exists={"/sys/fs/cgroup/system.slice/io.max"}.__contains__,
                                             listdir=listdir)
    assert without.startswith("cgroup v2 with neither io.bfq.weight (the BFQ scheduler) nor io.weight (blk-iocost)")


def test_sizes_are_written_in_dockers_units():
    assert [resources.format_bytes(v) for v in (512, 2048, 256 * 1024 ** 2, 1024 ** 3, 1536 * 1024 ** 2, 3250000)] == [
        "512b", "2k", "256m", "1g", "1.5g", "3.1m"]


# --- the report ----------------------------------------------------------------------------------
USED = {"cpu_percent": 45.0, "memory_bytes": 120 * 1024 ** 2, "memory_limit": 256 * 1024 ** 2, "cpus_limit": 1.0,
        "pids": 3, "pids_limit": 4096}


def record(resources_a=None):
    nodes = [{"node": "a", "host": "h1", "state": "booted", "container": "tb_p_e_a", "interfaces": [], "ssh": "ssh -p 1 root@h1"},
             {"node": "b", "host": "h1", "state": "dead", "container": "tb_p_e_b", "interfaces": [], "reason": "exit 1"}]
    if resources_a is not None:
        nodes[0]["resources"] = resources_a
    plan = {"nodes": {"a": {"host": "h1", "cpus": 1, "memory": 256 * 1024 ** 2}, "b": {"host": "h1", "cpus": 0.5, "memory": None}}}
    return {"project": "p", "name": "e", "nodes": nodes, "plan": plan}


def test_the_resources_column_shows_use_against_the_limits():
    assert report.resources_column({"resources": USED}) == "cpu 0.45/1 mem 120m/256m"
    assert report.resources_column({"resources": dict(USED, cpus_limit=None, memory_limit=None)}) == "cpu 0.45 mem 120m"
    assert report.resources_column({"resources": dict(USED, cpu_percent=None)}) == "cpu ?/1 mem 120m/256m"
    assert report.resources_column({}) == "-"


def test_host_usage_sums_asked_and_used_against_the_inventory_capacity():
    usage = report.host_usage(record(USED), {"h1": {"max_nodes": "10", "cpus": "8", "memory": "16g", "mode": "shared"}})
    assert usage == {"h1": {"nodes": {"placed": 2, "capacity": 10},
                            "cpus": {"asked": 1.5, "used": 0.45, "capacity": 8.0},
                            "memory": {"asked": 256 * 1024 ** 2, "used": 120 * 1024 ** 2, "capacity": 16 * 1024 ** 3}}}
    assert report.host_lines(usage) == ["host h1: nodes 2/10, cpus used 0.45 asked 1.5/8, memory used 120m asked 256m/16g"]
    bare = report.host_usage(record())
    assert report.host_lines(bare) == ["host h1: nodes 2, cpus used ? asked 1.5, memory used ? asked 256m"]


def test_the_table_has_the_column_and_host_lines_only_when_the_hosts_read_the_nodes():
    lines = report.table(record(USED))
    assert lines[1].split() == ["NODE", "HOST", "STATE", "CONTAINER", "START", "CPU/MEMORY", "INTERFACES", "SSH"]
    assert "cpu 0.45/1 mem 120m/256m" in lines[2] and lines[2].endswith("ssh -p 1 root@h1")
    assert lines[3].split()[-4:] == ["-", "-", "-", "-"]  # the dead node: start, resources, interfaces, ssh
    assert lines[4] == "host h1: nodes 2, cpus used 0.45 asked 1.5, memory used 120m asked 256m"
    plain = report.table(record())
    assert "CPU/MEMORY" not in plain[1] and len(plain) == 4  # as before: summary, header, two nodes
    assert report.table(record(), capacity={"h1": {"max_nodes": 4}})[-1].startswith("host h1: nodes 2/4,")


def test_the_status_document_has_each_nodes_resources_and_each_hosts_usage():
    document = report.status_document(record(USED), capacity={"h1": {"cpus": 8}})
    a, b = document["nodes"]
    assert a["resources"] == USED and b["resources"] is None
    assert document["hosts"]["h1"]["cpus"] == {"asked": 1.5, "used": 0.45, "capacity": 8.0}


def test_resources_are_news_not_a_change_of_the_record():
    assert report.stable(record(USED)) == report.stable(record(dict(USED, cpu_percent=99.0)))
