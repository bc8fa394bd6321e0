#!/usr/bin/env python
"""Swap-in benchmark: N nodes on one LAN on this host, against plain Docker SDK create/start.

Run from the repository root, as root, with a Docker engine running:

    .venv/bin/python bench/swapin.py [--nodes N] [--workers W] [--image IMG] [--profile]

Phases, all in one run:

1. baseline: Docker SDK ``containers.create`` + ``start`` of N containers of the same image
   and command with W threads, Docker's default network only; then their removal (timed too);
2. swap-in: ``make_plan`` + ``Slice(...).converge()`` with a private state directory;
3. no-change re-run: ``converge()`` again; its operations list must be empty;
4. teardown: ``teardown()``; then no container labelled ``testbed.experiment=NAME`` and no
   link with the experiment's kernel prefix may remain.
5. with ``--playbooks``: the same experiment as a user runs it, through ``ansible-playbook``:
   ``experiment.yml`` (swap-in), ``experiment.yml`` again (no change: changed=0 is checked) and
   ``teardown.yml``, each timed whole, with the "seconds per phase" summary the swap-in prints
   (plan, hosts, images, networks, nodes, shaping, control, boot) and Ansible's own share (the
   rest of the wall time: start-up, module transfer, the host role, record and report).

Everything is cleaned up in ``finally`` (experiment teardown, baseline containers by label,
state directory), also on failure, Ctrl-C or SIGTERM.  ``--profile`` wraps the functions the
slice code calls (in this process only) and prints where the time of each phase goes.
"""

from __future__ import absolute_import, division, print_function

import argparse
import collections
import functools
import inspect
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# tests/checkout.py links the checkout as ansible_collections.testbed.containers
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import checkout  # noqa: E402  pylint: disable=wrong-import-position

ROOT = checkout.importable()

import docker  # noqa: E402
from docker.errors import NotFound  # noqa: E402
from pyroute2 import IPRoute  # noqa: E402

from ansible_collections.testbed.containers.plugins.module_utils import (  # noqa: E402
    engine, firewall, names, netlink, slice as slice_mod)
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan  # noqa: E402

PROJECT = "bench"
NAME = "bench"
LAN = "bench"
HOST = "localhost"
BASELINE_LABEL = "testbed.bench.baseline"
COMMAND = ["sleep", "infinity"]


# --------------------------------------------------------------------------- helpers

def experiment_doc(nodes, image):
    """N nodes on one LAN; the LAN's prefix is wide enough for N members."""
    prefixlen = min(24, 32 - int(math.ceil(math.log(nodes + 2, 2))))
    node_names = ["n%d" % i for i in range(1, nodes + 1)]
    return {
        "name": NAME,
        "project": PROJECT,
        "routing": "static",
        "addressing": {"pool": "10.10.0.0/16", "prefixlen": prefixlen},
        "defaults": {"image": image, "augment": "none"},
        "nodes": dict((n, {"command": list(COMMAND)}) for n in node_names),
        "lans": {LAN: {"members": node_names}},
    }


class _TimedEnter:
    """Wraps a context manager; records the time of its __enter__."""

    def __init__(self, cm, prof, key):
        self.cm, self.prof, self.key = cm, prof, key

    def __enter__(self):
        t0 = time.perf_counter()
        try:
            return self.cm.__enter__()
        finally:
            self.prof.add(self.key, time.perf_counter() - t0)

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc)


class Profile:
    """Wall time per wrapped function, summed over threads, per phase."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phase = None
        self.data = collections.OrderedDict()

    def add(self, key, seconds):
        with self.lock:
            table = self.data.setdefault(self.phase, collections.OrderedDict())
            calls, total = table.get(key, (0, 0.0))
            table[key] = (calls + 1, total + seconds)

    def wrap(self, owner, attr, key=None):
        orig = getattr(owner, attr, None)
        if orig is None:  # the code under test moved on: time what exists
            return
        key = key or "%s.%s" % (getattr(owner, "__name__", owner), attr)
        prof = self

        @functools.wraps(orig)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return orig(*args, **kwargs)
            finally:
                prof.add(key, time.perf_counter() - t0)
        setattr(owner, attr, timed)

    def wrap_cm(self, owner, attr, key):
        """A context manager: time only its __enter__ (the part that does the work)."""
        orig = getattr(owner, attr, None)
        if orig is None:
            return
        prof = self

        @functools.wraps(orig)
        def timed(*args, **kwargs):
            cm = orig(*args, **kwargs)

            return _TimedEnter(cm, prof, key)
        setattr(owner, attr, timed)

    def install(self):
        from docker.models.containers import Container, ContainerCollection
        for mod, attrs in ((engine, ("client", "image_ids", "ensure_control_network", "list_nodes",
                                     "container_pid", "remove_container")),
                           (netlink, ("owned_links", "ensure_bridge", "delete_link", "plumb_interface",
                                      "remove_stray_interfaces", "ensure_routes", "links")),
                           (firewall, ("ensure_lan_rules", "ensure_rules", "remove_rules")),
                           (slice_mod, ("write_in_place", "write_record", "hosts_file"))):
            for attr in attrs:
                self.wrap(mod, attr, "%s.%s" % (mod.__name__.rsplit(".", 1)[-1], attr))
        self.wrap_cm(netlink, "node_netns", "netlink.node_netns (enter)")
        self.wrap(slice_mod.Slice, "_converge_node", "Slice._converge_node (per node, total)")
        self.wrap(slice_mod.Slice, "plumb", "Slice.plumb")
        self.wrap(slice_mod.Slice, "_host_ipr", "Slice._host_ipr")
        self.wrap(ContainerCollection, "create", "docker containers.create")
        self.wrap(Container, "start", "docker container.start")
        self.wrap(Container, "reload", "docker container.reload")
        self.wrap(Container, "remove", "docker container.remove")

    def report(self, phase, wall, out):
        table = self.data.get(phase)
        if not table:
            return
        out("")
        out("profile of %s (wall %.2f s; times are summed over threads, so nested and parallel calls"
            " add up to more than wall)" % (phase, wall))
        out("  %-44s %7s %10s %9s" % ("function", "calls", "total s", "mean ms"))
        for key, (calls, total) in sorted(table.items(), key=lambda kv: -kv[1][1]):
            out("  %-44s %7d %10.3f %9.2f" % (key, calls, total, 1000.0 * total / calls))


def op_kind(op):
    """An operation without its node, object names, addresses and numbers: the counts' key."""
    op = re.sub(r"^n\d+: ", "", op)                          # "NODE: ..." from plumbing
    op = re.sub(r"\s*\((testbed:|container )[^)]*\)", "", op)  # readable names in parentheses
    op = re.sub(r"\bn\d+\b", "NODE", op)
    op = re.sub(r"\btb[0-9a-f]{5}\w*", "IF", op)
    op = re.sub(r"\bveth[0-9a-f]+\b", "IF", op)                # Docker's host-side veths
    op = re.sub(r"\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b", "MAC", op)
    op = re.sub(r"\b\d+\.\d+\.\d+\.\d+(/\d+)?", "ADDR", op)
    op = re.sub(r"\d+", "#", op) if not op.startswith("remove state ") else "remove state directory"
    return op if len(op) <= 72 else op[:69] + "..."


def op_counts(ops):
    return collections.Counter(op_kind(op) for op in ops)


def run_parallel(fn, items, workers):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def baseline_containers(cli, run_id=None):
    label = BASELINE_LABEL if run_id is None else "%s=%s" % (BASELINE_LABEL, run_id)
    return cli.containers.list(all=True, filters={"label": label})


def remove_quietly(ctr):
    try:
        ctr.remove(force=True, v=True)
    except NotFound:
        pass


def owned_kernel_links(prefix):
    with IPRoute() as ipr:
        return sorted(name for name in (m.get_attr("IFLA_IFNAME") for m in ipr.get_links())
                      if name and name.startswith(prefix))


def firewall_leftovers():
    """Rules of any table whose comment names this experiment (testbed:PROJECT/NAME[ DIGEST])."""
    owner = re.compile(r"testbed:%s/%s([\" ]|$)" % (re.escape(PROJECT), re.escape(NAME)))
    proc = subprocess.run(["iptables-save"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=True)
    return [line for line in proc.stdout.splitlines() if owner.search(line)]


def experiment_containers(cli):
    return cli.containers.list(all=True, filters={"label": "%s=%s" % (names.LABEL_EXPERIMENT, NAME)})


def check_limits(nodes, workers, out):
    """Fail early, with the reason, where N nodes cannot fit this host."""
    problems = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # per worker: a Docker connection, a host netlink socket, a node netlink socket and two
    # namespace fds; plus the connection pool and Python's own: far below the limit.
    need_fds = 64 + 8 * workers
    if soft != resource.RLIM_INFINITY and soft < need_fds:
        if hard == resource.RLIM_INFINITY or hard >= need_fds:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need_fds, hard))
        else:
            problems.append("open files limit %d < %d needed" % (soft, need_fds))
    try:
        with open("/proc/meminfo") as f:
            avail_kb = int(next(line for line in f if line.startswith("MemAvailable")).split()[1])
    except (IOError, OSError, StopIteration, ValueError):
        avail_kb = None
    # measured here: a containerd shim (about 13 MB RSS) plus a sleeping busybox (1.3 MB),
    # plus dockerd's own bookkeeping.
    need_mb = 20 * nodes
    if avail_kb is not None and avail_kb // 1024 < need_mb:
        problems.append("available memory %d MB < about %d MB for %d containers" % (avail_kb // 1024, need_mb, nodes))
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = int(f.read())
        if pid_max < 20 * nodes:
            problems.append("kernel.pid_max %d is low for %d containers" % (pid_max, nodes))
    except (IOError, OSError, ValueError):
        pass
    if nodes > 1000:
        problems.append("a Linux bridge holds at most 1024 ports; one LAN of %d nodes does not fit" % nodes)
    if problems:
        raise SystemExit("bench: this host cannot run %d nodes: %s" % (nodes, "; ".join(problems)))
    out("limits: open files %s, memory available %s MB, %d CPUs" % (
        resource.getrlimit(resource.RLIMIT_NOFILE)[0], "?" if avail_kb is None else avail_kb // 1024,
        os.cpu_count() or 0))


# --------------------------------------------------------------------------- phases

def bench_baseline(cli, args, run_id, specs=None):
    """Create+start N containers with W threads, then remove them; returns both times.

    ``specs`` (one containers.create kwargs per container) defaults to the plain image and
    command on Docker's default network.
    """
    if specs is None:
        specs = [{"image": args.image, "command": list(COMMAND), "detach": True,
                  "name": "tbbench_%s_%d" % (run_id, i)} for i in range(args.nodes)]

    def up(spec):
        spec = dict(spec, labels={BASELINE_LABEL: run_id})
        ctr = cli.containers.create(**spec)
        ctr.start()
        return ctr

    t0 = time.perf_counter()
    ctrs = run_parallel(up, specs, args.workers)
    t_up = time.perf_counter() - t0
    running = [c for c in baseline_containers(cli, run_id) if c.status == "running"]
    if len(running) != args.nodes:
        raise RuntimeError("baseline: %d of %d containers running" % (len(running), args.nodes))
    t0 = time.perf_counter()
    run_parallel(remove_quietly, ctrs, args.workers)
    t_down = time.perf_counter() - t0
    return t_up, t_down


def node_specs(plan, cli, state_dir, run_id):
    """What the slice asks Docker for each node (control network, caps, sysctls, hosts mount,
    restart policy), renamed and relabelled so the experiment's checks do not see them."""
    hosts_path = os.path.join(state_dir, "spec-baseline-hosts")
    with open(hosts_path, "w") as f:
        f.write("127.0.0.1\tlocalhost\n")
    image_ids = engine.image_ids(cli, [n["image"] for n in plan["nodes"].values()])
    specs = []
    for i, (node_name, node) in enumerate(plan["nodes"].items()):
        kwargs, _digest = engine.container_spec(plan, node_name, image_ids[node["image"]], hosts_path)
        kwargs["name"] = "tbbench_%s_spec_%d" % (run_id, i)
        specs.append(kwargs)
    return specs


def teardown(state_dir, workers):
    """slice.teardown, with the bench's thread count where teardown takes one."""
    if "workers" in inspect.signature(slice_mod.teardown).parameters:
        return slice_mod.teardown(PROJECT, NAME, state_dir, workers=workers)
    return slice_mod.teardown(PROJECT, NAME, state_dir)


def cleanup(cli, state_dir, run_id, workers, out):
    """Best effort, every step tried: experiment teardown, baseline containers, state dir."""
    try:
        ops = teardown(state_dir, workers)
        if ops:
            out("cleanup: teardown did %d operation(s)" % len(ops))
    except Exception as exc:  # keep cleaning the rest
        out("cleanup: teardown failed: %s" % exc)
    try:
        left = baseline_containers(cli)
        if left:
            out("cleanup: removing %d baseline container(s)" % len(left))
            run_parallel(remove_quietly, left, workers)
    except Exception as exc:
        out("cleanup: removing baseline containers failed: %s" % exc)
    shutil.rmtree(state_dir, ignore_errors=True)


SUMMARY_RE = re.compile(r"seconds per phase: (.*)")
RECAP_RE = re.compile(r"^localhost\s+: ok=\d+\s+changed=(\d+)", re.M)


def run_playbook(playbook, path, record_dir, state_dir):
    """(seconds, output) of one ansible-playbook run of the collection's PLAYBOOK on ``path``."""
    args = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "playbooks/%s.yml" % playbook,
            "-e", "experiment=%s" % path, "-e", "testbed_record_dir=%s" % record_dir,
            "-e", "testbed_state_dir=%s" % state_dir]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError("ansible-playbook %s failed (%d):\n%s" % (playbook, proc.returncode, proc.stdout[-4000:]))
    return seconds, proc.stdout


def bench_playbooks(args, state_dir, out):
    """Swap-in, no-change re-run and teardown through ansible-playbook: {phase: seconds}, summaries."""
    import json  # pylint: disable=import-outside-toplevel
    path = os.path.join(state_dir, "bench.yml")
    with open(path, "w") as f:
        json.dump(experiment_doc(args.nodes, args.image), f)  # JSON is YAML
    record_dir = os.path.join(state_dir, "records")
    pb_state = os.path.join(state_dir, "pb-state")
    times, summaries = collections.OrderedDict(), collections.OrderedDict()
    try:
        for phase, playbook in (("playbook swap-in", "experiment"), ("playbook no-change re-run", "experiment"),
                                ("playbook teardown", "teardown")):
            seconds, output = run_playbook(playbook, path, record_dir, pb_state)
            times[phase] = seconds
            lines = [line.strip().strip("'\",") for line in output.splitlines() if "seconds per phase" in line
                     or re.match(r"^\s*'?\s*\w[\w.-]*: hosts ", line)]
            summaries[phase] = lines
            changed = RECAP_RE.search(output)
            if phase.endswith("re-run") and changed and int(changed.group(1)) != 0:
                out("warning: the no-change re-run reported changed=%s on localhost" % changed.group(1))
    finally:
        if "playbook teardown" not in times:  # a failed run leaves nothing behind
            run_playbook("teardown", path, record_dir, pb_state)
    return times, summaries


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--nodes", type=int, default=50, help="number of nodes (default 50)")
    parser.add_argument("--workers", type=int, default=8, help="thread pool size, both sides (default 8)")
    parser.add_argument("--image", default="testbed/busybox:latest", help="node image (default %(default)s)")
    parser.add_argument("--spec-baseline", action="store_true",
                        help="also time create+start of N containers with the nodes' own Docker spec "
                             "(control network, caps, sysctls, hosts mount), without plumbing")
    parser.add_argument("--playbooks", action="store_true",
                        help="also swap in, re-run and tear down through ansible-playbook, as a user does")
    parser.add_argument("--profile", action="store_true",
                        help="time the functions slice.py calls and print where each phase spends it")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.workers < 1:
        parser.error("--nodes and --workers must be at least 1")
    if os.geteuid() != 0:
        parser.error("run as root (netlink, network namespaces, iptables)")

    def out(text=""):
        print(text, flush=True)

    # SIGTERM runs the finally clauses like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    check_limits(args.nodes, args.workers, out)
    cli = docker.from_env(timeout=300, max_pool_size=max(2 * args.workers, 10))
    cli.images.get(args.image)  # fails with the image's name before anything is created
    run_id = "%d" % os.getpid()
    prefix = names.kernel_prefix(PROJECT, NAME)
    profile = Profile() if args.profile else None
    if profile:
        profile.install()
    state_dir = tempfile.mkdtemp(prefix="tb-bench-")
    times = collections.OrderedDict()
    ops = {}
    failed = True
    try:
        # Leftovers of an earlier, killed run (same project/name) would skew the numbers.
        stale = teardown(state_dir, args.workers)
        stale_baseline = baseline_containers(cli)
        run_parallel(remove_quietly, stale_baseline, args.workers)
        if stale or stale_baseline:
            out("removed leftovers of an earlier run: %d teardown operation(s), %d baseline container(s)"
                % (len(stale), len(stale_baseline)))
        out("bench: %d nodes on one LAN, %d workers, image %s, command %s, state %s"
            % (args.nodes, args.workers, args.image, " ".join(COMMAND), state_dir))

        if profile:
            profile.phase = "baseline"
        times["baseline create+start"], times["baseline remove"] = bench_baseline(cli, args, run_id)
        if args.spec_baseline:
            if profile:
                profile.phase = "node-spec baseline"
            specs = node_specs(make_plan(experiment_doc(args.nodes, args.image), [HOST]), cli, state_dir, run_id)
            times["node-spec create+start"], times["node-spec remove"] = bench_baseline(cli, args, run_id, specs)

        if profile:
            profile.phase = "swap-in"
        t0 = time.perf_counter()
        plan = make_plan(experiment_doc(args.nodes, args.image), [HOST])
        t_plan = time.perf_counter() - t0
        sl = slice_mod.Slice(plan, HOST, state_dir=state_dir, workers=args.workers)
        sl.converge()
        times["swap-in (plan+converge)"] = time.perf_counter() - t0
        ops["swap-in"] = list(sl.ops)
        running = [c for c in experiment_containers(cli) if c.status == "running"]
        if len(running) != args.nodes:
            raise RuntimeError("swap-in: %d of %d nodes running" % (len(running), args.nodes))
        links = owned_kernel_links(prefix)
        if len(links) != args.nodes + 1:  # one veth per node and the LAN's bridge
            raise RuntimeError("swap-in: %d kernel links with prefix %s, expected %d"
                               % (len(links), prefix, args.nodes + 1))

        if profile:
            profile.phase = "no-change re-run"
        t0 = time.perf_counter()
        again = slice_mod.Slice(make_plan(experiment_doc(args.nodes, args.image), [HOST], plan), HOST,
                                state_dir=state_dir, workers=args.workers)
        again.converge()
        times["no-change re-run"] = time.perf_counter() - t0
        ops["no-change re-run"] = list(again.ops)
        if again.ops:
            raise RuntimeError("no-change re-run did %d operation(s), expected none: %s"
                               % (len(again.ops), "; ".join(again.ops[:10])))

        if profile:
            profile.phase = "teardown"
        t0 = time.perf_counter()
        ops["teardown"] = teardown(state_dir, args.workers)
        times["teardown"] = time.perf_counter() - t0
        left_ctrs = experiment_containers(cli)
        left_links = owned_kernel_links(prefix)
        if left_ctrs or left_links:
            raise RuntimeError("teardown left %d container(s) (%s) and %d link(s) (%s)" % (
                len(left_ctrs), ", ".join(c.name for c in left_ctrs[:5]), len(left_links), ", ".join(left_links[:5])))
        left_rules = firewall_leftovers()
        if left_rules:
            raise RuntimeError("teardown left %d firewall rule(s): %s" % (len(left_rules), "; ".join(left_rules[:3])))
        if args.playbooks:
            pb_times, summaries = bench_playbooks(args, state_dir, out)
            times.update(pb_times)
        failed = False
    finally:
        if profile:
            profile.phase = "cleanup"
        # A second Ctrl-C or SIGTERM must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup(cli, state_dir, run_id, args.workers, out)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if failed:
            out("bench: FAILED (cleaned up)")

    base = times["baseline create+start"]
    out("")
    out("%-26s %10s %12s %10s" % ("phase", "total s", "ms/node", "x baseline"))
    for phase, secs in times.items():
        ratio = secs / base if base else float("nan")
        out("%-26s %10.2f %12.1f %10.2f" % (phase, secs, 1000.0 * secs / args.nodes, ratio))
    out("(plan alone: %.1f ms; swap-in / baseline create+start = %.2f)"
        % (1000.0 * t_plan, times["swap-in (plan+converge)"] / base))
    if args.playbooks:
        out("through ansible-playbook (per-phase summary the swap-in prints):")
        for phase, lines in summaries.items():
            for line in lines:
                out("  %-26s %s" % (phase, line))
    out("")
    out("operations:")
    for phase in ("swap-in", "no-change re-run", "teardown"):
        counts = op_counts(ops[phase])
        out("  %-18s %5d total" % (phase, len(ops[phase])))
        for kind, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            out("  %-18s %5d  %s" % ("", count, kind))
    out("checks: all %d nodes running after swap-in; %d kernel links (%s*) after swap-in; re-run empty; "
        "after teardown no container labelled %s=%s, no link %s*, no firewall rule"
        % (args.nodes, args.nodes + 1, prefix, names.LABEL_EXPERIMENT, NAME, prefix))
    if profile:
        walls = {"baseline": times["baseline create+start"] + times["baseline remove"],
                 "node-spec baseline": times.get("node-spec create+start", 0) + times.get("node-spec remove", 0),
                 "swap-in": times["swap-in (plan+converge)"], "no-change re-run": times["no-change re-run"],
                 "teardown": times["teardown"]}
        for phase in ("baseline", "node-spec baseline", "swap-in", "no-change re-run", "teardown"):
            profile.report(phase, walls[phase], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
