# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host agent: re-plumbs a node when its container starts again.

A container restart (``docker restart``, a crash under the restart policy, dockerd restarting,
``reboot`` inside an augmented node) gives the node a new network namespace: its experiment
veths, addresses, routes and shaping are gone, its control veth has a new name (so the
anti-spoofing rules are stale), and the ready marker in its tmpfs is cleared.  Emulab
subscribes to Docker's event stream for this; so does the agent: on every ``start`` of a node
container it runs the same per-node convergence as the slice module (``Slice.reconverge``),
under the experiment's lock, from the host's record of the slice.

It runs as a plain process (``host_agent`` starts it detached, with a pid file), from a copy of
this package kept under the host dir, so it needs no Ansible at run time.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sys
import threading
import time
import traceback

from ansible_collections.testbed.containers.plugins.module_utils import control, engine, files, names
from ansible_collections.testbed.containers.plugins.module_utils import slice as slice_mod


def log(message):
    sys.stdout.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), message))
    sys.stdout.flush()


def record_of(cfg, project, name, node):
    """The host's record of the slice holding ``node``, found through the host's allocations."""
    entry = control.load_state(cfg)["nodes"].get(control.node_key(project, name, node)) or {}
    path = entry.get("record")
    if not path:
        return None, None
    try:
        with open(path) as f:
            return json.load(f), path
    except (IOError, OSError, ValueError):
        return None, None


def reconverge(cfg, project, name, nodes):
    record, path = record_of(cfg, project, name, nodes[0])
    if record is None:
        log("%s/%s: no record on this host, nothing to do" % (project, name))
        return []
    state_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(path))))
    slice_ = slice_mod.Slice(record["plan"], record["host"], state_dir, control_settings=cfg,
                             public_address=record.get("public_address"))
    return slice_.reconverge(nodes)


def handle(cfg, started):
    """Re-plumb the started nodes, one call per experiment: ``started`` is a list of
    (project, name, node)."""
    groups = {}
    for project, name, node in started:
        groups.setdefault((project, name), [])
        if node not in groups[(project, name)]:
            groups[(project, name)].append(node)
    for (project, name), nodes in sorted(groups.items()):
        try:
            ops = reconverge(cfg, project, name, nodes)
            log("%s/%s %s started: %s" % (project, name, ",".join(nodes), "; ".join(ops) or "nothing to do"))
        except Exception:  # the agent keeps serving the other experiments
            log("%s/%s: re-plumbing %s failed:\n%s" % (project, name, ",".join(nodes), traceback.format_exc()))


def recorded_nodes(cfg):
    """(project, name, node) of every node the host has an allocation for."""
    return [tuple(key.split("/")) for key in sorted(control.load_state(cfg)["nodes"])]


def catch_up(cfg):
    """Converge every recorded node now (used by tests and at the agent's first start)."""
    handle(cfg, recorded_nodes(cfg))


def _worker(cfg, pending):
    """Batches the starts: a swap-in starts many nodes at once, and the slice module, which
    holds the experiment's lock meanwhile, has plumbed them itself; one pass afterwards
    finds that out for all of them."""
    while True:
        batch = [pending.get()]
        time.sleep(BATCH_SECONDS)
        while not pending.empty():
            batch.append(pending.get())
        handle(cfg, batch)


BATCH_SECONDS = 0.3
RECONNECT_SECONDS = 1


def run(cfg):
    """Watch container starts and re-plumb the nodes that started.

    Every (re)subscription to the event stream is followed by a pass over every recorded node:
    what started while nobody listened (before the agent ran, or while dockerd restarted and
    brought its containers back before its API answered) is caught up; the subscription comes
    first, so a start is never missed between the two.
    """
    import queue
    log("testbed agent %d watching container starts" % os.getpid())
    pending = queue.Queue()
    threading.Thread(target=_worker, args=(cfg, pending), daemon=True).start()
    lost = False
    while True:
        try:
            cli = engine.client()
            events = cli.events(decode=True, filters={
                "type": "container", "event": "start", "label": names.LABEL_PROJECT})
            if lost:
                log("event stream back: catching up with every recorded node")
            for key in recorded_nodes(cfg):
                pending.put(key)
            for event in events:
                attrs = (event.get("Actor") or {}).get("Attributes") or {}
                key = (attrs.get(names.LABEL_PROJECT), attrs.get(names.LABEL_EXPERIMENT), attrs.get(names.LABEL_NODE))
                if all(key):
                    pending.put(key)
            if not lost:
                log("event stream ended (dockerd stopped?): waiting for the engine")
        except Exception as exc:  # dockerd restarting: subscribe again, then catch up
            if not lost:
                log("event stream lost (%s): waiting for the engine" % exc)
        lost = True
        time.sleep(RECONNECT_SECONDS)


def watch_parent(cfg, python):
    """The agent's half of the mutual supervision: when its supervisor dies (SIGKILL), start a
    new one, which starts a new agent, and leave."""
    parent = os.getppid()
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            log("supervisor %d is gone: starting a new one" % parent)
            start_supervisor(cfg, python)
            os._exit(0)


PARENT_POLL_SECONDS = 0.5


def main():
    args = sys.argv[1:]
    supervise_mode = bool(args) and args[0] == "supervise"
    if supervise_mode:
        args = args[1:]
    cfg = control.settings(json.loads(args[0]) if args else None)
    if supervise_mode:
        supervise(cfg, sys.executable)
    else:
        if os.environ.get(SUPERVISED_ENV):
            threading.Thread(target=watch_parent, args=(cfg, sys.executable), daemon=True).start()
        run(cfg)


# --- installing and starting the agent (called by the host_agent module) ------------------------

PACKAGE = "ansible_collections.testbed.containers.plugins.module_utils"
MODULES = ("agent", "augment", "control", "defaults", "engine", "files", "firewall", "images", "names", "netlink",
           "planned", "preflight", "resources", "services", "shape", "shaping", "shaping_requests", "slice", "units")
BOOTSTRAP = ("import sys; sys.path.insert(0, %r); "
             "from ansible_collections.testbed.containers.plugins.module_utils import agent; agent.main()")


def agent_dir(cfg):
    return os.path.join(cfg["host_dir"], "agent")


def _sources():
    import importlib
    sources = {}
    for name in MODULES:
        fq = "%s.%s" % (PACKAGE, name)
        module = importlib.import_module(fq)
        sources[name] = module.__loader__.get_source(fq)
    return sources


# --- supervision ---------------------------------------------------------------------------
# The agent runs under a small supervisor of its own (a host may have no service manager: our
# simulated hosts and many testbed images run none): the supervisor restarts the agent when it
# exits or is killed, and the agent starts a new supervisor when the supervisor is killed.
# Killing both at once leaves it to the next swap-in (the host role starts it again).
SUPERVISED_ENV = "TESTBED_AGENT_SUPERVISED"
RESTART_MIN_SECONDS = 0.5
RESTART_MAX_SECONDS = 10
STABLE_SECONDS = 60


def _read_pid(path):
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if b"testbed" not in f.read():
                return None
        return pid
    except (IOError, OSError, ValueError):
        return None


def agent_pid(cfg):
    """The agent's process id (not its supervisor's), or None."""
    return _read_pid(os.path.join(agent_dir(cfg), "agent.pid"))


def supervisor_pid(cfg):
    return _read_pid(os.path.join(agent_dir(cfg), "supervisor.pid"))


def _command(cfg, python, *mode):
    return [python, "-c", BOOTSTRAP % os.path.join(agent_dir(cfg), "lib")] + list(mode) + \
        [json.dumps(cfg, sort_keys=True)]


def start_supervisor(cfg, python):
    """Start the supervisor detached (its own session); returns its Popen."""
    import subprocess
    base = agent_dir(cfg)
    with open(os.path.join(base, "agent.log"), "a") as logfile:
        return subprocess.Popen(_command(cfg, python, "supervise"), stdin=subprocess.DEVNULL, stdout=logfile,
                                stderr=subprocess.STDOUT, close_fds=True, start_new_session=True, cwd=base)


def _write_pid(path, pid):
    files.atomic_write(path, "%d\n" % pid, durable=False)


def supervise(cfg, python):
    """Run the agent and restart it whenever it exits (backing off when it keeps dying); stop
    it and leave on SIGTERM."""
    import signal
    import subprocess
    base = agent_dir(cfg)
    _write_pid(os.path.join(base, "supervisor.pid"), os.getpid())
    state = {"stopping": False, "child": None}

    def on_term(_signum, _frame):
        state["stopping"] = True
        child = state["child"]
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    log("supervisor %d started" % os.getpid())
    delay = RESTART_MIN_SECONDS
    while not state["stopping"]:
        started = time.time()
        child = subprocess.Popen(_command(cfg, python), stdin=subprocess.DEVNULL, close_fds=True, cwd=base,
                                 env=dict(os.environ, **{SUPERVISED_ENV: "1"}))
        state["child"] = child
        _write_pid(os.path.join(base, "agent.pid"), child.pid)
        code = child.wait()
        if state["stopping"]:
            break
        delay = RESTART_MIN_SECONDS if time.time() - started > STABLE_SECONDS else min(delay * 2, RESTART_MAX_SECONDS)
        log("supervisor: agent %d exited with status %s; restarting it in %.1f s" % (child.pid, code, delay))
        time.sleep(delay)
    log("supervisor %d stopped" % os.getpid())
    for name in ("agent.pid", "supervisor.pid"):
        try:
            os.unlink(os.path.join(base, name))
        except OSError:
            pass


def running_processes(cfg):
    """(supervisor pids, agent pids) of every process running this host dir's agent code, pid
    files or not (a supervisor an earlier race left behind is found too)."""
    marker = ("sys.path.insert(0, %r)" % os.path.join(agent_dir(cfg), "lib")).encode("utf-8")
    supervisors, agents = [], []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except (IOError, OSError):
            continue
        if any(marker in arg for arg in argv):
            (supervisors if b"supervise" in argv else agents).append(int(entry))
    return supervisors, agents


def stop(cfg):
    """Stop every supervisor (each stops its agent), then any agent left without one."""
    import signal
    ops = []
    supervisors, _agents = running_processes(cfg)
    for what, pids in (("supervisor", supervisors), ("agent", None)):
        if pids is None:
            pids = running_processes(cfg)[1]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                continue
            for _attempt in range(50):
                if not os.path.exists("/proc/%d" % pid):
                    break
                time.sleep(0.1)
            ops.append("stop %s %d" % (what, pid))
    return ops


def ensure_running(cfg, python, dry_run=False):
    """The agent runs, supervised, the code of this collection version with these settings;
    returns the ops.  One call at a time per host (ten swap-ins at once each call it)."""
    import fcntl
    os.makedirs(agent_dir(cfg), exist_ok=True)
    fd = os.open(os.path.join(agent_dir(cfg), "agent.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return _ensure_running(cfg, python, dry_run)
    finally:
        os.close(fd)


def _ensure_running(cfg, python, dry_run=False):
    import hashlib
    sources = _sources()
    settings_json = json.dumps(cfg, sort_keys=True)
    version = hashlib.sha256((settings_json + python + "".join(sources[n] for n in MODULES)).encode()).hexdigest()
    base = agent_dir(cfg)
    version_file = os.path.join(base, "version")
    try:
        with open(version_file) as f:
            current = f.read().strip()
    except (IOError, OSError):
        current = None
    running = supervisor_pid(cfg) is not None
    if running and current == version and agent_pid(cfg) is not None and len(running_processes(cfg)[0]) == 1:
        return []
    ops = ["%s host agent (supervised)" % ("restart" if running or agent_pid(cfg) is not None else "start")]
    if dry_run:
        return ops
    stop(cfg)
    package_dir = os.path.join(base, "lib", *PACKAGE.split("."))
    os.makedirs(package_dir, exist_ok=True)
    for name, text in sources.items():
        with open(os.path.join(package_dir, name + ".py"), "w") as f:
            f.write(text)
    proc = start_supervisor(cfg, python)
    # an agent that cannot even import its code dies at once: say so now, not at the next restart
    for _attempt in range(40):
        if proc.poll() is not None:
            with open(os.path.join(base, "agent.log")) as f:
                tail = f.read()[-1500:]
            raise RuntimeError("the agent's supervisor exited at start (status %s); end of %s:\n%s"
                               % (proc.returncode, os.path.join(base, "agent.log"), tail))
        if agent_pid(cfg) is not None:
            break
        time.sleep(0.05)
    with open(version_file, "w") as f:
        f.write(version + "\n")
    return ops


if __name__ == "__main__":
    main()
