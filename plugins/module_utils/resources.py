# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the nodes of a host use of its CPUs and memory, read from their cgroups.

``docker stats`` takes about two seconds per container (it waits for two of the engine's own
samples); a slice of 200 nodes would take minutes.  The kernel keeps the same counters in each
container's cgroup: a node's cgroup directories are found from ``/proc/PID/cgroup`` and the
host's cgroup mounts (``/proc/self/mountinfo``), then every node is read twice, the two readings
``SAMPLE_SECONDS`` apart for all nodes at once, and the CPU use is the CPU time between them
over the wall time.  Both cgroup versions: v1 (``cpuacct.usage``, ``memory.usage_in_bytes``,
``cpu.cfs_quota_us``, one hierarchy per controller) and v2 (``cpu.stat`` usage_usec,
``memory.current``, ``cpu.max``, one hierarchy).  Memory is counted as ``docker stats`` counts
it: the usage without the inactive page cache (``inactive_file`` of memory.stat).

The parsing and the arithmetic are pure (tests/unit/test_resources.py); the reads go through
an injected ``read`` so the same code runs on recorded files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

CGROUP_ROOT = "/sys/fs/cgroup"
SAMPLE_SECONDS = 0.5
# cgroup v1 writes "no limit" as the largest page-aligned counter (9223372036854771712)
UNLIMITED = 1 << 62


def parse_mountinfo(text):
    """The cgroup mounts of a mountinfo text: [{"root", "point", "version", "controllers"}],
    ``root`` the directory of the hierarchy mounted there (not ``/`` inside a container)."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        options = set(tail[2].split(","))
        mounts.append({"root": _unescape(fields[3]), "point": _unescape(fields[4]),
                       "version": 2 if tail[0] == "cgroup2" else 1,
                       "controllers": set() if tail[0] == "cgroup2" else options - {"rw", "ro"}})
    return mounts


def _unescape(path):
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


def _mounted_dir(mount, path):
    """The directory of cgroup ``path`` (as /proc/PID/cgroup names it) under ``mount``."""
    root = mount["root"].rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return os.path.join(mount["point"], path.lstrip("/")).rstrip("/")


def cgroup_dirs(proc_cgroup, mounts):
    """The directories a process's usage is read from: {"version": 1 or 2, "cpuacct", "cpu",
    "memory", "pids"} (a controller the host does not mount is left out).  v1 controllers are
    read where a v1 hierarchy has them, else from the v2 one (the hybrid layout)."""
    dirs, unified = {}, None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hid, controllers, path = parts
        if controllers == "":
            unified = path
            continue
        listed = set(controllers.split(","))
        mount = next((m for m in mounts if m["version"] == 1 and listed & m["controllers"]), None)
        for controller in ("cpuacct", "cpu", "memory", "pids"):
            if mount is not None and controller in listed:
                dirs.setdefault(controller, _mounted_dir(mount, path))
    v2 = [m for m in mounts if m["version"] == 2]
    if not dirs and unified is not None and v2:
        # cgroup v2 alone: every controller in one directory (the v2 mount at CGROUP_ROOT first)
        mount = sorted(v2, key=lambda m: m["point"] != CGROUP_ROOT)[0]
        directory = _mounted_dir(mount, unified)
        return {"version": 2, "cpuacct": directory, "cpu": directory, "memory": directory, "pids": directory}
    if dirs:
        dirs["version"] = 1
    return dirs


def _number(text):
    """A cgroup value: an int, or None for "max" / -1 / v1's "unlimited"."""
    text = text.strip()
    if text in ("max", "", "-1"):
        return None
    value = int(text)
    return None if value >= UNLIMITED else value


def _stat(text, key):
    for line in text.splitlines():
        name, _sep, value = line.partition(" ")
        if name == key:
            return int(value)
    return None


def read_usage(dirs, read):
    """One reading of a node's cgroup: {"cpu_ns", "memory_bytes", "memory_limit", "cpus_limit",
    "pids", "pids_limit"}; ``read(path)`` returns a file's text.  OSError when the node's
    cgroup is gone (it stopped)."""
    usage = {}
    if dirs.get("version") == 2:
        base = dirs["memory"]
        usage["cpu_ns"] = (_stat(read(os.path.join(base, "cpu.stat")), "usage_usec") or 0) * 1000
        current, limit = read(os.path.join(base, "memory.current")), read(os.path.join(base, "memory.max"))
        inactive = _stat(_read_or(read, os.path.join(base, "memory.stat")), "inactive_file")
        quota = _read_or(read, os.path.join(base, "cpu.max"), "max").split()
        cpus = None if not quota or quota[0] == "max" else int(quota[0]) / float(quota[1] if len(quota) > 1 else 100000)
    else:
        usage["cpu_ns"] = int(read(os.path.join(dirs["cpuacct"], "cpuacct.usage")))
        base = dirs["memory"]
        current, limit = read(os.path.join(base, "memory.usage_in_bytes")), read(os.path.join(base, "memory.limit_in_bytes"))
        inactive = _stat(_read_or(read, os.path.join(base, "memory.stat")), "total_inactive_file")
        quota = _number(_read_or(read, os.path.join(dirs.get("cpu", base), "cpu.cfs_quota_us"), "-1"))
        period = _number(_read_or(read, os.path.join(dirs.get("cpu", base), "cpu.cfs_period_us"), "100000"))
        cpus = quota / float(period) if quota and period else None
    used = int(current)
    usage["memory_bytes"] = used - inactive if inactive is not None and inactive <= used else used
    usage["memory_limit"] = _number(limit)
    usage["cpus_limit"] = round(cpus, 3) if cpus else None
    pids_dir = dirs.get("pids")
    usage["pids"] = _number(_read_or(read, os.path.join(pids_dir, "pids.current"), "")) if pids_dir else None
    usage["pids_limit"] = _number(_read_or(read, os.path.join(pids_dir, "pids.max"), "")) if pids_dir else None
    return usage


def _read_or(read, path, default=""):
    try:
        return read(path)
    except (IOError, OSError):
        return default


def cpu_percent(first_ns, second_ns, seconds):
    """CPU use between two readings, in percent of one CPU (as ``docker stats``: 150 is one and
    a half CPUs); None when the counter went back (a restarted node) or no time passed."""
    if seconds <= 0 or second_ns < first_ns:
        return None
    return round((second_ns - first_ns) / (seconds * 1e9) * 100, 1)


def node_resources(first, second, seconds):
    """The status entry's ``resources`` from two readings ``seconds`` apart."""
    return {"cpu_percent": cpu_percent(first["cpu_ns"], second["cpu_ns"], seconds),
            "memory_bytes": second["memory_bytes"], "memory_limit": second["memory_limit"],
            "cpus_limit": second["cpus_limit"], "pids": second["pids"], "pids_limit": second["pids_limit"]}


def format_bytes(value):
    """Bytes in Docker's units (powers of 1024), as short as exact: ``256m``, ``1g``, ``1.5g``."""
    for unit, size in (("g", 1024 ** 3), ("m", 1024 ** 2), ("k", 1024)):
        if value >= size:
            text = "%.1f" % (value / float(size))
            return (text[:-2] if text.endswith(".0") else text) + unit
    return "%db" % value


def read_text(path):
    with open(path) as f:
        return f.read()


def sample(pids, seconds=SAMPLE_SECONDS, read=read_text, sleep=time.sleep, clock=time.monotonic):
    """node -> its ``resources`` (node_resources), for ``pids`` (node -> the pid of its main
    process): every node read, one pause of ``seconds``, every node read again.  A node whose
    cgroup cannot be read (it stopped meanwhile) is left out."""
    if not pids:
        return {}
    mounts = parse_mountinfo(_read_or(read, "/proc/self/mountinfo"))
    dirs, first = {}, {}
    for node, pid in pids.items():
        try:
            dirs[node] = cgroup_dirs(read("/proc/%d/cgroup" % pid), mounts)
            first[node] = read_usage(dirs[node], read)
        except (IOError, OSError, ValueError, KeyError):
            continue
    started = clock()
    sleep(seconds)
    elapsed = clock() - started
    result = {}
    for node in first:
        try:
            result[node] = node_resources(first[node], read_usage(dirs[node], read), elapsed)
        except (IOError, OSError, ValueError, KeyError):
            continue
    return result


def blkio_weight_problem(mounts, read=read_text, exists=os.path.exists, listdir=os.listdir):
    """Why the Docker engine cannot give nodes a ``blkio_weight`` on this host (None: it can),
    decided as the engine decides it.  cgroup v1: Docker sets only ``blkio.weight`` (CFQ's,
    gone from Linux since 5.0) and, without that file at the root of the blkio hierarchy, drops
    the weight with a warning (BFQ's ``blkio.bfq.weight`` it does not use).  cgroup v2: it needs
    the io controller, and runc then writes ``io.bfq.weight`` (BFQ) or ``io.weight`` (blk-iocost)."""
    unified = [m for m in mounts if m["version"] == 2 and m["point"] == CGROUP_ROOT]
    if unified:
        controllers = _read_or(read, os.path.join(CGROUP_ROOT, "cgroup.controllers")).split()
        if "io" not in controllers:
            return ("cgroup v2 without the io controller (%s/cgroup.controllers: %s)"
                    % (CGROUP_ROOT, " ".join(controllers) or "empty"))
        with_io = []
        for name in sorted(_listdir_or(listdir, CGROUP_ROOT)):
            directory = os.path.join(CGROUP_ROOT, name)
            if exists(os.path.join(directory, "io.max")):
                with_io.append(directory)
                if exists(os.path.join(directory, "io.bfq.weight")) or exists(os.path.join(directory, "io.weight")):
                    return None
        if with_io:
            return ("cgroup v2 with neither io.bfq.weight (the BFQ scheduler) nor io.weight (blk-iocost) in %s: runc "
                    "could not start a node with a weight" % with_io[0])
        return None
    blkio = [m for m in mounts if m["version"] == 1 and "blkio" in m["controllers"]]
    if not blkio:
        return "no blkio cgroup is mounted (cgroup v1 without the blkio controller)"
    weight = os.path.join(blkio[0]["point"], "blkio.weight")
    if exists(weight):
        return None
    bfq = " (BFQ's blkio.bfq.weight, which Docker does not use, is there)" if \
        exists(os.path.join(blkio[0]["point"], "blkio.bfq.weight")) else ""
    return ("cgroup v1 without %s, the only weight Docker sets on cgroup v1 (CFQ's, removed from Linux in 5.0)%s: "
            "the engine would drop the weight with a warning" % (weight, bfq))


def _listdir_or(listdir, path):
    try:
        return listdir(path)
    except (IOError, OSError):
        return []


def host_blkio_weight_problem():
    """blkio_weight_problem on this host's own cgroup mounts."""
    return blkio_weight_problem(parse_mountinfo(_read_or(read_text, "/proc/self/mountinfo")))
