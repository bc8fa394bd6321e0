# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning: from a validated experiment to every experiment-scoped value (decision 4).

Pure and deterministic: the same file, inventory and previous plan give the same plan.  The
previous plan (from the experiment record) keeps what must not move when an experiment is
modified in place: a node's placement, its interface numbers (decision 6), auto-allocated
subnets and addresses.  Stages run in order, each a small function:

    place -> allocate subnets -> number interfaces -> allocate addresses -> MACs
          -> static routes -> /etc/hosts entries
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import dataclasses
import ipaddress
import os
import re
from collections import deque

from ansible_collections.testbed.containers.plugins.module_utils import defaults, model, names
from ansible_collections.testbed.containers.plugins.module_utils.planned import unique

PLAN_VERSION = 2  # 2: kernel_prefix (was prefix), alias and ifb of interfaces, alias of LANs
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
# The host directory under which each project's shared directory lives (testbed_project_root).
DEFAULT_PROJECT_ROOT = "/var/lib/testbed/projects"


def make_plan(doc, hosts, previous=None, controller_keys=(), host_vars=None, controller_user=None,
              registry_address=None):
    """Validate ``doc`` (parsed YAML) and plan it onto ``hosts`` (inventory names, in order).

    ``host_vars`` (host -> settings) may carry each host's ``control_subnet`` and ``exec_subnet``
    and ``registry_address`` the testbed registry's: experiment LANs stay out of them.

    ``controller_keys`` and ``controller_user``: the public keys and the name of the user running
    the playbook; they may log in as root on every node, and, without ``users:`` in the file, are
    the one account of ``full`` nodes.

    Raises model.ExperimentError with every problem found.
    """
    exp = model.validate(doc)
    if previous and (previous.get("project"), previous.get("name")) != (exp["project"], exp["name"]):
        previous = None
    previous = previous or {"nodes": {}, "lans": {}}
    errors = model.Errors()
    reserved = reserved_ranges(errors, hosts, host_vars, registry_address)
    errors.gate()
    check_reserved(errors, exp, reserved)
    errors.gate()
    placement, placement_summary = place(errors, exp, hosts, previous, host_vars)
    errors.gate()
    subnets = allocate_subnets(errors, exp, previous, reserved)
    errors.gate()
    ifnums = number_interfaces(exp, previous)
    addresses = allocate_addresses(errors, exp, subnets, previous)
    errors.gate()

    project, name = exp["project"], exp["name"]
    plan = {
        "version": PLAN_VERSION,
        "project": project,
        "name": name,
        "routing": exp["routing"],
        "ssh_keys": unique([k.strip() for k in exp["ssh_keys"]] + [k.strip() for k in controller_keys]),
        "users": plan_users(exp["users"], controller_user, controller_keys),
        "kernel_prefix": names.kernel_prefix(project, name),
        "hosts": sorted(set(placement.values()), key=hosts.index),
        "lans": {},
        "nodes": {},
    }
    tunnels, trunks = {}, {}
    # a LAN keeps its VLAN id; a new LAN never takes one another LAN had or has
    previous_vids = dict((n, lan.get("vid")) for n, lan in (previous.get("lans") or {}).items()
                         if lan and lan.get("vid"))
    used_vids = set()
    check_ports(errors, exp, hosts)
    errors.gate()
    port_hosts = set(port["host"] for lan in exp["lans"].values() for port in lan["ports"])
    plan["hosts"] = sorted(set(placement.values()) | port_hosts, key=hosts.index)
    for lan_name, lan in exp["lans"].items():
        members = [m for m, _ip in lan["members"]]
        lan_hosts = sorted(set(placement[m] for m in members) | set(p["host"] for p in lan["ports"]), key=hosts.index)
        plan["lans"][lan_name] = {
            "kind": lan["kind"],
            "subnet": str(subnets[lan_name]),
            "bridge": names.bridge_name(project, name, lan_name),
            "alias": names.alias(project, name, lan_name),
            "members": members,
            "hosts": lan_hosts,
        }
        if len(lan_hosts) > 1 and lan_transport(errors, lan_name, lan_hosts, host_vars) == "vlan":
            taken = used_vids | set(v for n, v in previous_vids.items() if n != lan_name)
            vid, attempt = previous_vids.get(lan_name) or names.vlan_id(project, name, lan_name), 0
            while vid in taken:
                attempt += 1
                vid = names.vlan_id(project, name, lan_name, attempt)
            used_vids.add(vid)
            plan["lans"][lan_name].update(vid=vid, vlan=names.vlan_name(project, name, lan_name),
                                          tunnel_alias=names.alias(project, name, lan_name, "vlan"))
            for host in lan_hosts:
                trunks[host] = host_vars[host]["trunk_interface"]
        elif len(lan_hosts) > 1:
            plan["lans"][lan_name].update(vni=names.tunnel_id(project, name, lan_name),
                                          vxlan=names.vxlan_name(project, name, lan_name),
                                          tunnel_alias=names.alias(project, name, lan_name, "tunnel"))
            for host in lan_hosts:
                tunnels[host] = tunnel_address(errors, host, (host_vars or {}).get(host))
    errors.gate()
    plan["tunnels"] = tunnels
    if placement_summary:  # only with several inventory hosts: single-host plans stay as they were
        plan["placement"] = placement_summary
    if trunks:
        plan["trunks"] = trunks
    macs = set()
    for node_name, node in exp["nodes"].items():
        interfaces = []
        for lan_name, ifname in sorted(ifnums[node_name].items(), key=lambda kv: interface_order(kv[1])):
            mac, attempt = names.mac_address(project, name, node_name, lan_name), 0
            while mac in macs:
                attempt += 1
                mac = names.mac_address(project, name, node_name, lan_name, attempt)
            macs.add(mac)
            interfaces.append({
                "ifname": ifname,
                "lan": lan_name,
                "address": str(addresses[lan_name][node_name]),
                "prefixlen": subnets[lan_name].prefixlen,
                "mac": mac,
                "veth": names.veth_name(project, name, node_name, lan_name),
                "ifb": names.ifb_name(names.veth_name(project, name, node_name, lan_name)),
                "alias": names.alias(project, name, lan_name, node_name),
            })
            interfaces[-1].update(attachment_shapes(exp["lans"][lan_name], node_name))
            # the VXLAN header takes 50 bytes of a 1500-byte path between hosts (a VLAN tag none)
            interfaces[-1]["mtu"] = VXLAN_MTU if plan["lans"][lan_name].get("vxlan") else None
        plan["nodes"][node_name] = {
            "image": node["image"],
            "command": node["command"],
            "cpus": node["cpus"],
            "memory": node["memory"],
            "pids": node["pids"] or defaults.NODE_PIDS,
            "forwarding": node["forwarding"],
            "augment": node["augment"],
            "start": node["start"],
            "restart": node["restart"],
            "env": node["env"],
            "host": placement[node_name],
            "container": names.container_name(project, name, node_name),
            "interfaces": interfaces,
            "routes": [],
        }
        # the container settings a node may add: in the plan only when set (older plans stay as they were)
        for key in defaults.CONTAINER_KEYS:
            if node.get(key) is not None and (key == "entrypoint" or node[key] not in ([], {})):
                plan["nodes"][node_name][key] = node[key]
        if node["volumes"]:  # only when set, like the container settings above
            plan["nodes"][node_name]["volumes"] = [
                dict(v, volume=names.volume_name(project, name, node_name, v["name"])) for v in node["volumes"]]
        if node.get("depends_on"):  # the start order (not in the settings hash: changing it restarts nothing)
            plan["nodes"][node_name]["depends_on"] = node["depends_on"]
    plan_ports(errors, exp, plan, subnets, addresses, previous)
    errors.gate()
    if exp["storage"]["project"]:  # only then: plans without shared storage stay as they were
        plan["storage"] = plan_storage(errors, exp, plan["hosts"], host_vars)
        errors.gate()
        if exp["storage"]["homes"]:
            plan["users"] = shared_homes(plan["users"], exp["storage"]["project"])
    if exp["routing"] == "static":
        port_routes(plan)
    plan["etc_hosts"] = hosts_entries(plan)
    plan["features"] = kernel_features(plan)
    if exp["events"]:  # only then: plans of files without events stay as they were
        plan["events"] = plan_events(errors, plan, exp["events"])
        errors.gate()
    return plan


def check_ports(errors, exp, hosts):
    """The hosts' interfaces on LANs (mixed mode): the host is the inventory's, a NIC is on one
    LAN at most."""
    seen = {}
    for lan_name, lan in exp["lans"].items():
        for port in lan["ports"]:
            if port["host"] not in hosts:
                errors.add(port["path"] + ".host", "unknown host %r: name a host of the inventory (%s)"
                           % (port["host"], ", ".join(hosts)))
                continue
            key = (port["host"], port["interface"])
            if key in seen and port["interface"] is None:
                errors.add(port["path"], "the own stack of host %s is already on LAN %s: a host's stack joins one "
                           "LAN of an experiment (its routes reach the others)" % (port["host"], seen[key]))
            elif key in seen:
                errors.add(port["path"], "%s of host %s is already on LAN %s: a NIC joins one LAN"
                           % (port["interface"], port["host"], seen[key]))
            seen[key] = lan_name


def plan_ports(errors, exp, plan, subnets, addresses, previous):
    """Each LAN's ``ports``: the host's NIC (a port of the LAN's bridge there), the address the
    machine behind it takes (fixed, else the earlier one, else the lowest free), its shaping (the
    LAN's, like a member's attachment) and the kernel names of ours (the NIC's IFB)."""
    project, name = plan["project"], plan["name"]
    for lan_name, lan in exp["lans"].items():
        if not lan["ports"]:
            continue
        subnet = subnets[lan_name]
        taken = set(addresses[lan_name].values())
        before = dict(((p["host"], p["interface"]), p["address"])
                      for p in ((previous.get("lans") or {}).get(lan_name) or {}).get("ports") or ())
        free = (ip for ip in subnet.hosts() if ip not in taken)
        ports = []
        for port in lan["ports"]:
            stack, nic = names.stack_names(project, name, port["host"], lan_name) if port["interface"] is None \
                else (None, port["interface"])
            ip, old = port["ip"], before.get((port["host"], nic))
            if ip is not None and (ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address)):
                errors.add(port["path"] + ".ip", "%s is not a host address of the LAN's subnet %s" % (ip, subnet))
                continue
            if ip is not None and ip in taken:
                errors.add(port["path"] + ".ip", "%s is already a member's address on this LAN" % ip)
                continue
            if ip is None and old is not None and ipaddress.ip_address(old) in subnet \
                    and ipaddress.ip_address(old) not in taken:
                ip = ipaddress.ip_address(old)
            if ip is None:
                ip = next(free, None)
                while ip is not None and ip in taken:
                    ip = next(free, None)
                if ip is None:
                    errors.add(port["path"], "no address left in %s for this interface: give a larger subnet" % subnet)
                    continue
            taken.add(ip)
            entry = {"host": port["host"], "interface": nic, "address": str(ip),
                     "prefixlen": subnet.prefixlen, "alias": names.alias(project, name, lan_name, "port", port["host"], nic),
                     "ifb": names.port_ifb(project, name, port["host"], nic), "routes": []}
            if stack:  # the host's own stack: a veth pair, ``stack`` has the address, ``interface`` is the bridge's
                entry["stack"] = stack
            entry.update(attachment_shapes(exp["lans"][lan_name], None, own=port.get("shapes") or {}))
            ports.append(entry)
        plan["lans"][lan_name]["ports"] = ports


def port_routes(plan):
    """compute_routes for the nodes, and for each port the routes the machine behind it needs (as
    a node on that LAN alone would have them, its NIC as the device)."""
    pseudo = {}
    for lan_name, spec in plan["lans"].items():
        for k, port in enumerate(spec.get("ports") or ()):
            pseudo["@%s/%d" % (lan_name, k)] = (port, {
                "forwarding": False, "routes": [],
                "interfaces": [{"lan": lan_name, "address": port["address"],
                                "ifname": port.get("stack") or port["interface"]}]})
    plan["nodes"].update((key, node) for key, (_port, node) in pseudo.items())
    try:
        compute_routes(plan)
    finally:
        for key, (port, node) in pseudo.items():
            del plan["nodes"][key]
            port["routes"] = node["routes"]


def plan_storage(errors, exp, hosts, host_vars):
    """The project's shared directory: where the nodes see it (``path``) and, per host, the host
    directory mounted there (``sources``: the host's ``project_root``, default
    DEFAULT_PROJECT_ROOT, then the project's name); ``shared`` when every host of the
    experiment says its project root is one shared file system (``project_shared``)."""
    host_vars = host_vars or {}
    sources, shared = {}, True
    for host in hosts:
        settings = host_vars.get(host) or {}
        root = settings.get("project_root") or DEFAULT_PROJECT_ROOT
        if not isinstance(root, str) or not root.startswith("/") or ":" in root or "\x00" in root:
            errors.add("testbed_project_root of host %s" % host, "must be an absolute host path without ':', got %r"
                       % (root,))
            continue
        root = root.rstrip("/") or "/"
        sources[host] = "%s/%s" % (root, exp["project"])
        shared = shared and bool(settings.get("project_shared"))
    return {"project": {"path": exp["storage"]["project"], "sources": sources,
                        "shared": shared or len(hosts) <= 1}}


def shared_homes(users, project_path):
    """The accounts with their homes on the project's directory (``PATH/users/NAME``, Emulab's
    /users/NAME) and a uid of their own, the same on every node (names.account_uid)."""
    taken, result = set(), []
    for user in users:
        attempt = 0
        uid = names.account_uid(user["name"])
        while uid in taken:
            attempt += 1
            uid = names.account_uid(user["name"], attempt)
        taken.add(uid)
        result.append(dict(user, uid=uid, home="%s/users/%s" % (project_path, user["name"])))
    return result


def storage_warnings(plan):
    """What a user should know about the plan's storage before swapping in."""
    project = (plan.get("storage") or {}).get("project")
    if not project or project["shared"]:
        return []
    return ["storage.project: the experiment spans hosts %s, whose project directories (%s) are not declared "
            "one shared file system (testbed_project_shared: true in the inventory, after mounting the same "
            "storage, e.g. NFS, at testbed_project_root on each): files written on a node are seen only by the "
            "nodes of the same host" % (", ".join(plan["hosts"]), ", ".join(
                "%s:%s" % (h, s) for h, s in sorted(project["sources"].items())))]


def plan_events(errors, plan, scheduled):
    """The schedule as the plan keeps it, [{at: seconds, event: canonical text}], for
    run-events.yml.  Each event is resolved against the plan as the earlier ones leave it (as
    they will be played), so that a shaping it would make invalid is an error now, not midway."""
    from ansible_collections.testbed.containers.plugins.module_utils import events
    current = plan
    for entry in scheduled:
        try:
            actions = events.resolve(current, entry["event"], entry["path"])
        except events.EventError as exc:
            errors.add("", str(exc))
            continue
        if entry["event"]["kind"] in ("link", "shape"):
            current = events.apply_to_plan(current, actions)
    return [{"at": entry["at"], "event": events.describe(entry["event"])} for entry in scheduled]


def place(errors, exp, hosts, previous, host_vars=None):
    """(node -> host, the placement's summary or None), by placement.place(): pins, then the
    previous placement, then a min-cut partition, balanced over the hosts by their capacity when
    no packing factor is given, else a fill within each host's capacity and the experiment's
    packing factor.  The summary (``placement_summary``) only when the inventory has more than
    one host."""
    from ansible_collections.testbed.containers.plugins.module_utils import placement
    host_vars = host_vars or {}
    nodes = dict((n, {"host": node["host"], "cpus": node["cpus"], "memory": node["memory"]})
                 for n, node in exp["nodes"].items())
    lans = dict((n, {"members": [m for m, _ip in lan["members"]],
                     "bandwidth_bps": lan["shape"].rate_bps if lan.get("shape") is not None else None})
                for n, lan in exp["lans"].items())
    specs = dict((h, dict((k, v) for k, v in (host_vars.get(h) or {}).items()
                          if k in ("max_nodes", "mode", "cpus", "memory") and v not in (None, "")))
                 for h in hosts)
    # used_by: the experiments a host holds now (its host record); this one does not count
    this = "%s/%s" % (exp["project"], exp["name"])
    for h in hosts:
        others = set((host_vars.get(h) or {}).get("used_by") or ()) - set([this])
        if others:
            specs[h]["used_by"] = others
    old = dict((n, node["host"]) for n, node in previous["nodes"].items() if node.get("host") in hosts)
    try:
        result = placement.place(nodes, lans, specs, exp.get("packing"), old)
    except placement.PlacementError as exc:
        for error in exc.errors:
            errors.add("", error)
        return {}, None
    return dict(result.nodes), placement_summary(result.stats()) if len(hosts) > 1 else None


def placement_summary(stats):
    """What the plan keeps of a placement for the report (``plan["placement"]``): the mode,
    nodes per inventory host, LANs spanning hosts, LAN attachments crossing them, and when
    balanced the tolerance and each host's target.  Figures only: the hosts never read it and no
    node's settings hash contains it, so a change of it alone touches no node."""
    summary = {"mode": stats["mode"], "per_host": dict(stats["per_host"]), "spanning": stats["spanning"],
               "crossing": stats["crossing"]}
    if stats["mode"] == "balanced":
        summary.update(tolerance=stats["tolerance"], target=dict(stats["target"]))
    return summary


def reserved_ranges(errors, hosts, host_vars, registry_address=None):
    """[(network, what)]: the address ranges the hosts keep for themselves (each host's control
    network and exec-SSH range, the registry's address), which no experiment LAN may overlap:
    a node given the control gateway's address on its eth1 breaks every node of the host."""
    reserved = []
    for host in hosts:
        settings = (host_vars or {}).get(host) or {}
        for key, what in (("control_subnet", "the control network %s" % names.CONTROL_NETWORK),
                          ("exec_subnet", "the exec-SSH address range")):
            value = settings.get(key) or defaults.CONTROL[key]
            try:
                net = ipaddress.ip_network(value, strict=False)
            except (ValueError, TypeError):
                errors.add("inventory.%s.testbed_control.%s" % (host, key), "%r is not an IPv4 network such as %s"
                           % (value, defaults.CONTROL[key]))
                continue
            entry = (net, "%s (%s, testbed_control.%s)" % (what, net, key))
            if entry not in reserved:
                reserved.append(entry)
    address = registry_address or defaults.REGISTRY_ADDRESS
    try:
        reserved.append((ipaddress.ip_network(address), "the testbed registry's address %s (testbed_registry_address)"
                         % address))
    except (ValueError, TypeError):
        errors.add("testbed_registry_address", "%r is not an IP address" % (address,))
    return reserved


def check_reserved(errors, exp, reserved):
    """A LAN's fixed subnet must not overlap a reserved range (see reserved_ranges)."""
    for lan in exp["lans"].values():
        subnet = lan["subnet"]
        for net, what in reserved if subnet is not None else ():
            if subnet.version == net.version and subnet.overlaps(net):
                errors.add(lan["path"] + ".subnet", "%s overlaps %s: choose a subnet outside it (or leave "
                           "subnet out to have one allocated)" % (subnet, what))


def allocate_subnets(errors, exp, previous, reserved=()):
    """Fixed subnets as given; the others from the pool, keeping each LAN's earlier one and
    skipping the ranges the hosts reserve."""
    pool, prefixlen = exp["pool"], exp["prefixlen"]
    subnets = dict((n, lan["subnet"]) for n, lan in exp["lans"].items() if lan["subnet"] is not None)
    taken = list(subnets.values()) + [net for net, _what in reserved if net.version == 4]

    # taken ranges: the /prefixlen blocks they touch (a set), and the few wider than a block
    blocked, wide = set(), []

    def take(net):
        if net.prefixlen >= prefixlen:
            blocked.add(net.supernet(new_prefix=prefixlen) if net.prefixlen > prefixlen else net)
        else:
            wide.append(net)

    for net in taken:
        take(net)

    def free(candidate):
        return candidate.subnet_of(pool) and candidate.prefixlen == prefixlen and candidate not in blocked \
            and not any(candidate.overlaps(t) for t in wide)

    auto = [n for n, lan in exp["lans"].items() if lan["subnet"] is None]
    for lan_name in auto:
        old = previous["lans"].get(lan_name, {}).get("subnet")
        if old and free(ipaddress.ip_network(old)):
            subnets[lan_name] = ipaddress.ip_network(old)
            take(subnets[lan_name])
    candidates = pool.subnets(new_prefix=prefixlen)
    for lan_name in auto:
        if lan_name in subnets:
            continue
        for candidate in candidates:
            if free(candidate):
                subnets[lan_name] = candidate
                take(candidate)
                break
        else:
            inside = [what for net, what in reserved if net.version == 4 and net.overlaps(pool)]
            errors.add(exp["lans"][lan_name]["path"], "no free /%d subnet left in the pool %s%s: widen "
                       "addressing.pool or give this LAN a subnet" % (
                           prefixlen, pool, " (it overlaps %s)" % ", ".join(inside) if inside else ""))
    return subnets


ETH_RE = re.compile(r"^eth([0-9]+)\Z")


def interface_order(ifname):
    """Sort key of a node's interfaces: eth1, eth2, ... by number, then named ones by name."""
    match = ETH_RE.match(ifname)
    return (0, int(match.group(1)), "") if match else (1, 0, ifname)


def number_interfaces(exp, previous):
    """Node -> {lan: ifname}: a named interface (a member's ``interface:``) is that name; an
    attachment keeps its earlier name, new ones take the lowest free ethN."""
    attachments = dict((n, []) for n in exp["nodes"])
    named = dict((n, {}) for n in exp["nodes"])
    for lan_name, lan in exp["lans"].items():
        for member, _ip in lan["members"]:
            attachments[member].append(lan_name)
            if member in lan.get("interfaces", {}):
                named[member][lan_name] = lan["interfaces"][member][0]
    names_ = {}
    for node_name, lans in attachments.items():
        old = dict((i["lan"], i["ifname"]) for i in previous["nodes"].get(node_name, {}).get("interfaces", []))
        mine = dict(named[node_name])
        used = set(mine.values())
        for lan in lans:
            if lan not in mine and lan in old and old[lan] not in used:
                mine[lan] = old[lan]
                used.add(old[lan])
        num = 1
        for lan in lans:
            if lan not in mine:
                while "eth%d" % num in used:
                    num += 1
                mine[lan] = "eth%d" % num
                used.add(mine[lan])
        names_[node_name] = mine
    return names_


def allocate_addresses(errors, exp, subnets, previous):
    """LAN -> {node: address}: fixed ones, then earlier ones, then the lowest free host address."""
    result = {}
    for lan_name, lan in exp["lans"].items():
        subnet = subnets[lan_name]
        capacity = subnet.num_addresses - 2
        if len(lan["members"]) > capacity:
            errors.add(lan["path"], "%d members do not fit in %s (%d addresses): give a larger subnet"
                       % (len(lan["members"]), subnet, capacity))
            continue
        chosen = dict((m, ip) for m, ip in lan["members"] if ip is not None)
        taken = set(chosen.values())
        old = {}
        for node_name, node in previous["nodes"].items():
            for iface in node.get("interfaces", []):
                if iface["lan"] == lan_name:
                    old[node_name] = ipaddress.ip_address(iface["address"])
        for member, _ip in lan["members"]:
            ip = old.get(member)
            if member not in chosen and ip is not None and ip in subnet and ip not in taken \
                    and ip not in (subnet.network_address, subnet.broadcast_address):
                chosen[member] = ip
                taken.add(ip)
        hosts = subnet.hosts()
        for member, _ip in lan["members"]:
            if member in chosen:
                continue
            for ip in hosts:
                if ip not in taken:
                    chosen[member] = ip
                    taken.add(ip)
                    break
        result[lan_name] = chosen
    return result


def compute_routes(plan):
    """Shortest-path static routes: every node reaches every LAN's subnet.

    Breadth-first search over LANs: from a LAN one may cross into another LAN only through a
    member with ``forwarding: true``.  The first hop is that router's address on the source's
    own LAN.  Ties break by file order, so the result is deterministic.
    """
    nodes, lans = plan["nodes"], plan["lans"]
    addr = dict(((n, i["lan"]), i["address"]) for n, node in nodes.items() for i in node["interfaces"])
    dev = dict(((n, i["lan"]), i["ifname"]) for n, node in nodes.items() for i in node["interfaces"])
    # the forwarding members of each LAN, once: a LAN of 5,000 hosts has few routers
    routers = dict((lan, [m for m in spec["members"] if nodes[m]["forwarding"]]) for lan, spec in lans.items())
    stubs = stub_routes(nodes, lans, routers, addr, dev)
    for src, node in nodes.items():
        if src in stubs:
            node["routes"] = stubs[src]
            continue
        mine = [i["lan"] for i in node["interfaces"]]
        # first_hop[lan] = (router, lan of src through which the router is reached)
        first_hop = dict((lan, None) for lan in mine)
        queue = deque(mine)
        while queue:
            lan = queue.popleft()
            for router in routers[lan]:
                if router == src:
                    continue
                hop = first_hop[lan] or (router, lan)
                for iface in nodes[router]["interfaces"]:
                    nxt = iface["lan"]
                    if nxt not in first_hop:
                        first_hop[nxt] = hop
                        queue.append(nxt)
        routes = []
        for lan in lans:
            hop = first_hop.get(lan)
            if hop is None:
                continue
            router, via_lan = hop
            routes.append({"dest": lans[lan]["subnet"], "via": addr[(router, via_lan)],
                           "dev": dev[(src, via_lan)], "lan": lan})
        node["routes"] = routes


# A node that reaches every other LAN through one router gets the collapsed set of their subnets
# (ipaddress.collapse_addresses: exactly the same addresses, fewer routes) once it would need more
# routes than this; below it, one route per LAN as before.
AGGREGATE_ABOVE = 64


def stub_routes(nodes, lans, routers, addr, dev):
    """Routes of the nodes that do not forward and have exactly one router on their LANs, when
    they would need more than AGGREGATE_ABOVE of them: node -> routes.  Without this, 5,000
    hosts on links to 100 routers need 5,000 routes each (25 million in the plan); with it, a
    handful each.  Which LANs a router reaches: the LANs joined through forwarding nodes
    (union-find, once), so no search per node."""
    parent = dict((lan, lan) for lan in lans)

    def find(lan):
        while parent[lan] != lan:
            parent[lan] = parent[parent[lan]]
            lan = parent[lan]
        return lan

    for node in nodes.values():
        if node["forwarding"] and node["interfaces"]:
            first = find(node["interfaces"][0]["lan"])
            for iface in node["interfaces"][1:]:
                other = find(iface["lan"])
                if other != first:
                    parent[other] = first
    members = {}
    for lan in lans:
        members.setdefault(find(lan), []).append(lan)
    collapsed = {}
    result = {}
    for src, node in nodes.items():
        if node["forwarding"]:
            continue
        mine = [i["lan"] for i in node["interfaces"]]
        gateways = unique([(r, lan) for lan in mine for r in routers[lan] if r != src])
        if len(gateways) != 1:
            continue
        router, via_lan = gateways[0]
        root = find(via_lan)
        if len(members[root]) - len(mine) <= AGGREGATE_ABOVE:
            continue
        if root not in collapsed:
            nets = [ipaddress.ip_network(lans[lan]["subnet"]) for lan in members[root]]
            collapsed[root] = [str(n) for n in ipaddress.collapse_addresses(nets)]
        # the node's own subnets may be in the set: merged into a wider one, the connected route is
        # more specific; standing alone, it would repeat the connected route (the kernel refuses it)
        own = set(lans[lan]["subnet"] for lan in mine)
        result[src] = [{"dest": dest, "via": addr[(router, via_lan)], "dev": dev[(src, via_lan)], "lan": None}
                       for dest in collapsed[root] if dest not in own]
    return result


VXLAN_MTU = 1450


def lan_transport(errors, lan_name, lan_hosts, host_vars):
    """How a LAN spanning ``lan_hosts`` crosses hosts: ``vlan`` when every one of them has a
    trunk interface (inventory ``testbed_trunk_interface``: 802.1Q on a switched testbed,
    Emulab's way), ``vxlan`` when none has; a mix is an error."""
    host_vars = host_vars or {}
    with_trunk = [h for h in lan_hosts if (host_vars.get(h) or {}).get("trunk_interface")]
    if not with_trunk:
        return "vxlan"
    if len(with_trunk) != len(lan_hosts):
        without = [h for h in lan_hosts if h not in with_trunk]
        errors.add("lans.%s" % lan_name, "spans hosts with a trunk interface (%s) and without (%s): set "
                   "testbed_trunk_interface on all of them (VLAN mode) or on none (VXLAN)"
                   % (", ".join(with_trunk), ", ".join(without)))
        return None
    return "vlan"


def tunnel_address(errors, host, host_vars):
    """The address a host's VXLAN tunnels use: testbed_tunnel_address, else ansible_host."""
    value = (host_vars or {}).get("tunnel_address")
    try:
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        errors.add("inventory.%s.testbed_tunnel_address" % host, "a LAN spans this host, so it needs the IPv4 "
                   "address of its interface that carries experiment tunnels, got %r" % (value,))
        return None


def _shape_dict(shape):
    return None if shape is None or shape.empty else dataclasses.asdict(shape)


def attachment_shapes(lan, node, own=None):
    """The shaping of one attachment: ``to_node`` (host -> node) and ``from_node`` (node -> host).

    A LAN's parameters apply to each member's attachment, both ways, unless the member gives
    its own (shaping keys on the member, ``to_node``/``from_node`` per direction).  A link's parameters are
    end to end: each direction is shaped once, on the receiving end's attachment (``to_node``),
    with the link's values overridden by ``SRC_to_DST``.  ``own``: a host NIC's own values
    (a port is no node: its shapes come with it).
    """
    if lan["kind"] == "lan":
        # a member's own values (Emulab's tb-set-node-lan-*) replace the LAN's for its attachment
        if own is None:
            own = lan.get("member_shapes", {}).get(node, {})
        both = own.get("both", lan["shape"])
        return {"to_node": _shape_dict(own.get("to_node", both)), "from_node": _shape_dict(own.get("from_node", both))}
    endpoints = [m for m, _ip in lan["members"]]
    other = endpoints[1] if endpoints[0] == node else endpoints[0]
    _path, shape = lan["directions"].get((other, node), (None, lan["shape"]))
    return {"to_node": _shape_dict(shape), "from_node": None}


def kernel_features(plan):
    """What the plan needs from each host's kernel, for the preflight."""
    from ansible_collections.testbed.containers.plugins.module_utils.shaping import Shape, needed_features
    attachments = [i for node in plan["nodes"].values() for i in node["interfaces"]]
    attachments += [p for lan in plan["lans"].values() for p in lan.get("ports") or ()]  # the hosts' NICs
    shapes = [(Shape(**i["to_node"]) if i.get("to_node") else None, Shape(**i["from_node"]) if i.get("from_node")
               else None) for i in attachments]
    spanning = [lan for lan in plan["lans"].values() if len(lan["hosts"]) > 1]
    crossing = (["vxlan"] if any(lan.get("vxlan") for lan in spanning) else []) + \
        (["vlan"] if any(lan.get("vlan") for lan in spanning) else [])
    weights = ["blkio_weight"] if any(n.get("blkio_weight") for n in plan["nodes"].values()) else []
    return ["bridge", "veth"] + crossing + needed_features(shapes) + weights


def hosts_entries(plan):
    """[address, name] pairs: NODE-LAN for each attachment, NODE on its lowest ethN (decision 5)."""
    entries = []
    for node_name, node in plan["nodes"].items():
        for k, iface in enumerate(node["interfaces"]):
            names_ = ["%s-%s" % (node_name, iface["lan"])]
            if k == 0:
                names_.insert(0, node_name)
            entries.append([iface["address"]] + names_)
    taken = set(plan["nodes"])
    for spec in plan["lans"].values():  # a host's interface: HOST-NIC (its own stack: HOST), when that is a host name
        for port in spec.get("ports") or ():
            label = (port["host"] if port.get("stack") else "%s-%s" % (port["host"], port["interface"])).lower()
            if HOSTNAME_RE.match(label) and label not in taken and label != "localhost":  # a node's own is 127.0.0.1
                entries.append([port["address"], label])
    return entries


def plan_users(users, controller_user, keys):
    """The accounts of ``full`` nodes: the file's ``users:``, else the controller's user with its
    keys (none when the controller runs as root: root exists in every node)."""
    if users is not None:
        return [dict(u, ssh_keys=list(u["ssh_keys"])) for u in users]
    if not controller_user or controller_user == "root" or not model.ACCOUNT_RE.match(controller_user):
        return []
    return [{"name": controller_user, "ssh_keys": unique([k.strip() for k in keys])}]


def controller_user():
    """The name of the user running the playbook."""
    import getpass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def controller_keys(ssh_dir="~/.ssh"):
    """The public keys of the user running the playbook (``~/.ssh/id_*.pub``)."""
    import glob
    keys = []
    for path in sorted(glob.glob(os.path.join(os.path.expanduser(ssh_dir), "id_*.pub"))):
        with open(path) as f:
            keys.extend(line.strip() for line in f if line.strip())
    return keys


def load_and_plan(path, hosts, record_dir=None, host_vars=None, registry_address=None, fmt=None, import_options=None):
    """Read the experiment file at ``path`` (ours, or an NS file, containerlab topology or compose
    project: importers.load converts them) and plan it, keeping the recorded earlier swap-in.
    Returns (plan, notes): the importer's notes (warnings, renames) for the caller to show."""
    plan, notes, _previous = _load_and_plan(path, hosts, record_dir, host_vars, registry_address, fmt, import_options)
    return plan, notes


def _load_and_plan(path, hosts, record_dir, host_vars, registry_address, fmt, import_options):
    """:func:`load_and_plan`, with the recorded plan of the earlier swap-in it kept (or None)."""
    from ansible_collections.testbed.containers.plugins.module_utils import importers, report

    try:
        _fmt, doc, notes = importers.load(path, fmt, import_options)
    except (IOError, OSError) as exc:
        raise model.ExperimentError(["cannot read the experiment file %s: %s" % (path, exc)])
    except importers.ImportFailed as exc:
        raise model.ExperimentError([str(n) for n in exc.notes if n.level == "error"] or [str(exc)])
    except ValueError as exc:
        raise model.ExperimentError([str(exc)])
    previous = None
    if record_dir and isinstance(doc, dict):
        project, name = doc.get("project", "default"), doc.get("name")
        if isinstance(project, str) and isinstance(name, str):
            record = report.read_record(record_dir, project, name)
            previous = record.get("plan") if record else None
    plan = make_plan(doc, hosts, previous, controller_keys(), host_vars, controller_user(), registry_address)
    return plan, notes, previous


def plan_task(path, hosts, record_dir=None, host_vars=None, registry_address=None, format=None,
              import_options=None):  # pylint: disable=redefined-builtin
    """What the task experiment_plan returns (its module and its action plugin, which runs it on
    the controller without a module process): (result, warnings); ExperimentError when invalid."""
    import time

    started = time.time()
    plan, notes, previous = _load_and_plan(path, hosts, record_dir, host_vars, registry_address, format,
                                           import_options)
    warnings = [str(note) for note in notes if note.level == "warning"] + list(storage_warnings(plan))
    result = dict(changed=False, plan=plan, project=plan["project"], name=plan["name"],
                  import_notes=[n.as_dict() for n in notes], changed_nodes=changed_nodes(plan, previous),
                  seconds=round(time.time() - started, 3))
    return result, warnings


def changed_nodes(plan, previous):
    """host -> how many of its nodes are new or planned differently than in ``previous`` (the
    recorded plan of the last swap-in, or None): what a converge there has to create or recreate
    (the slice role follows a converge with many of them as an asynchronous job)."""
    before = (previous or {}).get("nodes") or {}
    counts = dict((host, 0) for host in plan.get("hosts", []))
    for name, node in plan["nodes"].items():
        if before.get(name) != node:
            counts[node["host"]] = counts.get(node["host"], 0) + 1
    return counts
