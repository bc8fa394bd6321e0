# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fidelity report's host side (module node_measure, docs/fidelity.md): ping and iperf3
on one path of a swapped-in measurement experiment, run on the host that holds the client.

Where the tools run: between nodes, in the client node through the engine (``docker exec``), to
the server node's ``iperf3 -s``.  The baseline of two plain network namespaces joined by a veth
pair is made here with pyroute2 (named ``PREFIX na``/``nb`` after the experiment's kernel prefix,
so a leftover is found and removed by :func:`cleanup`) and removed at once.  The hosts' own
path (tunnel address to tunnel address) runs in the host's network namespace.  In both, the
tools are the measurement node's own ping and iperf3: the process enters that node's mount
namespace (and the wanted network namespace) before it starts, so the host needs neither tool
and every path is measured with the same binaries.  Every process started here carries
``TESTBED_FIDELITY=testbed:PROJECT/NAME`` in its environment, which :func:`cleanup` looks for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import ctypes
import os
import signal
import subprocess
import time

from ansible_collections.testbed.containers.plugins.module_utils import engine, fidelity, names, netlink, preflight

try:
    from pyroute2 import netns as pyroute2_netns
except ImportError:  # pragma: no cover - reported by the module
    pyroute2_netns = None

CLONE_NEWNS = 0x00020000
MARKER = "TESTBED_FIDELITY"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# the baseline's addresses (RFC 5737 TEST-NET-1): they exist only inside its two namespaces
BASELINE = (("a", "192.0.2.1"), ("b", "192.0.2.2"))
BASELINE_PREFIXLEN = 30
IPERF3_PORT = 5201
CONNECT_ATTEMPTS = 20      # iperf3 clients retry while the server is not listening yet (or busy)
CONNECT_PAUSE = 0.25
SERVER_GRACE = 0.5         # seconds a started server has to fail (address in use) before it counts as up
WARMUP = 3                 # pings before the measured ones: ARP and caches, not counted
TOOL_MARGIN = 15           # seconds a tool may take beyond its own duration
KERNEL_CHECKS = ("vxlan",) + tuple(f for path in ("qdisc", "delay") for f in fidelity.NEEDS[path])


class MeasureError(Exception):
    pass


def owner(plan):
    return names.firewall_comment(plan["project"], plan["name"])


def kernel_prefix(plan):
    return plan.get("kernel_prefix") or names.kernel_prefix(plan["project"], plan["name"])


def log_path(plan, what, log_dir="/tmp"):
    """Where a server started here writes its output (cleanup removes these)."""
    return os.path.join(log_dir, "%s-fidelity-%s.log" % (kernel_prefix(plan), what))


def baseline_names(plan):
    """The baseline's network namespaces and veth ends: the experiment's kernel prefix, 'n', a hash."""
    prefix = kernel_prefix(plan)
    return [(prefix + "n" + side, prefix + "n" + names.short_hash("fidelity/veth/" + side, 7), address)
            for side, address in BASELINE]


# --- where a tool runs --------------------------------------------------------------------------
class NodeTools:
    """The tools of a running node, run through the engine as root."""

    def __init__(self, cli, ctr, node):
        self.cli, self.ctr, self.node = cli, ctr, node

    def run(self, argv, timeout=None):
        try:
            return engine.exec_run(self.cli, self.ctr.id, argv)
        except engine.APIError as exc:
            raise MeasureError("%s in node %s: %s" % (argv[0], self.node, engine.describe_error(exc)))


def _setns(libc, fd, nstype):
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class NamespaceTools:
    """A node's tools (its mount namespace) run in another network namespace (a path: the
    baseline's, or None for the host's own)."""

    def __init__(self, pid, node, plan, net_path=None):
        self.node, self.net_path, self.mnt_path = node, net_path, "/proc/%d/ns/mnt" % pid
        self.env = {"PATH": PATH, "HOME": "/root", MARKER: owner(plan)}

    def _enter(self, fds):
        libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: the child only calls it

        def enter():
            for fd, nstype in fds:  # the network namespace first: the mount one changes the root
                _setns(libc, fd, nstype)
        return enter

    @contextlib.contextmanager
    def _fds(self):
        fds = []
        try:
            if self.net_path:
                fds.append((os.open(self.net_path, os.O_RDONLY), netlink.CLONE_NEWNET))
            fds.append((os.open(self.mnt_path, os.O_RDONLY), CLONE_NEWNS))
            yield fds
        except OSError as exc:
            raise MeasureError("cannot open the namespaces of %s: %s" % (self.where(), exc))
        finally:
            for fd, _nstype in fds:
                os.close(fd)

    def where(self):
        return "node %s's tools in %s" % (self.node, self.net_path or "the host's network namespace")

    def run(self, argv, timeout=None):
        with self._fds() as fds:
            try:
                proc = subprocess.run(argv, env=self.env, preexec_fn=self._enter(fds), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                      timeout=timeout, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                raise MeasureError("%s with %s: %s" % (argv[0], self.where(), exc))
        return proc.returncode, proc.stdout

    def spawn(self, argv, log_file):
        """Start a long-running tool (a server) in its own session; its output goes to ``log_file``."""
        with self._fds() as fds, open(log_file, "w") as log:
            try:
                return subprocess.Popen(argv, env=self.env, preexec_fn=self._enter(fds), stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
            except (OSError, subprocess.SubprocessError) as exc:
                raise MeasureError("%s with %s: %s" % (argv[0], self.where(), exc))


# --- the tools ----------------------------------------------------------------------------------
def ping(tools, address, count, interval):
    """RTT statistics of ``count`` pings ``interval`` seconds apart, after a few unmeasured ones."""
    numeric = ["-n"]  # iputils: no reverse lookups; busybox has no -n and never looks names up
    rc, out = tools.run(["ping"] + numeric + ["-c", str(WARMUP), "-i", "0.2", "-w", "5", address], timeout=TOOL_MARGIN)
    if "invalid option" in out or "unrecognized option" in out:
        numeric = []
        rc, out = tools.run(["ping", "-c", str(WARMUP), "-i", "0.2", "-w", "5", address], timeout=TOOL_MARGIN)
    deadline = int(count * interval) + 5
    rc, out = tools.run(["ping"] + numeric + ["-c", str(count), "-i", str(interval), "-w", str(deadline), address],
                        timeout=deadline + TOOL_MARGIN)
    parsed = fidelity.parse_ping(out)
    if not parsed["samples"]:
        raise MeasureError("no reply to ping %s (exit %s): %s" % (address, rc, fidelity.tail(out) or "no output"))
    return fidelity.rtt_summary(parsed)


def iperf3_client(tools, address, seconds, port=IPERF3_PORT):
    """TCP throughput to an iperf3 server, retried while it is not listening yet or busy."""
    argv = ["iperf3", "-c", address, "-p", str(port), "-t", str(seconds), "-J", "--connect-timeout", "3000"]
    for attempt in range(CONNECT_ATTEMPTS):
        _rc, out = tools.run(argv, timeout=seconds + TOOL_MARGIN)
        try:
            return fidelity.parse_iperf3(out)
        except fidelity.FidelityError as exc:
            text = str(exc)[len("iperf3: "):] if str(exc).startswith("iperf3: ") else str(exc)
            if not ("refused" in text or "busy" in text) or attempt == CONNECT_ATTEMPTS - 1:
                raise MeasureError("iperf3 to %s:%d: %s" % (address, port, text))
        time.sleep(CONNECT_PAUSE)
    raise MeasureError("iperf3 to %s:%d: no result" % (address, port))  # pragma: no cover


def start_server(tools, address, port, log_file):
    """An iperf3 server on ``address``; fails with its own words when it does not stay up."""
    proc = tools.spawn(["iperf3", "-s", "-B", address, "-p", str(port)], log_file)
    time.sleep(SERVER_GRACE)
    if proc.poll() is not None:
        with open(log_file) as f:
            raise MeasureError("iperf3 server on %s:%d with %s exited at once: %s"
                               % (address, port, tools.where(), fidelity.tail(f.read()) or "no output"))
    return proc


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- the measurement of one path ----------------------------------------------------------------
class HostMeasure:
    """Measures the paths of the fidelity experiment whose client is on this host."""

    def __init__(self, plan, host, count=200, interval=0.01, seconds=3, port=IPERF3_PORT, log_dir="/tmp"):
        self.plan, self.host = plan, host
        self.count, self.interval, self.seconds, self.port, self.log_dir = count, interval, seconds, port, log_dir
        self.cli = engine.client()
        self.nodes = engine.list_nodes(self.cli, plan["project"], plan["name"])

    def _node(self, node):
        ctr = self.nodes.get(node)
        pid = engine.container_pid(ctr) if ctr is not None else None
        if pid is None:
            raise MeasureError("node %s of %s/%s is not running on host %s (swapped in? status.yml)"
                               % (node, self.plan["project"], self.plan["name"], self.host))
        return ctr, pid

    def measure(self, item):
        """The item's result: the item with its address, ``rtt`` and ``tcp``, or its ``error``."""
        result = dict(item, address=None, rtt=None, tcp=None, error=None)
        if item.get("skipped"):
            return result
        try:
            if item["path"] == "netns":
                result.update(self._baseline(item))
            else:
                result["address"] = fidelity.target_address(self.plan, item)
                if item["path"] == "hosts":
                    _ctr, pid = self._node(item["tools"])
                    tools = NamespaceTools(pid, item["tools"], self.plan)
                    port = self.port
                else:
                    ctr, _pid = self._node(item["client"])
                    tools, port = NodeTools(self.cli, ctr, item["client"]), IPERF3_PORT
                result["rtt"] = ping(tools, result["address"], self.count, self.interval)
                result["tcp"] = iperf3_client(tools, result["address"], self.seconds, port)
        except (MeasureError, fidelity.FidelityError, netlink.NetworkError) as exc:
            result["error"] = str(exc)
        return result

    def _baseline(self, item):
        _ctr, pid = self._node(item["tools"])
        with baseline(self.plan) as (net_a, net_b, address_b):
            client = NamespaceTools(pid, item["tools"], self.plan, net_a)
            server = start_server(NamespaceTools(pid, item["tools"], self.plan, net_b), address_b, IPERF3_PORT,
                                  log_path(self.plan, "netns", self.log_dir))
            try:
                return {"address": address_b, "rtt": ping(client, address_b, self.count, self.interval),
                        "tcp": iperf3_client(client, address_b, self.seconds)}
            finally:
                stop(server)

    def serve(self, item):
        """The iperf3 server of the hosts' own path on this (the peer) host, on its tunnel address;
        it runs until :func:`cleanup`.  Returns its pid."""
        address = (self.plan.get("tunnels") or {}).get(self.host)
        if not address:
            raise MeasureError("host %s has no tunnel address in the plan (testbed_tunnel_address)" % self.host)
        _ctr, pid = self._node(item["server"])
        tools = NamespaceTools(pid, item["server"], self.plan)
        return start_server(tools, address, self.port, log_path(self.plan, "hosts-%d" % self.port, self.log_dir)).pid


@contextlib.contextmanager
def baseline(plan):
    """Two network namespaces joined by a veth pair, each end up with its address; removed on exit.
    Yields (path of namespace a, path of namespace b, the address in b)."""
    (ns_a, veth_a, address_a), (ns_b, veth_b, address_b) = baseline_names(plan)
    remove_namespaces(plan)
    try:
        for ns in (ns_a, ns_b):
            pyroute2_netns.create(ns)
        with netlink.IPRoute(netns=ns_a, flags=0) as ipr:
            ipr.link("add", ifname=veth_a, kind="veth", peer={"ifname": veth_b, "net_ns_fd": ns_b})
        for ns, veth, address in ((ns_a, veth_a, address_a), (ns_b, veth_b, address_b)):
            with netlink.IPRoute(netns=ns, flags=0) as ipr:
                index = ipr.link_lookup(ifname=veth)[0]
                ipr.link("set", index=index, ifalias=names.alias(plan["project"], plan["name"], "fidelity", ns))
                ipr.addr("add", index=index, address=address, prefixlen=BASELINE_PREFIXLEN)
                ipr.link("set", index=index, state="up")
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    except (OSError, netlink.NetlinkError, netlink.NetworkError) as exc:
        remove_namespaces(plan)
        raise MeasureError(netlink.describe(exc, "baseline namespaces %s, %s" % (ns_a, ns_b)))
    try:
        yield (os.path.join(pyroute2_netns.NETNS_RUN_DIR, ns_a), os.path.join(pyroute2_netns.NETNS_RUN_DIR, ns_b),
               address_b)
    finally:
        remove_namespaces(plan)


def remove_namespaces(plan):
    """Remove the baseline's namespaces (their veth ends go with them); returns the operations."""
    ops = []
    present = pyroute2_netns.listnetns()
    for ns, _veth, _address in baseline_names(plan):
        if ns in present:
            pyroute2_netns.remove(ns)
            ops.append("remove network namespace %s" % ns)
    return ops


def marked_processes(mark):
    """Pids of the processes whose environment carries ``MARKER=mark``."""
    wanted = ("%s=%s" % (MARKER, mark)).encode("utf-8")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                if wanted in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def cleanup(plan, log_dir="/tmp"):
    """Stop the experiment's measurement processes (servers of the hosts' path) and remove the
    baseline's namespaces and logs left on this host; returns the operations."""
    ops = []
    for pid in marked_processes(owner(plan)):
        try:
            os.kill(pid, signal.SIGTERM)
            ops.append("stop measurement process %d" % pid)
        except OSError:
            continue
    for _attempt in range(30):  # gone (or a zombie: no environment) before its port is wanted again
        if not marked_processes(owner(plan)):
            break
        time.sleep(0.1)
    ops.extend(remove_namespaces(plan))
    prefix = "%s-fidelity-" % kernel_prefix(plan)
    for entry in sorted(os.listdir(log_dir)):
        if entry.startswith(prefix) and entry.endswith(".log"):
            os.unlink(os.path.join(log_dir, entry))
            ops.append("remove %s" % os.path.join(log_dir, entry))
    return ops


def probe():
    """The kernel features the fidelity paths need that this host lacks (preflight's names)."""
    try:
        return [feature for feature, _option in preflight.missing_features(list(KERNEL_CHECKS))]
    except preflight.PreflightError as exc:
        raise MeasureError(str(exc))
