# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""containerlab topologies (``*.clab.yml``, https://containerlab.dev) as experiments.

What becomes what:

- ``topology.nodes`` of kind ``linux`` -> nodes (``image``, ``cmd`` -> ``command``, ``entrypoint``,
  ``env`` + ``env-files``, ``binds``, ``labels``, ``ports``, ``user``, ``cap-add``, ``sysctls``,
  ``cpu``, ``memory``, ``restart-policy``); ``exec`` -> the node's ``start`` (the commands one a
  line, in order: both run once the node's interfaces exist);
- inheritance as containerlab resolves it (types/topology.go): the node's kind is the node's,
  else its group's, else the default group's, else ``defaults.kind``; its group the node's, else
  its kind's, else ``defaults.group``; a single value (image, cmd, user, ...) comes from the most
  specific of node > group > kind > defaults that sets it; ``env``, ``labels`` and ``sysctls``
  are merged key by key (node over group over kind over defaults); ``exec``, ``binds``,
  ``cap-add`` and ``env-files`` are concatenated defaults, kind, group, node with duplicates
  removed, and binds with the same container path keep the most specific one (containerlab then
  sorts them, as here); ``ports`` come from one level, the most specific that sets them;
- ``links`` between two nodes -> ``links:`` entries whose endpoints keep their interface names
  (``{node: a, interface: eth1}``); links to a node of kind ``bridge``/``ovs-bridge`` -> one LAN
  named after the bridge, whose members are every endpoint attached to it (the bridge is no node);
- addresses that ``exec`` sets (``ip addr add 10.0.0.1/24 dev eth1``) or the link's ``ipv4``
  gives -> the member's ``ip`` and the link's ``subnet``; such an ``exec`` line is dropped from
  the start command (the address exists by then and ``ip addr add`` would fail), so is
  ``sysctl -w net.ipv4.ip_forward=1`` (-> ``forwarding: true``) and any other ``sysctl -w``
  (-> ``sysctls``): nodes are not privileged here and cannot write /proc/sys;
- ``routing: none``: containerlab configures no routes (``options['routing']`` may say
  otherwise);
- kinds other than linux and the bridges (network operating systems: nokia_srlinux, ceos,
  vr-*, ...) are errors, unless ``options['kind_images']`` maps the kind to an image (the node
  then runs that image as a Linux node, with an info note).

Variables (``${VAR}``, ``${VAR:=default}``, ...) are expanded as containerlab does, without an
environment: an unset one is blank (a warning), a default is used (info), ``$$`` is ``$``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import re
import shlex

from ansible_collections.testbed.containers.plugins.module_utils import importers
from ansible_collections.testbed.containers.plugins.module_utils.importers import compose as common

NATIVE_KINDS = ("linux",)
BRIDGE_KINDS = ("bridge", "ovs-bridge")
SPECIAL_ENDPOINTS = {
    "host": "connects the node to the containerlab host's own network namespace",
    "mgmt-net": "connects the node to the management network, which is the testbed's control network",
    "macvlan": "connects the node to a host interface (macvlan)",
}
LINK_TYPE_ERRORS = {
    "host": "connects a node to the host's network namespace",
    "mgmt-net": "connects a node to the management network, which is the testbed's control network",
    "macvlan": "connects a node to a host interface",
    "vxlan": "tunnels a node's interface to a remote host",
    "vxlan-stitch": "tunnels a node's interface to a remote host",
}
# Node keys without a meaning here: why they are not carried over.
NODE_WARN = {
    "type": "the node type is a network OS setting",
    "startup-config": "startup configurations are a network OS setting: bind the file with binds and load it in exec",
    "enforce-startup-config": "startup configurations are a network OS setting",
    "suppress-startup-config": "startup configurations are a network OS setting",
    "license": "licenses are a network OS setting",
    "startup-delay": "nodes start together",
    "image-pull-policy": "images must exist on the host (or the controller, for several hosts)",
    "auto-remove": "the testbed removes nodes at swap-out",
    "credentials": "logins are the testbed's (ssh -p PORT root@HOST)",
    "username": "logins are the testbed's (ssh -p PORT root@HOST)",
    "password": "logins are the testbed's (ssh -p PORT root@HOST)",
    "runtime": "the container runtime is the testbed's",
    "cpu-set": "pinning to CPUs is not carried over (cpu is)",
    "shm-size": "the shared memory size is Docker's default",
    "tmpfs": "tmpfs mounts are not carried over",
    "dns": "DNS settings are the testbed's",
    "extras": "kind-specific extras are not carried over",
    "config": "containerlab's configuration templates are not carried over",
    "stages": "deployment stages are not carried over: nodes start together, start commands run once every "
              "node's interfaces exist",
    "certificate": "containerlab's certificates are not issued",
    "healthcheck": "a health check is not run here",
    "components": "components are a network OS setting",
    "aliases": "the node's names are NODE and NODE-LAN in /etc/hosts",
    "position": "graph positions are not carried over",
    "link-apply-mode": "not carried over",
    "cgroup-parent": "the node's cgroup is the testbed's",
    "volumes": "named and anonymous volumes are not carried over yet",
    "mgmt-ipv4": "the testbed picks control (management) addresses itself",
    "mgmt-ipv6": "the control (management) network is IPv4",
}
NODE_KEYS = ("kind", "group", "image", "exec", "env", "env-files", "binds", "cmd", "entrypoint", "labels", "ports",
             "user", "cpu", "memory", "cap-add", "sysctls", "restart-policy", "hostname", "privileged",
             "network-mode", "devices", "pid-mode", "cgroupns-mode", "security-opts")
MGMT_WARN = {
    "bridge": "the control network's bridge is the testbed's",
    "ipv4-gw": "the control network's gateway is the testbed's",
    "ipv6-gw": "the control network is IPv4",
    "ipv4-range": "the testbed picks control addresses itself",
    "ipv6-range": "the control network is IPv4",
    "ipv6-subnet": "the control network is IPv4",
    "ipv6_subnet": "the control network is IPv4",
    "mtu": "the control network's MTU is the testbed's",
    "external-access": "access to nodes is through the testbed's SSH ports",
    "driver-opts": "the control network is the testbed's",
    "skip-when-unused": "every node has a control interface here",
}
ADDRESS_OBJECT = "address"
SYSCTL_CMD = ("sysctl", "/sbin/sysctl", "/usr/sbin/sysctl")


def convert(text, path, options):
    """A containerlab topology's text -> (experiment document, notes)."""
    options = dict(options or {})
    notes = common.OnceNotes(path)
    data, lines = common.load_yaml(text, path, notes, "containerlab topology")
    if data is None:
        notes.gate()
    data = common.interpolate_tree(data, {}, notes, lines, "the environment (containerlab expands variables from the "
                                   "shell that deploys the lab)", operators=(":-", "-", ":=", "=", ":+", "+", ":?", "?"))
    doc = _Clab(data, lines, notes, path, options).run()
    notes.gate()
    return doc, notes.items


class _Endpoint:
    def __init__(self, node, iface, line, ipv4=None, ipv4_line=None):
        self.node, self.iface, self.line = node, iface, line
        self.ipv4, self.ipv4_line = ipv4, ipv4_line   # from the link definition
        self.address = None   # (ip_interface, line, where) once known


class _Link:
    def __init__(self, kind, line, endpoints):
        self.kind, self.line, self.endpoints = kind, line, endpoints


class _Clab:

    def __init__(self, data, lines, notes, path, options):
        self.data, self.lines, self.notes, self.options = data, lines, notes, options
        self.base_dir = os.path.dirname(os.path.abspath(path))
        self.topo = {}
        self.node_names = importers.Renamer(notes, "node")
        self.lan_names = importers.Renamer(notes, "bridge")
        self.kind_images = dict(options.get("kind_images") or {})
        self.links = []
        self.endpoints_index, self.endpoints_count = None, -1

    def line(self, *keys):
        return self.lines.key(keys)

    # -- top level --------------------------------------------------------------------------------

    def run(self):
        data, notes = self.data, self.notes
        for key in data:
            line = self.line(key)
            if key in ("name", "topology"):
                continue
            if key == "mgmt":
                self.mgmt(data[key])
            elif key == "prefix":
                notes.info(line, "prefix is not carried over: the testbed names the containers")
            elif key == "settings":
                notes.warn(line, "settings (containerlab's certificate authority) are not carried over")
            elif key == "debug":
                notes.info(line, "debug is ignored")
            else:
                notes.warn(line, "unknown top-level key %s is not carried over" % key)
        self.lab = str(data.get("name") or "")
        doc = {"name": self.experiment_name()}
        if self.options.get("project"):
            doc["project"] = self.options["project"]
        topo = data.get("topology")
        if not isinstance(topo, dict):
            notes.error(self.line("topology"), "topology must be a mapping with nodes (and links)")
            return doc
        self.topo = topo
        for key in topo:
            if key not in ("nodes", "links", "kinds", "defaults", "groups"):
                notes.warn(self.line("topology", key), "unknown key topology.%s is not carried over" % key)
        for section in ("kinds", "groups", "defaults"):
            value = topo.get(section)
            if value is not None and not isinstance(value, dict):
                notes.error(self.line("topology", section), "topology.%s must be a mapping" % section)
                topo[section] = {}
        raw_nodes = topo.get("nodes")
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            notes.error(self.line("topology", "nodes"), "topology.nodes must be a mapping of at least one node")
            return doc
        self.raw_nodes = raw_nodes
        self.classify()
        self.links = self.read_links(topo.get("links"))
        nodes = {}
        for raw in raw_nodes:
            if self.kinds[raw] in BRIDGE_KINDS:
                self.bridge_node(raw)
                continue
            nodes[self.names[raw]] = self.node(raw)
        if not nodes:
            notes.error(self.line("topology", "nodes"), "the topology has no node other than bridges")
        doc["nodes"] = nodes
        lans, links = self.networks()
        if lans:
            doc["lans"] = lans
        if links:
            doc["links"] = links
        routing = self.options.get("routing") or "none"
        doc["routing"] = routing
        if routing == "none":
            notes.info(self.line("topology"), "routing: none: containerlab configures no routes (exec commands that "
                       "add routes are kept in the start commands)")
        self.unused_sections()
        return doc

    def experiment_name(self):
        return (importers.given_name(self.options, self.data, self.notes, self.line, "lab")
                or importers.experiment_name(self.notes.path))

    def mgmt(self, mgmt):
        notes = self.notes
        if not isinstance(mgmt, dict):
            notes.error(self.line("mgmt"), "mgmt must be a mapping")
            return
        for key, value in mgmt.items():
            line = self.line("mgmt", key)
            if key == "network":
                notes.info(line, "management network %s is the testbed's control network here: every node's eth0 "
                           "(Docker network dockercnet)" % value)
            elif key in ("ipv4-subnet", "ipv4_subnet"):
                if value == "auto":
                    notes.info(line, "mgmt.%s auto: the testbed allocates control addresses" % key)
                else:
                    notes.warn(line, "mgmt.%s %s is not carried over: the control subnet is the testbed's "
                               "(testbed_control.control_subnet), shared by all experiments; the testbed picks "
                               "control addresses itself" % (key, value))
            elif key in MGMT_WARN:
                notes.warn(line, "mgmt.%s is not carried over: %s" % (key, MGMT_WARN[key]))
            else:
                notes.warn(line, "unknown key mgmt.%s is not carried over" % key)

    # -- kinds, groups, levels ----------------------------------------------------------------------

    def section(self, name):
        value = self.topo.get(name)
        return value if isinstance(value, dict) else {}

    def defaults(self):
        value = self.topo.get("defaults")
        return value if isinstance(value, dict) else {}

    def node_def(self, raw):
        value = self.raw_nodes.get(raw)
        return value if isinstance(value, dict) else {}

    def node_kind(self, raw):
        """containerlab's GetNodeKind: node, its group, the default group, defaults.kind."""
        nd, groups, defaults = self.node_def(raw), self.section("groups"), self.defaults()
        if nd.get("kind"):
            return str(nd["kind"]).lower(), ("topology", "nodes", raw, "kind")
        group = groups.get(nd.get("group")) if nd.get("group") else None
        if isinstance(group, dict) and group.get("kind"):
            return str(group["kind"]).lower(), ("topology", "groups", nd["group"], "kind")
        dgroup = groups.get(defaults.get("group")) if defaults.get("group") else None
        if isinstance(dgroup, dict) and dgroup.get("kind"):
            return str(dgroup["kind"]).lower(), ("topology", "groups", defaults["group"], "kind")
        if defaults.get("kind"):
            return str(defaults["kind"]).lower(), ("topology", "defaults", "kind")
        return None, ("topology", "nodes", raw)

    def node_group(self, raw, kind):
        """containerlab's GetNodeGroup: node, its kind's, defaults.group."""
        nd = self.node_def(raw)
        if nd.get("group"):
            return str(nd["group"])
        kdef = self.section("kinds").get(kind) if kind else None
        if isinstance(kdef, dict) and kdef.get("group"):
            return str(kdef["group"])
        return str(self.defaults()["group"]) if self.defaults().get("group") else None

    def levels(self, raw):
        """[(path, definition)] from the most specific: node, group, kind, defaults."""
        kind = self.kinds[raw]
        group = self.groups[raw]
        out = [(("topology", "nodes", raw), self.node_def(raw))]
        gdef = self.section("groups").get(group) if group else None
        if isinstance(gdef, dict):
            out.append((("topology", "groups", group), gdef))
        kdef = self.section("kinds").get(self.kind_keys.get(raw)) if kind else None
        if isinstance(kdef, dict):
            out.append((("topology", "kinds", self.kind_keys[raw]), kdef))
        out.append((("topology", "defaults"), self.defaults()))
        return out

    def classify(self):
        self.kinds, self.groups, self.kind_keys, self.names, self.kind_paths = {}, {}, {}, {}, {}
        kinds_section = self.section("kinds")
        for raw in self.raw_nodes:
            spec = self.raw_nodes[raw]
            if spec is not None and not isinstance(spec, dict):
                self.notes.error(self.line("topology", "nodes", raw), "node %s must be a mapping" % raw)
            kind, kpath = self.node_kind(raw)
            self.kinds[raw], self.kind_paths[raw] = kind, kpath
            # topology.kinds keys are matched as written, then lowercase
            self.kind_keys[raw] = next((k for k in kinds_section if str(k).lower() == kind), kind) if kind else None
            self.groups[raw] = self.node_group(raw, self.kind_keys[raw])
            if kind in BRIDGE_KINDS:
                self.names[raw] = self.lan_names(raw, self.line("topology", "nodes", raw))
            else:
                self.names[raw] = self.node_names(raw, self.line("topology", "nodes", raw))

    def used(self, raw, key):
        """(value, path) of a single-valued key: the most specific level that sets it."""
        for path, definition in self.levels(raw):
            if key in definition and definition[key] not in (None, "", [], {}):
                return definition[key], path + (key,)
        return None, None

    def merged_map(self, raw, key):
        """{name: (value, path)}: defaults, then kind, group, node over it."""
        out = {}
        for path, definition in reversed(self.levels(raw)):
            value = definition.get(key)
            if value is None:
                continue
            if not isinstance(value, dict):
                self.notes.error(self.line(*path + (key,)), "%s must be a mapping" % key)
                continue
            for name, item in value.items():
                out[str(name)] = (item, path + (key, name))
        return out

    def merged_list(self, raw, key):
        """[(value, path)]: defaults, kind, group, node concatenated, duplicates removed."""
        out, seen = [], set()
        for path, definition in reversed(self.levels(raw)):
            value = definition.get(key)
            if value is None:
                continue
            if not isinstance(value, list):
                value = [value]
                items = [(value[0], path + (key,))]
            else:
                items = [(item, path + (key, i)) for i, item in enumerate(value)]
            for item, ipath in items:
                text = common.scalar(item)
                if text not in seen:
                    seen.add(text)
                    out.append((text, ipath))
        return out

    # -- nodes ----------------------------------------------------------------------------------

    def bridge_node(self, raw):
        nd = self.node_def(raw)
        for key in nd:
            if key not in ("kind", "group", "labels"):
                self.notes.warn(self.line("topology", "nodes", raw, key), "%s of bridge %s is not carried over: the "
                                "bridge is the LAN %s here, not a node" % (key, raw, self.names[raw]))

    def node(self, raw):
        notes = self.notes
        name = self.names[raw]
        kind = self.kinds[raw]
        nline = self.line("topology", "nodes", raw)
        node = {}
        image, _ipath = self.used(raw, "image")
        kline = self.line(*self.kind_paths[raw])
        if kind is None:
            notes.error(nline, "node %s has no kind: containerlab needs one (kind: linux, or topology.defaults.kind)"
                        % raw)
        elif kind not in NATIVE_KINDS:
            mapped = self.kind_images.get(kind, self.kind_images.get(self.kind_keys[raw]))
            if mapped:
                node["image"] = str(mapped)
                notes.info(kline, "node %s of kind %s runs image %s (kind_images) as a Linux node%s: the network OS's "
                           "own configuration (startup-config, license, ...) is not carried over"
                           % (raw, kind, mapped, " instead of %s" % image if image else ""))
            elif kind == "host":
                notes.error(kline, "node %s is of kind host (the containerlab host itself): it cannot be a node of a "
                            "shared testbed; map the kind with kind_images or remove it" % raw)
            elif kind == "ext-container":
                notes.error(kline, "node %s is of kind ext-container (a container started outside the lab): it cannot "
                            "be imported; map the kind with kind_images or describe it as a linux node" % raw)
            else:
                notes.error(kline, "node %s is of kind %s (a network operating system, not a Linux container): map "
                            "the kind to an image with kind_images, or use kind: linux with an image" % (raw, kind))
        if "image" not in node:
            if image:
                node["image"] = str(image)
            else:
                default = self.options.get("default_image") or importers.DEFAULT_IMAGE
                node["image"] = default
                notes.info(nline, "node %s has no image: it runs %s (default_image)" % (raw, default))
        self.node_keys(raw, name, node)
        self.run_keys(raw, node)
        self.environment(raw, node)
        self.container_keys(raw, name, node)
        self.exec_commands(raw, node)
        return node

    def node_keys(self, raw, name, node):
        """Warnings and errors for the keys the node uses, at the level that sets them."""
        notes = self.notes
        seen = set()
        for path, definition in self.levels(raw):
            for key in definition:
                if key in seen:
                    continue
                seen.add(key)
                value = definition[key]
                line = self.line(*path + (key,))
                where = "" if path[1] == "nodes" else " (inherited from %s)" % common.dotted(path[1:])
                if key in NODE_KEYS:
                    self.checked_key(raw, name, key, value, line, where)
                elif key in NODE_WARN:
                    if value in (None, "", [], {}, False):
                        continue
                    notes.warn(line, "%s of node %s is not carried over%s: %s" % (key, raw, where, NODE_WARN[key]))
                else:
                    notes.warn(line, "unknown node key %s of node %s is not carried over%s" % (key, raw, where))

    def checked_key(self, raw, name, key, value, line, where):
        notes = self.notes
        if key == "privileged" and value:
            notes.error(line, "node %s is privileged%s: a privileged container reaches beyond the node and cannot be "
                        "honoured on a shared testbed (add capabilities with cap-add)" % (raw, where))
        elif key == "network-mode" and value:
            mode = str(value)
            if mode == "none":
                notes.warn(line, "network-mode none of node %s is not carried over%s: every node has its control "
                           "interface eth0 here" % (raw, where))
            elif mode != "bridge":
                notes.error(line, "network-mode %s of node %s%s: the node's network namespace is the testbed's (eth0 "
                            "control, links on their interfaces); it cannot be honoured" % (mode, raw, where))
        elif key == "devices" and value:
            notes.error(line, "devices of node %s%s: host devices cannot be given to nodes on a shared testbed"
                        % (raw, where))
        elif key == "pid-mode" and value:
            notes.error(line, "pid-mode %s of node %s%s shares a process namespace: it cannot be honoured on a shared "
                        "testbed" % (value, raw, where))
        elif key == "cgroupns-mode" and value and value != "private":
            notes.error(line, "cgroupns-mode %s of node %s%s: the cgroup namespace is the node's own; it cannot be "
                        "honoured" % (value, raw, where))
        elif key == "security-opts" and value:
            notes.error(line, "security-opts of node %s%s change the node's isolation: they cannot be honoured on a "
                        "shared testbed" % (raw, where))
        elif key == "hostname" and value and str(value) != name:
            notes.warn(line, "hostname %s of node %s is not carried over%s: the node's host name is %s"
                       % (value, raw, where, name))

    def run_keys(self, raw, node):
        notes = self.notes
        cmd, cpath = self.used(raw, "cmd")
        if isinstance(cmd, (dict, list)):
            notes.error(self.line(*cpath), "cmd of node %s must be a string (containerlab's shell form)" % raw)
        elif cmd is not None:
            node["command"] = common.scalar(cmd)
        entrypoint, epath = self.used(raw, "entrypoint")
        if isinstance(entrypoint, (dict, list)):
            notes.error(self.line(*epath), "entrypoint of node %s must be a string (containerlab's shell form)" % raw)
        elif entrypoint is not None:
            split = common.shell_split(common.scalar(entrypoint))
            if split is None:
                notes.error(self.line(*epath), "entrypoint of node %s is not a valid shell-form command (unbalanced "
                            "quotes)" % raw)
            else:
                node["entrypoint"] = split
        user, _upath = self.used(raw, "user")
        if user is not None:
            node["user"] = common.scalar(user)
        cpu, cpath = self.used(raw, "cpu")
        if cpu is not None:
            try:
                cpus = float(cpu)
                node["cpus"] = int(cpus) if cpus == int(cpus) else cpus
            except (TypeError, ValueError):
                notes.error(self.line(*cpath), "cpu %r of node %s is not a number of CPUs" % (cpu, raw))
        memory, mpath = self.used(raw, "memory")
        if memory is not None:
            nbytes = common.parse_size(memory, binary=False)
            if nbytes is None:
                notes.error(self.line(*mpath), "memory %r of node %s is not a size (1Gb, 512mib)" % (memory, raw))
            else:
                node["memory"] = common.memory_string(nbytes)
                if node["memory"] != str(memory).lower().replace("ib", "").replace(" ", ""):
                    notes.info(self.line(*mpath), "memory %s of node %s is %s here (containerlab reads kb, mb, gb as "
                               "powers of 1000, kib, mib, gib as powers of 1024)" % (memory, raw, node["memory"]))
        policy, rpath = self.used(raw, "restart-policy")
        if policy is False:
            policy = "no"
        if policy is not None:
            text = str(policy).lower()
            mapped = {"always": "always", "unless-stopped": "always", "on-failure": "on-failure", "no": "no"}.get(text)
            if mapped is None:
                notes.error(self.line(*rpath), "restart-policy %r of node %s is not no, on-failure, always or "
                            "unless-stopped" % (policy, raw))
            else:
                node["restart"] = mapped
                notes.info(self.line(*rpath), "restart-policy %s of node %s: the node's supervisor restarts the "
                           "application (%s); the node itself stays up" % (policy, raw, mapped))
        elif self.kinds[raw] in NATIVE_KINDS:
            notes.info(None, "containerlab restarts linux containers whose process exits (restart-policy always by "
                       "default): here a node stays up when its application exits, and the application is restarted "
                       "only where restart-policy says so")

    def environment(self, raw, node):
        notes = self.notes
        for item, ipath in self.merged_list(raw, "env-files"):
            line = self.line(*ipath)
            filename = os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(item)))
            if not os.path.isfile(filename):
                notes.error(line, "env-file %s of node %s does not exist (looked for %s)" % (item, raw, filename))
                continue
            common.add_env_file(node, filename, "env-file %s" % item, "node %s" % raw, notes, line)
        for vname, (value, vpath) in self.merged_map(raw, "env").items():
            line = self.line(*vpath)
            if vname == "__IMPORT_ENVS":
                notes.warn(line, "__IMPORT_ENVS of node %s is not carried over: the environment of the shell that "
                           "deploys the lab is not imported" % raw)
                continue
            common.add_env(node, vname, value, notes, line)

    def container_keys(self, raw, name, node):
        notes = self.notes
        for lname, (value, lpath) in self.merged_map(raw, "labels").items():
            common.add_label(node, lname, value, notes, self.line(*lpath))
        for sname, (value, spath) in self.merged_map(raw, "sysctls").items():
            common.add_sysctl(node, sname, value, notes, self.line(*spath), "sysctl")
        for cap, cpath in self.merged_list(raw, "cap-add"):
            common.add_cap(node, cap, notes, self.line(*cpath), "cap-add")
        binds = {}
        for bind, bpath in self.merged_list(raw, "binds"):
            line = self.line(*bpath)
            parts = bind.split(":")
            if len(parts) < 2 or len(parts) > 3 or not parts[1].startswith("/"):
                notes.error(line, "bind %r of node %s is not HOST_PATH:NODE_PATH[:MODE]" % (bind, raw))
                continue
            source, target = parts[0], parts[1]
            modes = parts[2].split(",") if len(parts) == 3 else []
            other = [m for m in modes if m not in ("ro", "rw")]
            if other:
                notes.warn(line, "bind option %s of node %s is not carried over" % (",".join(other), raw))
            source = self.magic_path(raw, source, line)
            host = common.resolve_host_path(source, self.base_dir, notes, line)
            binds[target.rstrip("/") or "/"] = "%s:%s%s" % (host, target, ":ro" if "ro" in modes else "")
        if binds:
            node["binds"] = sorted(binds.values())
        ports, ppath = self.used(raw, "ports")
        for i, port in enumerate(ports if isinstance(ports, list) else ([ports] if ports else [])):
            line = self.line(*ppath + (i,)) if isinstance(ports, list) else self.line(*ppath)
            spec = common.scalar(port)
            raw_text = self.lines.raw(ppath + (i,)) if isinstance(ports, list) else None
            if isinstance(port, int) and raw_text and ":" in raw_text:
                spec = raw_text
            result, why = common.parse_port(spec)
            if result is None:
                notes.warn(line, "port %s of node %s: %s" % (spec, raw, why))
            else:
                node.setdefault("ports", []).append(result)

    def magic_path(self, raw, source, line):
        lab_dir = os.path.join(self.base_dir, "clab-%s" % self.lab)
        if "__clabNodeDir__" in source or "__clabDir__" in source:
            resolved = source.replace("__clabNodeDir__", os.path.join(lab_dir, raw)).replace("__clabDir__", lab_dir)
            self.notes.warn(line, "%s is in containerlab's lab directory, which containerlab creates and fills: here "
                            "it is %s, which must exist" % (source, resolved))
            return resolved
        return source

    # -- exec -------------------------------------------------------------------------------------

    def exec_commands(self, raw, node):
        """exec -> start: addresses and sysctls become the document's, the rest is kept in order."""
        notes = self.notes
        commands = self.merged_list(raw, "exec")
        if not commands:
            return
        notes.info(None, "exec commands are the nodes' start commands: run in order by a shell once the node's "
                   "interfaces exist, at every start of the node (containerlab runs each once after deploying, "
                   "without a shell)")
        endpoints = dict((ep.iface, ep) for ep in self.endpoints_of(raw))
        kept = []
        for text, cpath in commands:
            line = self.line(*cpath)
            text = self.magic_exec(raw, text, line)
            if self.exec_address(raw, node, text, line, endpoints) or self.exec_sysctl(raw, node, text, line):
                continue
            kept.append(text)
        if kept:
            node["start"] = "\n".join(kept)

    def magic_exec(self, raw, text, line):
        if "__clab" not in text:
            return text
        replaced = text.replace("__clabNodeName__", raw).replace("__clabLabName__", "clab-%s" % self.lab)
        lab_dir = os.path.join(self.base_dir, "clab-%s" % self.lab)
        replaced = replaced.replace("__clabNodeDir__", os.path.join(lab_dir, raw)).replace("__clabDir__", lab_dir)
        if replaced != text:
            self.notes.info(line, "containerlab's variables in %r are replaced as containerlab does" % text)
        return replaced

    def exec_address(self, raw, node, text, line, endpoints):
        """An ``ip addr add A/N dev IF`` line: True when its address is the member's (line dropped)."""
        parsed = parse_ip_addr_add(text)
        if parsed is None:
            return False
        address, dev, extra = parsed
        if extra:
            self.notes.info(line, "%r is kept in the start command: it has options other than dev and brd (%s)"
                            % (text, " ".join(extra)))
            return False
        if address is None or dev is None:
            return False
        try:
            iface = ipaddress.ip_interface(address)
        except ValueError:
            return False
        if iface.version != 4:
            return False
        if dev == "eth0":
            self.notes.warn(line, "%r configures eth0, which is the node's control interface here: kept in the start "
                            "command" % text)
            return False
        endpoint = endpoints.get(dev)
        if endpoint is None:
            if "/" in address:
                self.notes.info(line, "%r is kept in the start command: %s is not one of node %s's links"
                                % (text, dev, raw))
            return False
        if "/" not in address or iface.network.prefixlen > 30 or iface.ip in (iface.network.network_address,
                                                                              iface.network.broadcast_address):
            self.notes.warn(line, "%r is kept in the start command: %s is not an address of a /30 or larger subnet, "
                            "which a link needs here; the link gets an allocated subnet as well" % (text, address))
            return False
        if endpoint.address is not None:
            if endpoint.address[0] == iface:
                self.notes.info(line, "%r sets the address the link's ipv4 gives: dropped from the start command"
                                % text)
                endpoint.address = (iface, line, "exec")
                return True
            self.notes.info(line, "%r adds a second address to %s:%s: kept in the start command (the first, %s, is "
                            "the member's)" % (text, raw, dev, endpoint.address[0]))
            return False
        endpoint.address = (iface, line, "exec")
        self.notes.info(line, "address %s of %s:%s is the member's ip and %s the subnet: %r is dropped from the start "
                        "command (the address exists by then)" % (iface.ip, raw, dev, iface.network, text))
        return True

    def exec_sysctl(self, raw, node, text, line):
        """A ``sysctl -w NAME=VALUE ...`` line: True when every setting became the document's."""
        try:
            words = shlex.split(text, comments=True)
        except ValueError:
            return False
        if not words or words[0] not in SYSCTL_CMD:
            return False
        settings = [w for w in words[1:] if not w.startswith("-")]
        flags = [w for w in words[1:] if w.startswith("-")]
        if not settings or any(f not in ("-w", "-q", "-wq", "-qw") for f in flags) or not all("=" in s for s in settings):
            return False
        pairs = [s.split("=", 1) for s in settings]
        if not all(name in common.FORWARDING_SYSCTLS or common.sysctl_allowed(name) for name, _v in pairs):
            self.notes.warn(line, "%r is kept in the start command, where it fails: nodes cannot write /proc/sys here"
                            % text)
            return False
        for name, value in pairs:
            common.add_sysctl(node, name, value, self.notes, line, "exec sysctl")
        self.notes.info(line, "%r is dropped from the start command: nodes cannot write /proc/sys here, the node's "
                        "settings say it" % text)
        return True

    # -- links ------------------------------------------------------------------------------------

    def read_links(self, raw_links):
        notes = self.notes
        links = []
        if raw_links is None:
            return links
        if not isinstance(raw_links, list):
            notes.error(self.line("topology", "links"), "topology.links must be a list")
            return links
        for i, link in enumerate(raw_links):
            lpath = ("topology", "links", i)
            line = self.line(*lpath)
            if not isinstance(link, dict):
                notes.error(line, "a link must be a mapping with endpoints")
                continue
            ltype = str(link.get("type") or "brief").lower()
            if ltype in LINK_TYPE_ERRORS:
                notes.error(line, "a link of type %s %s: it cannot be honoured on a shared testbed" % (
                    ltype, LINK_TYPE_ERRORS[ltype]))
                continue
            if ltype not in ("brief", "veth", "veth-stitch", "dummy"):
                notes.error(line, "unknown link type %s (containerlab refuses it too)" % ltype)
                continue
            for key in link:
                kline = self.line(*lpath + (key,))
                if key in ("type", "endpoints", "endpoint", "ipv4"):
                    continue
                if key == "mtu":
                    notes.warn(kline, "mtu %s of a link is not carried over: the testbed sets the MTU" % link[key])
                elif key in ("vars", "labels"):
                    notes.warn(kline, "%s of a link are containerlab's template data: not carried over" % key)
                elif key == "ipv6":
                    notes.warn(kline, "ipv6 addresses of a link are not carried over: LANs are IPv4")
                else:
                    notes.warn(kline, "unknown link key %s is not carried over" % key)
            if ltype == "veth-stitch":
                notes.info(line, "a veth-stitch link is a plain link here (the stitch is transparent)")
            if ltype == "dummy":
                ep = self.endpoint_mapping(link.get("endpoint"), lpath + ("endpoint",))
                if ep is not None:
                    links.append(_Link("dummy", line, [ep]))
                continue
            raw_eps = link.get("endpoints")
            if not isinstance(raw_eps, list) or len(raw_eps) != 2:
                notes.error(line, "a link needs exactly two endpoints")
                continue
            ipv4 = link.get("ipv4")
            if ipv4 is not None and not isinstance(ipv4, list):
                ipv4 = [ipv4]
            endpoints, special = [], False
            for k, raw_ep in enumerate(raw_eps):
                epath = lpath + ("endpoints", k)
                if ltype == "brief" or isinstance(raw_ep, str):
                    ep = self.endpoint_brief(raw_ep, epath)
                    if ep is None:
                        special = True
                        continue
                    if ipv4 and k < len(ipv4) and ipv4[k]:
                        ep.ipv4, ep.ipv4_line = str(ipv4[k]), self.line(*lpath + ("ipv4", k))
                else:
                    ep = self.endpoint_mapping(raw_ep, epath)
                    if ep is None:
                        special = True
                        continue
                endpoints.append(ep)
            if special:
                continue
            if endpoints[0].node == endpoints[1].node:
                notes.error(line, "a link from node %s to itself (%s, %s): a node joins a link once here"
                            % (endpoints[0].node, endpoints[0].iface, endpoints[1].iface))
                continue
            links.append(_Link("veth", line, endpoints))
        self.check_interfaces(links)
        return links

    def endpoint_brief(self, raw_ep, epath):
        line = self.line(*epath)
        if not isinstance(raw_ep, str) or ":" not in raw_ep:
            self.notes.error(line, "endpoint %r is not NODE:INTERFACE" % (raw_ep,))
            return None
        node, iface = raw_ep.split(":", 1)
        if node in SPECIAL_ENDPOINTS:
            self.notes.error(line, "endpoint %s %s: it cannot be honoured on a shared testbed" % (
                raw_ep, SPECIAL_ENDPOINTS[node]))
            return None
        return self.endpoint(node, iface, line)

    def endpoint_mapping(self, raw_ep, epath):
        notes = self.notes
        line = self.line(*epath)
        if not isinstance(raw_ep, dict) or not raw_ep.get("node") or not raw_ep.get("interface"):
            notes.error(line, "an endpoint needs node and interface")
            return None
        for key in raw_ep:
            kline = self.line(*epath + (key,))
            if key in ("node", "interface", "ipv4"):
                continue
            if key == "mac":
                notes.warn(kline, "mac %s of %s:%s is not carried over: the testbed derives MAC addresses"
                           % (raw_ep[key], raw_ep["node"], raw_ep["interface"]))
            elif key == "ipv6":
                notes.warn(kline, "ipv6 %s of %s:%s is not carried over: LANs are IPv4" % (
                    raw_ep[key], raw_ep["node"], raw_ep["interface"]))
            elif key == "vars":
                notes.warn(kline, "vars of %s:%s are containerlab's template data: not carried over" % (
                    raw_ep["node"], raw_ep["interface"]))
            else:
                notes.warn(kline, "unknown endpoint key %s is not carried over" % key)
        ep = self.endpoint(str(raw_ep["node"]), str(raw_ep["interface"]), line)
        if ep is not None and raw_ep.get("ipv4"):
            ep.ipv4, ep.ipv4_line = str(raw_ep["ipv4"]), self.line(*epath + ("ipv4",))
        return ep

    def endpoint(self, node, iface, line):
        if node not in self.raw_nodes:
            self.notes.error(line, "endpoint %s:%s names no node of topology.nodes" % (node, iface))
            return None
        if self.kinds.get(node) not in BRIDGE_KINDS:
            problem = common.interface_problem(iface)
            if problem:
                self.notes.error(line, "interface %s of node %s: %s" % (iface, node, problem))
                return None
        return _Endpoint(node, iface, line)

    def check_interfaces(self, links):
        seen = {}
        for link in links:
            for ep in link.endpoints:
                if self.kinds.get(ep.node) in BRIDGE_KINDS:
                    continue
                key = (ep.node, ep.iface)
                if key in seen:
                    self.notes.error(ep.line, "interface %s of node %s is on two links (also line %s)"
                                     % (ep.iface, ep.node, seen[key]))
                else:
                    seen[key] = ep.line

    def endpoints_of(self, raw):
        """The endpoints of node ``raw``, in link order (an index built once: big labs have thousands)."""
        if self.endpoints_index is None or self.endpoints_count != len(self.links):
            self.endpoints_index = {}
            for link in self.links:
                for ep in link.endpoints:
                    self.endpoints_index.setdefault(ep.node, []).append(ep)
            self.endpoints_count = len(self.links)
        return list(self.endpoints_index.get(raw, ()))

    # -- LANs and links ---------------------------------------------------------------------------

    def networks(self):
        """(lans, links) of the document: bridges and dummies as LANs, the rest as links."""
        notes = self.notes
        for link in self.links:
            for ep in link.endpoints:
                if ep.ipv4 and ep.address is None:
                    self.link_ipv4(ep)
        bridges = {}   # bridge raw name -> [endpoint]
        pairs = []
        for link in self.links:
            if link.kind == "dummy":
                pairs.append(link)
                continue
            a, b = link.endpoints
            a_bridge, b_bridge = self.kinds.get(a.node) in BRIDGE_KINDS, self.kinds.get(b.node) in BRIDGE_KINDS
            if a_bridge and b_bridge:
                notes.error(link.line, "a link between bridges %s and %s: bridges are LANs here, and a LAN does not "
                            "join another" % (a.node, b.node))
            elif a_bridge or b_bridge:
                bridge, member = (a, b) if a_bridge else (b, a)
                bridges.setdefault(bridge.node, []).append(member)
            else:
                pairs.append(link)
        lans, links = {}, {}
        for raw in self.raw_nodes:
            if self.kinds[raw] not in BRIDGE_KINDS:
                continue
            bline = self.line("topology", "nodes", raw)
            members = bridges.get(raw, [])
            if not members:
                notes.info(bline, "bridge %s has no link: no LAN" % raw)
                continue
            seen = {}
            for ep in members:
                if ep.node in seen:
                    notes.error(ep.line, "node %s is attached to bridge %s twice (%s and %s): a node joins a LAN once "
                                "here" % (ep.node, raw, seen[ep.node], ep.iface))
                seen[ep.node] = ep.iface
            what = "an Open vSwitch bridge" if self.kinds[raw] == "ovs-bridge" else "a Linux bridge"
            notes.info(bline, "bridge %s (%s of the host in containerlab) is the LAN %s here, with %s; the host's "
                       "bridge itself and anything else on it are not part of the experiment"
                       % (raw, what, self.names[raw], ", ".join("%s:%s" % (ep.node, ep.iface) for ep in members)))
            lans[self.names[raw]] = self.lan_spec(members, "members", "LAN %s" % self.names[raw])
        used = set(self.lan_names.used)
        for link in pairs:
            if link.kind == "dummy":
                ep = link.endpoints[0]
                name = self.unique_name("%s-%s" % (self.names.get(ep.node, ep.node), ep.iface), used)
                notes.info(link.line, "dummy interface %s of node %s is the LAN %s of its own here (an interface with "
                           "no peer)" % (ep.iface, ep.node, name))
                lans[name] = self.lan_spec([ep], "members", "LAN %s" % name)
                continue
            a, b = link.endpoints
            name = self.unique_name("%s-%s" % (self.names.get(a.node, a.node), self.names.get(b.node, b.node)), used)
            links[name] = self.lan_spec([a, b], "endpoints", "link %s" % name)
        return lans, links

    def link_ipv4(self, ep):
        notes = self.notes
        try:
            iface = ipaddress.ip_interface(ep.ipv4)
        except ValueError:
            notes.error(ep.ipv4_line, "ipv4 %r of %s:%s is not an IPv4 address with its prefix (10.0.0.1/24)"
                        % (ep.ipv4, ep.node, ep.iface))
            return
        if iface.version != 4 or "/" not in ep.ipv4:
            notes.error(ep.ipv4_line, "ipv4 %r of %s:%s is not an IPv4 address with its prefix (10.0.0.1/24)"
                        % (ep.ipv4, ep.node, ep.iface))
            return
        if iface.network.prefixlen > 30 or iface.ip in (iface.network.network_address, iface.network.broadcast_address):
            notes.warn(ep.ipv4_line, "ipv4 %s of %s:%s is not carried over: a link needs an address of a /30 or larger "
                       "subnet here; the link gets an allocated subnet" % (ep.ipv4, ep.node, ep.iface))
            return
        ep.address = (iface, ep.ipv4_line, "ipv4")
        if self.kinds.get(ep.node) in NATIVE_KINDS:
            notes.warn(ep.ipv4_line, "ipv4 %s of %s:%s: containerlab sets link addresses only on some network OS kinds, "
                       "not on linux nodes; here it is the node's address on the link" % (ep.ipv4, ep.node, ep.iface))
        else:
            notes.info(ep.ipv4_line, "ipv4 %s of %s:%s is the member's ip and %s the subnet" % (
                iface.ip, ep.node, ep.iface, iface.network))

    def lan_spec(self, endpoints, key, what):
        notes = self.notes
        members, subnet, first, used = [], None, None, {}
        for ep in endpoints:
            member = {"node": self.names.get(ep.node, ep.node), "interface": ep.iface}
            if ep.address is not None:
                iface, line, _where = ep.address
                if subnet is None:
                    subnet, first = iface.network, ep
                elif iface.network != subnet:
                    notes.error(line, "%s: %s:%s has %s, in another subnet than %s:%s's %s (line %s): the endpoints of "
                                "one link share a subnet here"
                                % (what, ep.node, ep.iface, iface, first.node, first.iface, first.address[0], first.address[1]))
                if iface.ip in used:
                    notes.error(line, "%s: address %s of %s:%s is also %s's"
                                % (what, iface.ip, ep.node, ep.iface, used[iface.ip]))
                used[iface.ip] = "%s:%s" % (ep.node, ep.iface)
                member["ip"] = str(iface.ip)
            members.append(member)
        spec = {key: members}
        if subnet is not None:
            spec["subnet"] = str(subnet)
            missing = ["%s:%s" % (ep.node, ep.iface) for ep in endpoints if ep.address is None]
            if missing:
                notes.info(endpoints[0].line, "%s: %s %s no address in the source: %s an address of %s here"
                           % (what, ", ".join(missing), "has" if len(missing) == 1 else "have",
                              "it gets" if len(missing) == 1 else "they get", subnet))
        else:
            notes.info(endpoints[0].line, "%s has no address in the source: its subnet is allocated from the pool "
                       "(addressing), and each member gets an address of it" % what)
        return spec

    def unique_name(self, base, used):
        name = importers.node_name(base) or "link"
        stem, k = name, 2
        while name in used:
            suffix = "-%d" % k
            name = stem[:31 - len(suffix)] + suffix
            k += 1
        used.add(name)
        return name

    def unused_sections(self):
        used_kinds = set(self.kind_keys.values())
        used_groups = set(self.groups.values())
        for kind in self.section("kinds"):
            if kind not in used_kinds:
                self.notes.info(self.line("topology", "kinds", kind), "topology.kinds.%s is used by no node" % kind)
        for group in self.section("groups"):
            if group not in used_groups:
                self.notes.info(self.line("topology", "groups", group), "topology.groups.%s is used by no node" % group)


def parse_ip_addr_add(text):
    """``ip [-4] a[ddress] a[dd] ADDRESS dev IF [brd X]`` -> (address, dev, other words), or None
    when the line is no such command (``ip -6 ...``, a shell construct, another ip command)."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return None
    if not words or os.path.basename(words[0]) != "ip":
        return None
    i = 1
    while i < len(words) and words[i].startswith("-"):
        if words[i] not in ("-4",):
            return None
        i += 1
    if i + 1 >= len(words) or not words[i] or not words[i + 1] or not ADDRESS_OBJECT.startswith(words[i]) \
            or not "add".startswith(words[i + 1]):
        return None
    i += 2
    address = dev = None
    extra = []
    while i < len(words):
        word = words[i]
        if word == "dev" and i + 1 < len(words):
            dev = words[i + 1]
            i += 2
        elif word in ("brd", "broadcast") and i + 1 < len(words):
            i += 2
        elif word == "local" and i + 1 < len(words) and address is None:
            address = words[i + 1]
            i += 2
        elif address is None and re.match(r"^[0-9a-fA-F.:]+(/[0-9]+)?\Z", word):
            address = word
            i += 1
        else:
            extra.append(word)
            i += 1
    return address, dev, extra
