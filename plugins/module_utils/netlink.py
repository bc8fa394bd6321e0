# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netlink through pyroute2: bridges, veths into node namespaces, addresses and routes.

A node's namespace is opened by ``/proc/PID/ns/net`` only (decision 12).  ``node_netns``
creates the netlink socket inside the namespace by switching the calling *thread* with
setns(2) and back: a socket stays in the namespace it was created in, so the handle works
from the host afterwards, costs about a millisecond and needs no helper process.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import ctypes
import errno
import os
import threading

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
except ImportError:  # pragma: no cover - reported by the modules
    IPRoute = None
    NetlinkError = OSError
    HAS_PYROUTE2 = False

CLONE_NEWNET = 0x40000000
RT_PROTO_STATIC = 4
_libc = None


class NetworkError(Exception):
    """A netlink failure, with the object it concerns."""


def _setns(fd):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def node_netns(pid):
    """An IPRoute handle inside the network namespace of process ``pid``."""
    own = os.open("/proc/self/task/%d/ns/net" % threading.get_native_id(), os.O_RDONLY)
    try:
        try:
            target = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY)
        except OSError as exc:
            raise NetworkError("cannot open the network namespace of process %d: %s" % (pid, exc))
        try:
            _setns(target)
            try:
                ipr = IPRoute()
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)
    try:
        yield ipr
    finally:
        ipr.close()


def attr(msg, name, default=None):
    value = msg.get_attr(name)
    return default if value is None else value


def link_info(msg):
    info = attr(msg, "IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    return {
        "index": msg["index"],
        "ifname": attr(msg, "IFLA_IFNAME"),
        "alias": attr(msg, "IFLA_IFALIAS", ""),
        "kind": kind,
        "master": attr(msg, "IFLA_MASTER"),
        "mac": attr(msg, "IFLA_ADDRESS"),
        "up": bool(msg["flags"] & 1),
        "link": attr(msg, "IFLA_LINK"),
        "mtu": attr(msg, "IFLA_MTU"),
        # a veth whose peer is in another namespace: the id of that namespace, seen from this one
        "netnsid": attr(msg, "IFLA_LINK_NETNSID"),
    }


def attached(link):
    """Is this host end (a link_info, or None) a veth whose other end is in another namespace (a
    node's)? The two ends of a veth exist together, and a namespace that goes takes its ends with
    it: a node whose host ends are all attached has its interfaces."""
    return link is not None and link["kind"] == "veth" and link["netnsid"] is not None


def links(ipr):
    """name -> link_info for every link in the namespace of ``ipr``."""
    return dict((i["ifname"], i) for i in (link_info(m) for m in ipr.get_links()))


def owned_links(ipr, prefix):
    return dict((n, i) for n, i in links(ipr).items() if n.startswith(prefix))


def describe(exc, what):
    if isinstance(exc, NetlinkError):
        return "%s: %s (errno %d)" % (what, os.strerror(exc.code) if exc.code else exc, exc.code)
    return "%s: %s" % (what, exc)


def ensure_bridge(ipr, name, alias, existing, dry_run=False):
    """Create the bridge if missing and bring it up; returns the operations done (to be done)."""
    ops = []
    cur = existing.get(name)
    if cur is not None and cur["alias"] != alias:
        raise NetworkError("bridge %s exists but belongs to %r, not %r: refusing to take it over"
                           % (name, cur["alias"], alias))
    if dry_run:
        if cur is None:
            return ["create bridge %s (%s)" % (name, alias)]
        return [] if cur["up"] else ["bring up bridge %s" % name]
    try:
        if cur is None:
            ipr.link("add", ifname=name, kind="bridge")
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], ifalias=alias)
            ops.append("create bridge %s (%s)" % (name, alias))
        if cur is None or not cur["up"]:
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
            if cur is not None:
                ops.append("bring up bridge %s" % name)
    except NetlinkError as exc:
        raise NetworkError(describe(exc, "bridge %s (%s)" % (name, alias)))
    return ops


VXLAN_PORT = 4789
ZERO_MAC = "00:00:00:00:00:00"


def ensure_vxlan(ipr, name, vni, local, remotes, bridge_index, alias, existing, dry_run=False):
    """A VXLAN port on the LAN's bridge with head-end replication to ``remotes`` (the tunnel
    addresses of the other hosts with members): one all-zeros fdb entry per remote, no multicast."""
    ops = []
    cur = existing.get(name)
    if cur is not None and cur["alias"] != alias:
        raise NetworkError("VXLAN %s exists but belongs to %r, not %r: refusing to take it over"
                           % (name, cur["alias"], alias))
    if dry_run and cur is None:
        return ["create vxlan %s id %d local %s (%s)" % (name, vni, local, alias)] + \
            ["vxlan %s: flood to %s" % (name, remote) for remote in sorted(set(remotes))]
    try:
        if cur is None:
            try:
                ipr.link("add", ifname=name, kind="vxlan", vxlan_id=vni, vxlan_local=local, vxlan_port=VXLAN_PORT,
                         vxlan_learning=1)
            except NetlinkError as exc:
                if exc.code == errno.EEXIST:
                    raise NetworkError("tunnel id %d of %s is already used by another VXLAN device on this host "
                                       "(another experiment's LAN): rename this LAN or experiment" % (vni, alias))
                raise
            ops.append("create vxlan %s id %d local %s (%s)" % (name, vni, local, alias))
        index = _attach_port(ipr, name, cur, bridge_index, alias, "vxlan", dry_run, ops)
        have = set(attr(m, "NDA_DST") for m in ipr.fdb("dump", ifindex=index)
                   if m["ifindex"] == index and attr(m, "NDA_LLADDR") == ZERO_MAC)
        for remote in sorted(have - set(remotes)):
            if not dry_run:
                ipr.fdb("del", ifindex=index, lladdr=ZERO_MAC, dst=remote)
            ops.append("vxlan %s: stop flooding to %s" % (name, remote))
        for remote in sorted(set(remotes) - have):
            if not dry_run:
                ipr.fdb("append", ifindex=index, lladdr=ZERO_MAC, dst=remote)
            ops.append("vxlan %s: flood to %s" % (name, remote))
    except NetlinkError as exc:
        raise NetworkError(describe(exc, "vxlan %s (%s)" % (name, alias)))
    return ops


def _attach_port(ipr, name, cur, bridge_index, alias, kind, dry_run, ops):
    """A tunnel port just made (``cur`` None) or found: named, up, on the LAN's bridge; returns
    its index."""
    if cur is None:
        index = ipr.link_lookup(ifname=name)[0]
        ipr.link("set", index=index, ifalias=alias, master=bridge_index, state="up")
        return index
    if cur["master"] != bridge_index or not cur["up"]:
        if not dry_run:
            ipr.link("set", index=cur["index"], master=bridge_index, state="up")
        ops.append("attach %s %s to its bridge" % (kind, name))
    return cur["index"]


def ensure_vlan(ipr, name, vid, trunk, bridge_index, alias, existing, dry_run=False):
    """An 802.1Q port on the LAN's bridge: device ``name`` on the host's trunk interface with
    VLAN id ``vid``, so the LAN's frames leave tagged towards the switch (VLAN mode)."""
    ops = []
    cur = existing.get(name)
    if cur is not None and cur["alias"] != alias:
        raise NetworkError("VLAN device %s exists but belongs to %r, not %r: refusing to take it over"
                           % (name, cur["alias"], alias))
    trunk_index = ipr.link_lookup(ifname=trunk)
    if not trunk_index:
        raise NetworkError("trunk interface %s (testbed_trunk_interface) does not exist on this host" % trunk)
    if dry_run:
        if cur is None:
            return ["create vlan %s id %d on %s (%s)" % (name, vid, trunk, alias)]
        return [] if cur["master"] == bridge_index and cur["up"] else ["attach vlan %s to its bridge" % name]
    try:
        if cur is None:
            try:
                ipr.link("add", ifname=name, kind="vlan", link=trunk_index[0], vlan_id=vid)
            except NetlinkError as exc:
                if exc.code == errno.EEXIST:
                    raise NetworkError("VLAN %d on %s is already used by another device on this host (another "
                                       "experiment's LAN): rename this LAN or experiment" % (vid, trunk))
                if exc.code == errno.EOPNOTSUPP:
                    raise NetworkError("this kernel has no 802.1Q VLAN devices (CONFIG_VLAN_8021Q): use VXLAN "
                                       "(unset testbed_trunk_interface)")
                raise
            ops.append("create vlan %s id %d on %s (%s)" % (name, vid, trunk, alias))
        _attach_port(ipr, name, cur, bridge_index, alias, "vlan", dry_run, ops)
        trunk_link = ipr.get_links(trunk_index[0])[0]
        if not trunk_link["flags"] & 1:  # IFF_UP
            ipr.link("set", index=trunk_index[0], state="up")
            ops.append("bring up trunk %s" % trunk)
    except NetlinkError as exc:
        raise NetworkError(describe(exc, "vlan %s (%s)" % (name, alias)))
    return ops


def host_nic(ipr, name):
    """A host NIC about to become a bridge port: {index, master, up, addresses (IPv4)}, or None
    when the host has no such interface (the callers refuse an addressed NIC or another bridge's port)."""
    found = ipr.link_lookup(ifname=name)
    if not found:
        return None
    link = ipr.get_links(found[0])[0]
    return {"index": found[0], "master": attr(link, "IFLA_MASTER"), "up": bool(link["flags"] & 1),
            "addresses": sorted(attr(a, "IFA_ADDRESS") for a in ipr.get_addr(index=found[0], family=2))}


def ensure_stack(ipr, port, dry_run=False):
    """The host's own stack on a LAN (a planned port with ``stack``): the veth pair ``stack`` -
    ``interface`` (named with the port's alias, so teardown finds it), ``stack`` up with the
    planned address and routes; the caller puts ``interface`` on the bridge. Returns the operations."""
    ops, stack, peer = [], port["stack"], port["interface"]
    address = "%s/%d" % (port["address"], port["prefixlen"])
    found = ipr.link_lookup(ifname=stack)
    if not found:
        ops.append("create %s for the host's own stack on the LAN (%s)" % (stack, address))
        if dry_run:
            return ops + ["%s: address %s" % (stack, address)] + [
                "%s: route %s via %s" % (stack, r["dest"], r["via"]) for r in port.get("routes") or ()]
        try:
            ipr.link("add", ifname=stack, kind="veth", peer=peer)
            for name in (stack, peer):  # the bridge's end up too: the stack's routes need a carrier
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], ifalias=port["alias"], state="up")
        except NetlinkError as exc:
            raise NetworkError(describe(exc, "veth %s to the host's stack" % stack))
        found = ipr.link_lookup(ifname=stack)
    index = found[0]
    link = ipr.get_links(index)[0]
    have = set("%s/%d" % (attr(a, "IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2))
    try:
        if address not in have:
            if have:
                ops.append("%s: drop %s" % (stack, ", ".join(sorted(have))))
            ops.append("%s: address %s" % (stack, address))
            if not dry_run:
                for old in sorted(have):
                    ip, plen = old.split("/")
                    ipr.addr("del", index=index, address=ip, prefixlen=int(plen))
                ipr.addr("add", index=index, address=port["address"], prefixlen=port["prefixlen"])
        if not link["flags"] & 1:
            if not dry_run:
                ipr.link("set", index=index, state="up")
        have_routes = set((attr(r, "RTA_DST"), r["dst_len"], attr(r, "RTA_GATEWAY"))
                          for r in ipr.get_routes(family=2, oif=index) if attr(r, "RTA_GATEWAY"))
        for route in port.get("routes") or ():
            dest, plen = route["dest"].split("/")
            if (dest, int(plen), route["via"]) in have_routes:
                continue
            ops.append("%s: route %s via %s" % (stack, route["dest"], route["via"]))
            if not dry_run:
                ipr.route("replace", dst=dest, dst_len=int(plen), gateway=route["via"], oif=index)
    except NetlinkError as exc:
        raise NetworkError(describe(exc, "the host's stack on %s (%s)" % (stack, address)))
    return ops


def delete_link(ipr, name):
    try:
        ipr.link("del", index=ipr.link_lookup(ifname=name)[0])
    except IndexError:
        return False
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return False
        raise NetworkError(describe(exc, "deleting %s" % name))
    return True


def plumb_interface(host, ns, pid, iface, bridge_index, alias, host_links, ns_links, dry_run=False):
    """Converge one attachment: veth ``iface['veth']`` on the bridge <-> ``ethN`` in the node.

    Checks what exists and repairs only what differs; returns the operations (done, or in
    dry run, to be done).  The host end is up unless the planned interface says ``down``.
    """
    ops = []
    veth, ifname = iface["veth"], iface["ifname"]
    # a link event (playbooks/event.yml) may have taken the attachment down: it stays down
    want_up = not iface.get("down")
    hcur, ncur = host_links.get(veth), ns_links.get(ifname)
    paired = hcur is not None and ncur is not None and ncur["kind"] == "veth" and ncur["link"] == hcur["index"]
    if hcur is not None and (not paired or hcur["alias"] != alias):
        if hcur["alias"] and hcur["alias"] != alias:
            raise NetworkError("interface %s exists but belongs to %r: refusing to take it over" % (veth, hcur["alias"]))
        ops.append("replace veth %s (%s)" % (veth, alias))
        if not dry_run:
            delete_link(host, veth)
        hcur, ncur, paired = None, None, False
    elif ncur is not None and not paired:
        ops.append("remove stray %s in node" % ifname)
        if not dry_run:
            delete_link(ns, ifname)
        ncur = None
    created = hcur is None
    try:
        if created:
            ops.append("create veth %s <-> %s (%s)" % (veth, ifname, alias))
            if dry_run:
                return ops
            fd = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY)
            try:
                host.link("add", ifname=veth, kind="veth",
                          peer={"ifname": ifname, "net_ns_fd": fd, "address": iface["mac"]})
            finally:
                os.close(fd)
            index = host.link_lookup(ifname=veth)[0]
            host.link("set", index=index, ifalias=alias, master=bridge_index, state="up" if want_up else "down")
            hcur = {"index": index, "master": bridge_index, "up": want_up}
            ncur = link_info(ns.get_links(ns.link_lookup(ifname=ifname)[0])[0])
        else:
            if hcur["master"] != bridge_index or hcur["up"] != want_up:
                ops.append("attach %s to its bridge" % veth if want_up else "attach %s to its bridge, down (a link "
                           "event took it down)" % veth)
                if not dry_run:
                    host.link("set", index=hcur["index"], master=bridge_index, state="up" if want_up else "down")
        mtu = iface.get("mtu") or 1500
        if ncur.get("mtu") != mtu:
            ops.append("set %s mtu %d" % (ifname, mtu))
            if not dry_run:
                ns.link("set", index=ncur["index"], mtu=mtu)
                host.link("set", index=hcur["index"], mtu=mtu)
        if ncur["mac"] != iface["mac"]:
            ops.append("set %s mac %s" % (ifname, iface["mac"]))
            if not dry_run:
                ns.link("set", index=ncur["index"], address=iface["mac"])
        want = (iface["address"], iface["prefixlen"])
        have = [(attr(a, "IFA_ADDRESS"), a["prefixlen"]) for a in ns.get_addr(index=ncur["index"], family=2)]
        for address in have:
            if address != want:
                ops.append("remove address %s/%d from %s" % (address + (ifname,)))
                if not dry_run:
                    ns.addr("del", index=ncur["index"], address=address[0], prefixlen=address[1])
        if want not in have:
            ops.append("add address %s/%d to %s" % (want + (ifname,)))
            if not dry_run:
                ns.addr("add", index=ncur["index"], address=want[0], prefixlen=want[1])
        if not ncur["up"]:
            if not created:
                ops.append("bring up %s" % ifname)
            if not dry_run:
                ns.link("set", index=ncur["index"], state="up")
    except NetlinkError as exc:
        raise NetworkError(describe(exc, "interface %s / %s (%s)" % (veth, ifname, alias)))
    return ops


def remove_stray_interfaces(ns, wanted, ns_links, dry_run=False):
    """Delete experiment interfaces (eth1 and up) the plan no longer has."""
    ops = []
    for name, info in sorted(ns_links.items()):
        if name.startswith("eth") and name != "eth0" and name not in wanted and info["kind"] == "veth":
            ops.append("remove %s from node" % name)
            if not dry_run:
                delete_link(ns, name)
    return ops


def ensure_routes(ns, routes, dry_run=False):
    """Install the plan's static routes (protocol 'static'); remove static ones it lacks."""
    ops = []
    index = dict((li["ifname"], li["index"]) for li in (link_info(m) for m in ns.get_links()))
    have = {}
    for r in ns.get_routes(family=2, table=254):
        if r["proto"] != RT_PROTO_STATIC:
            continue
        dst = "%s/%d" % (attr(r, "RTA_DST", "0.0.0.0"), r["dst_len"])
        have[dst] = (attr(r, "RTA_GATEWAY"), attr(r, "RTA_OIF"))
    want = dict((r["dest"], (r["via"], index.get(r["dev"]))) for r in routes)
    try:
        for dst, (via, oif) in sorted(have.items()):
            if want.get(dst) != (via, oif):
                ops.append("remove route %s via %s" % (dst, via))
                if not dry_run:
                    net, plen = dst.split("/")
                    ns.route("del", dst=net, dst_len=int(plen), table=254)
        for dst, (via, oif) in sorted(want.items()):
            if have.get(dst) != (via, oif):
                ops.append("add route %s via %s" % (dst, via))
                if not dry_run:
                    net, plen = dst.split("/")
                    ns.route("add", dst=net, dst_len=int(plen), gateway=via, oif=oif, proto=RT_PROTO_STATIC)
    except NetlinkError as exc:
        raise NetworkError(describe(exc, "routes"))
    return ops
