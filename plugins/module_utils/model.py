# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The experiment file: its schema, its validation and its normalized form.

Validation runs in stages with an error gate between them (the netlab way): first the
shape of every field (types, names, units), then the rules that cross fields (members name
known nodes, addresses fit their subnet, names do not collide).  Every error names the field
path, e.g. ``lans.lan0.members[2]: unknown node 'srv'``, and all errors of a stage are
reported at once, before anything is created.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.testbed.containers.plugins.module_utils import defaults, names
from ansible_collections.testbed.containers.plugins.module_utils.defaults import NODE_PIDS

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}\Z")
NAME_HINT = "use 1 to 31 characters: a lowercase letter, then lowercase letters, digits or '-'"
AUGMENT_LEVELS = ("none", "basic", "full")
ROUTING_MODES = ("static", "none")
DEFAULT_POOL = "10.10.0.0/16"
DEFAULT_PREFIXLEN = 24
MEMORY_RE = re.compile(r"^([0-9]+)([bkmg]?)\Z", re.IGNORECASE)
MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


class ExperimentError(Exception):
    """Raised with every error found in one stage; str() lists them one per line."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(ExperimentError, self).__init__("\n".join(self.errors))


class Errors:
    """Collects errors with their field paths; ``gate()`` raises if any were found."""

    def __init__(self):
        self.items = []

    def add(self, path, message):
        self.items.append("%s: %s" % (path, message) if path else message)

    def gate(self):
        if self.items:
            raise ExperimentError(self.items)


def _type_name(value):
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "empty"}.get(type(value), type(value).__name__)


def _check_keys(errors, path, value, allowed, required=()):
    """Unknown and missing keys of a mapping; returns False if value is not a mapping."""
    if not isinstance(value, dict):
        errors.add(path, "must be a mapping, got %s" % _type_name(value))
        return False
    for key in value:
        if key not in allowed:
            errors.add(_join(path, key), "unknown key; allowed keys: %s" % ", ".join(sorted(allowed)))
    for key in required:
        if key not in value:
            errors.add(_join(path, key), "is required")
    return True


def _join(path, key):
    return "%s.%s" % (path, key) if path else str(key)


def _check_name(errors, path, value, what):
    if not isinstance(value, str) or not NAME_RE.match(value):
        errors.add(path, "invalid %s name %r: %s" % (what, value, NAME_HINT))
        return False
    return True


def parse_memory(value):
    """'256m' -> bytes (Docker's units: b, k, m, g, powers of 1024); None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str):
        match = MEMORY_RE.match(value.strip())
        if match:
            amount = int(match.group(1)) * MEMORY_UNITS[match.group(2).lower()]
            return amount if amount > 0 else None
    return None


def _parse_network(errors, path, value):
    if not isinstance(value, str):
        # ipaddress would read an integer as a /32 address: say what is wrong instead.
        errors.add(path, "invalid subnet %r (not a string); write it as an IPv4 network such as 10.9.1.0/24" % (value,))
        return None
    try:
        net = ipaddress.ip_network(value, strict=True)
    except (ValueError, TypeError) as exc:
        errors.add(path, "invalid subnet %r (%s); write it as an IPv4 network such as 10.9.1.0/24" % (value, exc))
        return None
    if net.version != 4:
        errors.add(path, "only IPv4 subnets are supported, got %s" % value)
        return None
    if net.prefixlen > 30:
        errors.add(path, "subnet %s is too small: use a prefix of /30 or shorter" % value)
        return None
    return net


NODE_KEYS = ("image", "command", "forwarding", "cpus", "memory", "pids", "cpu_shares", "blkio_weight", "augment", "host",
             "env", "start", "restart", "entrypoint", "user", "workdir", "binds", "volumes", "cap_add", "cap_drop", "sysctls",
             "labels", "ports", "depends_on")
VOLUME_KEYS = ("name", "source", "path", "read_only", "keep")
# The node's resource limits (a node's own, else ``defaults:``): a change of them is a docker
# update of the running node, not a recreate (engine.limit_changes).
LIMIT_KEYS = ("cpus", "memory", "pids", "cpu_shares", "blkio_weight")
# What a node's application runs as and where: the container's own (augment: none) or the
# supervisor's override of the image's originals (basic, full).
RUN_KEYS = ("entrypoint", "user", "workdir")
USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?\Z")
BIND_RE = re.compile(r"^(/[^:\x00]*):(/[^:\x00]*)(?::(ro|rw))?\Z")
# Capabilities a node may add to Docker's default set (the engine's own names, without CAP_).
# Refused: those that reach beyond the node (SYS_ADMIN, SYS_MODULE, SYS_RAWIO, SYS_BOOT, SYS_TIME,
# MAC_ADMIN, MAC_OVERRIDE, SYSLOG, DAC_READ_SEARCH, SYS_PTRACE, BPF, PERFMON, LINUX_IMMUTABLE, ...).
NODE_CAP_ADD = ("NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE", "NET_BROADCAST", "IPC_LOCK", "SYS_NICE",
                "SYS_RESOURCE", "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID",
                "SETUID", "SETPCAP", "SETFCAP", "MKNOD", "SYS_CHROOT", "IPC_OWNER", "LEASE", "WAKE_ALARM",
                "BLOCK_SUSPEND")
# Capabilities a node may drop (``ALL``, or any of its set: Docker's default set and the testbed's
# NET_ADMIN, NET_RAW); those its augmentation level's own services need are kept
# (defaults.LEVEL_CAPS, engine.capabilities).
NODE_CAP_DROP = ("ALL",) + defaults.DOCKER_DEFAULT_CAPS + ("NET_ADMIN",)
# Per-node sysctls: the network namespace's own (net.*, except the few the testbed sets) and the
# IPC namespace's (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*), which Docker namespaces.
SYSCTL_RE = re.compile(r"^(net\.[a-z0-9_.-]+|kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)"
                       r"|fs\.mqueue\.[a-z_]+)\Z")
TESTBED_SYSCTLS = ("net.ipv4.ip_forward",)
LABEL_RESERVED = "testbed."
PORT_RE = re.compile(r"^(?:([0-9.]+):)?([0-9]{1,5}):([0-9]{1,5})(?:/(tcp|udp))?\Z")
IFNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}\Z")
PIDS_RANGE = (16, 4194304)
# Docker's bounds: CPU shares (relative CPU weight, 1024 without it), block I/O weight
CPU_SHARES_RANGE = (2, 262144)
BLKIO_WEIGHT_RANGE = (10, 1000)
# What the supervisor does when the node's application exits (the node itself stays up).
APP_RESTART_POLICIES = ("no", "on-failure", "always")
DEFAULT_AUGMENT = "basic"
SHAPE_KEYS = ("bandwidth", "delay", "jitter", "loss", "queue")
LAN_KEYS = ("members", "subnet") + SHAPE_KEYS
LINK_KEYS = ("endpoints", "subnet") + SHAPE_KEYS
DIRECTION_RE = re.compile(r"^([a-z][a-z0-9-]{0,30})_to_([a-z][a-z0-9-]{0,30})\Z")
TOP_KEYS = ("name", "project", "nodes", "lans", "links", "routing", "defaults", "addressing", "ssh_keys",
            "placement", "users", "events", "storage")
STORAGE_KEYS = ("project", "path", "homes")
DEFAULT_PROJECT_PATH = "/proj/%s"
USER_KEYS = ("name", "ssh_keys")
# An account name as Debian's useradd accepts it (NAME_REGEX), 32 characters at most.
ACCOUNT_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
# a key line with no options (``command=...`` would run instead of the user's command) and no
# control characters in its comment
SSH_KEY_RE = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+"
                        r"( [^\x00-\x1f\x7f]*)?\Z")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# Docker's image reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
IMAGE_RE = re.compile(r"^(?:%s/)?%s(?:/%s)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
                      r":[0-9a-fA-F]{32,})?\Z" % (_DOMAIN, _COMPONENT, _COMPONENT))
DEFAULT_KEYS = ("augment", "image", "start", "restart") + LIMIT_KEYS
ADDRESSING_KEYS = ("pool", "prefixlen")


def _list_items(errors, path, value, must):
    """(index, item) of each item of the list ``value``; none when it is absent, and none with the
    error ``must`` at ``path`` when it is not a list."""
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add(path, must)
        return []
    return list(enumerate(value))


def _mapping_items(errors, path, value, must):
    """(key, value, the key's path) of each entry of the mapping ``value``; none when it is absent
    or empty, and none with the error ``must`` at ``path`` when it is not a mapping."""
    if not value:
        return []
    if not isinstance(value, dict):
        errors.add(path, must)
        return []
    return [(key, item, _join(path, key)) for key, item in value.items()]


def _check_ssh_keys(errors, path, keys):
    """A list of OpenSSH public keys (lines of id_*.pub files); returns the valid ones, stripped."""
    valid = []
    for i, key in _list_items(errors, path, keys, "must be a list of public keys (lines of id_*.pub files)"):
        if not isinstance(key, str) or not SSH_KEY_RE.match(key.strip()):
            errors.add("%s[%d]" % (path, i), "not an OpenSSH public key: paste a line of an id_*.pub file")
        else:
            valid.append(key.strip())
    return valid


def _check_users(errors, users):
    """``users:``: the accounts of ``full`` nodes, [{name, ssh_keys}]; None when absent (the
    planner then uses the controller's user and keys)."""
    if users is None:
        return None
    if not isinstance(users, list):
        errors.add("users", "must be a list of accounts, each {name: NAME, ssh_keys: [KEY, ...]}")
        return None
    result, seen = [], set()
    for i, user in enumerate(users):
        path = "users[%d]" % i
        if isinstance(user, str):
            user = {"name": user}
        if not _check_keys(errors, path, user, USER_KEYS):
            continue
        name = user.get("name")
        if not isinstance(name, str) or not ACCOUNT_RE.match(name):
            errors.add(path + ".name", "%r is not an account name: use 1 to 32 characters, a lowercase letter or '_' "
                                       "first, then lowercase letters, digits, '_' or '-'" % (name,))
            continue
        if name in seen:
            errors.add(path + ".name", "account %r is listed twice: merge its ssh_keys into one entry" % name)
            continue
        seen.add(name)
        result.append({"name": name, "ssh_keys": _check_ssh_keys(errors, path + ".ssh_keys", user.get("ssh_keys"))})
    return result


def _check_node(errors, path, spec, defaults, limit_defaults=None):
    """Shape of one node; returns the normalized node or None.  ``limit_defaults``: the
    checked limits of ``defaults:`` (check_limits), for the ones the node does not set."""
    if spec is None:
        spec = {}
    if not _check_keys(errors, path, spec, NODE_KEYS):
        return None
    node = {}
    image = spec.get("image", defaults.get("image"))
    if not isinstance(image, str) or not image.strip():
        errors.add(_join(path, "image"), "is required: name a Docker image (or set defaults.image)")
    elif len(image) > 255 or not IMAGE_RE.match(image):
        errors.add(_join(path, "image"), "%r is not a Docker image reference: write it as [REGISTRY/]NAME[:TAG]"
                   "[@DIGEST], lowercase, such as testbed/debian:bookworm" % (image,))
    node["image"] = image
    command = spec.get("command")
    if command is not None:
        if isinstance(command, str):
            if not command.strip():
                errors.add(_join(path, "command"), "must not be empty; leave it out to keep the image's CMD")
        elif not (isinstance(command, list) and command and all(isinstance(c, (str, int, float)) for c in command)):
            errors.add(_join(path, "command"), "must be a string or a non-empty list of strings")
        else:
            command = [str(c) for c in command]
        if isinstance(command, (str, list)) and "\x00" in "".join(c for c in command if isinstance(c, str)):
            errors.add(_join(path, "command"), "must not contain a NUL character")
    node["command"] = command
    forwarding = spec.get("forwarding", False)
    if not isinstance(forwarding, bool):
        errors.add(_join(path, "forwarding"), "must be true or false, got %r" % (forwarding,))
    node["forwarding"] = forwarding is True
    node.update((key, None) for key in LIMIT_KEYS)
    node.update(limit_defaults or {})
    node.update(check_limits(errors, path, spec))
    augment = spec.get("augment", defaults.get("augment", DEFAULT_AUGMENT))
    if augment not in AUGMENT_LEVELS:
        errors.add(_join(path, "augment"), "must be one of %s, got %r" % (", ".join(AUGMENT_LEVELS), augment))
    node["augment"] = augment
    start = spec.get("start", defaults.get("start"))
    if start is not None:
        if not isinstance(start, str) or not start.strip():
            errors.add(_join(path, "start"), "must be a command line (a string), run by a shell in the node")
            start = None
        elif "\x00" in start:
            errors.add(_join(path, "start"), "must not contain a NUL character")
            start = None
        elif augment == "none":
            errors.add(_join(path, "start"), "a start command needs augmentation: set augment: basic (or leave "
                       "augment out)")
    node["start"] = start
    restart = spec.get("restart", defaults.get("restart"))
    if restart is False:  # YAML reads a bare `no` as false
        restart = "no"
    if restart is not None:
        if restart not in APP_RESTART_POLICIES:
            errors.add(_join(path, "restart"), "must be one of %s (what the supervisor does when the application "
                       "exits), got %r" % (", ".join(APP_RESTART_POLICIES), restart))
            restart = None
        elif augment == "none":
            errors.add(_join(path, "restart"), "restarting the application needs augmentation: set augment: basic "
                       "(or leave augment out)")
    node["restart"] = restart
    host = spec.get("host")
    if host is not None and (not isinstance(host, str) or not host):
        errors.add(_join(path, "host"), "must name a host of the inventory")
    node["host"] = host
    env = spec.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and ENV_NAME_RE.match(k) for k in env):
        errors.add(_join(path, "env"), "must be a mapping of variable names to values")
        env = {}
    for key, value in env.items():
        if isinstance(value, (dict, list)) or "\x00" in str(value):
            errors.add(_join(_join(path, "env"), key), "must be a string, number or boolean without NUL characters")
    node["env"] = dict((k, "" if v is None else str(v)) for k, v in env.items())
    _check_run_keys(errors, path, spec, node)
    _check_container_keys(errors, path, spec, node)
    depends = spec.get("depends_on")
    if depends is not None and not (isinstance(depends, list) and all(isinstance(d, str) and d for d in depends)):
        errors.add(_join(path, "depends_on"), "must be a list of node names (the nodes that start first)")
        depends = None
    node["depends_on"] = list(dict.fromkeys(depends or []))
    return node


def _whole_number(value, bounds):
    return not isinstance(value, bool) and isinstance(value, int) and bounds[0] <= value <= bounds[1]


def check_limits(errors, path, spec):
    """The resource limits (LIMIT_KEYS) ``spec`` sets (a node's or ``defaults:``), normalized:
    cpus a number, memory in bytes, pids, cpu_shares and blkio_weight whole numbers.  A bad
    one is reported with its field path and left out."""
    limits = {}
    cpus = spec.get("cpus")
    if cpus is not None:
        if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not 0 < cpus <= 1024:
            errors.add(_join(path, "cpus"), "must be a number of CPUs above 0, such as 0.5 or 2, got %r" % (cpus,))
        else:
            limits["cpus"] = cpus
    memory = spec.get("memory")
    if memory is not None:
        parsed = parse_memory(memory)
        if parsed is None:
            errors.add(_join(path, "memory"), "invalid memory %r: write a size such as 256m or 1g" % (memory,))
        elif parsed < 6 * 1024 ** 2:
            errors.add(_join(path, "memory"), "%r is below Docker's minimum of 6m" % (memory,))
        else:
            limits["memory"] = parsed
    pids = spec.get("pids")
    if pids is not None:
        if not _whole_number(pids, PIDS_RANGE):
            errors.add(_join(path, "pids"), "must be a number of processes from %d to %d (default %d), got %r"
                       % (PIDS_RANGE + (NODE_PIDS, pids)))
        else:
            limits["pids"] = pids
    for key, bounds, what in (("cpu_shares", CPU_SHARES_RANGE, "relative CPU weight: a node without it has 1024"),
                              ("blkio_weight", BLKIO_WEIGHT_RANGE, "relative block I/O weight")):
        value = spec.get(key)
        if value is None:
            continue
        if not _whole_number(value, bounds):
            errors.add(_join(path, key), "must be a whole number from %d to %d (Docker's %s), got %r"
                       % (bounds + (what, value)))
        else:
            limits[key] = value
    return limits


def _check_start_order(errors, nodes):
    """``depends_on`` names other nodes of the experiment, without a cycle."""
    for name, node in nodes.items():
        for dep in node["depends_on"]:
            if dep == name:
                errors.add("nodes.%s.depends_on" % name, "a node cannot start after itself")
            elif dep not in nodes:
                errors.add("nodes.%s.depends_on" % name, "node %r is not in the experiment (its nodes: %s)"
                           % (dep, ", ".join(sorted(nodes))))
    if errors.items:
        return
    state = {}

    def visit(name, trail):
        state[name] = "visiting"
        for dep in nodes[name]["depends_on"]:
            if state.get(dep) == "visiting":
                cycle = trail[trail.index(dep):] + [dep]
                errors.add("nodes.%s.depends_on" % name, "the start order has a cycle: %s; remove one of them"
                           % " -> ".join(cycle))
                return False
            if dep not in state and not visit(dep, trail + [dep]):
                return False
        state[name] = "done"
        return True

    for name in nodes:
        if name not in state and not visit(name, [name]):
            return


def _check_run_keys(errors, path, spec, node):
    """entrypoint, user, workdir: what the application runs as and where."""
    entrypoint = spec.get("entrypoint")
    if entrypoint is not None:
        if isinstance(entrypoint, str):
            entrypoint = [entrypoint] if entrypoint.strip() else []
        if not isinstance(entrypoint, list) or \
                not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in entrypoint):
            errors.add(_join(path, "entrypoint"), "must be a string or a list of strings (an empty list clears the "
                       "image's ENTRYPOINT)")
            entrypoint = None
        else:
            entrypoint = [str(a) for a in entrypoint]
            if "\x00" in "".join(entrypoint):
                errors.add(_join(path, "entrypoint"), "must not contain a NUL character")
    node["entrypoint"] = entrypoint
    user = spec.get("user")
    if user is not None:
        if isinstance(user, int) and not isinstance(user, bool):
            user = str(user)
        if not isinstance(user, str) or not USER_RE.match(user):
            errors.add(_join(path, "user"), "must be USER or USER:GROUP (names or numeric ids), got %r" % (user,))
            user = None
    node["user"] = user
    workdir = spec.get("workdir")
    if workdir is not None and (not isinstance(workdir, str) or not workdir.startswith("/") or "\x00" in workdir
                                or "\n" in workdir):
        errors.add(_join(path, "workdir"), "must be an absolute path inside the node, got %r" % (workdir,))
        workdir = None
    node["workdir"] = workdir


def _bind_target_error(target, targets):
    """Why a node path may not take a bind or a volume (``targets``: those already taken), or None."""
    if target == "/" or target == "/.testbed" or target.startswith("/.testbed/") or target == "/etc/hosts":
        return "%s belongs to the testbed (or is the node's root): mount elsewhere" % target
    if target in targets:
        return "%s is already mounted (by binds or volumes): one mount per node path" % target
    return None


def _check_bind_source(errors, bpath, source):
    """A host path a node may bind; None (with the error) when it is the host's own."""
    source = source.rstrip("/") or "/"
    if defaults.host_only(source):
        errors.add(bpath, "%s is the host's own (%s): a node may bind only its experiment's files; bind a "
                   "directory of your own" % (source, ", ".join(defaults.HOST_ONLY_PATHS)))
        return None
    return source


def _check_volumes(errors, path, spec, node, targets):
    """volumes: named volumes of the node (kept across recreates and restarts, removed by teardown
    unless ``keep``) and host directories (``source``, like binds)."""
    items = spec.get("volumes") or []
    node["volumes"] = []
    vpath = _join(path, "volumes")
    if not isinstance(items, list):
        errors.add(vpath, "must be a list of {name: NAME, path: /NODE/PATH} (a volume of the node) or "
                   "{source: /HOST/PATH, path: /NODE/PATH} (a host directory) mappings")
        return
    names_seen = set()
    for i, item in enumerate(items):
        ipath = "%s[%d]" % (vpath, i)
        if not _check_keys(errors, ipath, item, VOLUME_KEYS, required=("path",)) or "path" not in item:
            continue
        target = item["path"]
        if not isinstance(target, str) or not target.startswith("/") or "\x00" in target or ":" in target \
                or "\n" in target:
            errors.add(_join(ipath, "path"), "must be an absolute path inside the node without ':', got %r" % (target,))
            continue
        target = target.rstrip("/") or "/"
        read_only, keep = item.get("read_only", False), item.get("keep", False)
        for key, value in (("read_only", read_only), ("keep", keep)):
            if not isinstance(value, bool):
                errors.add(_join(ipath, key), "must be true or false, got %r" % (value,))
        if ("name" in item) == ("source" in item):
            errors.add(ipath, "give either name: (a volume of the node) or source: (a host directory), not %s"
                       % ("both" if "name" in item else "neither"))
            continue
        problem = _bind_target_error(target, targets)
        if problem:
            errors.add(_join(ipath, "path"), problem)
            continue
        if "source" in item:
            source = item["source"]
            if not isinstance(source, str) or not source.startswith("/") or "\x00" in source or ":" in source:
                errors.add(_join(ipath, "source"), "must be an absolute host path without ':', got %r" % (source,))
                continue
            if keep is not False:
                errors.add(_join(ipath, "keep"), "applies to named volumes: a host directory is never removed")
            source = _check_bind_source(errors, _join(ipath, "source"), source)
            if source is not None:
                targets.add(target)
                node["binds"].append({"source": source, "target": target, "read_only": read_only is True})
            continue
        name = item["name"]
        if not _check_name(errors, _join(ipath, "name"), name, "volume"):
            continue
        if name in names_seen:
            errors.add(_join(ipath, "name"), "volume %r is already named for this node: one entry per volume" % name)
            continue
        names_seen.add(name)
        targets.add(target)
        node["volumes"].append({"name": name, "target": target, "read_only": read_only is True, "keep": keep is True})


def _check_caps(errors, path, caps, allowed, refusal, hint):
    """A list of capability names (any case, with or without CAP_) among ``allowed``: the names
    as the engine spells them, once each."""
    found = []
    for i, cap in _list_items(errors, path, caps, "must be a list of capability names such as NET_ADMIN"):
        name = cap.upper()[4:] if isinstance(cap, str) and cap.upper().startswith("CAP_") else \
            (cap.upper() if isinstance(cap, str) else cap)
        if name not in allowed:
            errors.add("%s[%d]" % (path, i), "%r %s: use one of %s %s" % (cap, refusal, ", ".join(allowed), hint))
        elif name not in found:
            found.append(name)
    return found


def _check_container_keys(errors, path, spec, node):
    """binds, volumes, cap_add, cap_drop, sysctls, labels, ports: settings of the node's container."""
    binds = spec.get("binds") or []
    node["binds"] = []
    if not isinstance(binds, list):
        errors.add(_join(path, "binds"), "must be a list of HOST_PATH:NODE_PATH[:ro] strings")
        binds = []
    targets = set()
    for i, bind in enumerate(binds):
        bpath = "%s[%d]" % (_join(path, "binds"), i)
        match = BIND_RE.match(bind) if isinstance(bind, str) else None
        if not match:
            errors.add(bpath, "must be HOST_PATH:NODE_PATH or HOST_PATH:NODE_PATH:ro with absolute paths, got %r" % (bind,))
            continue
        target, mode = match.group(2).rstrip("/") or "/", match.group(3) or "rw"
        source = _check_bind_source(errors, bpath, match.group(1))
        if source is None:
            continue
        problem = _bind_target_error(target, targets)
        if problem:
            errors.add(bpath, problem)
            continue
        targets.add(target)
        node["binds"].append({"source": source, "target": target, "read_only": mode == "ro"})
    _check_volumes(errors, path, spec, node, targets)
    node["cap_add"] = _check_caps(errors, _join(path, "cap_add"), spec.get("cap_add"), NODE_CAP_ADD,
                                  "is not a capability a node may add", "(capabilities that reach beyond the node are "
                                  "refused)")
    node["cap_drop"] = _check_caps(errors, _join(path, "cap_drop"), spec.get("cap_drop"), NODE_CAP_DROP,
                                   "is not a capability of a node", "(ALL drops every one but those its "
                                   "augmentation level needs)")
    for i, name in enumerate(node["cap_drop"]):
        if name in node["cap_add"]:
            errors.add("%s[%d]" % (_join(path, "cap_drop"), i), "%s is in cap_add too: name it in one of them" % name)
    node["sysctls"] = {}
    for key, value, spath in _mapping_items(errors, _join(path, "sysctls"), spec.get("sysctls"),
                                            "must be a mapping of sysctl names to values"):
        if not isinstance(key, str) or not SYSCTL_RE.match(key):
            errors.add(spath, "not a sysctl of the node's own namespaces: use net.* (or kernel.shm*/msg*/sem, "
                       "fs.mqueue.*)")
        elif key in TESTBED_SYSCTLS:
            errors.add(spath, "is set by the testbed: use forwarding: true|false")
        elif isinstance(value, (dict, list)) or value is None or "\x00" in str(value) or "\n" in str(value):
            errors.add(spath, "must be a single value such as 1")
        else:
            node["sysctls"][key] = str(value).lower() if isinstance(value, bool) else str(value)
    node["labels"] = {}
    for key, value, lpath in _mapping_items(errors, _join(path, "labels"), spec.get("labels"),
                                            "must be a mapping of label names to values"):
        if not isinstance(key, str) or not key or "\x00" in key or key.startswith(LABEL_RESERVED):
            errors.add(lpath, "label names must be non-empty and not start with %r (the testbed's own)" % LABEL_RESERVED)
        elif isinstance(value, (dict, list)) or "\x00" in str(value):
            errors.add(lpath, "must be a string")
        else:
            node["labels"][key] = "" if value is None else str(value)
    ports = spec.get("ports") or []
    node["ports"] = []
    if not isinstance(ports, list):
        errors.add(_join(path, "ports"), "must be a list of [HOST_IP:]HOST_PORT:NODE_PORT[/tcp|/udp] strings")
        ports = []
    for i, port in enumerate(ports):
        ppath = "%s[%d]" % (_join(path, "ports"), i)
        match = PORT_RE.match(port) if isinstance(port, str) else None
        if match and match.group(1):
            try:
                ipaddress.IPv4Address(match.group(1))
            except ValueError:
                match = None
        if not match or not all(0 < int(match.group(k)) < 65536 for k in (2, 3)):
            errors.add(ppath, "must be [HOST_IP:]HOST_PORT:NODE_PORT[/tcp|/udp] with ports 1-65535, got %r" % (port,))
            continue
        node["ports"].append({"host_ip": match.group(1) or "", "host_port": int(match.group(2)),
                              "port": int(match.group(3)), "protocol": match.group(4) or "tcp"})


MEMBER_KEYS = ("node", "ip", "interface")
# A physical host's interface as a LAN member (mixed mode): {host: HOST, interface: NIC[, ip: ADDRESS]}
PORT_KEYS = ("host", "interface", "ip")
PORT = object()  # what _check_member returns for a port (it is not a node member)
MEMBER_SHAPE_KEYS = SHAPE_KEYS + ("to_node", "from_node")
RESERVED_IFNAMES = ("eth0", "lo")


def _check_member(errors, path, member, lan=None):
    """A LAN member is a node name or {node: NAME, ip: ADDRESS, interface: IFNAME} (members of
    lans: also take shaping keys and to_node/from_node overrides, recorded in ``lan``);
    returns (node, ip)."""
    if isinstance(member, str):
        return member, None
    if isinstance(member, dict) and "host" in member and "node" not in member and lan is not None:
        _check_port(errors, path, member, lan)
        return PORT, None
    allowed = MEMBER_KEYS + (MEMBER_SHAPE_KEYS if lan is not None and lan.get("per_member") else ())
    if not _check_keys(errors, path, member, allowed, required=("node",)):
        return None, None
    if "node" not in member:  # already reported as required
        return None, None
    node = member.get("node")
    if not isinstance(node, str):
        errors.add(_join(path, "node"), "must be a node name")
        return None, None
    ip = member.get("ip")
    if ip is not None:
        try:
            if not isinstance(ip, str):  # ipaddress would read an integer as an address
                raise ValueError(ip)
            ip = ipaddress.ip_address(ip)
        except ValueError:
            errors.add(_join(path, "ip"), "invalid IPv4 address %r" % (ip,))
            ip = None
    ifname = member.get("interface")
    if ifname is not None:
        if not isinstance(ifname, str) or not IFNAME_RE.match(ifname):
            errors.add(_join(path, "interface"), "invalid interface name %r: use 1 to 15 characters, a letter first, "
                       "then letters, digits, '_', '.' or '-'" % (ifname,))
        elif ifname in RESERVED_IFNAMES:
            errors.add(_join(path, "interface"), "%s is the node's %s interface: name another one (eth1, ...)"
                       % (ifname, "control" if ifname == "eth0" else "loopback"))
        elif lan is not None:
            lan["interfaces"][node] = (ifname, _join(path, "interface"))
    if lan is not None and any(k in member for k in MEMBER_SHAPE_KEYS):
        lan["member_shapes"][node] = _member_shapes(errors, path, member, lan)
    return node, ip


def _member_shapes(errors, path, member, lan):
    """A LAN member's own shaping (its shaping keys, to_node/from_node per direction) over the
    LAN's: {both, to_node, from_node}, each only when given."""
    own = dict((k, member[k]) for k in SHAPE_KEYS if k in member)
    base = dict(lan["shape_spec"], **own)  # the member's values over the LAN's
    shapes = {}
    if own:
        shapes["both"] = check_shape(errors, path, base)
    for direction in ("to_node", "from_node"):
        if direction in member:
            dpath = _join(path, direction)
            if _check_keys(errors, dpath, member[direction], SHAPE_KEYS):
                merged = dict(base)
                merged.update(member[direction])
                shapes[direction] = check_shape(errors, dpath, merged)
    return shapes


def check_shape(errors, path, spec):
    """Shaping parameters (bandwidth, delay, jitter, loss, queue) -> a Shape, or None if invalid."""
    from ansible_collections.testbed.containers.plugins.module_utils.shaping import Shape
    ok = True
    for key in SHAPE_KEYS:
        if key in spec:
            try:
                Shape.from_spec({key: spec[key]} if key != "queue" else {key: spec[key], "bandwidth": "1gbit"})
            except ValueError as exc:
                errors.add(_join(path, key), str(exc))
                ok = False
    if not ok:
        return None
    try:
        return Shape.from_spec(dict((k, spec[k]) for k in SHAPE_KEYS if k in spec))
    except ValueError as exc:
        errors.add(path, str(exc))
        return None


def _check_port(errors, path, member, lan):
    """A physical host's NIC on the LAN: {host, interface, ip} (no interface: the host's own
    stack, an address of the host itself on the LAN) and, like a node member, its own
    shaping keys and to_node/from_node (to_node: towards the machine behind the NIC); recorded
    in ``lan["ports"]``."""
    if not _check_keys(errors, path, member, PORT_KEYS + MEMBER_SHAPE_KEYS):
        return
    host, ifname, ip = member["host"], member.get("interface"), member.get("ip")
    if not isinstance(host, str) or not host:
        errors.add(_join(path, "host"), "must name a host of the inventory")
        return
    # no interface: the host's own stack, an address of the host itself on the LAN
    if ifname is not None and (not isinstance(ifname, str) or not IFNAME_RE.match(ifname)):
        errors.add(_join(path, "interface"), "invalid interface name %r: name the host's NIC (1 to 15 characters, a "
                   "letter first, then letters, digits, '_', '.' or '-')" % (ifname,))
        return
    if not lan["per_member"]:
        errors.add(path, "a host's interface joins a LAN (lans:), not a link: make it a LAN of the two")
        return
    if ifname is not None and (ifname in ("lo", names.CONTROL_NETWORK) or ifname.startswith(names.PREFIX)
                               and len(ifname) == 15):
        errors.add(_join(path, "interface"), "%s is the host's loopback or the testbed's own: name a NIC of the "
                   "host" % ifname)
        return
    if ip is not None:
        try:
            if not isinstance(ip, str):
                raise ValueError(ip)
            ip = ipaddress.ip_address(ip)
        except ValueError:
            errors.add(_join(path, "ip"), "invalid IPv4 address %r" % (ip,))
            return
    shapes = _member_shapes(errors, path, member, lan) if any(k in member for k in MEMBER_SHAPE_KEYS) else {}
    lan["ports"].append({"host": host, "interface": ifname, "ip": ip, "path": path, "shapes": shapes})


def _check_lan(errors, path, spec, members_key, exact=None):
    keys = LAN_KEYS if members_key == "members" else LINK_KEYS
    directions = {}
    if isinstance(spec, dict) and exact is not None:
        keys = keys + tuple(k for k in spec if isinstance(k, str) and DIRECTION_RE.match(k))
    if not _check_keys(errors, path, spec, keys, required=(members_key,)):
        return None
    lan = {"subnet": None, "members": [], "shape": check_shape(errors, path, spec), "directions": directions,
           "interfaces": {}, "member_shapes": {}, "per_member": exact is None, "ports": [],
           "shape_spec": dict((k, spec[k]) for k in SHAPE_KEYS if k in spec)}
    for key in spec:
        match = DIRECTION_RE.match(key) if isinstance(key, str) and exact is not None else None
        if match:
            dpath = _join(path, key)
            if _check_keys(errors, dpath, spec[key], SHAPE_KEYS):
                merged = dict((k, spec[k]) for k in SHAPE_KEYS if k in spec)
                merged.update(spec[key])
                shape = check_shape(errors, dpath, merged)
                directions[(match.group(1), match.group(2))] = (dpath, shape)
    if spec.get("subnet") is not None:
        lan["subnet"] = _parse_network(errors, _join(path, "subnet"), spec["subnet"])
    if members_key not in spec:  # already reported as required
        return lan
    members = spec.get(members_key)
    mpath = _join(path, members_key)
    if not isinstance(members, list):
        errors.add(mpath, "must be a list of node names, got %s" % _type_name(members))
        return lan
    if exact is not None and len(members) != exact:
        errors.add(mpath, "a link has exactly %d endpoints, got %d; use lans: for more" % (exact, len(members)))
    if exact is None and not members:
        errors.add(mpath, "must list at least one node")
    for i, member in enumerate(members):
        node, ip = _check_member(errors, "%s[%d]" % (mpath, i), member, lan)
        if node is not PORT:
            lan["members"].append((node, ip))
    if exact is None and members and not lan["members"] and lan["ports"]:
        errors.add(mpath, "must list at least one node besides the hosts' interfaces")
    return lan


def validate(doc):
    """Validate an experiment document (already parsed YAML); return its normalized form.

    The normalized form is a dict with plain values: name, project, routing, nodes (ordered
    as in the file), and lans (the file's ``lans:`` then ``links:``, each with kind, subnet
    (ipaddress network or None) and members as (node, ip-or-None) pairs).
    """
    errors = Errors()
    if not _check_keys(errors, "", doc, TOP_KEYS, required=("name", "nodes")):
        errors.gate()
    if "name" in doc:  # a missing name is reported once, as required
        _check_name(errors, "name", doc.get("name"), "experiment")
    project = doc.get("project", "default")
    _check_name(errors, "project", project, "project")
    routing = doc.get("routing", "static")
    if routing not in ROUTING_MODES:
        errors.add("routing", "must be one of %s, got %r" % (", ".join(ROUTING_MODES), routing))
    defaults = doc.get("defaults") or {}
    _check_keys(errors, "defaults", defaults, DEFAULT_KEYS)
    if not isinstance(defaults, dict):
        defaults = {}
    limit_defaults = check_limits(errors, "defaults", defaults)
    addressing = doc.get("addressing") or {}
    pool, prefixlen = ipaddress.ip_network(DEFAULT_POOL), DEFAULT_PREFIXLEN
    if _check_keys(errors, "addressing", addressing, ADDRESSING_KEYS):
        if "pool" in addressing:
            pool = _parse_network(errors, "addressing.pool", addressing["pool"]) or pool
            # A pool narrower than the default prefix is one subnet, not a crash in the planner.
            prefixlen = max(prefixlen, pool.prefixlen)
        if "prefixlen" in addressing:
            prefixlen = addressing["prefixlen"]
            if isinstance(prefixlen, bool) or not isinstance(prefixlen, int) or not pool.prefixlen <= prefixlen <= 30:
                errors.add("addressing.prefixlen", "must be an integer from %d (the pool's) to 30, got %r"
                           % (pool.prefixlen, prefixlen))
                prefixlen = DEFAULT_PREFIXLEN

    nodes = {}
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        if "nodes" in doc:  # a missing nodes: is reported once, as required
            errors.add("nodes", "must be a mapping of at least one node name to its settings")
        raw_nodes = {}
    for name, spec in raw_nodes.items():
        path = "nodes.%s" % name
        if _check_name(errors, path, name, "node"):
            node = _check_node(errors, path, spec, defaults, limit_defaults)
            if node is not None:
                nodes[name] = node

    lans = {}
    for section, members_key, kind, exact in (("lans", "members", "lan", None), ("links", "endpoints", "link", 2)):
        raw = doc.get(section) or {}
        if not isinstance(raw, dict):
            errors.add(section, "must be a mapping of names to settings, got %s" % _type_name(raw))
            continue
        for name, spec in raw.items():
            path = "%s.%s" % (section, name)
            if not _check_name(errors, path, name, kind):
                continue
            if name in lans:
                errors.add(path, "name %r is used by both lans: and links:; rename one" % name)
                continue
            lan = _check_lan(errors, path, spec, members_key, exact)
            if lan is not None:
                lan.update(kind=kind, path=path, members_key=members_key)
                lans[name] = lan
    errors.gate()

    _check_references(errors, nodes, lans)
    _check_start_order(errors, nodes)
    _check_host_names(errors, nodes, lans)
    _check_interface_names(errors, lans)
    _check_ports(errors, nodes)
    _check_subnets(errors, lans)
    errors.gate()
    ssh_keys = _check_ssh_keys(errors, "ssh_keys", doc.get("ssh_keys"))
    users = _check_users(errors, doc.get("users"))
    packing = None
    placement = doc.get("placement") or {}
    if _check_keys(errors, "placement", placement, ("packing",)):
        packing = placement.get("packing")
        if packing is not None and (isinstance(packing, bool) or not isinstance(packing, int) or packing < 1):
            errors.add("placement.packing", "must be a whole number of nodes per host, 1 or more, got %r" % (packing,))
            packing = None
    scheduled = _check_events(errors, doc.get("events"), nodes, lans, "%s/%s" % (project, doc["name"]))
    storage = _check_storage(errors, doc.get("storage"), project, nodes)
    errors.gate()
    return {"name": doc["name"], "project": project, "routing": routing, "nodes": nodes, "ssh_keys": ssh_keys,
            "users": users, "packing": packing, "storage": storage,
            "lans": lans, "pool": pool, "prefixlen": prefixlen, "events": scheduled}


def _check_storage(errors, spec, project, nodes):
    """storage: the project's shared directory, mounted at ``path`` (default /proj/PROJECT) in
    every node when ``project`` is true; with ``homes`` the accounts of full nodes have their
    homes there.  Returns {"project": the node path or None, "homes": bool}."""
    spec = {} if spec is None else spec
    if not _check_keys(errors, "storage", spec, STORAGE_KEYS):
        return {"project": None}
    homes = spec.get("homes", False)
    if not isinstance(homes, bool):
        errors.add("storage.homes", "must be true (the accounts' homes on the project's directory) or false, got %r"
                   % (homes,))
    elif homes and spec.get("project") is not True:
        errors.add("storage.homes", "puts the homes on the project's directory: set storage.project: true too")
    enabled = spec.get("project", False)
    if not isinstance(enabled, bool):
        errors.add("storage.project", "must be true (mount the project's shared directory in every node) or false, "
                   "got %r" % (enabled,))
        return {"project": None}
    target = spec.get("path", DEFAULT_PROJECT_PATH % project)
    if not isinstance(target, str) or not target.startswith("/") or ":" in target or "\x00" in target \
            or "\n" in target:
        errors.add("storage.path", "must be an absolute path inside the nodes without ':', got %r" % (target,))
        return {"project": None}
    target = target.rstrip("/") or "/"
    if "path" in spec and not enabled:
        errors.add("storage.path", "is where the project's directory is mounted: set storage.project: true too")
    problem = _bind_target_error(target, set())
    if problem:
        errors.add("storage.path", problem)
        return {"project": None}
    if not enabled:
        return {"project": None}
    for name, node in nodes.items():
        for i, mount in enumerate(node["binds"] + node["volumes"]):
            if mount["target"] == target or mount["target"].startswith(target + "/") \
                    or target.startswith(mount["target"] + "/"):
                errors.add("nodes.%s" % name, "mounts %s, which meets the project's directory at %s (storage.path): "
                           "mount it elsewhere" % (mount["target"], target))
    return {"project": target, "homes": homes is True}


def _check_events(errors, items, nodes, lans, experiment):
    """``events:``, the experiment's schedule (plugins/module_utils/events.py): every bad item is
    reported, with its field path; the valid ones, sorted by time, each with its ``path``."""
    # imported here: events reads this module's names and shaping keys
    from ansible_collections.testbed.containers.plugins.module_utils import events
    if items is None:
        return []
    members = dict((name, [m for m, _ip in lan["members"]]) for name, lan in lans.items())
    found = []
    try:
        scheduled = events.parse_schedule(items, "events", found, (list(nodes), members, experiment), with_paths=True)
    except events.EventError as exc:  # not a list at all
        found, scheduled = [exc], []
    for exc in found:
        errors.add("", str(exc))
    return scheduled


def _check_references(errors, nodes, lans):
    for lan_name, lan in lans.items():
        endpoints = [m for m, _ip in lan["members"]]
        for (src, dst), (dpath, _shape) in lan.get("directions", {}).items():
            if len(endpoints) == 2 and (src, dst) not in ((endpoints[0], endpoints[1]), (endpoints[1], endpoints[0])):
                errors.add(dpath, "names no direction of this link: use %s_to_%s or %s_to_%s"
                           % (endpoints[0], endpoints[1], endpoints[1], endpoints[0]))
        seen = {}
        for i, (node, ip) in enumerate(lan["members"]):
            path = "%s.%s[%d]" % (lan["path"], lan["members_key"], i)
            if node is None:
                continue
            if node not in nodes:
                hint = " (known nodes: %s)" % ", ".join(sorted(nodes)) if nodes else ""
                errors.add(path, "unknown node %r%s" % (node, hint))
            elif node in seen:
                errors.add(path, "node %r is already a member at index %d; a node joins a LAN once" % (node, seen[node]))
            else:
                seen[node] = i


def _check_interface_names(errors, lans):
    """A named interface (``interface:``) is used once per node."""
    seen = {}
    for lan_name, lan in lans.items():
        for node, (ifname, path) in lan["interfaces"].items():
            if (node, ifname) in seen:
                errors.add(path, "node %r already has an interface %s (%s): name another one" % (node, ifname, seen[node, ifname]))
            else:
                seen[node, ifname] = path


def _check_ports(errors, nodes):
    """A host port is published once per experiment (the nodes may share a host)."""
    seen = {}
    for node_name, node in nodes.items():
        for i, port in enumerate(node["ports"]):
            key = (port["host_ip"], port["host_port"], port["protocol"])
            path = "nodes.%s.ports[%d]" % (node_name, i)
            if key in seen:
                errors.add(path, "host port %d/%s is already published by %s: choose another host port"
                           % (port["host_port"], port["protocol"], seen[key]))
            else:
                seen[key] = path


def _check_host_names(errors, nodes, lans):
    """NODE and NODE-LAN must all be distinct: they become /etc/hosts names (decision 5)."""
    owner = {}
    for node in nodes:
        owner[node] = "node %r" % node
    for lan_name, lan in lans.items():
        seen = set()
        for node, _ip in lan["members"]:
            if node not in nodes or node in seen:  # a duplicate member is reported once, as such
                continue
            seen.add(node)
            alias = "%s-%s" % (node, lan_name)
            what = "node %r on %s" % (node, lan["path"])
            if alias in owner:
                errors.add(lan["path"], "host name %r of %s collides with %s; rename a node or a LAN"
                           % (alias, what, owner[alias]))
            else:
                owner[alias] = what


def _check_subnets(errors, lans):
    fixed = {}
    for lan_name, lan in lans.items():
        subnet = lan["subnet"]
        used = {}
        for i, (node, ip) in enumerate(lan["members"]):
            if ip is None:
                continue
            path = "%s.%s[%d].ip" % (lan["path"], lan["members_key"], i)
            if ip.version != 4:
                errors.add(path, "only IPv4 addresses are supported, got %s" % ip)
            elif subnet is None:
                errors.add(path, "a fixed address needs the LAN's subnet: add %s.subnet" % lan["path"])
            elif ip not in subnet:
                errors.add(path, "address %s is outside the subnet %s" % (ip, subnet))
            elif ip in (subnet.network_address, subnet.broadcast_address):
                errors.add(path, "address %s is the network or broadcast address of %s" % (ip, subnet))
            elif ip in used:
                errors.add(path, "duplicate address %s (also %s)" % (ip, used[ip]))
            else:
                used[ip] = path
        if subnet is not None:
            for other, other_path in fixed.items():
                if subnet.overlaps(other):
                    errors.add(_join(lan["path"], "subnet"), "subnet %s overlaps %s of %s" % (subnet, other, other_path))
            fixed[subnet] = lan["path"]
