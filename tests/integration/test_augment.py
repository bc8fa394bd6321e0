"""Augmentation level `basic` on the real Docker engine, over an image zoo (augment_zoo.py).

For every zoo image the same container is run twice, as the image is (level `none`, the
reference) and augmented (level `basic`), and what the application does is compared: its
uid, gid, supplementary groups, working directory, argv and environment (read from /proc
inside the container with a bind-mounted static busybox), its output, its port, its exit
code.  The augmented node must also stay up when the application exits, run the start
command only after the host's ready marker (and after an interface the host added exists),
report the exit code, and hit the cache on a second augmentation.

The image x level table is printed at the end of the module (and kept in docs/augmentation.md).
Every container carries the labels testbed.test=augment and testbed.test-run=RUN_ID and is
removed by the fixtures, also when a test fails.
"""
import json
import os
import re
import subprocess
import time
import urllib.request
import uuid

import docker
import pytest

import augment_zoo as zoo
from ansible_collections.testbed.containers.plugins.module_utils import augment, services

ROOT = zoo.ROOT
RUN_ID = uuid.uuid4().hex[:8]
LABELS = {"testbed.test": "augment", "testbed.test-run": RUN_ID}
PROBE = "/.probe/busybox"
HOSTNAME = "zoo-node"
PROBE_IFACE = "tbprobe0"
# exits 7 only if the interface the host adds before the ready marker exists
START_CMD = ("test -e /sys/class/net/%s || { echo 'interfaces missing' >&2; exit 1; }; echo start-ran; exit 7"
             % PROBE_IFACE)
LEVELS = ("none", "basic", "full")
RESULTS = {}

pytestmark = pytest.mark.timeout(300)

CASES = {
    "scratch-static": dict(http=(8080, "zoo scratch-static"), no_shell=True),
    "busybox-entrypoint": dict(http=(8081, "args=serve 8081"),
                               logs="entrypoint args: serve 8081\n"),
    "busybox-entrypoint+args": dict(image="busybox-entrypoint", command=["serve", "8082"],
                                    http=(8082, "args=serve 8082"), logs="entrypoint args: serve 8082\n"),
    "debian-nginx": dict(http=(80, "zoo debian-nginx"), host_http=80,
                         procs=[("root", "nginx: master process"), ("www-data", "nginx: worker process")]),
    "user-workdir-env": dict(identity=dict(uid=1234, gid=1234, groups=[1234, 2345], cwd="/home/alice/work",
                                           env={"GREETING": "hello world", "HOME": "/home/alice",
                                                "ZOO_KIND": "user-workdir-env"})),
    "numeric-user": dict(identity=dict(uid=4321, gid=4321, groups=[4321], cwd="/data/sub", env={"HOME": "/"})),
    # /bin/sh -c ran (it expanded $WHO), then busybox sh exec'd its last command
    "shell-form": dict(files={"/tmp/greeting": "hello world\n"}, argv0=["sleep", "1000000"]),
    "exits-at-once": dict(exits=3, logs="bye\n"),
    "distroless": dict(no_shell=True, identity=dict(uid=65532, gid=65532, cwd="/home/nonroot",
                                                    env={"APP_MODE": "distroless", "HOME": "/home/nonroot"}),
                       logs="hello-app uid=65532 gid=65532 cwd=/home/nonroot mode=distroless args=--greet,world\n"),
    "busybox-base": dict(image=zoo.BUSYBOX, exits=0),
    "debian-base": dict(image=zoo.DEBIAN, exits=0),
}


# ---- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli():
    client = docker.from_env(timeout=300)
    yield client
    for ctr in client.containers.list(all=True, filters={"label": "testbed.test-run=%s" % RUN_ID}):
        ctr.remove(force=True)
    client.close()


@pytest.fixture(scope="module", autouse=True)
def tools():
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "build-tools.sh")], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return augment.tools_dir()


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    """A key pair the full nodes authorize."""
    path = str(tmp_path_factory.mktemp("ssh") / "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    return path


@pytest.fixture(scope="module")
def zoo_images():
    return zoo.build_all()


@pytest.fixture(scope="module", autouse=True)
def results_table(request):
    yield
    if not RESULTS:
        return
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    lines = ["", "augmentation: image x level",
             "| image | none | basic | full | augment s (tag absent / tag hit) |", "| --- | --- | --- | --- | --- |"]
    for case in [c for c in CASES if c in RESULTS] + sorted(set(RESULTS) - set(CASES)):
        row = RESULTS[case]
        cells = [row.get(level, "-") for level in LEVELS] + [row.get("seconds", "-")]
        lines.append("| %s | %s |" % (case, " | ".join(cells)))
    for level in ("basic", "full"):
        rows = [row for row in RESULTS.values() if row.get(level) != "n/a"]
        lines.append("%s: %d/%d ok" % (level, sum(1 for row in rows if row.get(level) == "ok"), len(rows)))
    text = "\n".join(lines)
    capman = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is not None and capman is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line(text)
    else:  # pragma: no cover
        print(text)


class Runner:
    """Starts labeled containers and removes them at teardown."""

    def __init__(self, cli):
        self.cli = cli
        self.made = []

    def run(self, image, tag, command=None, node_dir=None, environment=None, tmpfs=True, **extra):
        name = "tbaug-%s-%s" % (RUN_ID, re.sub(r"[^a-zA-Z0-9_.-]", "-", tag))
        # mounts, not volumes: the SDK copies volumes= targets into Config.Volumes, which a
        # `docker commit` would bake into the image as VOLUME declarations
        kwargs = dict(image=image, command=command, name=name, hostname=HOSTNAME, labels=dict(LABELS),
                      detach=True, environment=environment,
                      mounts=[docker.types.Mount(PROBE, zoo.HOST_BUSYBOX, type="bind", read_only=True)])
        if node_dir is not None:
            os.makedirs(str(node_dir), exist_ok=True)
            extra_kwargs = augment.runtime_kwargs(str(node_dir))
            if not tmpfs:
                extra_kwargs.pop("tmpfs")
            kwargs = augment.merge_kwargs(kwargs, extra_kwargs)
        kwargs.update(extra)
        ctr = self.cli.containers.run(**kwargs)
        self.made.append(ctr)
        return ctr

    def cleanup(self):
        for ctr in self.made:
            try:
                ctr.remove(force=True)
            except docker.errors.NotFound:
                pass


@pytest.fixture
def runner(cli):
    r = Runner(cli)
    yield r
    r.cleanup()


# ---- helpers -----------------------------------------------------------------------------------

def wait_for(what, fn, timeout=20.0, interval=0.1):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))


def host_pid(ctr):
    ctr.reload()
    return ctr.attrs["State"]["Pid"]


def bb(ctr, *args, user=None, check=True):
    """Run the probe busybox in the container (as root, or as USER)."""
    code, out = ctr.exec_run([PROBE] + list(args), user=user or "0:0")
    text = out.decode("utf-8", "replace")
    if check and code != 0:
        raise AssertionError("%s in %s failed (%d): %s" % (" ".join(args), ctr.name, code, text))
    return text


def identity(ctr, pid):
    """uid, gid, groups, cwd, argv and environment of process PID (container pid namespace)."""
    status = bb(ctr, "cat", "/proc/%d/status" % pid)
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid, gid = int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])
    groups = sorted(int(g) for g in fields.get("Groups", "").split())
    as_user = "%d:%d" % (uid, gid)  # /proc/PID/{cwd,environ} need the same uid (no CAP_SYS_PTRACE)
    cwd = bb(ctr, "readlink", "/proc/%d/cwd" % pid, user=as_user).strip()
    argv = bb(ctr, "cat", "/proc/%d/cmdline" % pid, user=as_user).split("\0")[:-1]
    environ = bb(ctr, "cat", "/proc/%d/environ" % pid, user=as_user).split("\0")
    env = dict(e.split("=", 1) for e in environ if "=" in e)
    return {"uid": uid, "gid": gid, "groups": groups, "cwd": cwd, "argv": argv, "env": env}


def http_get(ctr, port):
    """The body of GET / on 127.0.0.1:PORT inside the container (busybox nc: its wget resolves
    names through glibc NSS, which crashes in a static binary in an image without NSS files)."""
    def attempt():
        code, out = ctr.exec_run([PROBE, "sh", "-c", 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | %s nc -w 2 127.0.0.1 %d'
                                  % (PROBE, port)])
        text = out.decode("utf-8", "replace")
        if code != 0 or " 200 " not in text.split("\r\n", 1)[0]:
            return None
        return text.split("\r\n\r\n", 1)[1]
    return wait_for("port %d in %s" % (port, ctr.name), attempt, timeout=15)


def status_of(pid):
    return augment.read_status(pid)


def status_when(pid, what, pred, timeout=20.0):
    """The node's status once pred(status) holds."""
    def attempt():
        st = status_of(pid)
        return st if st and pred(st) else None
    return wait_for(what, attempt, timeout=timeout)


def behaviour(ctr, spec, app_pid):
    """What the application does, from inside the container; comparable between levels."""
    seen = {}
    if "http" in spec:
        port, _expected = spec["http"]
        seen["http"] = http_get(ctr, port)
    if "host_http" in spec:
        ctr.reload()
        address = ctr.attrs["NetworkSettings"]["IPAddress"]
        with urllib.request.urlopen("http://%s:%d/" % (address, spec["host_http"]), timeout=5) as resp:
            seen["host_http"] = resp.read().decode()
    if "files" in spec:
        for path in spec["files"]:
            def read(path=path):
                code, out = ctr.exec_run([PROBE, "cat", path])
                return out.decode() if code == 0 and out else None
            seen["file:" + path] = wait_for(path, read)
    if "procs" in spec:
        def procs():
            out = bb(ctr, "ps", "-o", "user,args")
            return out if all(any(l.split(None, 1)[0] == u and t in l for l in out.splitlines())
                              for u, t in spec["procs"]) else None
        wait_for("processes %r" % spec["procs"], procs, timeout=15)
        seen["procs"] = sorted(set(line.split(None, 1)[0] + " " + line.split(None, 1)[1].strip()
                                   for line in bb(ctr, "ps", "-o", "user,args").splitlines()[1:]
                                   if "nginx" in line and augment.SUPERVISOR not in line))
    seen["identity"] = identity(ctr, app_pid)
    if "logs" in spec:
        seen["logs"] = wait_for("logs of %s" % ctr.name,
                                lambda: ctr.logs().decode() if ctr.logs().decode() == spec["logs"] else None)
    return seen


def check_expected(seen, spec):
    if "http" in spec:
        assert spec["http"][1] in seen["http"]
    if "host_http" in spec:
        assert spec["http"][1] in seen["host_http"]
    for path, content in spec.get("files", {}).items():
        assert seen["file:" + path] == content
    ident = seen["identity"]
    want = spec.get("identity", {})
    for key in ("uid", "gid", "groups", "cwd"):
        if key in want:
            assert ident[key] == want[key], "%s: %r != %r" % (key, ident[key], want[key])
    for key, value in want.get("env", {}).items():
        assert ident["env"].get(key) == value, "env %s: %r != %r" % (key, ident["env"].get(key), value)
    if "argv0" in spec:
        assert ident["argv"][:len(spec["argv0"])] == spec["argv0"]


def plumb_and_mark_ready(pid):
    """What the slice does: an interface in the node, then the ready marker."""
    # a veth pair inside the node (this kernel has no dummy interfaces); gone with the node
    subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "link", "add", PROBE_IFACE, "type", "veth", "peer",
                    "name", PROBE_IFACE + "p"], check=True)
    assert augment.mark_ready(pid) is True
    assert augment.mark_ready(pid) is False  # idempotent


def image_ref(spec, case, zoo_images):
    name = spec.get("image", case)
    return zoo_images.get(name, name)


# ---- the zoo -------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_zoo(case, cli, zoo_images, runner, tmp_path, ssh_key):
    spec = CASES[case]
    image = image_ref(spec, case, zoo_images)
    row = RESULTS.setdefault(case, {"none": "fail", "basic": "fail", "full": "fail"})

    # level none: the image as it is, the reference
    ref = runner.run(image, case + "-none", command=spec.get("command"))
    if "exits" in spec:
        assert ref.wait(timeout=30)["StatusCode"] == spec["exits"]
        ref_seen = {"exit": spec["exits"], "logs": ref.logs().decode()}
    else:
        ref_seen = behaviour(ref, spec, 1)
        check_expected(ref_seen, spec)
    row["none"] = "ok"

    # level basic: augment (cold for the zoo's own images), then a cache hit
    tag_before = augment.plan_augmentation(cli, image, "basic")["ref"]
    if image.startswith(zoo.ZOO_REPO + "/"):
        try:
            cli.images.remove(tag_before)
        except docker.errors.ImageNotFound:
            pass
    start = time.time()
    aug_ref, changed = augment.augment_image(cli, image, "basic")
    cold = time.time() - start
    assert aug_ref == tag_before
    if image.startswith(zoo.ZOO_REPO + "/"):
        assert changed is True
    aug_id = cli.images.get(aug_ref).id
    start = time.time()
    again, changed_again = augment.augment_image(cli, image, "basic")
    cached = time.time() - start
    assert (again, changed_again) == (aug_ref, False)
    assert cli.images.get(aug_ref).id == aug_id, "rebuilt on a cache hit"
    assert cached < 2.0
    row["seconds"] = "%.1f / %.2f" % (cold, cached)

    node_dir = tmp_path / "node"
    assert augment.write_start_command(str(node_dir), START_CMD) is True
    assert augment.write_start_command(str(node_dir), START_CMD) is False
    node = runner.run(aug_ref, case + "-basic", command=spec.get("command"), node_dir=node_dir)
    pid = host_pid(node)

    # the start command waits for the ready marker
    st = wait_for("status", lambda: status_of(pid))
    assert st["start"] == "waiting" and st["ready"] == "no", st
    if "exits" in spec:
        st = status_when(pid, "app exit", lambda s: s.get("app_state") == "exited")
        assert st["app_exit"] == spec["exits"]
        assert node.logs().decode() == ref_seen["logs"]
    else:
        st = status_when(pid, "app running", lambda s: s.get("app_state") == "running")
        seen = behaviour(node, spec, int(st["app_pid"]))
        check_expected(seen, spec)
        assert seen == ref_seen, "augmented node behaves differently:\n%r\n!=\n%r" % (seen, ref_seen)
        # the supervisor is PID 1 and the application its child
        pid1 = bb(node, "cat", "/proc/1/cmdline").split("\0")
        assert pid1[0] == augment.SUPERVISOR
    time.sleep(0.3)
    assert status_of(pid)["start"] == "waiting"
    assert node.exec_run([PROBE, "test", "-e", "/var/log/testbed/start_command.log"])[0] != 0

    plumb_and_mark_ready(pid)
    st = status_when(pid, "start command", lambda s: s.get("start_state") == "exited")
    assert st["start_exit"] == 7, (st, bb(node, "cat", "/var/log/testbed/start_command.err", check=False))
    assert bb(node, "cat", "/var/log/testbed/start_command.out") == "start-ran\n"
    assert bb(node, "cat", "/var/log/testbed/start_command.err") == ""
    log = bb(node, "cat", "/var/log/testbed/start_command.log")
    assert re.search(r"^start_time=\S+Z pid=\d+ shell=(\S+) command=test -e", log, re.M), log
    assert re.search(r"^end_time=\S+Z exit_status=7 duration=[0-9.]+$", log, re.M), log
    shell = re.search(r"shell=(\S+)", log).group(1)
    assert shell == ("/.testbed/bin/sh" if spec.get("no_shell") else "/bin/sh")

    # the node stays up, whatever the application did
    node.reload()
    assert node.status == "running"
    if "exits" in spec:
        assert status_of(pid)["app"] == "exited:%d" % spec["exits"]
    row["basic"] = "ok"

    check_full(cli, runner, case, spec, image, ref_seen, tmp_path, ssh_key)
    row["full"] = "ok"


def ssh_run(key, user, address, command):
    proc = subprocess.run(["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
                           "%s@%s" % (user, address), command],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=30,
                          check=False)
    return proc.returncode, proc.stdout


def check_full(cli, runner, case, spec, image, ref_seen, tmp_path, key):
    """Level full: the application as in the reference, the start command after the marker, and
    SSH key login as root and as an experiment user (an account the node creates), with ip and
    ping at hand whatever the image has."""
    full_ref, _changed = augment.augment_image(cli, image, "full")
    assert augment.augment_image(cli, image, "full") == (full_ref, False)
    assert full_ref.split(":")[-1].startswith("full-")
    node_dir = str(tmp_path / "full")
    with open(key + ".pub") as f:
        pub = f.read().strip()
    assert services.write_accounts(node_dir, [{"name": "tester", "ssh_keys": [pub]}]) is True
    assert services.write_accounts(node_dir, [{"name": "tester", "ssh_keys": [pub]}]) is False
    assert services.ensure_host_key(node_dir, augment.dropbear_path()) is True
    augment.write_start_command(node_dir, START_CMD)
    node = runner.run(full_ref, case + "-full", command=spec.get("command"), node_dir=node_dir)
    pid = host_pid(node)
    if "exits" in spec:
        st = status_when(pid, "app exit", lambda s: s.get("app_state") == "exited")
        assert st["app_exit"] == spec["exits"]
    else:
        st = status_when(pid, "app running", lambda s: s.get("app_state") == "running")
        seen = behaviour(node, spec, int(st["app_pid"]))
        assert seen == ref_seen, "full node behaves differently:\n%r\n!=\n%r" % (seen, ref_seen)
    plumb_and_mark_ready(pid)
    st = status_when(pid, "start command", lambda s: s.get("start_state") == "exited")
    assert st["start_exit"] == 7
    st = status_when(pid, "sshd", lambda s: s.get("service_sshd") == "running")
    node.reload()
    address = node.attrs["NetworkSettings"]["IPAddress"]
    fingerprint = services.host_key_fingerprint(node_dir, augment.dropbear_path())
    assert fingerprint and fingerprint.startswith("SHA256:")

    def login(user):
        code, out = ssh_run(key, user, address, "id -u; id -un; cd; pwd; ip -o link show eth0 >/dev/null && echo ip-ok; "
                                                "ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping-ok")
        return out if code == 0 else None
    out = wait_for("ssh root@%s" % address, lambda: login("root"), timeout=15, interval=0.3)
    assert out.split() == ["0", "root", out.split()[2], "ip-ok", "ping-ok"], out
    code, out = ssh_run(key, "tester", address, "id -u; id -un; cd; pwd; ip -o link show eth0 >/dev/null && echo ip-ok")
    assert code == 0, out
    uid, name, home = out.split()[:3]
    assert (name, home) == ("tester", "/home/tester") and int(uid) >= 1000, out
    assert "ip-ok" in out
    # a key the node does not know is refused
    other = str(tmp_path / "other")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
    assert ssh_run(other, "root", address, "true")[0] != 0
    # the application still behaves as the reference after logins, and sshd runs as a service
    ps = bb(node, "ps", "-o", "ppid,args")
    assert re.search(r"^\s*1\s+/.testbed/bin/dropbear -F -E -p 22 ", ps, re.M), ps


# ---- commit of a running node -------------------------------------------------------------------

def test_commit_of_augmented_node_is_not_wrapped_twice(cli, zoo_images, runner, tmp_path, monkeypatch):
    row = RESULTS.setdefault("docker-commit", {"none": "n/a", "basic": "fail", "full": "n/a"})
    base = zoo_images["busybox-entrypoint"]
    aug_ref = augment.augment_image(cli, base, "basic")[0]
    node = runner.run(aug_ref, "commit-src", node_dir=tmp_path / "src")
    pid = host_pid(node)
    augment.mark_ready(pid)
    http_get(node, 8081)
    bb(node, "sh", "-c", "echo kept > /committed.txt")
    repo = "testbed-zoo/committed"
    committed = node.commit(repository=repo, tag=RUN_ID)
    commit_ref = "%s:%s" % (repo, RUN_ID)
    rebuilt = None
    try:
        # the commit is augmented already, at this level, version and tools: returned as it is
        assert augment.augment_image(cli, commit_ref, "basic") == (commit_ref, False)
        labels = committed.attrs["Config"]["Labels"]
        assert json.loads(labels[augment.LABEL_ENTRYPOINT]) == ["/entrypoint.sh"]
        assert committed.attrs["Config"]["Entrypoint"] == [augment.SUPERVISOR]

        def check_runs(ref, tag):
            n = runner.run(ref, tag, node_dir=tmp_path / tag)
            p = host_pid(n)
            assert "args=serve 8081" in http_get(n, 8081)
            assert bb(n, "cat", "/committed.txt") == "kept\n"
            ps = bb(n, "ps", "-o", "pid,ppid,args")
            assert ps.count(augment.SUPERVISOR) == 1, ps  # one supervisor: not wrapped twice
            assert re.search(r"^\s*1\s+0\s+%s serve 8081$" % re.escape(augment.SUPERVISOR), ps, re.M), ps
            assert re.search(r"^\s*\d+\s+1\s+httpd -f -p 8081 -h /tmp/www$", ps, re.M), ps
            assert augment.parse_original(bb(n, "cat", "/.testbed/original"))["entrypoint"] == ["/entrypoint.sh"]
            augment.write_start_command(str(tmp_path / tag), "echo again")
            augment.mark_ready(p)
            st = status_when(p, "start", lambda s: s.get("start_state") == "exited")
            assert st["start_exit"] == 0

        check_runs(commit_ref, "commit-run")

        # an older augmentation version: rebuilt FROM the commit (its changes kept) with the
        # originals of its labels, still one supervisor
        monkeypatch.setattr(augment, "AUGMENT_VERSION", augment.AUGMENT_VERSION + 1)
        rebuilt, changed = augment.augment_image(cli, commit_ref, "basic")
        assert changed is True and rebuilt.startswith("testbed-augmented/testbed-zoo/committed:basic-")
        attrs = cli.images.get(rebuilt).attrs
        assert json.loads(attrs["Config"]["Labels"][augment.LABEL_ENTRYPOINT]) == ["/entrypoint.sh"]
        assert attrs["Config"]["Labels"][augment.LABEL_FROM] == committed.id
        assert augment.augment_image(cli, rebuilt, "basic") == (rebuilt, False)
        check_runs(rebuilt, "rebuilt-run")
        row["basic"] = "ok"
    finally:
        runner.cleanup()
        for ref in (rebuilt, commit_ref):
            if ref:
                try:
                    cli.images.remove(ref)
                except docker.errors.APIError:
                    pass


# ---- supervisor behaviour -----------------------------------------------------------------------


def test_commit_of_a_full_node_keeps_its_sshd_and_basic_from_it_runs_none(cli, zoo_images, runner, tmp_path, ssh_key):
    """A `docker commit` of a running full node is a full image as it is (SSH still works from
    it); augmenting it again at basic rebuilds from the commit, whose lower layer still holds
    the sshd service script, and the supervisor does not run it (/.testbed/original lists the
    level's services)."""
    row = RESULTS.setdefault("docker-commit", {"none": "n/a", "basic": "fail", "full": "fail"})
    row["full"] = "fail"
    base = zoo_images["busybox-entrypoint"]
    full_ref = augment.augment_image(cli, base, "full")[0]
    with open(ssh_key + ".pub") as f:
        pub = f.read().strip()

    def node_dir(tag):
        path = str(tmp_path / tag)
        services.write_accounts(path, [{"name": "tester", "ssh_keys": [pub]}])
        services.ensure_host_key(path, augment.dropbear_path())
        return path
    src = runner.run(full_ref, "commit-full-src", node_dir=node_dir("src"))
    augment.mark_ready(host_pid(src))
    http_get(src, 8081)
    bb(src, "sh", "-c", "echo kept > /committed.txt")
    repo = "testbed-zoo/committed-full"
    src.commit(repository=repo, tag=RUN_ID)
    commit_ref = "%s:%s" % (repo, RUN_ID)
    basic_ref = None
    try:
        assert augment.augment_image(cli, commit_ref, "full") == (commit_ref, False)
        node = runner.run(commit_ref, "commit-full-run", node_dir=node_dir("run"))
        pid = host_pid(node)
        status_when(pid, "sshd", lambda s: s.get("service_sshd") == "running")
        node.reload()
        address = node.attrs["NetworkSettings"]["IPAddress"]

        def login():
            code, text = ssh_run(ssh_key, "tester", address, "id -un; cat /committed.txt")
            return text if code == 0 else None
        out = wait_for("ssh into the commit", login, timeout=15, interval=0.3)
        assert out.split() == ["tester", "kept"], out
        assert "args=serve 8081" in http_get(node, 8081)
        row["full"] = "ok"

        basic_ref, changed = augment.augment_image(cli, commit_ref, "basic")
        assert changed is True and basic_ref.startswith("testbed-augmented/testbed-zoo/committed-full:basic-")
        n2 = runner.run(basic_ref, "commit-full-basic", node_dir=tmp_path / "basic")
        p2 = host_pid(n2)
        augment.mark_ready(p2)
        assert "args=serve 8081" in http_get(n2, 8081)
        st = status_of(p2)
        assert not any(k.startswith("service_") for k in st), st
        ps = bb(n2, "ps", "-o", "args")
        assert "dropbear" not in ps and ps.count(augment.SUPERVISOR) == 1, ps
        assert bb(n2, "cat", "/committed.txt") == "kept\n"
    finally:
        runner.cleanup()
        for ref in (basic_ref, commit_ref):
            if ref:
                try:
                    cli.images.remove(ref, force=True)
                except docker.errors.ImageNotFound:
                    pass


def test_start_command_runs_at_every_start(cli, zoo_images, runner, tmp_path):
    aug_ref = augment.augment_image(cli, zoo_images["numeric-user"], "basic")[0]
    node_dir = tmp_path / "node"
    augment.write_start_command(str(node_dir), "echo first; exit 4")
    node = runner.run(aug_ref, "every-start", node_dir=node_dir)
    pid = host_pid(node)
    augment.mark_ready(pid)
    st = status_when(pid, "start", lambda s: s.get("start_state") == "exited")
    assert st["start_exit"] == 4
    node.restart(timeout=10)
    pid = host_pid(node)
    # the tmpfs is new: no marker, the start command waits again
    st = wait_for("status", lambda: status_of(pid))
    assert st["start"] == "waiting" and st["ready"] == "no"
    augment.write_start_command(str(node_dir), "echo second; exit 5")  # read when the marker appears
    augment.mark_ready(pid)
    st = status_when(pid, "start", lambda s: s.get("start_state") == "exited")
    assert st["start_exit"] == 5
    log = bb(node, "cat", "/var/log/testbed/start_command.log")
    assert [int(c) for c in re.findall(r"exit_status=(\d+)", log)] == [4, 5]
    assert bb(node, "cat", "/var/log/testbed/start_command.out") == "second\n"


def test_no_start_command(cli, zoo_images, runner, tmp_path):
    aug_ref = augment.augment_image(cli, zoo_images["shell-form"], "basic")[0]
    node = runner.run(aug_ref, "no-start", node_dir=tmp_path / "empty")
    pid = host_pid(node)
    assert wait_for("status", lambda: status_of(pid))["start"] == "waiting"
    augment.mark_ready(pid)
    wait_for("start=none", lambda: status_of(pid).get("start") == "none")
    assert node.exec_run([PROBE, "test", "-e", "/var/log/testbed/start_command.log"])[0] != 0


@pytest.mark.parametrize("policy,restarts", [("no", False), ("on-failure", True), ("always", True)])
def test_app_restart_policy(cli, zoo_images, runner, tmp_path, policy, restarts):
    aug_ref = augment.augment_image(cli, zoo_images["exits-at-once"], "basic")[0]
    node = runner.run(aug_ref, "restart-" + policy, node_dir=tmp_path / "n",
                      environment=augment.runtime_kwargs("/x", app_restart=policy)["environment"])
    pid = host_pid(node)
    if restarts:
        st = status_when(pid, "restarts", lambda s: int(s.get("app_restarts", 0)) >= 3)
        assert st["app_restart"] == policy
        # the counter moves when a run is started; its output reaches the engine's log a moment later
        wait_for("four runs logged", lambda: node.logs().decode().count("bye") >= 4)
    else:
        wait_for("exit", lambda: status_of(pid).get("app") == "exited:3")
        time.sleep(1.0)
        st = status_of(pid)
        assert st["app_restarts"] == "0" and st["app"] == "exited:3"
    node.reload()
    assert node.status == "running"


def test_exec_failure_is_reported_and_node_stays_up(cli, runner, tmp_path):
    aug_ref = augment.augment_image(cli, zoo.BUSYBOX, "basic")[0]
    node = runner.run(aug_ref, "exec-fail", command=["/no/such/program"], node_dir=tmp_path / "n")
    pid = host_pid(node)
    st = status_when(pid, "exit", lambda s: s.get("app_state") == "exited")
    assert st["app_exit"] == 127
    assert "exec /no/such/program" in st["app_error"]
    node.reload()
    assert node.status == "running"


def test_signals_are_forwarded_and_stop_is_prompt(cli, zoo_images, runner, tmp_path):
    image = zoo_images["signals"]
    ref = runner.run(image, "signals-none")
    aug_ref = augment.augment_image(cli, image, "basic")[0]
    node = runner.run(aug_ref, "signals-basic", node_dir=tmp_path / "n")
    for ctr in (ref, node):
        wait_for("app", lambda: "waiting" in ctr.logs().decode())
        ctr.kill(signal="SIGHUP")
        wait_for("HUP handled", lambda: bb(ctr, "cat", "/tmp/signals", check=False) == "got-hup\n")
    ctr_pid = host_pid(node)
    assert status_of(ctr_pid)["app"] == "running"
    start = time.time()
    node.stop(timeout=10)
    assert time.time() - start < 5
    node.reload()
    assert node.attrs["State"]["ExitCode"] == 0  # the application's own exit status (trap ... exit 0)


def test_orphans_are_reaped(cli, zoo_images, runner, tmp_path):
    aug_ref = augment.augment_image(cli, zoo_images["shell-form"], "basic")[0]
    node_dir = tmp_path / "n"
    augment.write_start_command(str(node_dir), "for i in 1 2 3 4 5; do (sleep 0.2 &) ; done; exit 0")
    node = runner.run(aug_ref, "reap", node_dir=node_dir)
    pid = host_pid(node)
    augment.mark_ready(pid)
    wait_for("start", lambda: status_of(pid).get("start") == "exited:0")
    time.sleep(1.0)
    ps = bb(node, "ps", "-o", "stat,pid,ppid,args")
    assert not [l for l in ps.splitlines()[1:] if l.split()[0].startswith("Z")], ps


def test_marker_is_not_written_through_a_node_symlink(cli, runner, tmp_path):
    """A node that turns /.testbed/run into a symlink cannot make the host write elsewhere."""
    aug_ref = augment.augment_image(cli, zoo.BUSYBOX, "basic")[0]
    target = "/tmp/tbaug-%s-target" % RUN_ID
    os.makedirs(target)
    try:
        node = runner.run(aug_ref, "symlink", command=["sleep", "1000"], node_dir=tmp_path / "n", tmpfs=False)
        pid = host_pid(node)
        bb(node, "sh", "-c", "rm -rf /.testbed/run && ln -s %s /.testbed/run" % target)
        with pytest.raises(augment.AugmentError):
            augment.mark_ready(pid)
        with pytest.raises(augment.AugmentError):
            augment.read_status(pid)
        assert os.listdir(target) == []
    finally:
        os.rmdir(target)


def test_read_only_root_keeps_start_logs_in_the_run_tmpfs(cli, zoo_images, runner, tmp_path):
    aug_ref = augment.augment_image(cli, zoo_images["numeric-user"], "basic")[0]
    node_dir = tmp_path / "n"
    augment.write_start_command(str(node_dir), "echo ro; exit 3")
    node = runner.run(aug_ref, "read-only", node_dir=node_dir, read_only=True)
    pid = host_pid(node)
    augment.mark_ready(pid)
    st = status_when(pid, "start", lambda s: s.get("start_state") == "exited")
    assert st["start_exit"] == 3 and st["start_logs"] == "/.testbed/run"
    assert bb(node, "cat", "/.testbed/run/start_command.out") == "ro\n"
    assert "exit_status=3" in bb(node, "cat", "/.testbed/run/start_command.log")
    assert status_of(pid)["app"] == "running"


def test_image_without_command_still_makes_a_node(cli, zoo_images, runner, tmp_path):
    """`docker run` refuses an image with neither ENTRYPOINT nor CMD; its augmented node runs
    (app=none) and its start command works through the injected shell."""
    image = zoo_images["no-command"]
    with pytest.raises(docker.errors.APIError):
        runner.run(image, "no-command-none")
    aug_ref = augment.augment_image(cli, image, "basic")[0]
    node_dir = tmp_path / "n"
    augment.write_start_command(str(node_dir), "read line < /data.txt; echo \"$line\"; exit 2")
    node = runner.run(aug_ref, "no-command-basic", node_dir=node_dir)
    pid = host_pid(node)
    assert wait_for("status", lambda: status_of(pid))["app"] == "none"
    augment.mark_ready(pid)
    wait_for("start", lambda: status_of(pid).get("start") == "exited:2")
    assert bb(node, "cat", "/var/log/testbed/start_command.out") == "only data\n"


def test_plain_image_is_not_an_augmented_node(cli, runner):
    ctr = runner.run(zoo.BUSYBOX, "plain", command=["sleep", "1000"])
    with pytest.raises(augment.AugmentError):
        augment.mark_ready(host_pid(ctr))


# ---- the module ------------------------------------------------------------------------------------

def _module(args, check=False):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_NOCOLOR="1")
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-c", "local", "-e",
           "ansible_python_interpreter=%s" % os.path.join(ROOT, ".venv", "bin", "python"),
           "-m", "testbed.containers.image_augment", "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def test_module_reports_changed_only_when_it_builds(cli, zoo_images):
    image = zoo_images["numeric-user"]
    tag = augment.plan_augmentation(cli, image, "basic")["ref"]
    try:
        cli.images.remove(tag)
    except docker.errors.ImageNotFound:
        pass
    checked = _module({"images": [image, image]}, check=True)
    assert checked["changed"] is True and checked["images"][0]["result"] == "built"
    assert len(checked["images"]) == 1
    with pytest.raises(docker.errors.ImageNotFound):
        cli.images.get(tag)  # check mode built nothing
    first = _module({"images": [image]})
    assert first["changed"] is True and first["refs"] == {image: tag}
    second = _module({"images": [image, zoo.BUSYBOX]})
    assert second["changed"] is False
    assert second["images"][0]["result"] == "cached"
    assert _module({"images": [image], "level": "none"})["refs"] == {image: image}
