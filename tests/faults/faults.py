"""Helpers of the fault tests: wait for a condition, restart the engine, the agent's pids."""
import os
import signal
import subprocess
import time

from helpers import DOCKER, dexec, sh

AGENT_DIR = "/var/lib/testbed/agent"
DOCKERD_LOG = "/var/log/testbed-dockerd.log"


def wait_for(predicate, seconds, step=0.25):
    """Seconds it took for ``predicate()`` to hold, or None after ``seconds``."""
    start = time.time()
    while time.time() - start < seconds:
        if predicate():
            return time.time() - start
        time.sleep(step)
    return None


def read_pid(name):
    try:
        with open(os.path.join(AGENT_DIR, name)) as f:
            pid = int(f.read().strip())
    except (IOError, OSError, ValueError):
        return None
    return pid if os.path.exists("/proc/%d" % pid) else None


def addresses(container, ifname="eth1"):
    return dexec(container, "ip", "-o", "-4", "addr", "show", ifname, check=False).stdout.split("\n")[0] \
        .split("inet ")[-1].split(" ")[0]


def dockerd_pid():
    out = subprocess.run(["pidof", "dockerd"], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
    pids = [int(p) for p in out.split()]
    return pids[0] if pids else None


def restart_dockerd(stop_timeout=60):
    """Stop dockerd as a package upgrade does (SIGTERM, wait) and start it again with the same
    command line; returns when ``docker info`` answers again."""
    pid = dockerd_pid()
    assert pid is not None, "no dockerd process found"
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not os.path.exists("/proc/%d" % pid), stop_timeout) is not None, "dockerd did not stop"
    with open(DOCKERD_LOG, "a") as log:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    assert wait_for(lambda: sh(DOCKER, "info", check=False).returncode == 0, 60) is not None, \
        "dockerd did not answer again within 60 s"
