# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control network of a physical host: control addresses, SSH ports, exec-style SSH.

Host-local values (a node's control address on ``dockercnet``, its public SSH port, its
exec address) are allocated here, under the host lock, and kept in one JSON file per host
(decision 4): a node keeps its allocation for its life, and two experiments, or two
playbook runs at once, never get the same port or address.

SSH into a node works for every image, augmented or not, the Emulab "exec" way: the host
runs one sshd of ours; each node's public port is DNATed to a distinct address on a dummy
interface (``tbexec0``), and ``Match LocalAddress`` picks the node, whose ``ForceCommand``
runs ``docker exec`` into it (decision 10: one sshd listens on at most 16 sockets, so one
socket and many local addresses instead of one port per node).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import os
import signal
import subprocess

from ansible_collections.testbed.containers.plugins.module_utils import defaults, files, names, netlink

DEFAULTS = defaults.CONTROL
STATE_VERSION = 1
HOST_OWNER = names.HOST_OWNER
CONTROL_BRIDGE = names.CONTROL_NETWORK  # the bridge is named like the Docker network
NODE_SSH_PORT = 22


class ControlError(Exception):
    pass


def settings(overrides=None):
    cfg = dict(DEFAULTS)
    cfg.update(dict((k, v) for k, v in (overrides or {}).items() if v is not None))
    return cfg


def state_path(cfg):
    return os.path.join(cfg["host_dir"], "control.json")


def host_lock_path(cfg):
    return os.path.join(cfg["host_dir"], "locks", "host.lock")


def load_state(cfg):
    state = files.read_json(state_path(cfg))
    if not isinstance(state, dict):
        state = {}
    state.setdefault("version", STATE_VERSION)
    state.setdefault("nodes", {})
    return state


def save_state(cfg, state):
    files.write_json(state_path(cfg), state)


def node_key(project, name, node):
    return "%s/%s/%s" % (project, name, node)


def allocate(state, project, name, nodes, cfg, control_subnet):
    """Give every node of ``nodes`` (node -> {container, keys_file}) a control address, an exec
    address and an SSH port.

    Earlier allocations are kept; new ones take the lowest free value.  Returns
    {node: allocation}; ``state`` is updated in place.
    """
    control_net = ipaddress.ip_network(control_subnet)
    exec_net = ipaddress.ip_network(cfg["exec_subnet"])
    low, high = cfg["ssh_ports"]
    used = {"address": set(), "exec_address": set(), "port": set()}
    for entry in state["nodes"].values():
        for key in used:
            used[key].add(entry.get(key))
    reserved = set([control_net.network_address + 1])  # dockercnet's gateway

    def first_free(candidates, key):
        for value in candidates:
            if value not in used[key]:
                used[key].add(value)
                return value
        return None

    result = {}
    for node in nodes:
        key = node_key(project, name, node)
        entry = state["nodes"].get(key)
        if entry and ipaddress.ip_address(entry["address"]) in control_net \
                and ipaddress.ip_address(entry["exec_address"]) in exec_net and low <= entry["port"] <= high:
            entry.update(nodes[node])
            result[node] = entry
            continue
        address = first_free((str(a) for a in control_net.hosts() if a not in reserved), "address")
        exec_address = first_free((str(a) for a in exec_net.hosts()), "exec_address")
        port = first_free(range(low, high + 1), "port")
        if address is None or exec_address is None or port is None:
            raise ControlError("no free %s left for node %s: widen %s" % (
                "control address" if address is None else "exec address" if exec_address is None else "SSH port",
                key, "control_subnet" if address is None else "exec_subnet" if exec_address is None else "ssh_ports"))
        entry = dict(nodes[node], address=address, exec_address=exec_address, port=port)
        state["nodes"][key] = entry
        result[node] = entry
    return result


def release(state, project, name, keep=()):
    """Forget the allocations of the experiment's nodes not in ``keep`` (and their SSH keys file)."""
    prefix = "%s/%s/" % (project, name)
    gone = [k for k in state["nodes"] if k.startswith(prefix) and k[len(prefix):] not in keep]
    for key in gone:
        entry = state["nodes"].pop(key)
        if entry.get("keys_file"):
            try:
                os.unlink(entry["keys_file"])
            except OSError:
                pass
    return gone


def keys_path(cfg, container):
    """A node's authorized_keys, under the host dir: sshd's StrictModes refuses a path through
    a world-writable directory such as /tmp."""
    return os.path.join(sshd_dir(cfg), "keys", container)


# --- exec-style SSH ---------------------------------------------------------------

def sshd_dir(cfg):
    return os.path.join(cfg["host_dir"], "sshd")


EXEC_WRAPPER = """#!/bin/sh
# ForceCommand of the testbed's exec-style sshd: a shell (or the given command) in the node.
node="$1"
tty=""
[ -t 0 ] && tty="-t"
shell=sh
if ! %(docker)s exec "$node" sh -c true >/dev/null 2>&1; then shell=/.testbed/bin/sh; fi
if [ -n "$SSH_ORIGINAL_COMMAND" ]; then
  exec %(docker)s exec -i $tty "$node" "$shell" -c "$SSH_ORIGINAL_COMMAND"
fi
exec %(docker)s exec -i $tty "$node" "$shell" -l
"""


def sshd_config(state, cfg):
    """The text of our sshd's configuration: one Match block per node."""
    base = sshd_dir(cfg)
    lines = [
        "# Written by testbed.containers: exec-style SSH into experiment nodes.",
        "Port %d" % cfg["exec_port"],
        "ListenAddress 0.0.0.0",
        "HostKey %s/ssh_host_ed25519_key" % base,
        "PidFile %s/sshd.pid" % base,
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AuthorizedKeysFile none",
        "AllowTcpForwarding no",
        "AllowAgentForwarding no",
        "AllowStreamLocalForwarding no",
        "X11Forwarding no",
        "PermitTunnel no",
        "PermitUserEnvironment no",
        "UsePAM no",
        "PrintMotd no",
        "LogLevel INFO",
    ]
    for _key, entry in sorted(state["nodes"].items()):
        lines += [
            "",
            "Match LocalAddress %s User root" % entry["exec_address"],
            "    AuthorizedKeysFile %s" % entry["keys_file"],
            "    ForceCommand %s/exec-node %s" % (base, entry["container"]),
        ]
    return "\n".join(lines) + "\n"


def _sshd_pid(base):
    try:
        with open(os.path.join(base, "sshd.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (IOError, OSError, ValueError):
        return None


def ensure_sshd(state, cfg, dry_run=False):
    """Config, host key, wrapper written; sshd running (started, or reloaded on change)."""
    base = sshd_dir(cfg)
    ops = []
    config = sshd_config(state, cfg)
    if dry_run:
        return ops
    os.makedirs(base, mode=0o755, exist_ok=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    key = os.path.join(base, "ssh_host_ed25519_key")
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        ops.append("create exec sshd host key")
    files.write_if_changed(os.path.join(base, "exec-node"), EXEC_WRAPPER % cfg, 0o755)
    changed = files.write_if_changed(os.path.join(base, "sshd_config"), config)
    proc = subprocess.run(["/usr/sbin/sshd", "-t", "-f", os.path.join(base, "sshd_config")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if proc.returncode != 0:
        raise ControlError("exec sshd configuration is invalid: %s" % proc.stdout.strip())
    pid = _sshd_pid(base)
    if pid is None:
        subprocess.run(["/usr/sbin/sshd", "-f", os.path.join(base, "sshd_config")], check=True)
        ops.append("start exec sshd on port %d" % cfg["exec_port"])
    elif changed:
        os.kill(pid, signal.SIGHUP)
        ops.append("reload exec sshd")
    return ops


def stop_sshd(cfg):
    base = sshd_dir(cfg)
    pid = _sshd_pid(base)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        return ["stop exec sshd"]
    return []


def ensure_exec_addresses(ipr, state, cfg, dry_run=False):
    """The dummy interface carries exactly the exec addresses of the allocated nodes."""
    ops = []
    ifname = cfg["exec_interface"]
    want = set(e["exec_address"] for e in state["nodes"].values())
    idx = ipr.link_lookup(ifname=ifname)
    if not want:
        if idx:
            ops.append("remove %s" % ifname)
            if not dry_run:
                netlink.delete_link(ipr, ifname)
        return ops
    if not idx:
        ops.append("create %s" % ifname)
        if dry_run:
            return ops
        try:
            ipr.link("add", ifname=ifname, kind="dummy")
        except netlink.NetlinkError as exc:
            if exc.code != errno.EOPNOTSUPP:
                raise
            ipr.link("add", ifname=ifname, kind="bridge")  # a kernel without dummy: a portless bridge
        idx = ipr.link_lookup(ifname=ifname)
        ipr.link("set", index=idx[0], state="up", ifalias=HOST_OWNER + "/exec-ssh")
    index = idx[0]
    have = set(netlink.attr(a, "IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2))
    for address in sorted(have - want):
        ops.append("remove exec address %s" % address)
        if not dry_run:
            ipr.addr("del", index=index, address=address, prefixlen=32)
    for address in sorted(want - have):
        ops.append("add exec address %s" % address)
        if not dry_run:
            try:
                ipr.addr("add", index=index, address=address, prefixlen=32)
            except netlink.NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
    return ops


def ensure_control_interface(ipr, state, cfg, dry_run=False):
    """The host NIC ``control_interface`` as a port of dockercnet (and up); a NIC attached before
    under another name is detached.  ``state`` (the host record) remembers the attached NIC.
    Refused, naming the setting: a NIC the host lacks, one with IPv4 addresses (bridged, the host
    would lose them) and one that is a port of another bridge."""
    ops = []
    want = cfg.get("control_interface")
    before = state.get("control_interface")
    if before and before != want:
        ops.extend(release_control_interface(ipr, state, dry_run))
    if not want:
        return ops
    nic = netlink.host_nic(ipr, want)
    if nic is None:
        raise ControlError("testbed_control.control_interface: this host has no interface %s: name the NIC on the "
                           "testbed's control LAN (ip link shows them)" % want)
    if nic["addresses"]:
        raise ControlError("testbed_control.control_interface: %s carries %s: a NIC bridged into %s gives up its "
                           "addresses (the host would lose them); use a NIC of the control LAN without an address"
                           % (want, ", ".join(nic["addresses"]), CONTROL_BRIDGE))
    bridge = ipr.link_lookup(ifname=CONTROL_BRIDGE)
    if not bridge:
        return ops + (["attach %s to %s (control LAN)" % (want, CONTROL_BRIDGE)] if dry_run else [])
    if nic["master"] and nic["master"] != bridge[0]:
        raise ControlError("testbed_control.control_interface: %s is a port of another bridge (index %d): detach it "
                           "first, or name another NIC" % (want, nic["master"]))
    if nic["master"] != bridge[0] or not nic["up"]:
        ops.append("attach %s to %s (control LAN)" % (want, CONTROL_BRIDGE))
        if not dry_run:
            ipr.link("set", index=nic["index"], master=bridge[0], state="up")
    state["control_interface"] = want
    return ops


def release_control_interface(ipr, state, dry_run=False):
    """Detach the NIC ensure_control_interface attached (when it still is a port of dockercnet)."""
    name = state.get("control_interface")
    if not name:
        return []
    ops = []
    found, bridge = ipr.link_lookup(ifname=name), ipr.link_lookup(ifname=CONTROL_BRIDGE)
    if found and bridge and netlink.attr(ipr.get_links(found[0])[0], "IFLA_MASTER") == bridge[0]:
        ops.append("detach %s from %s" % (name, CONTROL_BRIDGE))
        if not dry_run:
            ipr.link("set", index=found[0], master=0)
    if not dry_run:
        state.pop("control_interface", None)
    return ops


def control_lan_rules(cfg):
    """With a control interface: the control LAN reaches the nodes (bridged frames from the NIC
    are accepted before Docker's inter-container drop); from the nodes only the replies go out
    through the NIC, so a node cannot open a connection to anything on the control LAN, nor to
    another host's nodes (experiments stay apart across hosts too)."""
    nic = cfg.get("control_interface")
    if not nic:
        return []
    both = ["-i", CONTROL_BRIDGE, "-o", CONTROL_BRIDGE, "-m", "physdev"]
    return [both + ["--physdev-in", nic, "-j", "ACCEPT"],
            both + ["--physdev-out", nic, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
            both + ["--physdev-out", nic, "-j", "DROP"]]


def host_rules(cfg, hairpin=False):
    """Host-wide rules: the exec sshd answers only through a node's DNAT, never directly.

    ``hairpin`` (some node runs its own SSH server): ``ssh -p PORT USER@localhost`` is DNATed
    from 127.0.0.1 to the node, which needs ``route_localnet`` on dockercnet (set by
    ensure_hairpin) and a masquerade of the loopback source; packets from the nodes to
    127.0.0.0/8 are dropped, so route_localnet opens nothing of the host's to them.
    """
    rules = {names.GUARD_CHAIN: [
        ["-p", "tcp", "--dport", str(cfg["exec_port"]), "!", "-d", cfg["exec_subnet"], "-j", "DROP"]]}
    if cfg.get("control_interface"):
        rules[names.NODES_CHAIN] = control_lan_rules(cfg)
    if hairpin:
        # (replies of the host's own hairpin connections arrive there too: they are ESTABLISHED)
        rules[names.GUARD_CHAIN].append(["-i", CONTROL_BRIDGE, "-d", "127.0.0.0/8", "-m", "conntrack", "!",
                                         "--ctstate", "RELATED,ESTABLISHED", "-j", "DROP"])
        rules[names.HAIRPIN_CHAIN] = [["-s", "127.0.0.0/8", "-j", "MASQUERADE"]]
    return rules


def ensure_hairpin(dry_run=False, bridge=None):
    """route_localnet=1 on dockercnet (see host_rules); it stays with the bridge."""
    path = "/proc/sys/net/ipv4/conf/%s/route_localnet" % (bridge or CONTROL_BRIDGE)
    try:
        with open(path) as f:
            if f.read().strip() == "1":
                return []
    except (IOError, OSError):
        return []  # no control bridge yet (check mode)
    if not dry_run:
        with open(path, "w") as f:
            f.write("1\n")
    return ["set route_localnet on %s (SSH from localhost into nodes' own servers)" % (bridge or CONTROL_BRIDGE)]


def node_rules(alloc, veth, mac, own_sshd=False):
    """Rules of one node: its SSH port, and anti-spoofing on its control interface.

    The SSH port leads to the node's own SSH server (``own_sshd``: the ``full`` level) on its
    control address, port 22, accepted only as such a DNATed connection; otherwise to the exec
    sshd through the node's exec address.
    """
    if own_sshd:
        target = "%s:%d" % (alloc["address"], NODE_SSH_PORT)
        # the connection and its replies (Docker's isolation chains would drop the replies to
        # another Docker network, e.g. a client in a container)
        accept = [["-o", CONTROL_BRIDGE, "-d", alloc["address"] + "/32", "-p", "tcp", "--dport", str(NODE_SSH_PORT),
                   "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdstport", str(alloc["port"]), "-j", "ACCEPT"],
                  ["-i", CONTROL_BRIDGE, "-s", alloc["address"] + "/32", "-p", "tcp", "--sport", str(NODE_SSH_PORT),
                   "-m", "conntrack", "--ctstate", "DNAT", "--ctdir", "REPLY", "--ctorigdstport", str(alloc["port"]),
                   "-j", "ACCEPT"]]
    else:
        target = "%s:%d" % (alloc["exec_address"], alloc["exec_port"])
        accept = []
    return {
        names.SSH_CHAIN: [["-p", "tcp", "--dport", str(alloc["port"]), "-j", "DNAT",
                           "--to-destination", target]],
        names.NODES_CHAIN: accept,
        names.SPOOF_CHAIN: [
            ["-m", "physdev", "--physdev-in", veth, "!", "-s", alloc["address"], "-j", "DROP"],
            ["-m", "physdev", "--physdev-in", veth, "-m", "mac", "!", "--mac-source", mac, "-j", "DROP"],
        ] if veth else [],
    }
