"""Multi-host benchmark: swap-in on simulated physical hosts, one host against several, and the
planning time of a large experiment.

Run from the repository root, as root, with a Docker engine running and the images of
scripts/build-images.sh built (testbed/host:bookworm, testbed/busybox:latest):

    .venv/bin/python bench/multihost.py [--nodes-per-host 40] [--hosts 3]

It starts ``--hosts`` simulated physical hosts (tests/multihost/hosts.py: Docker-in-Docker
containers reached over SSH, prefix ``tbbench``) and runs ``ansible-playbook
playbooks/experiment.yml`` and ``playbooks/teardown.yml`` against their inventory:

0. warm-up: one node per host (packing 1), swapped in and torn down once, so that the first
   contact with each host (agent start, control network) is not charged to a scenario;
1. **1 host x N**: N nodes with an inventory of the first host only;
2. **H hosts x N**: H*N nodes with ``placement: {packing: N}`` on the whole inventory; with
   ``--balanced`` no packing (the default placement spreads them by the hosts' capacity), and
   ``--extra-nodes K`` adds K nodes (``--hosts 10 --nodes-per-host 50 --balanced --extra-nodes 1``
   is the 501-node case).

Both experiments are the same shape: nodes ``n1``.. on LANs of about 10 members (a size that
does not divide N, so some LANs span hosts over VXLAN in scenario 2), ``augment: none``, command
``sleep infinity``, image testbed/busybox:latest, a private ``testbed_record_dir``.  Each is
timed for swap-in, a no-change re-run (must report changed=0 everywhere) and teardown (must
leave no container and no kernel link of the experiment on any host).

Before the hosts start, the planner alone (pure Python, no Docker): ``plan.make_plan`` of
5,000 nodes on 25 hosts with ``max_nodes`` 200 each (the issue's target: under 2 seconds), and
``placement.place`` alone with the crossing LAN attachments it reports.

``--tasks`` times every Ansible task (a callback plugin written to the work directory) and
prints where each phase's time goes.  Everything is removed in ``finally`` (teardown of every
experiment, then the hosts), also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import absolute_import, division, print_function

import argparse
import collections
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

# tests/checkout.py links the checkout as ansible_collections.testbed.containers
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import checkout  # noqa: E402  pylint: disable=wrong-import-position

ROOT = checkout.importable("tests/multihost")

import hosts as simhosts  # noqa: E402  (tests/multihost/hosts.py)

from ansible_collections.testbed.containers.plugins.module_utils import names, placement  # noqa: E402
from ansible_collections.testbed.containers.plugins.module_utils import plan as plan_mod  # noqa: E402

PROJECT = "bench"
IMAGE = "testbed/busybox:latest"
COMMAND = ["sleep", "infinity"]
PREFIX = "tbbench"
# Not the multi-host tests' 10.250.0.0/24 (they may run at the same time), not Docker's default
# pools, not the planner's default pool 10.10.0.0/16.
SUBNET = "10.251.0.0/24"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


# A callback plugin (written to the work directory when --tasks is given) that records the wall
# time of each task, from its start to the start of the next one (all hosts together).
TASK_TIMER = '''
import json, os, time
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "tbbench_tasks"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.rows, self.current = [], None

    def _close(self):
        if self.current:
            play, task, t0 = self.current
            self.rows.append([play, task, time.time() - t0])
        self.current = None

    def v2_playbook_on_play_start(self, play):
        self._close()
        self.play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = (self.play, task.get_name(), time.time())

    def v2_playbook_on_stats(self, stats):
        self._close()
        with open(os.environ["TBBENCH_TASKS_FILE"], "w") as f:
            json.dump(self.rows, f)
'''


def out(text=""):
    print(text, flush=True)


# --------------------------------------------------------------------------- experiments

def lan_size(nodes_per_host, wanted=10):
    """About ``wanted`` members, a size that does not divide a host's share (so LANs straddle)."""
    for delta in (0, 1, -1, 2, -2, 3, -3):
        size = wanted + delta
        if size >= 2 and nodes_per_host % size:
            return size
    return wanted


def experiment_doc(name, nodes, size, packing=None):
    """``nodes`` nodes n1..nN on consecutive LANs of ``size`` members (the last may be smaller)."""
    node_names = ["n%d" % i for i in range(1, nodes + 1)]
    lans = collections.OrderedDict()
    for k in range(0, nodes, size):
        lans["lan%d" % (k // size)] = {"members": node_names[k:k + size]}
    doc = {
        "name": name,
        "project": PROJECT,
        "routing": "none",
        # a /24 per LAN out of a /12: 4,096 LANs, enough for the 5,000-node plan too
        "addressing": {"pool": "10.64.0.0/12", "prefixlen": 24},
        "defaults": {"image": IMAGE, "augment": "none"},
        "nodes": dict((n, {"command": list(COMMAND)}) for n in node_names),
        "lans": dict(lans),
    }
    if packing:
        doc["placement"] = {"packing": packing}
    return doc


def lan_figures(plan):
    """(spanning LANs, LAN attachments not on their LAN's majority host) of a plan."""
    spanning = crossing = 0
    for lan in plan["lans"].values():
        if len(lan["hosts"]) > 1:
            spanning += 1
        counts = collections.Counter(plan["nodes"][m]["host"] for m in lan["members"])
        crossing += len(lan["members"]) - max(counts.values())
    return spanning, crossing


# --------------------------------------------------------------------------- planning

def bench_planning(args):
    """make_plan and placement.place of a large experiment, best and median of a few runs."""
    nodes, nhosts, cap = args.plan_nodes, args.plan_hosts, args.plan_max_nodes
    host_names = ["host%02d" % i for i in range(1, nhosts + 1)]
    host_vars = dict((h, {"max_nodes": cap, "mode": "shared", "tunnel_address": "192.0.2.%d" % i})
                     for i, h in enumerate(host_names, 1))
    size = lan_size(cap)
    doc = experiment_doc("plan", nodes, size)
    times, place_times = [], []
    result = the_plan = None
    for _run in range(args.plan_repeat):
        t0 = time.perf_counter()
        the_plan = plan_mod.make_plan(doc, host_names, host_vars=host_vars)
        times.append(time.perf_counter() - t0)
    # placement alone, with the inputs plan.place() gives it
    pnodes = dict((n, {"host": None, "cpus": None, "memory": None}) for n in doc["nodes"])
    plan_lans = dict((n, {"members": list(lan["members"]), "bandwidth_bps": None}) for n, lan in doc["lans"].items())
    specs = dict((h, {"max_nodes": cap, "mode": "shared"}) for h in host_names)
    for _run in range(args.plan_repeat):
        t0 = time.perf_counter()
        result = placement.place(pnodes, plan_lans, specs, None, {})
        place_times.append(time.perf_counter() - t0)
    per_host = collections.Counter(n["host"] for n in the_plan["nodes"].values())
    if len(the_plan["nodes"]) != nodes or max(per_host.values()) > cap:
        raise RuntimeError("planning: %d nodes planned, at most %d per host (limit %d)"
                           % (len(the_plan["nodes"]), max(per_host.values()), cap))
    spanning, crossing = lan_figures(the_plan)
    return {"nodes": nodes, "hosts": nhosts, "cap": cap, "lans": len(doc["lans"]), "size": size,
            "make_plan": times, "place": place_times, "spanning": spanning, "crossing": crossing,
            "place_crossing": result.crossing, "place_spanning": result.spanning,
            "hosts_used": sum(1 for c in per_host.values() if c)}


# --------------------------------------------------------------------------- runs

def kill_group(proc):
    """Ends a process started with start_new_session and everything left in its group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        os.killpg(proc.pid, signal.SIGKILL)  # the parent if it lingers, its forked workers
    except ProcessLookupError:  # nothing left in the group
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


class Bench:
    def __init__(self, sim, workdir, timeout, tasks=False):
        self.sim = sim
        self.tasks = {} if tasks else None  # (label, phase) -> [[play, task, seconds], ...]
        self.env = sim.ansible_env()
        if tasks:
            plugins = os.path.join(workdir, "callback_plugins")
            os.makedirs(plugins)
            with open(os.path.join(plugins, "tbbench_tasks.py"), "w") as f:
                f.write(TASK_TIMER)
            self.env.update(ANSIBLE_CALLBACK_PLUGINS=plugins, ANSIBLE_CALLBACKS_ENABLED="tbbench_tasks",
                            TBBENCH_TASKS_FILE=os.path.join(workdir, "tasks.json"))
        self.workdir = workdir
        self.record_dir = os.path.join(workdir, "records")
        self.timeout = timeout
        self.swapped = []  # (doc path, inventory) of experiments that may be on the hosts
        self.one_host_inventory = os.path.join(workdir, "inventory-1.yml")
        data = sim.inventory_data()
        group = data["all"]["children"]["testbed_hosts"]
        first = sim.names[0]
        group["hosts"] = {first: group["hosts"][first]}
        with open(self.one_host_inventory, "w") as f:
            yaml.safe_dump(data, f, sort_keys=False, default_flow_style=False)

    def write(self, doc):
        path = os.path.join(self.workdir, "%s-%s.yml" % (doc["project"], doc["name"]))
        with open(path, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        return path

    def playbook(self, playbook, path, inventory, check=True, key=None):
        """Runs playbooks/PLAYBOOK.yml; returns (seconds, output).  With --tasks, keeps the
        task times under ``key``."""
        cmd = [os.path.join(simhosts.VENV_BIN, "ansible-playbook"), "-i", inventory,
               "playbooks/%s.yml" % playbook, "-e", "experiment=%s" % path,
               "-e", "testbed_record_dir=%s" % self.record_dir]
        t0 = time.perf_counter()
        # its own process group, so that an interruption ends its forked workers too
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, start_new_session=True)
        try:
            output, _err = proc.communicate(timeout=self.timeout)
        except BaseException:  # timeout, Ctrl-C, SIGTERM
            kill_group(proc)
            raise
        seconds = time.perf_counter() - t0
        if self.tasks is not None and key is not None:
            try:
                with open(self.env["TBBENCH_TASKS_FILE"]) as f:
                    self.tasks[key] = (seconds, json.load(f))
            except (IOError, OSError, ValueError):
                pass
        if check and proc.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), proc.returncode, output[-20000:]))
        return seconds, output

    def record(self, doc):
        with open(os.path.join(self.record_dir, doc["project"], "%s.json" % doc["name"])) as f:
            return json.load(f)

    def host_leftovers(self, doc, host_names):
        """Containers labelled with the experiment and kernel links with its prefix, per host."""
        prefix = names.kernel_prefix(doc["project"], doc["name"])
        left = {}
        for host in host_names:
            ctrs = self.sim.exec(host, "docker", "ps", "-aq",
                                 "--filter", "label=%s=%s" % (names.LABEL_EXPERIMENT, doc["name"]),
                                 "--filter", "label=%s=%s" % (names.LABEL_PROJECT, doc["project"])).stdout.split()
            ip_links = self.sim.exec(host, "ip", "-o", "link").stdout
            links = [m.group(1) for m in re.finditer(r"^\d+: ([^:@]+)", ip_links, re.M)
                     if m.group(1).startswith(prefix)]
            if ctrs or links:
                left[host] = (len(ctrs), links)
        return left

    def scenario(self, label, doc, inventory, host_names, packing=None):
        """Swap-in, no-change re-run and teardown of ``doc``; returns the row's figures."""
        path = self.write(doc)
        nodes = len(doc["nodes"])
        self.swapped.append((path, inventory))
        t_in, text = self.playbook("experiment", path, inventory, key=(label, "swap-in"))
        rec = self.record(doc)
        states = collections.Counter(n.get("state") for n in rec["nodes"])
        if states.get("booted", 0) != nodes:  # booted: running and plumbed
            raise RuntimeError("%s: after swap-in %s of %d nodes booted (states %s)\n%s"
                               % (label, states.get("booted", 0), nodes, dict(states), text[-5000:]))
        per_host = collections.Counter(n["host"] for n in rec["nodes"])
        if set(per_host) - set(host_names) or (packing and max(per_host.values()) > packing):
            raise RuntimeError("%s: placement %s breaks the inventory %s or packing %s"
                               % (label, dict(per_host), host_names, packing))
        spanning, crossing = lan_figures(rec["plan"])
        self.ping_across(label, rec["plan"])

        t_again, text = self.playbook("experiment", path, inventory, key=(label, "re-run"))
        recap = RECAP.findall(text)
        changed = dict((host, int(ch)) for host, _ok, ch, _u, _f in recap)
        if not recap or any(changed.values()):
            tasks = re.findall(r"^TASK \[([^\]]*)\][^\n]*\n(?:(?!TASK \[)[^\n]*\n)*?changed: \[([^\]]*)\]", text, re.M)
            raise RuntimeError("%s: the no-change re-run changed something: %s; tasks: %s\n%s"
                               % (label, changed, sorted(set(tasks)), text[-3000:]))

        t_down, text = self.playbook("teardown", path, inventory, key=(label, "teardown"))
        left = self.host_leftovers(doc, host_names)
        if left:
            raise RuntimeError("%s: teardown left containers/links: %s" % (label, left))
        self.swapped.remove((path, inventory))
        return {"label": label, "nodes": nodes, "lans": len(doc["lans"]), "swap-in": t_in, "re-run": t_again,
                "teardown": t_down, "per_host": [per_host.get(h, 0) for h in host_names],
                "spanning": spanning, "crossing": crossing}

    def ping_across(self, label, plan):
        """Two members of the first LAN that spans hosts, on different hosts, ping (VXLAN)."""
        for lan_name, lan in plan["lans"].items():
            if len(lan["hosts"]) < 2:
                continue
            src = next(m for m in lan["members"] if plan["nodes"][m]["host"] == lan["hosts"][0])
            dst = next(m for m in lan["members"] if plan["nodes"][m]["host"] == lan["hosts"][1])
            address = next(i["address"] for i in plan["nodes"][dst]["interfaces"] if i["lan"] == lan_name)
            proc = self.sim.exec(lan["hosts"][0], "docker", "exec", plan["nodes"][src]["container"],
                                 "ping", "-c", "2", "-W", "2", "-i", "0.3", address, check=False)
            if proc.returncode != 0:
                raise RuntimeError("%s: %s (%s) cannot ping %s (%s, %s) over %s:\n%s%s" % (
                    label, src, lan["hosts"][0], dst, lan["hosts"][1], address, lan_name, proc.stdout, proc.stderr))
            return

    def cleanup(self):
        """Best effort: tears down what a failed scenario may have left (the whole inventory)."""
        for path, _inventory in list(self.swapped):
            try:
                _secs, text = self.playbook("teardown", path, self.sim.inventory, check=False)
                if "failed=0" not in text or re.search(r"failed=[1-9]", text):
                    out("cleanup: teardown of %s did not finish cleanly:\n%s" % (path, text[-3000:]))
            except Exception as exc:  # keep cleaning: the hosts go next anyway
                out("cleanup: teardown of %s failed: %s" % (path, exc))


def print_planning(p):
    out("")
    out("planning (pure Python, %d runs): %d nodes on %d LANs of %d on %d hosts, max_nodes %d each"
        % (len(p["make_plan"]), p["nodes"], p["lans"], p["size"], p["hosts"], p["cap"]))
    out("%-32s %9s %9s" % ("step", "best s", "median s"))
    for key, label in (("make_plan", "plan.make_plan (whole plan)"), ("place", "placement.place alone")):
        out("%-32s %9.3f %9.3f" % (label, min(p[key]), statistics.median(p[key])))
    out("placement: %d hosts used; %d LANs span hosts; %d LAN attachments cross hosts (of %d)"
        % (p["hosts_used"], p["spanning"], p["crossing"], p["nodes"]))
    verdict = "under" if statistics.median(p["make_plan"]) < 2 else "OVER"
    out("target: 5,000 nodes / 25 hosts planned in under 2 s: %s (median %.3f s)"
        % (verdict, statistics.median(p["make_plan"])))


def print_rows(rows, warmup):
    out("")
    if warmup:
        out("warm-up (first contact, %d node(s), one per host): swap-in %.1f s, teardown %.1f s"
            % (warmup["nodes"], warmup["swap-in"], warmup["teardown"]))
    out("%-16s %6s %5s %9s %9s %9s %9s %9s %9s  %s" % (
        "scenario", "nodes", "LANs", "swap-in s", "ms/node", "re-run s", "ms/node", "teardown", "ms/node",
        "per host / spanning LANs / crossing"))
    for r in rows:
        n = r["nodes"]
        out("%-16s %6d %5d %9.1f %9.0f %9.1f %9.0f %9.1f %9.0f  %s / %d / %d" % (
            r["label"], n, r["lans"], r["swap-in"], 1000 * r["swap-in"] / n, r["re-run"], 1000 * r["re-run"] / n,
            r["teardown"], 1000 * r["teardown"] / n, "+".join(str(c) for c in r["per_host"]), r["spanning"],
            r["crossing"]))
    if len(rows) == 2:
        a, b = rows
        out("H hosts / 1 host: swap-in x%.2f for x%.1f the nodes (%.0f vs %.0f ms per node); teardown x%.2f"
            % (b["swap-in"] / a["swap-in"], b["nodes"] / a["nodes"], 1000 * b["swap-in"] / b["nodes"],
               1000 * a["swap-in"] / a["nodes"], b["teardown"] / a["teardown"]))


def print_tasks(tasks):
    """Per scenario and phase: the playbook's wall time and the tasks that took 0.5 s or more."""
    for (label, phase), (seconds, rows) in tasks.items():
        out("")
        out("tasks of %s, %s (playbook %.1f s; tasks %.1f s; the rest is Ansible start-up):"
            % (label, phase, seconds, sum(r[2] for r in rows)))
        for play, task, secs in rows:
            if secs >= 0.5:
                out("  %6.1f s  %s | %s" % (secs, play, task))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--nodes-per-host", type=int, default=40, help="N, nodes per host (default 40)")
    parser.add_argument("--hosts", type=int, default=3, help="H, simulated hosts (default 3)")
    parser.add_argument("--lan-size", type=int, default=None,
                        help="members per LAN (default: about 10, a size that does not divide N)")
    parser.add_argument("--plan-nodes", type=int, default=5000, help="nodes of the planning benchmark (5000)")
    parser.add_argument("--plan-hosts", type=int, default=25, help="hosts of the planning benchmark (25)")
    parser.add_argument("--plan-max-nodes", type=int, default=200, help="max_nodes per host there (200)")
    parser.add_argument("--plan-repeat", type=int, default=3, help="runs of each planning step (3)")
    parser.add_argument("--balanced", action="store_true",
                        help="no packing in the H-host scenario: the default placement spreads the nodes by capacity")
    parser.add_argument("--extra-nodes", type=int, default=0,
                        help="nodes added to the H-host scenario (1 with --hosts 10 --nodes-per-host 50: the issue's 501)")
    parser.add_argument("--tasks", action="store_true",
                        help="time each Ansible task (a callback plugin) and print where each phase goes")
    parser.add_argument("--plan-only", action="store_true", help="only the planning benchmark (no Docker)")
    parser.add_argument("--prefix", default=PREFIX, help="simulated hosts' name prefix (default %(default)s)")
    parser.add_argument("--subnet", default=SUBNET, help="their network (default %(default)s)")
    args = parser.parse_args(argv)
    if args.nodes_per_host < 1 or args.hosts < 1 or args.plan_repeat < 1:
        parser.error("--nodes-per-host, --hosts and --plan-repeat must be at least 1")
    if args.plan_nodes > args.plan_hosts * args.plan_max_nodes:
        parser.error("--plan-nodes must fit --plan-hosts x --plan-max-nodes")
    if not args.plan_only and os.geteuid() != 0:
        parser.error("run as root (Docker-in-Docker hosts)")

    # SIGTERM runs the finally clauses like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    planning = bench_planning(args)
    print_planning(planning)
    if args.plan_only:
        return 0

    n, h = args.nodes_per_host, args.hosts
    size = args.lan_size or lan_size(n)
    timeout = max(900, 20 * n * h)
    workdir = tempfile.mkdtemp(prefix="tb-bench-multihost-")
    rows, warmup, tasks = [], None, None
    failed = True
    out("")
    out("bench: %d simulated host(s) %s*, %d nodes per host on LANs of %d, image %s, records %s"
        % (h, args.prefix, n, size, IMAGE, workdir))
    t0 = time.perf_counter()
    try:
        with simhosts.simulated_hosts(n=h, name_prefix=args.prefix, subnet=args.subnet, images=(IMAGE,)) as sim:
            out("hosts up in %.1f s (%s)" % (time.perf_counter() - t0, json.dumps(sim.timings)))
            bench = Bench(sim, workdir, timeout, args.tasks)
            try:
                doc = experiment_doc("warmup", h, 1, packing=1)
                path = bench.write(doc)
                bench.swapped.append((path, sim.inventory))
                t_in, _text = bench.playbook("experiment", path, sim.inventory)
                t_down, _text = bench.playbook("teardown", path, sim.inventory)
                bench.swapped.remove((path, sim.inventory))
                warmup = {"nodes": h, "swap-in": t_in, "teardown": t_down}

                rows.append(bench.scenario("1 host x %d" % n, experiment_doc("one", n, size, packing=n),
                                           bench.one_host_inventory, sim.names[:1], packing=n))
                if h > 1:
                    packing = None if args.balanced else n
                    label = "%d hosts x %d%s" % (h, n, " (balanced)" if args.balanced else "")
                    rows.append(bench.scenario(label, experiment_doc("multi", n * h + args.extra_nodes, size,
                                                                     packing=packing),
                                               sim.inventory, sim.names, packing=packing))
                tasks = bench.tasks
                failed = False
            finally:
                # A second Ctrl-C or SIGTERM must not cut the cleanup short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                bench.cleanup()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if failed:
            out("bench: FAILED (cleaned up)")

    print_rows(rows, warmup)
    out("checks: every node booted (running and plumbed) after swap-in; a ping across hosts over a "
        "spanning LAN; re-run changed=0 on every host; after teardown no "
        "container labelled %s=%s and no link with the experiment's prefix on any host"
        % (names.LABEL_PROJECT, PROJECT))
    if tasks:
        print_tasks(tasks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
