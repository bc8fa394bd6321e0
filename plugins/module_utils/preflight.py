# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight of a physical host: does its kernel have what the plan needs?  And the kernel
settings (sysctls) the host role raises for hosts with many nodes.

Each feature is probed by creating a throwaway object of that kind (a module may be built in
or loadable, so /proc/modules proves nothing) and deleting it at once.  Missing features are
reported with the kernel option that provides them, before any node exists.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import ipaddress
import os
import re
import shutil

from ansible_collections.testbed.containers.plugins.module_utils import defaults, engine, files, names, netlink, resources
from ansible_collections.testbed.containers.plugins.module_utils.shape import SHAPING_FEATURES
from ansible_collections.testbed.containers.plugins.module_utils.shaping_requests import (
    ETH_P_ALL, HTB_CLASS, HTB_DEFAULT_MINOR, HTB_HANDLE, INGRESS_HANDLE, LEAF_HANDLE, MATCH_ALL, REDIRECT_PRIO,
    TC_H_INGRESS, TC_H_ROOT)

# Every kernel feature a plan may need, with the kernel option that provides it: the LANs'
# devices, then link shaping's (shape.SHAPING_FEATURES, probed together on one throwaway veth).
KERNEL_OPTIONS = {
    "bridge": "CONFIG_BRIDGE",
    "veth": "CONFIG_VETH",
    "vxlan": "CONFIG_VXLAN",
    "vlan": "CONFIG_VLAN_8021Q",
    "htb": "CONFIG_NET_SCH_HTB",
    "netem": "CONFIG_NET_SCH_NETEM",
    "ifb": "CONFIG_IFB",
    "ingress": "CONFIG_NET_SCH_INGRESS",
    "u32": "CONFIG_NET_CLS_U32",
    "mirred": "CONFIG_NET_ACT_MIRRED",
}
PROBE = "tbpf%d" % (os.getpid() % 100000)
# Probes run under this host-wide lock; whoever holds it may delete any probe link, since none
# is in use: that is how a probe killed half-way (a killed playbook) leaves no debris.
PROBE_LOCK = "/run/testbed-kernel-probes.lock"
PROBE_LINK = re.compile(r"^tb(pf|sp)[0-9]{1,5}[a-z]{1,2}$")
# What a plan may need of the host's cgroups rather than of its kernel's network: checked by
# reading the cgroup mounts (resources.py), not by a probe.
CGROUP_FEATURES = ("blkio_weight",)


class PreflightError(Exception):
    """A probe failed for another reason than the feature's absence."""


def _probe_link(ipr, kind):
    name = PROBE + kind[:1]
    spec = {"ifname": name, "kind": kind}
    if kind == "veth":
        spec["peer"] = name + "p"
    try:
        ipr.link("add", **spec)
    except netlink.NetlinkError:
        return False
    netlink.delete_link(ipr, name)
    return True


def _probe_vxlan(ipr, _kind):
    name = PROBE + "x"
    try:
        ipr.link("add", ifname=name, kind="vxlan", vxlan_id=16777000, vxlan_port=netlink.VXLAN_PORT)
    except netlink.NetlinkError:
        return False
    netlink.delete_link(ipr, name)
    return True


def _probe_vlan(ipr, _kind):
    """An 802.1Q device on a throwaway veth (the trunk stands in for it)."""
    trunk, name = PROBE + "t", PROBE + "q"
    try:
        ipr.link("add", ifname=trunk, kind="veth", peer=trunk + "p")
    except netlink.NetlinkError:
        return False
    try:
        ipr.link("add", ifname=name, kind="vlan", link=ipr.link_lookup(ifname=trunk)[0], vlan_id=4000)
        netlink.delete_link(ipr, name)
        return True
    except netlink.NetlinkError:
        return False
    finally:
        netlink.delete_link(ipr, trunk)


PROBES = {"bridge": _probe_link, "veth": _probe_link, "vxlan": _probe_vxlan, "vlan": _probe_vlan}


@contextlib.contextmanager
def probe_lock(wait=True, path=None):
    """Hold the host's probe lock; yields False (and holds nothing) when ``wait`` is False and
    a probe is running."""
    handle = open(path or PROBE_LOCK, "a")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        handle.close()


def remove_stale_probes(ipr, dry_run=False):
    """Delete the probe links a killed preflight left behind (call with the probe lock held);
    returns the operations."""
    ops = []
    for name, info in sorted(netlink.links(ipr).items()):
        if PROBE_LINK.match(name) and info["kind"] in (None, "veth", "bridge", "vxlan", "vlan", "ifb"):
            ops.append("remove kernel probe %s %s left by a killed preflight" % (info["kind"] or "link", name))
            if not dry_run:
                netlink.delete_link(ipr, name)
    return ops


def sweep_probes(dry_run=False):
    """remove_stale_probes when no probe is running (teardown's share of leaving nothing)."""
    with probe_lock(wait=False) as held:
        if not held:
            return []
        with netlink.IPRoute() as ipr:
            return remove_stale_probes(ipr, dry_run)


def missing_features(features):
    """The features of ``features`` this host lacks, as (feature, kernel option) pairs."""
    with probe_lock():
        with netlink.IPRoute() as ipr:
            remove_stale_probes(ipr)
            return _missing_features(ipr, features)


def _missing_features(ipr, features):
    missing = []
    tc_features = [f for f in features if f in SHAPING_FEATURES]
    known = sorted(KERNEL_OPTIONS)
    for feature in features:
        if feature in tc_features:
            continue
        probe = PROBES.get(feature)
        if probe is None:
            raise ValueError("unknown kernel feature %r; known: %s" % (feature, ", ".join(known)))
        if not probe(ipr, feature):
            missing.append((feature, KERNEL_OPTIONS[feature]))
    if tc_features:
        missing.extend(missing_shaping_features(ipr, tc_features))
    return missing


def missing_shaping_features(ipr, features=SHAPING_FEATURES):
    """The features of ``features`` this kernel lacks, as (feature, kernel option) pairs.

    Each feature is probed by creating it on a throwaway veth pair in the namespace of ``ipr``
    (built in or loadable, /proc/modules proves nothing); everything is deleted at once.
    mirred can only be probed through u32: without u32 it is not reported.
    """
    unknown = set(features) - set(SHAPING_FEATURES)
    if unknown:
        raise ValueError("unknown shaping feature(s) %s; known: %s"
                         % (", ".join(sorted(unknown)), ", ".join(SHAPING_FEATURES)))
    base = "tbsp%05d" % (os.getpid() % 100000)
    probe, peer, ifb = base + "a", base + "b", base + "i"
    present = set()
    absent = set()

    def attempt(feature, call):
        try:
            call()
        except netlink.NetlinkError as exc:
            if exc.code in (errno.ENOENT, errno.EOPNOTSUPP):
                absent.add(feature)
                return False
            raise PreflightError("probing %s (%s): %s (errno %d)"
                                 % (feature, KERNEL_OPTIONS[feature], os.strerror(exc.code), exc.code)) from exc
        present.add(feature)
        return True

    def delete_probes():
        for name in (probe, ifb):
            netlink.delete_link(ipr, name)

    delete_probes()
    ipr.link("add", ifname=probe, kind="veth", peer=peer)
    try:
        index = ipr.link_lookup(ifname=probe)[0]
        if attempt("htb", lambda: ipr.tc("add", "htb", index, HTB_HANDLE, parent=TC_H_ROOT,
                                         default=HTB_DEFAULT_MINOR)):
            ipr.tc("del", None, index, HTB_HANDLE, parent=TC_H_ROOT)
        if attempt("netem", lambda: ipr.tc("add", "netem", index, LEAF_HANDLE, parent=TC_H_ROOT,
                                           delay=1000, limit=1000)):
            ipr.tc("del", None, index, LEAF_HANDLE, parent=TC_H_ROOT)
        target = index
        if attempt("ifb", lambda: ipr.link("add", ifname=ifb, kind="ifb")):
            target = ipr.link_lookup(ifname=ifb)[0]
        if attempt("ingress", lambda: ipr.tc("add", "ingress", index, INGRESS_HANDLE, parent=TC_H_INGRESS)):
            if attempt("u32", lambda: ipr.tc("add-filter", "u32", index, 0, parent=INGRESS_HANDLE,
                                             prio=REDIRECT_PRIO, protocol=ETH_P_ALL, target=HTB_CLASS,
                                             keys=[MATCH_ALL])):
                attempt("mirred", lambda: ipr.tc("add-filter", "u32", index, 0, parent=INGRESS_HANDLE,
                                                 prio=REDIRECT_PRIO + 1, protocol=ETH_P_ALL, target=HTB_CLASS,
                                                 keys=[MATCH_ALL],
                                                 action={"kind": "mirred", "direction": "egress",
                                                         "action": "redirect", "ifindex": target}))
    finally:
        delete_probes()
    return [(f, KERNEL_OPTIONS[f]) for f in SHAPING_FEATURES if f in features and f in absent]


def missing_commands(commands=("iptables",)):
    return [c for c in commands if shutil.which(c) is None and not os.path.exists("/usr/sbin/" + c)]


def check_host(features, lans, host):
    """Everything that stops this host from realizing the plan, before anything exists: the
    engine, iptables, kernel ``features``, and ``lans`` (the plan's) overlapping the host's
    routes.  Returns (problems, the engine's version or None); ValueError for an unknown feature."""
    problems, version = [], None
    try:
        version = engine.client().version().get("Version")
    except engine.EngineError as exc:
        problems.append(str(exc))
    for command in missing_commands():
        problems.append("the command %s is missing: install the Debian package %s" % (command, command))
    for feature, option in missing_features([f for f in features if f not in CGROUP_FEATURES]):
        problems.append("the kernel lacks %s (kernel option %s)" % (feature, option))
    if "blkio_weight" in features:
        problems.extend(blkio_weight_problems(host, resources.host_blkio_weight_problem()))
    if lans:
        with netlink.IPRoute() as ipr:
            problems.extend(route_conflicts(lans, host, host_routes(ipr)))
    return problems, version


# --- the stamp of a passed preflight (the host role skips the next one with the same inputs) ----
STAMP_FILE = "preflight.stamp"
BOOT_ID = "/proc/sys/kernel/random/boot_id"


def stamp_text(stamp, boot_id):
    """What the stamp file holds: the kernel's boot id and the digest of the checks' inputs (filter
    preflight_key), the line the host role's probe compares with its own."""
    return "%s %s\n" % (boot_id.strip(), stamp)


def write_stamp(host_dir, stamp, dry_run=False):
    """Stamp a passed preflight (nothing without a ``stamp``, or in dry run)."""
    if not stamp or dry_run:
        return
    files.atomic_write(os.path.join(host_dir, STAMP_FILE), stamp_text(stamp, files.read_text(BOOT_ID) or "?"),
                       durable=False)


def clear_stamp(host_dir):
    try:
        os.unlink(os.path.join(host_dir, STAMP_FILE))
    except OSError:
        pass


def blkio_weight_problems(host, why):
    """The preflight's words when the engine cannot apply the nodes' blkio_weight on ``host``
    (``why``: resources.blkio_weight_problem, None when it can): refused before any node exists,
    as the engine itself would only drop the weight with a warning at create."""
    if not why:
        return []
    return ["nodes set blkio_weight, which the Docker engine cannot apply on host %s: %s; remove blkio_weight from "
            "the experiment file (its nodes and defaults:), or run the host with cgroup v2 (kernel command line "
            "systemd.unified_cgroup_hierarchy=1) and a scheduler with I/O weights (BFQ)" % (host, why)]


# --- the host's own routes --------------------------------------------------------------------
# Interfaces whose routes the planner already keeps LANs away from (the control network, the
# exec-SSH and registry interfaces), or that are experiments' own (name prefix).
ROUTES_CHECKED_ELSEWHERE = (names.CONTROL_NETWORK, defaults.CONTROL["exec_interface"], "tbreg0")


def host_routes(ipr):
    """[(network, device)] of the main IPv4 routing table, default route left out."""
    ifnames = dict((link["index"], netlink.attr(link, "IFLA_IFNAME")) for link in ipr.get_links())
    routes = []
    for route in ipr.get_routes(family=2, table=254):
        if not route["dst_len"]:
            continue
        dst = netlink.attr(route, "RTA_DST")
        dev = ifnames.get(netlink.attr(route, "RTA_OIF"), "?")
        routes.append((ipaddress.ip_network("%s/%d" % (dst, route["dst_len"]), strict=False), dev))
    return routes


def route_conflicts(lans, host, routes):
    """Problems: a LAN of this host (``lans``: the plan's) whose subnet overlaps a route of the
    host's own (``routes``: [(network, device)]), e.g. its uplink's subnet: the nodes' packets
    to those addresses would stay in the experiment."""
    problems = []
    for lan_name, lan in sorted(lans.items()):
        if host not in lan.get("hosts", ()):
            continue
        subnet = ipaddress.ip_network(lan["subnet"])
        own = (lan.get("bridge") or "")[:len(names.kernel_prefix("p", "e"))]  # this experiment's kernel prefix
        for net, dev in routes:
            # our devices carry no host routes, but for another experiment's LAN on the host's own stack
            if dev.startswith(names.PREFIX) and not (names.is_stack(dev) and not dev.startswith(own)) \
                    or dev in ROUTES_CHECKED_ELSEWHERE:
                continue
            if net.overlaps(subnet):
                problems.append("%ss.%s: subnet %s overlaps the route %s dev %s of host %s: give the LAN a subnet "
                                "(or addressing.pool) outside it"
                                % (lan.get("kind", "lan"), lan_name, subnet, net, dev, host))
    return problems


# --- kernel settings (sysctl) the host role raises ------------------------------------------
SYSCTL_KEY_RE = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")
SYSCTL_ROOT = "/proc/sys"


def sysctl_path(key, root=SYSCTL_ROOT):
    return os.path.join(root, *key.split("."))


def sysctl_errors(settings):
    """Problems with the settings mapping, each naming the key and the fix."""
    errors = []
    for key, value in settings.items():
        if not isinstance(key, str) or not SYSCTL_KEY_RE.match(key):
            errors.append("settings: %r is not a sysctl key such as net.ipv4.ip_forward" % (key,))
        elif isinstance(value, bool) or not isinstance(value, (int, str)) or \
                (isinstance(value, int) and value < 0) or (isinstance(value, str) and not value.strip()):
            errors.append("settings.%s: must be a number >= 0 (a minimum) or a string (an exact value), got %r"
                          % (key, value))
    return errors


def sysctl_missing(settings, optional, host, exists=os.path.exists):
    """The keys of ``settings`` this kernel does not have: (errors, skipped).  A key in
    ``optional`` (a default the user did not set) is skipped; any other is an error naming
    the key and the fix (a host that is itself a container, e.g. LXC or a simulated host, lacks
    the neighbour-table limits, which are the init namespace's)."""
    errors, skipped = [], []
    for key in settings:
        if exists(sysctl_path(key)):
            continue
        if key in optional:
            skipped.append(key)
        else:
            errors.append("settings.%s: %s has no such kernel setting (%s is missing): remove it from the settings"
                          % (key, host, sysctl_path(key)))
    return errors, skipped


def sysctl_changes(settings, read):
    """What to write: [(key, current, wanted)] for each setting below its minimum (an int value:
    a larger current value is kept) or different from its exact value (a string, compared
    word by word).  ``read(key)`` returns the current text."""
    changes = []
    for key, value in settings.items():
        current = read(key).strip()
        if isinstance(value, int):
            try:
                low = int(current) < value
            except ValueError:
                low = True
            if low:
                changes.append((key, current, str(value)))
        elif current.split() != str(value).split():
            changes.append((key, current, " ".join(str(value).split())))
    return changes


def sysctl_file_text(settings):
    """The persistent /etc/sysctl.d file: the same settings at boot (a later file wins)."""
    lines = ["# testbed.containers (roles/host, module host_sysctl): settings for hosts with many",
             "# nodes. Numbers are minimums at run time; a later sysctl.d file may raise them."]
    lines.extend("%s = %s" % (key, " ".join(str(value).split())) for key, value in sorted(settings.items()))
    return "\n".join(lines) + "\n"


class SysctlError(Exception):
    """A setting that could not be raised; ``raised``: what the run meant to raise."""

    def __init__(self, message, raised):
        super().__init__(message)
        self.raised = raised


def read_sysctl(key):
    with open(sysctl_path(key)) as f:
        return f.read()


def write_sysctl(key, value):
    with open(sysctl_path(key), "w") as f:
        f.write(value + "\n")


def converge_sysctls(settings, optional, persist, host, dry_run=False, diff=False, warn=None,
                     read=read_sysctl, write=write_sysctl):
    """Module host_sysctl: each setting at least its minimum (or its exact value) now, and all of
    them in the ``persist`` file for the next boot; keys in ``optional`` this kernel lacks are
    skipped with one ``warn``.  Returns (changed, operations, result); ValueError naming every
    bad or missing key before anything is written, SysctlError when a write fails."""
    errors = sysctl_errors(settings)
    skipped = []
    if not errors:
        errors, skipped = sysctl_missing(settings, optional, host)
    if errors:
        raise ValueError("; ".join(errors))
    if skipped:
        if warn:
            warn("%s lacks the kernel setting(s) %s (a host that is itself a container?): skipped; set "
                 "testbed_host_sysctls to silence this" % (host, ", ".join(skipped)))
        settings = dict((key, value) for key, value in settings.items() if key not in skipped)
    changes = sysctl_changes(settings, read)
    raised = dict((key, {"before": before, "after": after}) for key, before, after in changes)
    ops = ["set %s to %s (was %s)" % (key, after, before) for key, before, after in changes]
    if not dry_run:
        for key, _before, after in changes:
            try:
                write(key, after)
            except (IOError, OSError) as exc:
                raise SysctlError("settings.%s: cannot set it to %s on %s: %s" % (key, after, host, exc), raised)
    persisted = bool(persist) and files.write_if_changed(persist, sysctl_file_text(settings), dry_run=dry_run)
    if persisted:
        ops.append("write %s" % persist)
    result = dict(raised=raised, persisted=persisted, skipped=skipped)
    if diff and changes:
        result["diff"] = dict(before="".join("%s = %s\n" % (k, b) for k, b, _a in changes),
                              after="".join("%s = %s\n" % (k, a) for k, _b, a in changes))
    return bool(ops), ops, result
