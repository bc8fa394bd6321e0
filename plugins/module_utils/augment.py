# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Augmentation: derive from any image one that hosts the testbed's node services.

Level ``basic`` (docs/augmentation.md has the whole design):

- injects, in ONE ``COPY`` layer at ``/.testbed``, prebuilt static tools (so nothing is needed
  from the image: scratch, distroless, any libc): ``bin/supervisor`` (tools/supervisor/
  supervisor.c), ``bin/busybox`` and ``bin/sh -> busybox``, plus ``original`` (the image's
  ENTRYPOINT, CMD, USER, WORKDIR, in a line format the supervisor parses), and the empty
  mount points ``run/`` (a tmpfs per container) and ``node/`` (the node's directory);
- sets ENTRYPOINT to the supervisor, keeps CMD (so ``docker run AUGMENTED ARGS`` replaces it
  exactly as with the original), runs the supervisor as uid 0 (it switches to the original
  USER for the application), keeps ENV, WORKDIR, STOPSIGNAL, volumes, ports, healthcheck;
- records the originals in ``testbed.augment.*`` labels, with the level, the augmentation
  version and the hash of the injected tools;
- tags the result by content: ``testbed-augmented/NAME:LEVEL-KEY`` where KEY hashes
  (base image id, level, AUGMENT_VERSION, tools hash).  An existing tag is a cache hit and is
  never rebuilt.  No network is needed: ``FROM`` names the local image id, nothing is pulled.

An image that is already augmented (it has the labels; for example ``docker commit`` of a
running node) is never wrapped twice: when it is augmented at the requested level with this
version and these tools it is returned as it is; otherwise it is rebuilt FROM ITSELF (so a
commit keeps its changes) with the ORIGINALS recorded in its labels, never with the
supervisor as the "original" entrypoint.

Runtime side (used by the slice when it creates and plumbs a node): ``runtime_kwargs``,
``write_start_command``, ``mark_ready`` and ``read_status``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import io
import json
import os
import re
import signal
import tarfile
import threading
import time

from ansible_collections.testbed.containers.plugins.module_utils import files, services

try:
    from docker.errors import BuildError, ImageNotFound
    from docker.types import Mount
except ImportError:  # pragma: no cover - the modules report the missing library
    BuildError = ImageNotFound = Exception
    Mount = None

# Bump when what an augmented image contains or how it is configured changes meaning: every
# image is then augmented again (the version is part of the content tag).
AUGMENT_VERSION = 1
# Levels this module builds; "none" is the image itself.
LEVELS = ("basic", "full")
DEFAULT_TOOLS_DIR = "/var/cache/testbed/tools"
TOOLS_ENV = "TESTBED_TOOLS_DIR"
# The injected files per level: name in the tools directory -> path under /.testbed.
TOOLS = {
    "basic": (("supervisor", "bin/supervisor"), ("busybox", "bin/busybox")),
    "full": (("supervisor", "bin/supervisor"), ("busybox", "bin/busybox"), ("dropbearmulti", "bin/dropbearmulti")),
}
# The services the supervisor runs at each level (``service NAME`` lines of /.testbed/original;
# the script is /.testbed/services/NAME, run with the injected shell).
SERVICES = {"basic": (), "full": ("sshd",)}
# Programs of the dropbear multi-binary (it dispatches on the name it is called by).
DROPBEAR_PROGRAMS = ("dropbear", "dropbearkey", "scp")
SSH_PORT = 22
TAG_REPO = "testbed-augmented"
LABEL = "testbed.augment."
LABEL_LEVEL = LABEL + "level"
LABEL_VERSION = LABEL + "version"
LABEL_TOOLS = LABEL + "tools"
LABEL_KEY = LABEL + "key"
LABEL_FROM = LABEL + "from"
LABEL_ENTRYPOINT = LABEL + "entrypoint"
LABEL_CMD = LABEL + "cmd"
LABEL_USER = LABEL + "user"
LABEL_WORKDIR = LABEL + "workdir"

TB = "/.testbed"
SUPERVISOR = TB + "/bin/supervisor"
NODE_MOUNT = TB + "/node"
RUN_MOUNT = TB + "/run"
START_FILE = "start"
RUN_TMPFS_OPTIONS = "rw,nosuid,nodev,noexec,mode=0755,size=16m"
RESTART_POLICIES = ("no", "on-failure", "always")
# The root of a process's file system, as the host sees it (a test may point it elsewhere).
PROC_ROOT = "/proc/%d/root"
ORIGINAL_FORMAT = 1
# Fixed metadata of the build context: the same inputs give the same layer.
_CONTEXT_MTIME = 1700000000
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
           "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


class AugmentError(Exception):
    pass


# ---- the injected tools ------------------------------------------------------------------

def tools_dir(path=None):
    """Where the prebuilt tools are: ``path``, else $TESTBED_TOOLS_DIR, else /var/cache/testbed/tools."""
    return path or os.environ.get(TOOLS_ENV) or DEFAULT_TOOLS_DIR


_tools_cache = {}
_tools_lock = threading.Lock()


def dropbear_path(path=None):
    """The dropbear multi-binary in the tools directory (the host uses its key generator)."""
    return os.path.join(tools_dir(path), "dropbearmulti")


class Link(object):
    """A symbolic link in the injected layer (a value of the files map of load_tools)."""

    def __init__(self, target):
        self.target = target

    def __eq__(self, other):
        return isinstance(other, Link) and other.target == self.target

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.target)

    def __repr__(self):
        return "Link(%r)" % self.target


def busybox_applets(busybox):
    """The applets of a busybox binary (``busybox --list``), sorted; [] if it cannot run here."""
    import subprocess
    try:
        proc = subprocess.run([busybox, "--list"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(a.strip() for a in proc.stdout.split() if re.match(r"^[A-Za-z0-9_.\[-]+$", a.strip())))


def level_files(level, busybox=None):
    """What a level adds besides the tools: {path under /.testbed: bytes (mode 0755) or Link}.

    ``full``: the sshd service script, the dropbear programs, and ``tools/``: a link per
    busybox applet (ip, ping, ps, vi, ...), last on the PATH of SSH sessions, so a node whose
    image has no tools still has them, and an image's own tools win.
    """
    files = {"bin/sh": Link("busybox")}
    if level == "full":
        files["services/sshd"] = services.sshd_service(SSH_PORT).encode("utf-8")
        for program in DROPBEAR_PROGRAMS:
            files["bin/" + program] = Link("dropbearmulti")
        for applet in busybox_applets(busybox) if busybox else []:
            files["tools/" + applet] = Link("../bin/busybox")
        files["tools/scp"] = Link("../bin/dropbearmulti")
    return files


def load_tools(level, path=None):
    """(files, tools_hash) of a level: files maps the path under /.testbed to the content
    (bytes, or a Link); the hash covers every file and link.

    Memoized per (file, size, mtime), so a slice augmenting many images hashes the tools once.
    """
    if level not in TOOLS:
        raise AugmentError("augmentation level %r is not built by this version (levels: %s)"
                           % (level, ", ".join(LEVELS)))
    directory = tools_dir(path)
    stamp = []
    for name, _dest in TOOLS[level]:
        source = os.path.join(directory, name)
        try:
            st = os.stat(source)
        except OSError:
            raise AugmentError("tool %s missing: run scripts/build-tools.sh (or set %s)" % (source, TOOLS_ENV))
        if not os.access(source, os.X_OK):
            raise AugmentError("tool %s is not executable: run scripts/build-tools.sh --force" % source)
        stamp.append((source, st.st_size, st.st_mtime_ns))
    key = (level, tuple(stamp))
    with _tools_lock:
        if key not in _tools_cache:
            files, digest = {}, hashlib.sha256()
            for name, dest in TOOLS[level]:
                with open(os.path.join(directory, name), "rb") as f:
                    files[dest] = f.read()
            files.update(level_files(level, os.path.join(directory, "busybox")))
            for dest in sorted(files):
                value = files[dest]
                content = ("link:" + value.target) if isinstance(value, Link) else hashlib.sha256(value).hexdigest()
                digest.update(("%s\0%s\n" % (dest, content)).encode("utf-8"))
            _tools_cache[key] = (files, digest.hexdigest()[:16])
        return _tools_cache[key]


def _elf_arch(data):
    """Docker's architecture name of an ELF binary (None if unknown)."""
    if data[:4] != b"\x7fELF" or len(data) < 20:
        return None
    machine = int.from_bytes(data[18:20], "little" if data[5:6] == b"\x01" else "big")
    return {0x3E: "amd64", 0xB7: "arm64", 0x28: "arm", 0x03: "386", 0x15: "ppc64le", 0x16: "s390x",
            0xF3: "riscv64"}.get(machine)


# ---- the image's original configuration ----------------------------------------------------

def _escape(value):
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _unescape(value):
    return re.sub(r"\\(\\|n)", lambda m: "\n" if m.group(1) == "n" else "\\", value)


def _stopsignal_number(value):
    """Docker's STOPSIGNAL (SIGQUIT, QUIT, 3, SIGRTMIN+3) -> number; 0 when unset or unknown."""
    if not value:
        return 0
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    match = re.match(r"^SIGRTM(IN|AX)([+-][0-9]+)?$", text)
    if match and hasattr(signal, "SIGRTMIN"):
        base = signal.SIGRTMIN if match.group(1) == "IN" else signal.SIGRTMAX
        return int(base) + int(match.group(2) or 0)
    sig = getattr(signal, text, None)
    return int(sig) if isinstance(sig, int) else 0


def is_augmented(attrs):
    """Whether the image has the augmentation's labels (a blank version, as a node snapshot
    leaves it, means it is not: image labels can be blanked, never removed)."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return bool(labels.get(LABEL_VERSION)) and LABEL_ENTRYPOINT in labels


def original_config(attrs):
    """The configuration the application must run with, from an image's inspect data.

    For a plain image: its Config.  For an augmented one (or a commit of an augmented node):
    ENTRYPOINT, USER and WORKDIR from its ``testbed.augment.*`` labels (its Config holds the
    supervisor's), CMD from its Config (the supervisor passes CMD through unchanged, and a
    commit records the node's effective CMD there, as ``docker commit`` always does).
    """
    config = attrs.get("Config") or {}
    env = config.get("Env") or []
    orig = {
        "entrypoint": list(config.get("Entrypoint") or []),
        "cmd": list(config.get("Cmd") or []),
        "user": config.get("User") or "",
        "workdir": config.get("WorkingDir") or "",
        "env_has_home": any(e.startswith("HOME=") for e in env),
        "stopsignal": _stopsignal_number(config.get("StopSignal")),
        "services": [],
    }
    if is_augmented(attrs):
        labels = config.get("Labels") or {}
        try:
            orig["entrypoint"] = list(json.loads(labels[LABEL_ENTRYPOINT]) or [])
        except (ValueError, TypeError):
            raise AugmentError("label %s of the image is not a JSON list: %r"
                               % (LABEL_ENTRYPOINT, labels[LABEL_ENTRYPOINT]))
        orig["user"] = labels.get(LABEL_USER, "")
        orig["workdir"] = labels.get(LABEL_WORKDIR, orig["workdir"])
    return orig


def render_original(orig):
    """The text of /.testbed/original (parsed by the supervisor's read_original()).

    One ``KEY VALUE`` per line, split at the first space; in VALUE ``\\\\`` is a backslash and
    ``\\n`` a newline.  Lists repeat their key, one element per line, in order.
    """
    lines = ["# testbed augmentation: the image's original configuration (format %d)" % ORIGINAL_FORMAT,
             "format %d" % ORIGINAL_FORMAT]
    for arg in orig["entrypoint"]:
        lines.append("entrypoint " + _escape(arg))
    for arg in orig["cmd"]:
        lines.append("cmd " + _escape(arg))
    lines.append("user " + _escape(orig["user"]))
    lines.append("workdir " + _escape(orig["workdir"]))
    lines.append("env-has-home %d" % (1 if orig["env_has_home"] else 0))
    lines.append("stopsignal %d" % orig["stopsignal"])
    for service in orig.get("services") or ():
        lines.append("service " + _escape(service))
    return "\n".join(lines) + "\n"


def parse_original(text):
    """The inverse of render_original (the supervisor's reading, for tests and tools)."""
    orig = {"entrypoint": [], "cmd": [], "user": "", "workdir": "", "env_has_home": False, "stopsignal": 0,
            "services": []}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        key, _sep, value = line.partition(" ")
        value = _unescape(value)
        if key in ("entrypoint", "cmd"):
            orig[key].append(value)
        elif key in ("user", "workdir"):
            orig[key] = value
        elif key == "env-has-home":
            orig["env_has_home"] = value == "1"
        elif key == "stopsignal":
            orig["stopsignal"] = int(value or 0)
        elif key == "service":
            orig["services"].append(value)
    return orig


# ---- names and keys ------------------------------------------------------------------------

_COMPONENT_BAD = re.compile(r"[^a-z0-9._-]+")


def _sanitize_component(component):
    component = _COMPONENT_BAD.sub("-", component.lower())
    component = re.sub(r"[._-]{2,}", "-", component).strip("._-")
    return component


def base_name(image_ref, repo_tags=()):
    """The readable part of the augmented tag: the image's repository path, sanitized.

    ``registry:5000/team/app:1.2`` -> ``team/app``; an image id -> its first repository tag,
    else ``image``; an augmented image's tag loses its ``testbed-augmented/`` prefix.
    """
    ref = image_ref
    if re.match(r"^(sha256:)?[0-9a-f]{12,64}$", ref):
        ref = repo_tags[0] if repo_tags else "image"
    ref = ref.split("@", 1)[0]
    parts = ref.split("/")
    last = parts[-1]
    if ":" in last:
        parts[-1] = last.rsplit(":", 1)[0]
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if parts and parts[0] == TAG_REPO:
        parts = parts[1:]
    parts = [p for p in (_sanitize_component(p) for p in parts) if p]
    name = "/".join(parts) or "image"
    return name[:200]


def content_key(base_id, level, tools_hash, version=None):
    """The hash naming an augmented image: (base image id, level, augmentation version, tools)."""
    doc = {"base": base_id, "level": level, "version": AUGMENT_VERSION if version is None else version,
           "tools": tools_hash}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()[:20]


def augmented_tag(name, level, key):
    return "%s/%s:%s-%s" % (TAG_REPO, name, level, key)


def is_current(attrs, level, tools_hash):
    """An augmented image that needs nothing: this level, this version, these tools."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return (is_augmented(attrs) and labels.get(LABEL_LEVEL) == level
            and labels.get(LABEL_VERSION) == str(AUGMENT_VERSION) and labels.get(LABEL_TOOLS) == tools_hash)


# ---- the build -------------------------------------------------------------------------------

def _label_value(value):
    """A Dockerfile LABEL value: double-quoted, with \\, " and $ escaped (LABEL expands variables)."""
    if "\n" in value or "\r" in value:
        raise AugmentError("cannot record %r in a label: it contains a line break" % value)
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def dockerfile(base_id, orig, labels):
    """The generated Dockerfile: FROM the local image id, one COPY layer, the supervisor first.

    ENTRYPOINT resets an inherited CMD, so CMD is written again after it (when there is one);
    exec-form CMD is not subject to variable expansion.  USER is numeric: a scratch image has
    no /etc/passwd to resolve ``root``.  All labels go in ONE instruction: the classic builder
    commits a step per instruction (the labels argument of the build API adds one per label).
    """
    lines = [
        "# generated by testbed.containers augment.py (version %d)" % AUGMENT_VERSION,
        "FROM %s" % base_id,
        "COPY testbed/ %s/" % TB,
        "ENTRYPOINT %s" % json.dumps([SUPERVISOR]),
    ]
    if orig["cmd"]:
        lines.append("CMD %s" % json.dumps(orig["cmd"]))
    lines.append("USER 0:0")
    lines.append("LABEL " + " \\\n      ".join("%s=%s" % (key, _label_value(labels[key])) for key in sorted(labels)))
    return "\n".join(lines) + "\n"


def labels_for(orig, level, tools_hash, key, from_id):
    return {
        LABEL_LEVEL: level,
        LABEL_VERSION: str(AUGMENT_VERSION),
        LABEL_TOOLS: tools_hash,
        LABEL_KEY: key,
        LABEL_FROM: from_id,
        LABEL_ENTRYPOINT: json.dumps(orig["entrypoint"]),
        LABEL_CMD: json.dumps(orig["cmd"]),
        LABEL_USER: orig["user"],
        LABEL_WORKDIR: orig["workdir"],
    }


def build_context(files, orig, docker_file):
    """The build context as an in-memory tar: Dockerfile + testbed/ (owned by root, fixed mtime)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, data=None, mode=0o644, kind=tarfile.REGTYPE, target=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, _CONTEXT_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if kind == tarfile.SYMTYPE:
                info.linkname = target
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
        add("Dockerfile", docker_file.encode("utf-8"))
        directories = set(["testbed", "testbed/bin", "testbed/run", "testbed/node"])
        for dest in files:
            parent = os.path.dirname("testbed/" + dest)
            while parent and parent not in directories:
                directories.add(parent)
                parent = os.path.dirname(parent)
        for directory in sorted(directories):
            add(directory, mode=0o755, kind=tarfile.DIRTYPE)
        links = dict((dest, value) for dest, value in files.items() if isinstance(value, Link))
        links.setdefault("bin/sh", Link("busybox"))
        for dest in sorted(files):
            if dest not in links:
                add("testbed/" + dest, files[dest], mode=0o755)
        for dest in sorted(links):
            add("testbed/" + dest, kind=tarfile.SYMTYPE, mode=0o777, target=links[dest].target)
        add("testbed/original", render_original(orig).encode("utf-8"))
    return buf.getvalue()


_key_locks = {}
_key_locks_guard = threading.Lock()


def _key_lock(key):
    with _key_locks_guard:
        return _key_locks.setdefault(key, threading.Lock())


def _get_image(client, ref):
    try:
        return client.images.get(ref)
    except ImageNotFound:
        return None


def plan_augmentation(client, image_ref, level, tools_path=None):
    """What augment_image would do, without doing it.

    Returns a dict: ``action`` (``none``: level none; ``current``: already augmented as wanted;
    ``cached``: the content tag exists; ``build``), ``ref`` (the image to run), and for a build
    the inputs (``base_id``, ``orig``, ``key``, ``labels``, ``files``).
    """
    if level == "none":
        return {"action": "none", "ref": image_ref}
    image = _get_image(client, image_ref)
    if image is None:
        raise AugmentError("image %s not found on this host: build, load or pull it first" % image_ref)
    files, tools_hash = load_tools(level, tools_path)
    attrs = image.attrs
    if is_current(attrs, level, tools_hash):
        return {"action": "current", "ref": image_ref, "image_id": image.id}
    arch = attrs.get("Architecture") or ""
    tools_arch = _elf_arch(files[TOOLS[level][0][1]])
    if tools_arch and arch and _ARCHES.get(arch, arch) != tools_arch:
        raise AugmentError("image %s is for %s but the tools in %s are built for %s"
                           % (image_ref, arch, tools_dir(tools_path), tools_arch))
    key = content_key(image.id, level, tools_hash)
    tag = augmented_tag(base_name(image_ref, image.tags), level, key)
    plan = {"ref": tag, "base_id": image.id, "key": key, "tools_hash": tools_hash}
    cached = _get_image(client, tag)
    if cached is not None and ((cached.attrs.get("Config") or {}).get("Labels") or {}).get(LABEL_KEY) == key:
        plan.update(action="cached", image_id=cached.id)
        return plan
    orig = dict(original_config(attrs), services=list(SERVICES[level]))
    if (attrs.get("Config") or {}).get("OnBuild"):
        raise AugmentError("image %s has ONBUILD triggers, which would run during augmentation (FROM); "
                           "such images are build bases, not runnable: build an image from it first"
                           % image_ref)
    plan.update(action="build", orig=orig, files=files,
                labels=labels_for(orig, level, tools_hash, key, image.id))
    return plan


def augment_image(client, image_ref, level, tools_path=None, dry_run=False, nocache=False):
    """Augment ``image_ref`` (present on this host) to ``level``; returns (ref, changed).

    ``ref`` is what to run: the content tag ``testbed-augmented/NAME:LEVEL-KEY``, or
    ``image_ref`` itself for level ``none`` and for an image already augmented at this
    level, version and tools.  ``changed`` is True only when an image was built (in dry-run
    mode: would be built).  A second call finds the tag and builds nothing.  ``nocache``
    disables the builder's layer cache (for benchmarks).
    """
    plan = plan_augmentation(client, image_ref, level, tools_path)
    if plan["action"] != "build":
        return plan["ref"], False
    if dry_run:
        return plan["ref"], True
    with _key_lock(plan["key"]):
        # another thread of this process may have built it meanwhile
        cached = _get_image(client, plan["ref"])
        if cached is not None and ((cached.attrs.get("Config") or {}).get("Labels") or {}).get(LABEL_KEY) == plan["key"]:
            return plan["ref"], False
        context = build_context(plan["files"], plan["orig"],
                                dockerfile(plan["base_id"], plan["orig"], plan["labels"]))
        try:
            client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag=plan["ref"],
                                rm=True, forcerm=True, pull=False, nocache=nocache)
        except BuildError as exc:
            log = "".join(item.get("stream", "") or item.get("error", "") for item in (exc.build_log or [])
                          if isinstance(item, dict))
            raise AugmentError("augmenting %s failed: %s\n%s" % (image_ref, exc.msg, log[-2000:]))
    return plan["ref"], True


# ---- node runtime: what the slice needs -------------------------------------------------------

def node_mount(node_dir):
    """The read-only bind mount of the node's directory at /.testbed/node.

    A ``mounts=`` entry, not ``volumes=``: the SDK copies ``volumes=`` targets into the
    container's Config.Volumes, and ``docker commit`` then bakes them into the image as VOLUME
    declarations (a later build FROM it fails with "cannot mount volume over existing file"
    for a file such as /etc/hosts).
    """
    if Mount is None:  # pragma: no cover - the API's own form, which the SDK accepts too
        return {"Target": NODE_MOUNT, "Source": node_dir, "Type": "bind", "ReadOnly": True}
    return Mount(NODE_MOUNT, node_dir, type="bind", read_only=True)


def runtime_kwargs(node_dir, app_restart=None):
    """Extra ``containers.create`` keyword arguments of an augmented node.

    ``node_dir`` (a host directory that must exist: write_start_command creates it) is mounted read-only at
    /.testbed/node; /.testbed/run is a tmpfs (empty at every start: the ready marker and the
    status live there).  ``app_restart`` (no, on-failure, always) sets the supervisor's
    restart policy for the application.  Merge with merge_kwargs().
    """
    kwargs = {
        "mounts": [node_mount(node_dir)],
        "tmpfs": {RUN_MOUNT: RUN_TMPFS_OPTIONS},
    }
    if app_restart is not None:
        if app_restart not in RESTART_POLICIES:
            raise AugmentError("app restart policy must be one of %s, got %r" % (", ".join(RESTART_POLICIES), app_restart))
        kwargs["environment"] = {"TESTBED_APP_RESTART": app_restart}
    return kwargs


def merge_kwargs(kwargs, extra):
    """kwargs updated with extra; dict values (tmpfs, environment, volumes) are merged and
    list values (mounts) concatenated."""
    merged = dict(kwargs)
    for key, value in extra.items():
        if isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + value
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            both = dict(merged[key])
            both.update(value)
            merged[key] = both
        elif isinstance(value, dict) and merged.get(key) is None:
            merged[key] = dict(value)
        else:
            merged[key] = value
    return merged


def write_start_command(node_dir, command, dry_run=False):
    """Create ``node_dir`` and write (or, for None/empty, remove) the node's start command in it;
    returns True if the command changed.

    Call it before creating the container: a bind mount needs its source to exist.  The
    supervisor reads the command when the ready marker appears, so it may change up to then.
    """
    if not dry_run:
        os.makedirs(node_dir, mode=0o755, exist_ok=True)
    path = os.path.join(node_dir, START_FILE)
    try:
        with open(path) as f:
            current = f.read()
    except (IOError, OSError):
        current = None
    wanted = command if command and command.strip() else None
    if current == wanted:
        return False
    if dry_run:
        return True
    if wanted is None:
        os.unlink(path)
        return True
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(wanted)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)
    return True


APP_FILE = "app"


def render_app_overrides(entrypoint=None, user=None, workdir=None, command=None):
    """The text of /.testbed/node/app: the node's own entrypoint, user and workdir over the
    image's originals (the supervisor's read_config()), or None when the node sets none.
    As with ``docker run --entrypoint``, a new entrypoint drops the image's CMD unless the node
    gives a command."""
    if entrypoint is None and user is None and workdir is None:
        return None
    lines = ["# testbed: the node's overrides of the image's originals"]
    if entrypoint is not None:
        lines.append("entrypoint-set")
        lines.extend("entrypoint " + _escape(arg) for arg in entrypoint)
        if command is None:
            lines.append("drop-cmd 1")
    if user is not None:
        lines.append("user " + _escape(user))
    if workdir is not None:
        lines.append("workdir " + _escape(workdir))
    return "\n".join(lines) + "\n"


def write_app_overrides(node_dir, node, dry_run=False):
    """Write (or remove) the node's /.testbed/node/app; True if it changed.  ``node`` is the
    planned node (entrypoint, user, workdir, command)."""
    path = os.path.join(node_dir, APP_FILE)
    text = render_app_overrides(node.get("entrypoint"), node.get("user"), node.get("workdir"), node.get("command"))
    if text is None:
        if not os.path.exists(path):
            return False
        if not dry_run:
            os.unlink(path)
        return True
    return files.write_if_changed(path, text, dry_run=dry_run)


def _open_run_dir(pid):
    """/.testbed/run of a running node, opened without following any symlink the node controls.

    Only /proc/PID/root is followed (into the node's root); a node that replaced .testbed or
    run by a symlink cannot make the host read or write outside it.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(PROC_ROOT % pid, flags)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):
            raise AugmentError("no process %d: is the node running?" % pid)
        raise
    walked = ""
    for part in (".testbed", "run"):
        walked += "/" + part
        try:
            opened = os.open(part, flags | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise AugmentError("process %d is not an augmented node (no %s)" % (pid, walked))
            raise
        finally:
            os.close(fd)
        fd = opened
    return fd


def mark_ready(pid):
    """Write the ready marker of the node whose PID 1 has host pid ``pid``; True if written now.

    Call it once the node's interfaces, addresses and routes are in place, at every start of
    the node (the marker lives in a tmpfs).  Idempotent: False when it is already there.
    """
    run = _open_run_dir(pid)
    try:
        try:
            os.stat("ready", dir_fd=run, follow_symlinks=False)
            return False
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        tmp = ".ready.tmp"
        try:
            os.unlink(tmp, dir_fd=run)
        except OSError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=run)
        try:
            os.write(fd, ("%s\n" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())).encode("ascii"))
        finally:
            os.close(fd)
        os.rename(tmp, "ready", src_dir_fd=run, dst_dir_fd=run)
        return True
    finally:
        os.close(run)


def is_ready(pid):
    """Whether the ready marker of the node whose PID 1 has host pid ``pid`` is there."""
    run = _open_run_dir(pid)
    try:
        os.stat("ready", dir_fd=run, follow_symlinks=False)
        return True
    except OSError:
        return False
    finally:
        os.close(run)


def parse_status(text):
    """The supervisor's status file -> dict of its KEY=VALUE lines plus parsed fields:
    app_state (running, exited, none), app_exit (int or None), start_state (waiting, running,
    exited, none), start_exit (int or None)."""
    status = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            status[key] = value
    for what in ("app", "start"):
        state, _sep, code = status.get(what, "").partition(":")
        status[what + "_state"] = state or None
        status[what + "_exit"] = int(code) if code.lstrip("-").isdigit() else None
    return status


def read_status(pid):
    """The status of the node whose PID 1 has host pid ``pid`` (see parse_status).

    {} when the supervisor has not written it yet; AugmentError when the node is not augmented.
    """
    run = _open_run_dir(pid)
    try:
        try:
            fd = os.open("status", os.O_RDONLY | os.O_NOFOLLOW, dir_fd=run)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return {}
            raise
        try:
            chunks = []
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
    finally:
        os.close(run)
    return parse_status(b"".join(chunks).decode("utf-8", "replace"))
