# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Project storage shared by the hosts: one host exports its ``testbed_project_root`` over NFS
(Debian's ``nfs-kernel-server``), every other host mounts it at its own ``testbed_project_root``.

Emulab mounts ``/proj`` from its file server on every node; here the nodes bind-mount the host's
``testbed_project_root/PROJECT`` (the slice does that), so what has to be shared is that one host
directory. The **server** gets an exports file of its own (``/etc/exports.d/testbed.exports``,
one line: the directory and each client host with the export options), re-exported with
``exportfs -ra``, and the NFS server started; a **client** mounts ``SERVER:EXPORT`` (NFSv4) at its
root and keeps a line in ``/etc/fstab`` (so it comes back at boot); ``state=absent`` undoes both
(the project's files stay on the server: they belong to the projects).

Nothing is changed before the kernel is known to have what the role needs (:func:`kernel_missing`:
``nfsd`` in ``/proc/filesystems`` for a server, ``nfs4`` or ``nfs`` for a client, after one
``modprobe``); a host without it is refused with what to do instead (mount a shared file system
yourself at the root and say ``testbed_project_shared: true``).

The pure parts (validation with field names, the exports line, the fstab edit, parsing
``/proc/mounts``) are functions of their inputs; :func:`converge` does the rest with a ``run``
callable for commands, takes ``dry_run`` and returns the operations it did (or would do).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import re
import subprocess

from ansible_collections.testbed.containers.plugins.module_utils.files import read_text, write_if_changed

EXPORTS_FILE = "/etc/exports.d/testbed.exports"
FSTAB = "/etc/fstab"
MOUNTS = "/proc/mounts"
FILESYSTEMS = "/proc/filesystems"
# Every node's root may write (the slice makes each project's directory 1777 and full nodes chown
# their users' homes there), so root is not squashed: the clients are the testbed's own hosts.
DEFAULT_EXPORT_OPTIONS = ("rw", "sync", "no_subtree_check", "no_root_squash")
DEFAULT_MOUNT_OPTIONS = ("rw", "hard", "vers=4", "noatime", "_netdev")
# The fstab line's marker: the only line this module writes or removes.
FSTAB_MARK = "# testbed.containers project storage"
_CLIENT = re.compile(r"^[A-Za-z0-9*?][A-Za-z0-9*?.-]*$")
_OPTION = re.compile(r"^[A-Za-z0-9_]+(=[A-Za-z0-9_.:/@-]+)?$")


class StorageError(Exception):
    """The host cannot take this role, or a command failed; ``operations`` says what was done."""

    def __init__(self, message, operations=None):
        super(StorageError, self).__init__(message)
        self.operations = list(operations or [])


def _path_error(field, path):
    if not isinstance(path, str) or not path.startswith("/") or path.rstrip("/") == "":
        return "%s must be an absolute directory other than /, got %r" % (field, path)
    if any(c.isspace() for c in path) or ":" in path or "," in path or "#" in path:
        return "%s must not hold spaces, ':', ',' or '#' (NFS and fstab cannot carry them), got %r" % (field, path)
    return None


def client_error(field, client):
    """Why ``client`` (an address, a CIDR, a host name or a wildcard of exports(5)) is refused."""
    if not isinstance(client, str) or not client:
        return "%s must be an address, a network (CIDR) or a host name, got %r" % (field, client)
    try:
        ipaddress.ip_network(client, strict=False)
        return None
    except ValueError:
        pass
    if not _CLIENT.match(client) or len(client) > 253:
        return ("%s must be an address, a network (CIDR) or a host name (letters, digits, '.', '-', "
                "wildcards '*' '?'), got %r" % (field, client))
    return None


def validate(role, export, root=None, server=None, clients=(), export_options=DEFAULT_EXPORT_OPTIONS,
             mount_options=DEFAULT_MOUNT_OPTIONS):
    """Every problem of these settings, each naming its field and the fix (empty when fine)."""
    problems = []
    if role not in ("server", "client"):
        problems.append("role must be server or client, got %r" % (role,))
    error = _path_error("export (testbed_storage_export)", export)
    if error:
        problems.append(error)
    if role == "server":
        for i, client in enumerate(clients or ()):
            error = client_error("clients[%d] (testbed_storage_clients)" % i, client)
            if error:
                problems.append(error)
        for i, option in enumerate(export_options or ()):
            if not isinstance(option, str) or not _OPTION.match(option):
                problems.append("export_options[%d] (testbed_storage_export_options) must be one exports(5) "
                                "option such as rw or sec=sys, got %r" % (i, option))
    if role == "client":
        error = _path_error("root (testbed_project_root)", root)
        if error:
            problems.append(error)
        if not isinstance(server, str) or not server or client_error("server", server) or "/" in server \
                or "*" in server or "?" in server:
            problems.append("server (the address of testbed_storage_server) must be an address or a host "
                            "name, got %r" % (server,))
        for i, option in enumerate(mount_options or ()):
            if not isinstance(option, str) or not _OPTION.match(option):
                problems.append("mount_options[%d] (testbed_storage_mount_options) must be one nfs(5) option "
                                "such as hard or vers=4.2, got %r" % (i, option))
    return problems


def exports_text(export, clients, options=DEFAULT_EXPORT_OPTIONS):
    """The exports file: the directory shared with each client host, or nothing without clients."""
    clients = sorted(set(clients))
    if not clients:
        return ""
    opts = ",".join(options)
    return ("# Written by testbed.containers (role storage): the project storage shared by the hosts.\n"
            "%s %s\n" % (export, " ".join("%s(%s)" % (c, opts) for c in clients)))


def _unescape(field):
    """/proc/mounts and fstab write space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text):
    """[(source, target, fstype, options)] of a /proc/mounts (or fstab) text."""
    mounts = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#"):
            continue
        mounts.append((_unescape(fields[0]), _unescape(fields[1]), fields[2],
                       fields[3] if len(fields) > 3 else "defaults"))
    return mounts


def mount_at(mounts, target):
    """The last mount (the visible one) at ``target``, or None."""
    target = os.path.normpath(target)
    found = None
    for mount in mounts:
        if os.path.normpath(mount[1]) == target:
            found = mount
    return found


def source_of(server, export):
    host = "[%s]" % server if ":" in server else server
    return "%s:%s" % (host, export)


def fstab_entry(server, export, root, options=DEFAULT_MOUNT_OPTIONS):
    return "%s %s nfs4 %s 0 0" % (source_of(server, export), root, ",".join(options))


def fstab_update(text, entry=None):
    """``text`` (an fstab) with this module's marked line replaced by ``entry``, or removed when
    ``entry`` is None; any other line is kept as it is."""
    lines = (text or "").splitlines()
    kept = []
    skip = False
    for line in lines:
        if skip:
            skip = False
            continue
        if line.strip() == FSTAB_MARK:
            skip = True
            continue
        kept.append(line)
    if entry:
        kept.extend([FSTAB_MARK, entry])
    return "".join("%s\n" % line for line in kept)


def kernel_missing(role, filesystems_text):
    """What the kernel lacks for this role (from /proc/filesystems), or None."""
    names = set(line.split()[-1] for line in (filesystems_text or "").splitlines() if line.split())
    if role == "server" and "nfsd" not in names:
        return ("this host's kernel has no NFS server (no nfsd in /proc/filesystems, and modprobe nfsd "
                "did not load it): run the storage server on a host whose kernel has CONFIG_NFSD, or mount "
                "one shared file system yourself at testbed_project_root on every host and set "
                "testbed_project_shared: true for them (docs/experiment-file.md, Storage)")
    if role == "client" and not names & {"nfs", "nfs4"}:
        return ("this host's kernel has no NFS client (no nfs or nfs4 in /proc/filesystems, and modprobe "
                "nfs did not load it): use a host whose kernel has CONFIG_NFS_FS and CONFIG_NFS_V4, or mount "
                "one shared file system yourself at testbed_project_root and set testbed_project_shared: true")
    return None


def run_command(argv):
    """(rc, output) of a command; rc 127 when it is not installed."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              check=False, timeout=120)
    except OSError as exc:
        return 127, str(exc)
    except subprocess.TimeoutExpired:
        return 124, "%s timed out after 120 s" % " ".join(argv)
    return proc.returncode, proc.stdout


def check_kernel(role, run=run_command, filesystems=FILESYSTEMS):
    """Raise StorageError when the kernel cannot serve (or mount) NFS, after one modprobe."""
    missing = kernel_missing(role, read_text(filesystems))
    if missing:
        run(["modprobe", "nfsd" if role == "server" else "nfs"])
        missing = kernel_missing(role, read_text(filesystems))
    if missing:
        raise StorageError(missing)


def _must(run, argv, ops, what):
    rc, out = run(argv)
    if rc != 0:
        raise StorageError("%s failed (%s, rc %d): %s" % (what, " ".join(argv), rc, (out or "").strip()[-400:]),
                           ops)


def _start_server(run, ops, dry_run, nfsd_dir="/proc/fs/nfsd"):
    threads = read_text(os.path.join(nfsd_dir, "threads"))
    if threads is not None and threads.strip() not in ("", "0"):
        return
    ops.append("start the NFS server")
    if dry_run:
        return
    if os.path.isdir("/run/systemd/system"):
        _must(run, ["systemctl", "enable", "--now", "nfs-server"], ops, "starting the NFS server")
    else:
        _must(run, ["service", "nfs-kernel-server", "start"], ops, "starting the NFS server")


def converge(role, state="present", export=None, root=None, server=None, clients=(),
             export_options=DEFAULT_EXPORT_OPTIONS, mount_options=DEFAULT_MOUNT_OPTIONS, persist=True,
             dry_run=False, run=run_command, exports_file=EXPORTS_FILE, fstab=FSTAB, mounts=MOUNTS,
             filesystems=FILESYSTEMS, check_only=False):
    """Make this host the storage server or a client (or undo it); (changed, operations, result)."""
    export_options = list(export_options or DEFAULT_EXPORT_OPTIONS)
    mount_options = list(mount_options or DEFAULT_MOUNT_OPTIONS)
    problems = validate(role, export, root, server, clients, export_options, mount_options)
    if problems:
        raise ValueError("; ".join(problems))
    ops = []
    result = {"role": role, "export": export}
    if role == "client":
        result.update(root=root, source=source_of(server, export))
    if state == "present":
        check_kernel(role, run, filesystems)
        if check_only:
            return False, [], result
        if role == "server":
            _serve(export, clients, export_options, exports_file, run, ops, dry_run)
        else:
            _mount(server, export, root, mount_options, persist, fstab, mounts, run, ops, dry_run)
    elif role == "server":
        _unserve(exports_file, run, ops, dry_run)
    else:
        _unmount(server, export, root, fstab, mounts, run, ops, dry_run)
    return bool(ops), ops, result


def _serve(export, clients, options, exports_file, run, ops, dry_run):
    if not os.path.isdir(export):
        ops.append("create %s" % export)
        if not dry_run:
            os.makedirs(export, mode=0o755, exist_ok=True)
    text = exports_text(export, clients, options)
    if text and write_if_changed(exports_file, text, 0o644, dry_run=True):
        ops.append("export %s to %s (%s)" % (export, ", ".join(sorted(set(clients))), exports_file))
        if not dry_run:
            os.makedirs(os.path.dirname(exports_file), exist_ok=True)
            write_if_changed(exports_file, text, 0o644)
    elif not text:
        # No client host (one host): nothing to share; an export left from before is withdrawn.
        _unserve(exports_file, run, ops, dry_run)
        return
    _start_server(run, ops, dry_run)
    if ops and not dry_run:
        _must(run, ["exportfs", "-ra"], ops, "re-exporting")


def _unserve(exports_file, run, ops, dry_run):
    if not os.path.exists(exports_file):
        return
    ops.append("remove %s and re-export (the projects' files stay)" % exports_file)
    if not dry_run:
        os.unlink(exports_file)
        _must(run, ["exportfs", "-ra"], ops, "re-exporting")


def _mount(server, export, root, options, persist, fstab, mounts, run, ops, dry_run):
    source = source_of(server, export)
    current = mount_at(parse_mounts(read_text(mounts)), root)
    if current and current[0] != source:
        raise StorageError("testbed_project_root %s already has %s (%s) mounted: unmount it, or leave this host "
                           "out of the storage role and set testbed_project_shared for it yourself"
                           % (root, current[0], current[2]), ops)
    if persist:
        text = read_text(fstab) or ""
        wanted = fstab_update(text, fstab_entry(server, export, root, options))
        if wanted != text:
            ops.append("keep the mount of %s at %s in %s" % (source, root, fstab))
            if not dry_run:
                write_if_changed(fstab, wanted, 0o644)
    if current:
        return
    if not os.path.isdir(root):
        ops.append("create %s" % root)
        if not dry_run:
            os.makedirs(root, mode=0o755, exist_ok=True)
    ops.append("mount %s at %s" % (source, root))
    if not dry_run:
        _must(run, ["mount", "-t", "nfs4", "-o", ",".join(options), source, root], ops, "mounting %s" % source)


def _unmount(server, export, root, fstab, mounts, run, ops, dry_run):
    source = source_of(server, export)
    current = mount_at(parse_mounts(read_text(mounts)), root)
    if current and current[0] == source:
        ops.append("unmount %s from %s" % (source, root))
        if not dry_run:
            _must(run, ["umount", root], ops, "unmounting %s (a node of an experiment still using it? swap it "
                  "out first)" % root)
    text = read_text(fstab)
    if text is not None and fstab_update(text) != text:
        ops.append("remove the project storage line from %s" % fstab)
        if not dry_run:
            write_if_changed(fstab, fstab_update(text), 0o644)
