# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker-compose projects (the Compose specification, https://compose-spec.io) as experiments.

What becomes what:

- ``services`` -> nodes, named after the service (``image``, ``command``, ``entrypoint``,
  ``environment`` + ``env_file``, ``volumes`` (bind mounts) -> ``binds``, ``working_dir`` ->
  ``workdir``, ``user``, ``cap_add``, ``cap_drop``, ``sysctls``, ``labels``, ``ports``, ``restart``, CPU and
  memory limits, ``pids_limit``);
- ``networks`` -> LANs named after the network (``ipam.config[].subnet`` -> ``subnet``, a
  service's ``ipv4_address`` -> its member ``ip``, ``interface_name`` -> its ``interface``);
  services that name no network join compose's ``default`` network, which becomes the LAN
  ``default`` when some service uses it;
- ``routing: none``: compose routes nothing between networks;
- the experiment's name: ``options['name']``, else the top-level ``name:``, else the compose
  file's directory (compose's own precedence: ``-p`` before ``name:`` before the directory).

Variables (``${VAR}``, ``${VAR:-default}``, ...) are interpolated as compose does, from the
project directory's ``.env`` file (this converter does not read the environment it runs in).

Constructs that change isolation (``privileged``, ``network_mode``, ``pid``/``ipc: host``,
``devices``, ...) and ``build:`` are errors; constructs without a meaning here are warnings;
choices made are info notes.  The helpers at the top (line numbers of keys, interpolation, env
files, ports, sizes) are shared with the containerlab importer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import re
import shlex

from ansible_collections.testbed.containers.plugins.module_utils import importers

# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by importers/clab.py)


class OnceNotes(importers.Notes):
    """Notes that keep one copy of a note reported several times (a key inherited by many nodes)."""

    def __init__(self, path):
        importers.Notes.__init__(self, path)
        self._seen = set()

    def add(self, level, line, message):
        if (level, line, message) not in self._seen:
            self._seen.add((level, line, message))
            importers.Notes.add(self, level, line, message)


class Lines:
    """Line numbers of a YAML text by key path: ``key(path)`` is the line of the last key of
    ``path`` (of the list item for an index), or of the deepest part of it that exists;
    ``raw(path)`` is a scalar as written (``22:22`` that YAML 1.1 reads as a number).  Keys
    written twice in one mapping are in ``duplicates`` as (path, line)."""

    def __init__(self, text):
        import yaml
        self._yaml = yaml
        self.lines, self.raws, self.duplicates = {}, {}, []
        try:
            root = yaml.compose(text, Loader=importers.yaml_loader())
        except yaml.YAMLError:
            root = None
        if root is not None:
            self.lines[()] = root.start_mark.line + 1
            self._walk(root, (), 0)

    def _walk(self, node, path, depth):
        yaml = self._yaml
        if depth > 64:
            return
        if isinstance(node, yaml.ScalarNode):
            self.raws.setdefault(path, node.value)
        elif isinstance(node, yaml.MappingNode):
            seen, merges = set(), []
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name == "<<":
                    merges.append(value)
                    continue
                if name in seen:
                    self.duplicates.append((path + (name,), key.start_mark.line + 1))
                seen.add(name)
                self.lines.setdefault(path + (name,), key.start_mark.line + 1)
                self._walk(value, path + (name,), depth + 1)
            for merged in merges:  # merged keys (<<: *anchor) point at the anchor's lines
                for item in (merged.value if isinstance(merged, yaml.SequenceNode) else [merged]):
                    self._walk(item, path, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines.setdefault(path + (i,), item.start_mark.line + 1)
                self._walk(item, path + (i,), depth + 1)

    def key(self, path):
        path = tuple(path)
        while path:
            norm = tuple(k if isinstance(k, int) and not isinstance(k, bool) else str(k) for k in path)
            if norm in self.lines:
                return self.lines[norm]
            path = path[:-1]
        return self.lines.get(())

    def raw(self, path):
        return self.raws.get(tuple(k if isinstance(k, int) and not isinstance(k, bool) else str(k) for k in path))


def load_yaml(text, path, notes, what):
    """(data, Lines) of a YAML source whose top level must be a mapping; (None, lines) after an
    error note."""
    data, _line_of = importers.yaml_with_lines(text, path, notes)
    lines = Lines(text)
    if notes.errors():
        return None, lines
    if data is None:
        notes.error(None, "the file is empty: a %s file is a YAML mapping" % what)
        return None, lines
    if not isinstance(data, dict):
        notes.error(1, "the top level must be a mapping (a %s file), got %s" % (what, type(data).__name__))
        return None, lines
    for dpath, line in lines.duplicates:
        notes.warn(line, "%s is written twice in one mapping: YAML keeps the last one" % dotted(dpath))
    return data, lines


def dotted(path):
    out = ""
    for key in path:
        out += "[%d]" % key if isinstance(key, int) and not isinstance(key, bool) else ("." if out else "") + str(key)
    return out


def scalar(value):
    """A YAML scalar as the string Docker would see: true -> 'true', None -> ''."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text, env, operators=(":-", "-", ":?", "?", ":+", "+")):
    """Shell-like ``$VAR``/``${VAR...}`` substitution as compose (and containerlab, which adds
    ``=``/``:=``) does it, ``$$`` being a literal ``$``.  Returns (result, unset, used_default,
    errors): names that were not set and had no default, names whose default was used, and
    error messages (``${VAR:?message}``, a malformed ``${``)."""
    out, unset, defaults, errors = [], [], [], []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            depth, j = 1, i + 2
            while j < n and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                errors.append("unclosed ${ in %r" % text)
                out.append(text[i:])
                break
            body = text[i + 2:j - 1]
            match = _VAR_NAME.match(body)
            if not match:
                errors.append("invalid variable reference ${%s}" % body)
                out.append(text[i:j])
                i = j
                continue
            name, rest = match.group(0), body[match.end():]
            value = env.get(name)
            if not rest:
                if value is None:
                    unset.append(name)
                out.append(value or "")
                i = j
                continue
            op = rest[:2] if rest[:2] in (":-", ":?", ":+", ":=") else rest[:1]
            if op not in operators:
                errors.append("unsupported substitution ${%s}" % body)
                out.append(text[i:j])
                i = j
                continue
            arg_text = rest[len(op):]

            def arg():
                res, u, d, e = interpolate(arg_text, env, operators)
                unset.extend(u)
                defaults.extend(d)
                errors.extend(e)
                return res
            empty = not value
            if op in (":-", ":="):
                if empty:
                    defaults.append(name)
                    value = arg()
            elif op in ("-", "="):
                if value is None:
                    defaults.append(name)
                    value = arg()
            elif op in (":?", "?"):
                if (empty if op == ":?" else value is None):
                    errors.append("required variable %s is not set: %s" % (name, arg() or "no message"))
                    value = ""
            elif op == ":+":
                value = arg() if not empty else ""
            elif op == "+":
                value = arg() if value is not None else ""
            out.append(value or "")
            i = j
            continue
        match = _VAR_NAME.match(text, i + 1)
        if match:
            name = match.group(0)
            if env.get(name) is None:
                unset.append(name)
            out.append(env.get(name) or "")
            i = match.end()
            continue
        out.append("$")
        i += 1
    return "".join(out), unset, defaults, errors


def interpolate_tree(data, env, notes, lines, source, operators=(":-", "-", ":?", "?", ":+", "+")):
    """Interpolate every string value of ``data`` (not keys), reporting unset variables (blank,
    warning), defaults used (info) and errors.  ``source`` says where variables come from."""

    def walk(value, path):
        if isinstance(value, dict):
            return dict((k, walk(value[k], path + (k,))) for k in value)
        if isinstance(value, list):
            return [walk(v, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and "$" in value:
            result, unset, used, errors = interpolate(value, env, operators)
            line = lines.key(path)
            for name in unset:
                notes.warn(line, "variable %s is not set in %s: it is blank here (set it there or write the value)"
                           % (name, source))
            for name in used:
                notes.info(line, "variable %s is not set in %s: its default is used" % (name, source))
            for message in errors:
                notes.error(line, message)
            return result
        return value
    return walk(data, ())


def read_env_file(filename):
    """A compose-style env file: returns (variables [(name, value-or-None, lineno)], problems
    [(lineno, message)]).  ``VAR=VAL``, ``export VAR=VAL``, quotes ('...' literal, "..." with
    \\n \\t \\r \\\\ \\" escapes), comments (# at the start, or after a space for unquoted values), a
    bare ``VAR`` (unset: None)."""
    with open(filename) as f:
        text = f.read()
    variables, problems = [], []
    lines = text.split("\n")
    k = 0
    while k < len(lines):
        lineno, line = k + 1, lines[k]
        k += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*(=|:\s)?(.*)\Z", stripped)
        if not match:
            problems.append((lineno, "not VAR=VALUE: %r" % stripped[:60]))
            continue
        name, sep, rest = match.group(1), match.group(2), match.group(3)
        if sep is None:
            if rest.strip():
                problems.append((lineno, "not VAR=VALUE: %r" % stripped[:60]))
            else:
                variables.append((name, None, lineno))
            continue
        rest = rest.lstrip()
        if rest[:1] in ("'", '"'):
            quote, body, pos = rest[0], rest[1:], 0
            value, closed = [], False
            while True:
                while pos < len(body):
                    ch = body[pos]
                    if ch == "\\" and pos + 1 < len(body):
                        nxt = body[pos + 1]
                        if quote == '"':
                            value.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
                        else:
                            value.append("'" if nxt == "'" else "\\" + nxt)
                        pos += 2
                        continue
                    if ch == quote:
                        closed = True
                        break
                    value.append(ch)
                    pos += 1
                if closed or k >= len(lines):
                    break
                value.append("\n")  # a quoted value goes on over the next line
                body, pos = lines[k], 0
                k += 1
            if not closed:
                problems.append((lineno, "the quoted value of %s is not closed" % name))
            variables.append((name, "".join(value), lineno))
        else:
            value = re.split(r"\s#", rest, 1)[0].rstrip()
            variables.append((name, value, lineno))
    return variables, problems


MEMORY_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?)(b?)\s*\Z", re.IGNORECASE)


def parse_size(value, binary=True):
    """'512M', '1gb', '1.5g', 300000000 -> bytes (compose: powers of 1024; containerlab's
    humanize: k/kb/m/mb... powers of 1000, kib/mib... powers of 1024); None if not a size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = MEMORY_RE.match(str(value))
    if not match:
        return None
    amount, unit, iflag = float(match.group(1)), match.group(2).lower(), match.group(3)
    power = "bkmgtp".index(unit or "b")
    base = 1024 if (binary or iflag) else 1000
    return int(round(amount * base ** power))


def memory_string(nbytes):
    """Bytes as our memory string: the largest power-of-1024 unit that divides it ('512m')."""
    for unit, size in (("g", 1024 ** 3), ("m", 1024 ** 2), ("k", 1024)):
        if nbytes % size == 0:
            return "%d%s" % (nbytes // size, unit)
    return "%db" % nbytes


def parse_port(spec):
    """Docker's short port syntax ``[IP:][HOST:]CONTAINER[/PROTO]`` -> (our port string, None)
    or (None, why it cannot be carried over)."""
    text = str(spec).strip()
    proto = ""
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        proto = proto.lower()
    if proto not in ("", "tcp", "udp"):
        return None, "protocol %s is not published here (tcp and udp are)" % proto
    if text.startswith("[") or text.count(":") > 2:
        return None, "an IPv6 host address is not published here"
    parts = text.split(":")
    if len(parts) == 1:
        return None, "a container port without a host port (Docker picks a random one) is not published here"
    host_ip = parts[0] if len(parts) == 3 else ""
    host, port = parts[-2], parts[-1]
    if "-" in host or "-" in port:
        return None, "a port range is not published here: list each port"
    if not host:
        return None, "an empty host port (Docker picks a random one) is not published here"
    if not (host.isdigit() and port.isdigit() and 0 < int(host) < 65536 and 0 < int(port) < 65536):
        return None, "not a port mapping"
    if host_ip:
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            return None, "host address %r is not an IPv4 address" % host_ip
        if host_ip == "0.0.0.0":
            host_ip = ""
    result = "%s:%s" % (int(host), int(port))
    if host_ip:
        result = host_ip + ":" + result
    if proto:
        result += "/" + proto
    return result, None


def allowed_caps():
    """The capabilities a node may add (the model's list), or None when the model has none."""
    from ansible_collections.testbed.containers.plugins.module_utils import model
    return getattr(model, "NODE_CAP_ADD", None)


def sysctl_allowed(name):
    from ansible_collections.testbed.containers.plugins.module_utils import model
    pattern = getattr(model, "SYSCTL_RE", None)
    return pattern is None or bool(pattern.match(name))


FORWARDING_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding")


def add_sysctl(node, name, value, notes, line, what):
    """One sysctl of a node: IPv4 forwarding becomes ``forwarding:``, the rest ``sysctls:``
    (an error when it is not one of the node's own namespaces)."""
    value = scalar(value)
    if name in FORWARDING_SYSCTLS:
        node["forwarding"] = value.strip().lower() not in ("0", "false", "")
        notes.info(line, "%s %s=%s is forwarding: %s here" % (what, name, value, "true" if node["forwarding"] else "false"))
        return
    if not sysctl_allowed(name):
        notes.error(line, "%s %s is not a sysctl of the node's own namespaces (net.*, kernel.shm*/msg*/sem, "
                    "fs.mqueue.*): it cannot be set on a shared testbed" % (what, name))
        return
    node.setdefault("sysctls", {})[name] = value


def cap_name(cap):
    """A capability as the engine spells it: upper case, without CAP_."""
    name = str(cap).strip().upper()
    return name[4:] if name.startswith("CAP_") else name


def add_cap(node, cap, notes, line, what):
    name = cap_name(cap)
    allowed = allowed_caps()
    if allowed is not None and name not in allowed:
        notes.error(line, "%s %s reaches beyond the node: it cannot be granted on a shared testbed (allowed: %s)"
                    % (what, name, ", ".join(allowed)))
        return
    caps = node.setdefault("cap_add", [])
    if name not in caps:
        caps.append(name)


def drop_cap(node, cap, notes, line):
    """compose's cap_drop: the node's, but for a capability it adds too (compose adds after it
    drops, so the add wins) and those its augmentation level needs (kept: an info note)."""
    from ansible_collections.testbed.containers.plugins.module_utils import defaults, model
    name = cap_name(cap)
    if name not in model.NODE_CAP_DROP:
        notes.warn(line, "cap_drop %s is not a capability of a node (%s): not carried over"
                   % (name, ", ".join(model.NODE_CAP_DROP)))
        return
    if name in (node.get("cap_add") or ()):
        notes.info(line, "cap_drop %s is in cap_add too: compose keeps it, and so does the node" % name)
        return
    kept = [c for c in defaults.LEVEL_CAPS.get(node.get("augment") or model.DEFAULT_AUGMENT, ())
            if name in ("ALL", c)]
    if kept:
        notes.info(line, "cap_drop %s: the node keeps %s, which its augmentation's services need"
                   % (name, ", ".join(kept)))
    caps = node.setdefault("cap_drop", [])
    if name not in caps:
        caps.append(name)


def add_label(node, key, value, notes, line):
    key = str(key)
    if key.startswith("testbed."):
        notes.warn(line, "label %s is not carried over: labels starting with 'testbed.' are the testbed's own" % key)
        return
    node.setdefault("labels", {})[key] = scalar(value)


ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def add_env_file(node, filename, what, whose, notes, line, reader=read_env_file, no_value=""):
    """The variables of env file ``filename`` (``what``: how the file names it, e.g. "env_file
    web.env"; ``whose``: "service web") into the node's env, with its problems as notes at
    ``line``; a variable without a value is not set (``no_value`` says why)."""
    try:
        variables, problems = reader(filename)
    except (IOError, OSError, UnicodeDecodeError) as exc:
        notes.error(line, "%s of %s cannot be read: %s" % (what, whose, exc))
        return
    for lineno, message in problems:
        notes.warn(line, "%s line %d: %s" % (what, lineno, message))
    for name, value, lineno in variables:
        if value is None:
            notes.warn(line, "%s line %d: %s has no value%s: not set here" % (what, lineno, name, no_value))
        else:
            add_env(node, name, value, notes, line)


def add_env(node, name, value, notes, line):
    if not ENV_NAME_RE.match(str(name)):
        notes.error(line, "environment variable name %r cannot be set here (letters, digits and '_', not a digit "
                    "first)" % (name,))
        return
    node.setdefault("env", {})[str(name)] = scalar(value)


def resolve_host_path(source, base_dir, notes, line):
    """A bind's host path as an absolute path: relative to ``base_dir``, ``~`` expanded."""
    if source.startswith("~"):
        expanded = os.path.expanduser(source)
        notes.info(line, "host path %s is %s (the home directory of the user running the import)" % (source, expanded))
        source = expanded
    if not os.path.isabs(source):
        source = os.path.join(base_dir, source)
    return os.path.normpath(source)


def shell_split(value):
    """A shell-form string as a list (as compose and containerlab split it), or None."""
    try:
        return shlex.split(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# The compose converter

SERVICE_WARN = {
    "healthcheck": "a health check is not run here",
    "logging": "the logging driver is the testbed's",
    "stop_grace_period": "the supervisor stops the application its own way",
    "stop_signal": "the supervisor stops the application its own way",
    "tty": "the application runs without a terminal",
    "stdin_open": "the application's stdin is not kept open",
    "extends": "the extended service's keys are not merged in: copy them into this service",
    "profiles": "the service is imported as a node (compose starts it only when one of its profiles is enabled)",
    "secrets": "bind the secret's file with a volume instead",
    "configs": "bind the config's file with a volume instead",
    "dns": "DNS settings are the testbed's",
    "dns_search": "DNS settings are the testbed's",
    "dns_opt": "DNS settings are the testbed's",
    "domainname": "the node's domain name is not set",
    "extra_hosts": "/etc/hosts is the testbed's (NODE and NODE-LAN names)",
    "external_links": "nodes reach one another by name on their LANs",
    "links": "nodes reach one another by name on their LANs",
    "expose": "exposing ports has no effect here: nodes on a LAN reach each other's ports",
    "init": "the supervisor is the node's init",
    "read_only": "a read-only root filesystem is not carried over",
    "shm_size": "the shared memory size is Docker's default",
    "tmpfs": "tmpfs mounts are not carried over",
    "ulimits": "ulimits are not carried over",
    "mem_reservation": "memory reservations are not carried over (mem_limit is)",
    "memswap_limit": "swap limits are not carried over",
    "mem_swappiness": "swappiness is not carried over",
    "oom_kill_disable": "OOM settings are not carried over",
    "oom_score_adj": "OOM settings are not carried over",
    "cpu_quota": "CPU quotas are not carried over (cpus is)",
    "cpu_period": "CPU periods are not carried over (cpus is)",
    "cpu_count": "not carried over (cpus is)",
    "cpu_percent": "not carried over (cpus is)",
    "cpu_rt_period": "real-time CPU settings are not carried over",
    "cpu_rt_runtime": "real-time CPU settings are not carried over",
    "cpuset": "pinning to CPUs is not carried over",
    "cgroup_parent": "the node's cgroup is the testbed's",
    "group_add": "supplementary groups are not carried over",
    "mac_address": "MAC addresses are the testbed's",
    "platform": "the image's own platform is used",
    "pull_policy": "images must exist on the host (or the controller, for several hosts)",
    "pull_refresh_after": "images must exist on the host (or the controller, for several hosts)",
    "runtime": "the container runtime is the testbed's",
    "isolation": "not carried over",
    "storage_opt": "storage options are not carried over",
    "annotations": "annotations are not carried over",
    "attach": "logs are the supervisor's (/var/log/testbed in the node)",
    "credential_spec": "not carried over",
    "develop": "compose watch is not carried over",
    "post_start": "lifecycle hooks are not run: write a start command",
    "pre_start": "lifecycle hooks are not run: write a start command",
    "pre_stop": "lifecycle hooks are not run",
    "label_file": "label files are not read: write the labels",
    "models": "models are not carried over",
    "provider": "providers are not carried over",
    "volumes_from": "volumes are not shared between nodes",
    "use_api_socket": "the Docker API socket is not given to nodes",
}
SERVICE_ERROR = {
    "privileged": "a privileged container reaches beyond the node: it cannot be honoured on a shared testbed",
    "network_mode": "the node's network namespace is the testbed's (eth0 control, LANs on eth1...): "
                    "network_mode cannot be honoured",
    "devices": "host devices cannot be given to nodes on a shared testbed",
    "device_cgroup_rules": "host devices cannot be given to nodes on a shared testbed",
    "gpus": "host devices cannot be given to nodes on a shared testbed",
    "security_opt": "security options change the node's isolation: they cannot be honoured on a shared testbed",
    "userns_mode": "the user namespace is the testbed's: userns_mode cannot be honoured",
    "cgroup": "the cgroup namespace is the testbed's: cgroup cannot be honoured",
    "uts": "the UTS namespace is the node's own: uts cannot be honoured",
}
SERVICE_KEYS = ("image", "build", "command", "entrypoint", "environment", "env_file", "volumes", "working_dir",
                "user", "hostname", "cap_add", "cap_drop", "sysctls", "labels", "depends_on", "deploy", "cpus", "mem_limit",
                "pids_limit", "restart", "ports", "container_name", "networks", "pid", "ipc", "scale", "cpu_shares",
                "blkio_config")
NETWORK_WARN = {
    "driver": "the LAN is the testbed's (a veth per member on a bridge of the host, or VLAN/VXLAN across hosts)",
    "driver_opts": "driver options are not carried over",
    "external": "an external network becomes a LAN of this experiment's nodes only",
    "internal": "LANs have no gateway to the outside here (nodes reach it through their control interface)",
    "attachable": "only this experiment's nodes join the LAN",
    "enable_ipv6": "LANs are IPv4 only",
    "enable_ipv4": "LANs are IPv4",
    "labels": "network labels are not carried over",
    "name": "the LAN is named after the network's key",
}


def convert(text, path, options):
    """A compose file's text -> (experiment document, notes)."""
    options = dict(options or {})
    notes = OnceNotes(path)
    data, lines = load_yaml(text, path, notes, "compose")
    if data is None:
        notes.gate()
    base_dir = os.path.dirname(os.path.abspath(path))
    env = _dotenv(base_dir, notes)
    source = "the environment (there is no .env file)" if env is None else ".env"
    data = interpolate_tree(data, env or {}, notes, lines, source)
    conv = _Compose(data, lines, notes, base_dir, options)
    doc = conv.run()
    notes.gate()
    return doc, notes.items


def _dotenv(base_dir, notes):
    """The project directory's .env (compose's interpolation variables), or None."""
    filename = os.path.join(base_dir, ".env")
    if not os.path.isfile(filename):
        return None
    try:
        variables, problems = read_env_file(filename)
    except (IOError, OSError, UnicodeDecodeError) as exc:
        notes.warn(None, "cannot read %s: %s" % (filename, exc))
        return {}
    for lineno, message in problems:
        notes.warn(None, "%s line %d: %s" % (filename, lineno, message))
    notes.info(None, "variables of the file are interpolated from %s (not from the environment of this import)"
               % filename)
    return dict((k, v) for k, v, _n in variables if v is not None)


class _Compose:

    def __init__(self, data, lines, notes, base_dir, options):
        self.data, self.lines, self.notes, self.base_dir, self.options = data, lines, notes, base_dir, options
        self.nodes = {}
        self.node_names = importers.Renamer(notes, "service")
        self.lan_names = importers.Renamer(notes, "network")
        self.members = {}   # network -> [member]
        self.used_volumes = set()

    def line(self, *keys):
        return self.lines.key(keys)

    def list_items(self, value, path, what):
        """(index, item, its line) of each item of the list ``value`` at ``path``; none when it is absent,
        and none with an error when it is not a list."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.notes.error(self.line(*path), "%s must be a list" % what)
            return []
        return [(i, item, self.line(*path + (i,))) for i, item in enumerate(value)]

    def run(self):
        data, notes = self.data, self.notes
        for key in data:
            if key in ("services", "networks", "name"):
                continue
            line = self.line(key)
            if isinstance(key, str) and key.startswith("x-"):
                notes.info(line, "extension %s is ignored (only its uses through YAML anchors count)" % key)
            elif key == "version":
                notes.info(line, "version is obsolete in the compose specification and ignored")
            elif key == "volumes":
                for vol in (data["volumes"] if isinstance(data["volumes"], dict) else {}):
                    notes.info(self.line("volumes", vol), "named volume %s is not created (named volumes are not "
                               "carried over yet)" % vol)
            elif key in ("secrets", "configs"):
                notes.warn(line, "top-level %s are not carried over: bind the files with volumes" % key)
            elif key == "include":
                notes.error(line, "include pulls in other compose files, which are not read: merge them first "
                            "(docker compose config > compose.yml)")
            elif key == "models":
                notes.warn(line, "models are not carried over")
            else:
                notes.warn(line, "unknown top-level key %s is not carried over" % key)

        name = self.experiment_name()
        doc = {"name": name}
        if self.options.get("project"):
            doc["project"] = self.options["project"]

        services = data.get("services")
        if not isinstance(services, dict) or not services:
            notes.error(self.line("services"), "services must be a mapping of at least one service")
            return doc
        networks = data.get("networks") or {}
        if not isinstance(networks, dict):
            notes.error(self.line("networks"), "networks must be a mapping of network names to settings")
            networks = {}
        self.networks = networks
        service_node = {}
        for sname, spec in services.items():
            node = self.node_names(sname, self.line("services", sname))
            service_node[sname] = node
            self.nodes[node] = self.service(sname, node, spec)
        for sname, spec in services.items():
            self.start_order(sname, spec, service_node)
        doc["nodes"] = self.nodes
        lans = self.lans(networks)
        if lans:
            doc["lans"] = lans
        doc["routing"] = "none"
        notes.info(self.line("services"), "routing: none: compose routes nothing between networks (a node reaches "
                   "the LANs it is on)")
        if lans:
            notes.info(self.line("services"), "every node's eth0 is its control interface here: compose networks are "
                       "eth1, eth2, ... (or their interface_name); service names resolve through /etc/hosts")
        return doc

    def experiment_name(self):
        notes = self.notes
        given = importers.given_name(self.options, self.data, notes, self.line, "project")
        if given:
            return given
        directory = os.path.basename(self.base_dir)
        name = importers.node_name(directory) or "imported"
        notes.info(None, "the experiment is named %r after the compose file's directory (compose's default project "
                   "name)" % name)
        return name

    # -- services -------------------------------------------------------------------------------

    def service(self, sname, node_name, spec):
        notes = self.notes
        base = ("services", sname)
        sline = self.line(*base)
        node = {}
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            notes.error(sline, "service %s must be a mapping" % sname)
            return node
        image = spec.get("image")
        if "build" in spec:
            if image:
                notes.error(self.line(*base + ("build",)), "service %s is built from source (build:): build the image "
                            "first (docker compose build), then remove build: and keep image: %s" % (sname, image))
            else:
                notes.error(self.line(*base + ("build",)), "service %s is built from source (build:): build the image "
                            "first (docker compose build) and name it with image:" % sname)
        elif not image:
            notes.error(sline, "service %s has no image: give it one (image:)" % sname)
        if image:
            node["image"] = str(image)
        for key in spec:
            kpath = base + (key,)
            line = self.line(*kpath)
            if isinstance(key, str) and key.startswith("x-"):
                notes.info(line, "extension %s of service %s is ignored" % (key, sname))
            elif key in SERVICE_ERROR:
                self.error_key(sname, key, spec[key], line)
            elif key in SERVICE_WARN:
                notes.warn(line, "%s of service %s is not carried over: %s" % (key, sname, SERVICE_WARN[key]))
            elif key not in SERVICE_KEYS:
                notes.warn(line, "unknown key %s of service %s is not carried over" % (key, sname))
        self.command(sname, node, spec, base)
        self.environment(sname, node, spec, base)
        self.volumes(sname, node, spec.get("volumes"), base + ("volumes",))
        if spec.get("working_dir") is not None:
            node["workdir"] = str(spec["working_dir"])
        if spec.get("user") is not None:
            node["user"] = scalar(spec["user"])
        hostname = spec.get("hostname")
        if hostname is not None and str(hostname) != node_name:
            notes.warn(self.line(*base + ("hostname",)), "hostname %s of service %s is not carried over: the node's "
                       "host name is %s" % (hostname, sname, node_name))
        if "container_name" in spec:
            notes.warn(self.line(*base + ("container_name",)), "container_name of service %s is not carried over: the "
                       "testbed names containers (the node is %s)" % (sname, node_name))
        for i, cap in enumerate(_as_list(spec.get("cap_add"))):
            add_cap(node, cap, notes, self.line(*base + ("cap_add", i)), "cap_add")
        for i, cap in enumerate(_as_list(spec.get("cap_drop"))):
            drop_cap(node, cap, notes, self.line(*base + ("cap_drop", i)))
        self.key_values(spec.get("sysctls"), base + ("sysctls",), lambda k, v, line: add_sysctl(
            node, k, v, notes, line, "sysctl"))
        self.key_values(spec.get("labels"), base + ("labels",), lambda k, v, line: add_label(node, k, v, notes, line))
        self.resources(sname, node, spec, base)
        self.restart(sname, node, spec, base)
        self.ports(sname, node, spec.get("ports"), base + ("ports",))
        self.namespaces(sname, spec, base)
        self.service_networks(sname, node_name, spec, base)
        return node

    def start_order(self, sname, spec, service_node):
        """depends_on (a list, or a mapping with conditions) -> the node's depends_on: it starts,
        and its start commands run, after those nodes' (on the same host; docs/importing.md)."""
        depends = spec.get("depends_on") if isinstance(spec, dict) else None
        if not depends:
            return
        base = ("services", sname, "depends_on")
        if isinstance(depends, dict):
            names = list(depends)
            for dep, cond in depends.items():
                condition = (cond or {}).get("condition", "service_started") if isinstance(cond, dict) else None
                if condition not in (None, "service_started"):
                    self.notes.info(self.line(*base + (dep,)), "depends_on %s of service %s: condition %s is taken as "
                                    "service_started (the node starts after %s has started)" % (dep, sname, condition, dep))
        elif isinstance(depends, list):
            names = depends
        else:
            self.notes.error(self.line(*base), "depends_on of service %s must be a list or a mapping of services" % sname)
            return
        order = []
        for i, dep in enumerate(names):
            if dep not in service_node:
                self.notes.error(self.line(*base + (i if isinstance(depends, list) else dep,)),
                                 "depends_on of service %s names %r, which is not a service of this project" % (sname, dep))
            else:
                order.append(service_node[dep])
        if order:
            self.nodes[service_node[sname]]["depends_on"] = order

    def error_key(self, sname, key, value, line):
        if key == "privileged" and value is False:
            return
        if key == "network_mode":
            self.notes.error(line, "network_mode %s of service %s: %s" % (value, sname, SERVICE_ERROR[key]))
            return
        self.notes.error(line, "%s of service %s: %s" % (key, sname, SERVICE_ERROR[key]))

    def namespaces(self, sname, spec, base):
        notes = self.notes
        if spec.get("pid") is not None:
            notes.error(self.line(*base + ("pid",)), "pid: %s of service %s shares a process namespace: it cannot be "
                        "honoured on a shared testbed" % (spec["pid"], sname))
        ipc = spec.get("ipc")
        if ipc is not None:
            if ipc == "host" or str(ipc).startswith(("service:", "container:")):
                notes.error(self.line(*base + ("ipc",)), "ipc: %s of service %s shares an IPC namespace: it cannot be "
                            "honoured on a shared testbed" % (ipc, sname))
            else:
                notes.warn(self.line(*base + ("ipc",)), "ipc: %s of service %s is not carried over (the node has its "
                           "own IPC namespace)" % (ipc, sname))
        scale = spec.get("scale")
        if scale is not None and scale != 1:
            notes.error(self.line(*base + ("scale",)), "scale: %s of service %s: one service is one node here; write "
                        "a service per node" % (scale, sname))

    def command(self, sname, node, spec, base):
        notes = self.notes
        command = spec.get("command")
        if command is not None:
            if isinstance(command, list):
                if command:
                    node["command"] = [scalar(c) for c in command]
                else:
                    notes.info(self.line(*base + ("command",)), "empty command of service %s: the image's CMD is used"
                               % sname)
            elif str(command).strip():
                node["command"] = str(command)
            else:
                notes.info(self.line(*base + ("command",)), "empty command of service %s: the image's CMD is used"
                           % sname)
        if "entrypoint" in spec:
            entrypoint = spec.get("entrypoint")
            if entrypoint is None:
                entrypoint = []
            if isinstance(entrypoint, list):
                node["entrypoint"] = [scalar(c) for c in entrypoint]
            else:
                split = shell_split(str(entrypoint))
                if split is None:
                    notes.error(self.line(*base + ("entrypoint",)), "entrypoint of service %s is not a valid shell-form "
                                "command (unbalanced quotes)" % sname)
                else:
                    node["entrypoint"] = split

    def environment(self, sname, node, spec, base):
        notes = self.notes
        env_files = spec.get("env_file")
        if env_files is not None:
            for i, item in enumerate(_as_list(env_files)):
                ipath = base + ("env_file",) if not isinstance(env_files, list) else base + ("env_file", i)
                line = self.line(*ipath)
                required, fmt = True, None
                if isinstance(item, dict):
                    required, fmt = item.get("required", True), item.get("format")
                    item = item.get("path")
                if not isinstance(item, str) or not item:
                    notes.error(line, "env_file of service %s must name a file" % sname)
                    continue
                filename = os.path.normpath(os.path.join(self.base_dir, item))
                if not os.path.isfile(filename):
                    if required is False:
                        notes.info(line, "env_file %s of service %s does not exist and is not required: skipped"
                                   % (item, sname))
                    else:
                        notes.error(line, "env_file %s of service %s does not exist (looked for %s)" % (item, sname, filename))
                    continue
                add_env_file(node, filename, "env_file %s" % item, "service %s" % sname, notes, line,
                             reader=_read_raw_env if fmt == "raw" else read_env_file,
                             no_value=" (compose takes it from its environment)")
        environment = spec.get("environment")
        epath = base + ("environment",)
        if isinstance(environment, list):
            for i, item in enumerate(environment):
                line = self.line(*epath + (i,))
                text = scalar(item)
                if "=" in text:
                    name, value = text.split("=", 1)
                    add_env(node, name, value, notes, line)
                else:
                    self.unset_env(sname, text, node, line)
        elif isinstance(environment, dict):
            for name, value in environment.items():
                line = self.line(*epath + (name,))
                if value is None:
                    self.unset_env(sname, name, node, line)
                else:
                    add_env(node, name, value, notes, line)
        elif environment is not None:
            notes.error(self.line(*epath), "environment of service %s must be a list or a mapping" % sname)

    def unset_env(self, sname, name, node, line):
        self.notes.warn(line, "environment variable %s of service %s has no value (compose takes it from its "
                        "environment): not set here" % (name, sname))
        node.get("env", {}).pop(str(name), None)

    def volumes(self, sname, node, volumes, vpath):
        notes = self.notes
        for i, vol, line in self.list_items(volumes, vpath, "volumes of service %s" % sname):
            if isinstance(vol, dict):
                vtype, source, target = vol.get("type"), vol.get("source"), vol.get("target")
                read_only = bool(vol.get("read_only"))
                for key in vol:
                    if key in ("type", "source", "target", "read_only"):
                        continue
                    if key == "bind" and isinstance(vol[key], dict) and set(vol[key]) <= {"create_host_path"}:
                        continue
                    if key == "volume" and vtype == "volume":
                        continue
                    notes.warn(self.line(*vpath + (i, key)), "volume option %s of service %s is not carried over"
                               % (key, sname))
                if vtype != "bind":
                    self.not_bind(sname, vtype, source, target, line)
                    continue
                if not source or not target:
                    notes.error(line, "a bind of service %s needs source and target" % sname)
                    continue
                self.bind(node, str(source), str(target), read_only, line)
                continue
            text = str(vol)
            parts = text.split(":")
            if len(parts) == 1:
                self.not_bind(sname, "volume", None, parts[0], line)
                continue
            source, target = parts[0], parts[1]
            modes = parts[2].split(",") if len(parts) > 2 else []
            if len(parts) > 3:
                notes.error(line, "volume %r of service %s is not SOURCE:TARGET[:MODE]" % (text, sname))
                continue
            if not (source.startswith(("/", ".", "~"))):
                self.not_bind(sname, "volume", source, target, line)
                continue
            read_only = "ro" in modes
            other = [m for m in modes if m not in ("ro", "rw")]
            if other:
                notes.warn(line, "volume mode %s of service %s is not carried over" % (",".join(other), sname))
            self.bind(node, source, target, read_only, line)

    def not_bind(self, sname, vtype, source, target, line):
        if vtype == "volume" and source:
            self.notes.warn(line, "named volume %s of service %s (at %s) is not carried over yet: the node gets no "
                            "volume there" % (source, sname, target))
        elif vtype == "volume":
            self.notes.warn(line, "anonymous volume %s of service %s is not carried over: the node's own filesystem "
                            "holds it" % (target, sname))
        else:
            self.notes.warn(line, "%s mount of service %s (at %s) is not carried over" % (vtype, sname, target))

    def bind(self, node, source, target, read_only, line):
        if not target.startswith("/"):
            self.notes.error(line, "bind target %s must be an absolute path in the container" % target)
            return
        host = resolve_host_path(source, self.base_dir, self.notes, line)
        node.setdefault("binds", []).append("%s:%s%s" % (host, target, ":ro" if read_only else ""))

    def key_values(self, value, kpath, add):
        """A mapping or a list of NAME=VALUE strings (sysctls, labels)."""
        if value is None:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                add(str(key), item, self.line(*kpath + (key,)))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                text = scalar(item)
                name, _sep, rest = text.partition("=")
                add(name, rest, self.line(*kpath + (i,)))
        else:
            self.notes.error(self.line(*kpath), "%s must be a list or a mapping" % kpath[-1])

    def resources(self, sname, node, spec, base):
        notes = self.notes
        deploy = spec.get("deploy") or {}
        dpath = base + ("deploy",)
        limits = {}
        if isinstance(deploy, dict):
            for key in deploy:
                kline = self.line(*dpath + (key,))
                if key == "resources":
                    res = deploy[key] or {}
                    for rkey in res:
                        if rkey == "limits":
                            limits = res[rkey] or {}
                            for lkey in limits:
                                if lkey not in ("cpus", "memory", "pids"):
                                    notes.warn(self.line(*dpath + (key, rkey, lkey)), "deploy.resources.limits.%s of "
                                               "service %s is not carried over" % (lkey, sname))
                        else:
                            notes.warn(self.line(*dpath + (key, rkey)), "deploy.resources.%s of service %s is not "
                                       "carried over (limits are)" % (rkey, sname))
                elif key == "replicas":
                    if deploy[key] not in (1, None):
                        notes.error(kline, "deploy.replicas: %s of service %s: one service is one node here; write a "
                                    "service per node" % (deploy[key], sname))
                elif key == "restart_policy":
                    continue
                else:
                    notes.warn(kline, "deploy.%s of service %s is not carried over" % (key, sname))
        for key, lkey, lpath in (("cpus", "cpus", base + ("cpus",)), ("mem_limit", "memory", base + ("mem_limit",)),
                                 ("pids_limit", "pids", base + ("pids_limit",))):
            value, line = spec.get(key), self.line(*lpath)
            if value is None and limits.get(lkey) is not None:
                value, line = limits.get(lkey), self.line(*dpath + ("resources", "limits", lkey))
            elif value is not None and limits.get(lkey) is not None and str(limits.get(lkey)) != str(value):
                notes.warn(self.line(*dpath + ("resources", "limits", lkey)), "deploy.resources.limits.%s of service "
                           "%s differs from %s: %s is used" % (lkey, sname, key, key))
            if value is None:
                continue
            if lkey == "cpus":
                try:
                    cpus = float(value)
                except (TypeError, ValueError):
                    notes.error(line, "cpus %r of service %s is not a number of CPUs" % (value, sname))
                    continue
                if cpus <= 0:
                    notes.info(line, "cpus %s of service %s (no limit) is not carried over" % (value, sname))
                    continue
                node["cpus"] = int(cpus) if cpus == int(cpus) else cpus
            elif lkey == "memory":
                nbytes = parse_size(value, binary=True)
                if nbytes is None:
                    notes.error(line, "memory %r of service %s is not a size (512m, 1g)" % (value, sname))
                    continue
                node["memory"] = memory_string(nbytes)
            else:
                if isinstance(value, bool) or not isinstance(value, int):
                    notes.error(line, "pids limit %r of service %s is not a number" % (value, sname))
                elif value <= 0:
                    notes.info(line, "pids limit %s of service %s (unlimited) is not carried over: nodes have the "
                               "testbed's default" % (value, sname))
                else:
                    node["pids"] = value
        self.weights(sname, node, spec, base)

    # Docker's ranges for the relative weights (the experiment file's, model.CPU_SHARES_RANGE and
    # BLKIO_WEIGHT_RANGE, are the same)
    CPU_SHARES_RANGE = (2, 262144)
    BLKIO_WEIGHT_RANGE = (10, 1000)

    def weights(self, sname, node, spec, base):
        """cpu_shares and blkio_config.weight: the node's relative CPU and block I/O weights."""
        notes = self.notes
        blkio = spec.get("blkio_config")
        if blkio is not None and not isinstance(blkio, dict):
            notes.error(self.line(*base + ("blkio_config",)), "blkio_config of service %s is not a mapping" % sname)
            blkio = {}
        for key in sorted(blkio or {}):
            if key != "weight":
                notes.warn(self.line(*base + ("blkio_config", key)), "blkio_config.%s of service %s is not carried "
                           "over (the weight is)" % (key, sname))
        for value, line, what, nkey, bounds in (
                (spec.get("cpu_shares"), self.line(*base + ("cpu_shares",)), "cpu_shares", "cpu_shares",
                 self.CPU_SHARES_RANGE),
                ((blkio or {}).get("weight"), self.line(*base + ("blkio_config", "weight")), "blkio_config.weight",
                 "blkio_weight", self.BLKIO_WEIGHT_RANGE)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                notes.error(line, "%s %r of service %s is not a whole number" % (what, value, sname))
            elif value == 0:
                notes.info(line, "%s 0 of service %s (Docker's default weight) is not carried over" % (what, sname))
            elif not bounds[0] <= value <= bounds[1]:
                notes.error(line, "%s %d of service %s is outside Docker's range %d-%d"
                            % ((what, value, sname) + bounds))
            else:
                node[nkey] = value

    def restart(self, sname, node, spec, base):
        notes = self.notes
        restart = spec.get("restart")
        line = self.line(*base + ("restart",))
        policy = None
        if restart is False:  # YAML reads a bare no as false
            restart = "no"
        if restart is not None:
            text = str(restart)
            if text in ("always", "unless-stopped"):
                policy = "always"
            elif text == "no":
                policy = "no"
            elif text == "on-failure" or text.startswith("on-failure:"):
                policy = "on-failure"
                if ":" in text:
                    notes.info(line, "restart %s of service %s: the supervisor restarts the application with a back-off "
                               "and no retry limit" % (text, sname))
            else:
                notes.error(line, "restart %r of service %s is not no, always, on-failure[:N] or unless-stopped"
                            % (text, sname))
        deploy = spec.get("deploy") or {}
        rp = deploy.get("restart_policy") if isinstance(deploy, dict) else None
        if isinstance(rp, dict):
            rline = self.line(*base + ("deploy", "restart_policy"))
            condition = {"any": "always", "on-failure": "on-failure", "none": "no"}.get(rp.get("condition", "any"))
            if policy is None:
                policy, line = condition, rline
            elif condition != policy:
                notes.warn(rline, "deploy.restart_policy of service %s differs from restart: restart is used" % sname)
            for key in rp:
                if key != "condition":
                    notes.warn(self.line(*base + ("deploy", "restart_policy", key)), "deploy.restart_policy.%s of "
                               "service %s is not carried over" % (key, sname))
        if policy is not None:
            node["restart"] = policy
            if policy != "no":
                notes.info(line, "restart of service %s: the node's supervisor restarts the application (%s); the node "
                           "itself stays up" % (sname, policy))

    def ports(self, sname, node, ports, ppath):
        notes = self.notes
        for i, port, line in self.list_items(ports, ppath, "ports of service %s" % sname):
            if isinstance(port, dict):
                target, published = port.get("target"), port.get("published")
                for key in port:
                    if key not in ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"):
                        notes.warn(self.line(*ppath + (i, key)), "port option %s of service %s is not carried over"
                                   % (key, sname))
                if port.get("mode") not in (None, "host", "ingress"):
                    notes.warn(line, "port mode %s of service %s is not carried over" % (port.get("mode"), sname))
                if target is None:
                    notes.error(line, "a port of service %s needs a target" % sname)
                    continue
                if published is None:
                    notes.warn(line, "port %s of service %s has no published port (Docker picks a random one): not "
                               "published here" % (target, sname))
                    continue
                spec = "%s:%s" % (published, target)
                if port.get("host_ip"):
                    spec = "%s:%s" % (port["host_ip"], spec)
                if port.get("protocol"):
                    spec += "/" + str(port["protocol"])
            else:
                spec = scalar(port)
                raw = self.lines.raw(ppath + (i,))
                if isinstance(port, int) and raw and ":" in raw:
                    spec = raw  # 22:22 unquoted: YAML 1.1 reads a base-60 number
                    notes.info(line, "port %s is read as written (YAML reads it as the number %d: quote it)" % (raw, port))
            result, why = parse_port(spec)
            if result is None:
                notes.warn(line, "port %s of service %s: %s" % (spec, sname, why))
            else:
                node.setdefault("ports", []).append(result)

    def service_networks(self, sname, node_name, spec, base):
        notes = self.notes
        if "network_mode" in spec:
            return  # an error already
        nets = spec.get("networks")
        npath = base + ("networks",)
        entries = []
        if isinstance(nets, list):
            for i, net in enumerate(nets):
                entries.append((str(net), {}, self.line(*npath + (i,))))
        elif isinstance(nets, dict):
            for net, settings in nets.items():
                entries.append((str(net), settings if isinstance(settings, dict) else {}, self.line(*npath + (net,))))
                if settings is not None and not isinstance(settings, dict):
                    notes.error(self.line(*npath + (net,)), "network %s of service %s must be a mapping" % (net, sname))
        elif nets is not None:
            notes.error(self.line(*npath), "networks of service %s must be a list or a mapping" % sname)
        if not entries:
            entries = [("default", {}, self.line(*base))]
        for net, settings, line in entries:
            if net not in self.networks and net != "default":
                notes.error(line, "service %s joins network %s, which networks: does not define" % (sname, net))
                continue
            member = {"node": node_name}
            for key, value in settings.items():
                kline = self.line(*npath + (net, key))
                if key == "ipv4_address":
                    member["ip"] = str(value)
                    member["_line"] = kline
                elif key == "interface_name":
                    member["interface"] = str(value)
                    member["_ifline"] = kline
                elif key == "aliases":
                    notes.warn(kline, "aliases %s of service %s on network %s are not carried over: the node is %s "
                               "(and %s-%s) in /etc/hosts" % (", ".join(str(a) for a in _as_list(value)), sname, net,
                                                              node_name, node_name, importers.node_name(net) or net))
                elif isinstance(key, str) and key.startswith("x-"):
                    notes.info(kline, "extension %s is ignored" % key)
                elif key in ("priority", "gw_priority"):
                    notes.info(kline, "%s of service %s on network %s is not carried over: LANs are eth1, eth2, ... in "
                               "file order" % (key, sname, net))
                else:
                    notes.warn(kline, "%s of service %s on network %s is not carried over" % (key, sname, net))
            self.members.setdefault(net, []).append(member)

    # -- networks -------------------------------------------------------------------------------

    def lans(self, networks):
        notes = self.notes
        lans = {}
        order = list(networks) + (["default"] if "default" not in networks else [])
        for net in order:
            spec = networks.get(net) or {}
            npath = ("networks", net)
            nline = self.line(*npath) if net in networks else None
            members = self.members.get(net, [])
            if not members:
                if net in networks:
                    notes.info(nline, "network %s has no service: no LAN" % net)
                continue
            if not isinstance(spec, dict):
                notes.error(nline, "network %s must be a mapping" % net)
                continue
            name = self.lan_names(net, nline)
            lan = {}
            for key in spec:
                kline = self.line(*npath + (key,))
                if key == "ipam":
                    lan.update(self.ipam(net, spec[key] or {}, npath + (key,)))
                elif isinstance(key, str) and key.startswith("x-"):
                    notes.info(kline, "extension %s is ignored" % key)
                elif key in NETWORK_WARN:
                    if key == "driver" and spec[key] == "bridge":
                        notes.info(kline, "driver bridge of network %s: %s" % (net, NETWORK_WARN[key]))
                    elif key in ("internal", "external", "enable_ipv6") and not spec[key]:
                        continue
                    else:
                        notes.warn(kline, "%s of network %s is not carried over: %s" % (key, net, NETWORK_WARN[key]))
                else:
                    notes.warn(kline, "unknown key %s of network %s is not carried over" % (key, net))
            subnet = lan.get("subnet")
            net_obj = ipaddress.ip_network(subnet) if subnet else None
            out, used = [], {}
            for member in members:
                ip = member.get("ip")
                line = member.get("_line")
                if ip is not None:
                    try:
                        addr = ipaddress.ip_address(ip)
                    except ValueError:
                        notes.error(line, "ipv4_address %r of service %s is not an IPv4 address" % (ip, member["node"]))
                        continue
                    if addr.version != 4:
                        notes.error(line, "ipv4_address %s of service %s is not an IPv4 address" % (ip, member["node"]))
                    elif net_obj is None:
                        notes.error(line, "ipv4_address %s of service %s needs a subnet of network %s (ipam.config[]."
                                    "subnet), as compose does" % (ip, member["node"], net))
                    elif addr not in net_obj:
                        notes.error(line, "ipv4_address %s of service %s is outside the subnet %s of network %s"
                                    % (ip, member["node"], net_obj, net))
                    elif addr in (net_obj.network_address, net_obj.broadcast_address):
                        notes.error(line, "ipv4_address %s of service %s is the network or broadcast address of %s"
                                    % (ip, member["node"], net_obj))
                    elif addr in used:
                        notes.error(line, "ipv4_address %s of service %s is also %s's on network %s"
                                    % (ip, member["node"], used[addr], net))
                    else:
                        used[addr] = member["node"]
                iface = member.get("interface")
                if iface is not None:
                    problem = interface_problem(iface)
                    if problem:
                        notes.error(member.get("_ifline"), "interface_name %s of service %s: %s"
                                    % (iface, member["node"], problem))
                clean = dict((k, v) for k, v in member.items() if not k.startswith("_"))
                out.append(clean if len(clean) > 1 else clean["node"])
            lan["members"] = out
            if net == "default" and net not in networks:
                notes.info(None, "services that name no network are on compose's default network: the LAN default")
            lans[name] = dict([("members", lan.pop("members"))] + sorted(lan.items()))
        return lans

    def ipam(self, net, ipam, ipath):
        notes = self.notes
        out = {}
        if not isinstance(ipam, dict):
            notes.error(self.line(*ipath), "ipam of network %s must be a mapping" % net)
            return out
        for key in ipam:
            if key == "config":
                continue
            if key == "driver" and ipam[key] == "default":
                continue
            notes.warn(self.line(*ipath + (key,)), "ipam.%s of network %s is not carried over" % (key, net))
        for i, conf in enumerate(_as_list(ipam.get("config"))):
            cpath = ipath + ("config", i)
            if not isinstance(conf, dict):
                notes.error(self.line(*cpath), "ipam.config entries of network %s must be mappings" % net)
                continue
            for key in conf:
                if key == "subnet":
                    continue
                if key == "gateway":
                    notes.warn(self.line(*cpath + (key,)), "gateway %s of network %s is not carried over: LANs have no "
                               "gateway here (routing: none)" % (conf[key], net))
                else:
                    notes.warn(self.line(*cpath + (key,)), "ipam.config %s of network %s is not carried over"
                               % (key, net))
            subnet = conf.get("subnet")
            if subnet is None:
                continue
            line = self.line(*cpath + ("subnet",))
            try:
                parsed = ipaddress.ip_network(str(subnet), strict=False)
            except ValueError:
                notes.error(line, "subnet %r of network %s is not a network" % (subnet, net))
                continue
            if parsed.version != 4:
                notes.warn(line, "IPv6 subnet %s of network %s is not carried over: LANs are IPv4" % (subnet, net))
                continue
            if "subnet" in out:
                notes.warn(line, "a second IPv4 subnet %s of network %s is not carried over: a LAN has one" % (subnet, net))
                continue
            if str(parsed) != str(subnet):
                notes.info(line, "subnet %s of network %s is %s" % (subnet, net, parsed))
            out["subnet"] = str(parsed)
        return out


IFNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}\Z")


def interface_problem(ifname):
    """Why ``ifname`` cannot name a node's LAN interface here, or None."""
    if ifname in ("eth0", "lo"):
        return "%s is the node's %s interface here: name another one (eth1, ...)" % (
            ifname, "control" if ifname == "eth0" else "loopback")
    if not IFNAME_RE.match(ifname):
        return "not an interface name: use 1 to 15 characters, a letter first, then letters, digits, '_', '.' or '-'"
    return None


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _read_raw_env(filename):
    variables, problems = [], []
    with open(filename) as f:
        for lineno, line in enumerate(f.read().split("\n"), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if not sep:
                variables.append((name.strip(), None, lineno))
            else:
                variables.append((name.strip(), value, lineno))
    return variables, problems
