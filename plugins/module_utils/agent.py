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

from ansible_collections.testbed.containers.plugins.module_utils import control, engine, names
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


def catch_up(cfg):
    """At agent start (e.g. after dockerd restarted): converge every recorded node."""
    handle(cfg, [tuple(key.split("/")) for key in sorted(control.load_state(cfg)["nodes"])])


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


def run(cfg):
    import queue
    log("testbed agent %d watching container starts" % os.getpid())
    catch_up(cfg)
    pending = queue.Queue()
    threading.Thread(target=_worker, args=(cfg, pending), daemon=True).start()
    while True:
        try:
            cli = engine.client()
            since = int(time.time())
            for event in cli.events(decode=True, since=since, filters={
                    "type": "container", "event": "start", "label": names.LABEL_PROJECT}):
                attrs = (event.get("Actor") or {}).get("Attributes") or {}
                key = (attrs.get(names.LABEL_PROJECT), attrs.get(names.LABEL_EXPERIMENT), attrs.get(names.LABEL_NODE))
                if all(key):
                    pending.put(key)
        except Exception:  # dockerd restarting: wait and subscribe again, then catch up
            log("event stream lost:\n%s" % traceback.format_exc())
            time.sleep(2)
            try:
                catch_up(cfg)
            except Exception:
                log("catch-up failed:\n%s" % traceback.format_exc())


def main():
    cfg = control.settings(json.loads(sys.argv[1]) if len(sys.argv) > 1 else None)
    run(cfg)


if __name__ == "__main__":
    main()


# --- installing and starting the agent (called by the host_agent module) ------------------------

PACKAGE = "ansible_collections.testbed.containers.plugins.module_utils"
MODULES = ("agent", "augment", "control", "engine", "firewall", "model", "names", "netlink", "placement", "plan",
           "registry", "report", "services", "shaping", "slice", "units")
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


def agent_pid(cfg):
    try:
        with open(os.path.join(agent_dir(cfg), "agent.pid")) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if b"testbed" not in f.read():
                return None
        return pid
    except (IOError, OSError, ValueError):
        return None


def stop(cfg):
    import signal
    pid = agent_pid(cfg)
    if pid is None:
        return []
    os.kill(pid, signal.SIGTERM)
    for _attempt in range(50):
        if not os.path.exists("/proc/%d" % pid):
            break
        time.sleep(0.1)
    return ["stop agent %d" % pid]


def ensure_running(cfg, python, dry_run=False):
    """The agent runs the code of this collection version with these settings; returns the ops."""
    import hashlib
    import subprocess
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
    pid = agent_pid(cfg)
    if pid is not None and current == version:
        return []
    ops = ["%s host agent" % ("restart" if pid is not None else "start")]
    if dry_run:
        return ops
    stop(cfg)
    package_dir = os.path.join(base, "lib", *PACKAGE.split("."))
    os.makedirs(package_dir, exist_ok=True)
    for name, text in sources.items():
        with open(os.path.join(package_dir, name + ".py"), "w") as f:
            f.write(text)
    logfile = open(os.path.join(base, "agent.log"), "a")
    proc = subprocess.Popen([python, "-c", BOOTSTRAP % os.path.join(base, "lib"), settings_json],
                            stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, close_fds=True,
                            start_new_session=True, cwd=base)
    logfile.close()
    # an agent that cannot even import its code dies at once: say so now, not at the next restart
    for _attempt in range(10):
        if proc.poll() is not None:
            with open(os.path.join(base, "agent.log")) as f:
                tail = f.read()[-1500:]
            raise RuntimeError("the agent exited at start (status %s); end of %s:\n%s"
                               % (proc.returncode, os.path.join(base, "agent.log"), tail))
        time.sleep(0.05)
    with open(os.path.join(base, "agent.pid"), "w") as f:
        f.write("%d\n" % proc.pid)
    with open(version_file, "w") as f:
        f.write(version + "\n")
    return ops
