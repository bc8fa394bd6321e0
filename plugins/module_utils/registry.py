# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The testbed registry's server: a real image registry (distribution 2.8, Debian's
``docker-registry``) with htpasswd authentication and TLS from a CA of its own (pki.py).

On ``testbed_registry_host``: :func:`converge` / :func:`remove` with a :class:`Settings`.  The
registry listens on one address that every physical host reaches and that is not loopback
(Docker treats 127.0.0.0/8 registries as insecure, so TLS would prove nothing there); on a single
host that address sits on a dummy interface we create.  The process is a systemd unit where
systemd runs, otherwise a small shell supervisor started in its own session that restarts the
registry when it exits.

The host side (trusting the CA, logging in) is trust.py; pushing and pulling images is images.py.

Everything here is importable without Ansible; every function that changes the host takes
``dry_run`` and returns the list of operations it did (or would do).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import grp
import hashlib
import ipaddress
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

from ansible_collections.testbed.containers.plugins.module_utils import netlink, pki, trust
from ansible_collections.testbed.containers.plugins.module_utils.pki import (
    DEFAULT_BCRYPT_COST, RegistryError, read_text, remove_file, write_file)

# Bump when the generated files change meaning, so running registries restart onto them.
LAYOUT_VERSION = 1
MARKER = ".testbed-registry"          # in the storage directory: we created it, we may delete it
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
DEFAULT_NAME = "testbed-registry"


# ----------------------------------------------------------------------------------------------
# Settings and small pure helpers
# ----------------------------------------------------------------------------------------------

def host_port(address, port):
    """``ADDR:PORT`` as Docker spells a registry (IPv6 in brackets)."""
    ip = ipaddress.ip_address(address)
    return "[%s]:%d" % (ip, port) if ip.version == 6 else "%s:%d" % (ip, port)


def check_address(address):
    """The registry's listen address: an IP literal that is not loopback, unspecified or multicast."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise RegistryError("address %r is not an IP address" % (address,))
    if ip.is_loopback:
        raise RegistryError("address %s is loopback: Docker treats loopback registries as insecure (no TLS "
                            "check), and other hosts cannot reach it; use an address on a dummy interface "
                            "(interface option) or on a real one" % ip)
    if ip.is_unspecified or ip.is_multicast:
        raise RegistryError("address %s cannot be a registry's single listen address" % ip)
    return ip


class Settings:
    """Every knob of the server side, with the paths derived from them."""

    def __init__(self, name=DEFAULT_NAME, address="198.18.255.1", prefixlen=32, interface="tbreg0",
                 port=5443, dns_names=("registry.testbed",), config_dir="/etc/testbed/registry",
                 storage_dir="/var/lib/testbed/registry", run_dir="/run", log_dir="/var/log/testbed",
                 binary="/usr/bin/docker-registry", user="docker-registry", username="testbed",
                 password=None, ca_cert=None, ca_key=None, tls_cert=None, tls_key=None, ca_days=3650,
                 cert_days=825, service="auto", keep_storage=False, systemd_dir="/etc/systemd/system",
                 interface_kind="auto", bcrypt_cost=DEFAULT_BCRYPT_COST):
        self.name = name
        self.ip = check_address(address)
        self.address = str(self.ip)
        self.prefixlen = int(prefixlen)
        self.interface = interface or None
        if interface_kind not in ("auto", "dummy", "bridge"):
            raise RegistryError("interface_kind must be auto, dummy or bridge, not %r" % (interface_kind,))
        self.interface_kind = interface_kind
        self.resolved_kind = None   # set by ensure_address: what the interface really is
        self.bcrypt_cost = int(bcrypt_cost)
        if not 4 <= self.bcrypt_cost <= 31:
            raise RegistryError("bcrypt_cost must be between 4 and 31")
        if self.interface and len(self.interface) > 15:
            raise RegistryError("interface name %r is longer than 15 characters" % self.interface)
        self.port = int(port)
        if not 0 < self.port < 65536:
            raise RegistryError("port %d is out of range" % self.port)
        self.dns_names = [n for n in (dns_names or []) if n]
        self.config_dir = config_dir
        self.storage_dir = storage_dir
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.binary = binary
        self.user = user or "root"
        self.username = username
        if username and ":" in username:
            raise RegistryError("username %r must not contain ':'" % username)
        self.password = password
        if password is not None and len(password.encode("utf-8")) > 72:
            raise RegistryError("password is longer than 72 bytes, which bcrypt cannot hash")
        if bool(ca_cert) != bool(ca_key) and not (tls_cert and ca_cert):
            raise RegistryError("ca_cert and ca_key go together (or tls_cert, tls_key and ca_cert)")
        if bool(tls_cert) != bool(tls_key):
            raise RegistryError("tls_cert and tls_key go together")
        if tls_cert and not ca_cert:
            raise RegistryError("tls_cert needs ca_cert: the CA that hosts must trust for it")
        self.own_ca = bool(ca_cert)
        self.own_tls = bool(tls_cert)
        tls_dir = os.path.join(config_dir, "tls")
        self.tls_dir = tls_dir
        self.ca_cert = ca_cert or os.path.join(tls_dir, "ca.crt")
        self.ca_key = ca_key or (None if tls_cert else os.path.join(tls_dir, "ca.key"))
        self.tls_cert = tls_cert or os.path.join(tls_dir, "server.crt")
        self.tls_key = tls_key or os.path.join(tls_dir, "server.key")
        self.ca_days = int(ca_days)
        self.cert_days = int(cert_days)
        if service not in ("auto", "systemd", "supervisor"):
            raise RegistryError("service must be auto, systemd or supervisor, not %r" % (service,))
        if service == "auto":
            service = "systemd" if os.path.isdir("/run/systemd/system") else "supervisor"
        self.service = service
        self.keep_storage = keep_storage
        self.config = os.path.join(config_dir, "config.yml")
        self.htpasswd = os.path.join(config_dir, "htpasswd")
        self.script = os.path.join(config_dir, "supervise.sh")
        self.state_file = os.path.join(run_dir, "%s.json" % name)
        self.log = os.path.join(log_dir, "%s.log" % name)
        self.unit = os.path.join(systemd_dir, "%s.service" % name)

    @property
    def registry(self):
        return host_port(self.address, self.port)

    @property
    def alias(self):
        """The alias of our dummy interface: proves we own it."""
        return "testbed registry %s" % self.name

    def generated_files(self):
        """Files this role creates under config_dir (never the operator's own CA or certificate)."""
        files = [self.config, self.htpasswd, self.script]
        if not self.own_tls:
            files += [self.tls_cert, self.tls_key]
            if not self.own_ca:
                files += [self.ca_cert, self.ca_key]
        return files


CONFIG_TEMPLATE = """\
# Generated by testbed.containers (registry role) for %(name)s; changes are overwritten.
version: 0.1
log:
  level: info
  fields:
    service: %(name)s
storage:
  filesystem:
    rootdirectory: %(storage_dir)s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %(registry)s
  relativeurls: false
  tls:
    certificate: %(tls_cert)s
    key: %(tls_key)s
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: %(realm)s
    path: %(htpasswd)s
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


def render_config(s):
    """distribution 2.8's configuration file: storage, TLS-only listener, htpasswd auth."""
    keys = ("storage_dir", "registry", "tls_cert", "tls_key", "htpasswd")
    quoted = dict((key, json.dumps(getattr(s, key))) for key in keys)
    return CONFIG_TEMPLATE % dict(quoted, name=s.name, realm=json.dumps(s.name))


def _serve_command(s):
    serve = "%s serve %s" % (_shq(s.binary), _shq(s.config))
    if s.user != "root":
        serve = "setpriv --reuid=%s --regid=%s --init-groups -- %s" % (_shq(s.user), _shq(_group_of(s.user)), serve)
    return serve


def render_supervisor(s):
    """A POSIX shell supervisor: runs the registry, restarts it when it exits, stops it on TERM."""
    return """#!/bin/sh
# Generated by testbed.containers (registry role) for %(name)s; changes are overwritten.
# Keeps the registry running where there is no systemd: started in its own session by the
# registry module, stopped by SIGTERM to its process group.
LOG=%(log)s
child=
stop() {
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
  echo "$(date -u +%%FT%%TZ) supervisor: stopped" >>"$LOG"
  exit 0
}
trap stop TERM INT HUP
echo "$(date -u +%%FT%%TZ) supervisor: started (pid $$)" >>"$LOG"
while :; do
  %(serve)s >>"$LOG" 2>&1 </dev/null &
  child=$!
  wait "$child"
  rc=$?
  child=
  echo "$(date -u +%%FT%%TZ) supervisor: registry exited with status $rc, restarting in 2 s" >>"$LOG"
  sleep 2 &
  wait $!
done
""" % {"name": s.name, "log": _shq(s.log), "serve": _serve_command(s)}


def render_unit(s):
    """A systemd unit; it also recreates the dummy interface at boot."""
    pre = []
    if s.interface:
        # "+": as root although User= is not; "-": a failure (object exists) is fine
        pre = [
            "ExecStartPre=+-/usr/sbin/ip link add %s type %s" % (s.interface, s.resolved_kind or "dummy"),
            "ExecStartPre=+-/usr/sbin/ip link set %s alias \"%s\"" % (s.interface, s.alias),
            "ExecStartPre=+-/usr/sbin/ip address add %s/%d dev %s" % (s.address, s.prefixlen, s.interface),
            "ExecStartPre=+/usr/sbin/ip link set %s up" % s.interface,
        ]
    lines = [
        "# Generated by testbed.containers (registry role); changes are overwritten.",
        "[Unit]",
        "Description=testbed.containers image registry %s on %s" % (s.name, s.registry),
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
    ] + pre + [
        "ExecStart=%s serve %s" % (s.binary, s.config),
        "User=%s" % s.user,
        "Group=%s" % _group_of(s.user),
        "Restart=always",
        "RestartSec=2",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def _shq(text):
    return "'%s'" % text.replace("'", "'\\''")


def _group_of(user):
    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user


def ids_of(user):
    """(uid, gid) of ``user``; a clear error when the account is missing."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise RegistryError("user %r does not exist on this host: install Debian's docker-registry package "
                            "(it creates the account) or set user: root" % user)
    return pw.pw_uid, pw.pw_gid


# ----------------------------------------------------------------------------------------------
# Directories
# ----------------------------------------------------------------------------------------------

def ensure_dir(path, mode=0o755, uid=0, gid=0, dry_run=False):
    """Create ``path`` (and parents) or fix its mode/owner; True when anything changed."""
    try:
        st = os.stat(path)
    except OSError:
        if not dry_run:
            os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        return True
    if (st.st_mode & 0o7777) == mode and st.st_uid == uid and st.st_gid == gid:
        return False
    if not dry_run:
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    return True


# ----------------------------------------------------------------------------------------------
# The listen address: a dummy interface of ours (single host) or an existing address
# ----------------------------------------------------------------------------------------------

def _link(ipr, ifname):
    idx = ipr.link_lookup(ifname=ifname)
    return netlink.link_info(ipr.get_links(idx[0])[0]) if idx else None


def _addresses(ipr, index=None):
    kw = {"index": index} if index is not None else {}
    return [(netlink.attr(m, "IFA_ADDRESS"), m["prefixlen"], m["index"]) for m in ipr.get_addr(**kw)]


def ensure_address(s, dry_run=False):
    """Our dummy interface with the registry's address (or check the address exists); operations."""
    if not netlink.HAS_PYROUTE2:
        raise RegistryError("pyroute2 is missing on this host")
    ops = []
    with netlink.IPRoute() as ipr:
        if not s.interface:
            if not any(a[0] == s.address for a in _addresses(ipr)):
                raise RegistryError("address %s is on no interface of this host: add it, or set interface so "
                                    "that the registry role creates a dummy interface with it" % s.address)
            return ops
        link = _link(ipr, s.interface)
        if link is not None and (link["alias"] != s.alias or link["kind"] not in ("dummy", "bridge")):
            raise RegistryError("interface %s exists but is not this registry's (kind %s, alias %r, expected a "
                                "dummy or empty bridge with alias %r): refusing to take it over; choose another "
                                "interface name" % (s.interface, link["kind"], link["alias"], s.alias))
        others = [ipr.get_links(a[2])[0].get_attr("IFLA_IFNAME") for a in _addresses(ipr)
                  if a[0] == s.address and (link is None or a[2] != link["index"])]
        if others:
            raise RegistryError("address %s is already on interface %s: set interface to '' to use it as it is, "
                                "or pick another address" % (s.address, others[0]))
        try:
            if link is None:
                kind = "dummy" if s.interface_kind == "auto" else s.interface_kind
                if dry_run:
                    return ops + ["create %s interface %s" % (kind, s.interface),
                                  "add %s/%d to %s" % (s.address, s.prefixlen, s.interface),
                                  "bring up %s" % s.interface]
                kind = _add_holder(ipr, s.interface, s.interface_kind)
                ops.append("create %s interface %s" % (kind, s.interface))
                index = ipr.link_lookup(ifname=s.interface)[0]
                ipr.link("set", index=index, ifalias=s.alias)
                link = _link(ipr, s.interface)
            s.resolved_kind = link["kind"]
            index = link["index"]
            have = [a[:2] for a in _addresses(ipr, index)]
            if (s.address, s.prefixlen) not in have:
                ops.append("add %s/%d to %s" % (s.address, s.prefixlen, s.interface))
                if not dry_run:
                    for a, p in have:
                        if a == s.address:
                            ipr.addr("del", index=index, address=a, prefixlen=p)
                    ipr.addr("add", index=index, address=s.address, prefixlen=s.prefixlen)
            for a, p in have:
                if a != s.address and not ipaddress.ip_address(a).is_link_local:
                    ops.append("remove %s/%d from %s" % (a, p, s.interface))
                    if not dry_run:
                        ipr.addr("del", index=index, address=a, prefixlen=p)
            if not link["up"]:
                ops.append("bring up %s" % s.interface)
                if not dry_run:
                    ipr.link("set", index=index, state="up")
        except netlink.NetlinkError as exc:
            raise RegistryError("interface %s: %s" % (s.interface, exc))
    return ops


def _add_holder(ipr, ifname, kind):
    """Create the interface that holds the address: a dummy, or (kernels without CONFIG_DUMMY) an
    empty bridge, which holds a local address just as well. Returns the kind created."""
    if kind in ("auto", "dummy"):
        try:
            ipr.link("add", ifname=ifname, kind="dummy")
            return "dummy"
        except netlink.NetlinkError as exc:
            if kind == "dummy" or exc.code not in (errno.EOPNOTSUPP, errno.ENOENT):
                raise
    ipr.link("add", ifname=ifname, kind="bridge")
    return "bridge"


def remove_address(s, dry_run=False):
    if not s.interface or not netlink.HAS_PYROUTE2:
        return []
    with netlink.IPRoute() as ipr:
        link = _link(ipr, s.interface)
        if link is None:
            return []
        if link["alias"] != s.alias:
            raise RegistryError("interface %s is not this registry's (alias %r, expected %r): leaving it alone"
                                % (s.interface, link["alias"], s.alias))
        if not dry_run:
            try:
                ipr.link("del", index=link["index"])
            except netlink.NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise RegistryError("deleting interface %s: %s" % (s.interface, exc))
    return ["delete %s interface %s" % (link["kind"], s.interface)]


# ----------------------------------------------------------------------------------------------
# The process: a shell supervisor (no systemd) or a systemd unit
# ----------------------------------------------------------------------------------------------

def _state(s):
    text = read_text(s.state_file)
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode("utf-8", "replace").split("\0")
    except (IOError, OSError):
        return []


def supervisor_pid(s):
    """The pid of our running supervisor, or None (a stale or reused pid does not count)."""
    pid = _state(s).get("pid")
    if not isinstance(pid, int) or pid <= 1:
        return None
    return pid if s.script in _cmdline(pid) else None


def _start_supervisor(s, fingerprint):
    with open(s.log, "ab") as log:
        proc = subprocess.Popen(["/bin/sh", s.script], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                close_fds=True, start_new_session=True, cwd="/")
    write_file(s.state_file, json.dumps({"pid": proc.pid, "fingerprint": fingerprint, "registry": s.registry,
                                         "started": int(time.time())}) + "\n", 0o644)
    return proc.pid


def _stop_supervisor(s, pid):
    """TERM the supervisor's process group (supervisor and registry), KILL after STOP_TIMEOUT."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.time() + STOP_TIMEOUT
    while time.time() < deadline:
        if not _group_alive(pid):
            break
        _reap(pid)
        time.sleep(0.1)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    _reap(pid)


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except OSError:
        pass


def _group_alive(pgid):
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (IOError, OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _systemctl(*args, check=True):
    proc = subprocess.run(("systemctl",) + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    if check and proc.returncode != 0:
        raise RegistryError("systemctl %s failed: %s" % (" ".join(args), proc.stdout.strip()))
    return proc


def probe(s, ca_pem, timeout=3.0, auth=None):
    """HTTP status of GET https://REGISTRY/v2/ checked against the CA (None when nothing answers)."""
    return trust.http_status(s.registry, ca_pem, auth=auth, timeout=timeout)


def _wait_ready(s, ca_pem, timeout=START_TIMEOUT):
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        status = probe(s, ca_pem, timeout=2.0)
        if status == 401:
            return True
        time.sleep(0.2)
    return False


def _check_access_as_user(s):
    """The registry's account must read its files and write its storage (e.g. no 0700 parent)."""
    if s.user == "root":
        return
    tests = " && ".join("test -%s %s" % (flag, _shq(path)) for flag, path in
                        (("r", s.config), ("r", s.htpasswd), ("r", s.tls_cert), ("r", s.tls_key),
                         ("w", s.storage_dir)))
    cmd = ["setpriv", "--reuid=%s" % s.user, "--regid=%s" % _group_of(s.user), "--init-groups", "--",
           "/bin/sh", "-c", tests]
    if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode != 0:
        raise RegistryError("user %s cannot read %s, %s, %s, %s or write %s: check the modes of those paths "
                            "and of every directory above them"
                            % (s.user, s.config, s.htpasswd, s.tls_cert, s.tls_key, s.storage_dir))


def _log_tail(s, lines=15):
    text = read_text(s.log) or ""
    return "\n".join(text.splitlines()[-lines:])


def fingerprint(s):
    """What the running registry was started with: a change means restart."""
    h = hashlib.sha256()
    h.update(("v%d %s %s %s\n" % (LAYOUT_VERSION, s.binary, s.user, s.service)).encode("utf-8"))
    for path in (s.config, s.htpasswd, s.tls_cert, s.tls_key, s.script if s.service == "supervisor" else s.unit):
        h.update((read_text(path) or "").encode("utf-8"))
    try:
        st = os.stat(s.binary)
        h.update(("%d %d" % (st.st_size, int(st.st_mtime))).encode("ascii"))
    except OSError:
        pass
    return h.hexdigest()


def _ensure_running(s, ca_pem, changed_files, dry_run):
    """Start, restart or leave the process; returns (operations, pid or None)."""
    ops = []
    if s.service == "supervisor":
        pid = supervisor_pid(s)
        if dry_run:
            if pid is None:
                return ["start the registry (supervised)"], None
            if changed_files or _state(s).get("fingerprint") != fingerprint(s):
                return ["restart the registry (supervised)"], pid
            return [], pid
        fp = fingerprint(s)
        if pid is not None and (_state(s).get("fingerprint") != fp or probe(s, ca_pem) != 401):
            ops.append("restart the registry (supervised)")
            _stop_supervisor(s, pid)
            pid = None
        elif pid is None:
            ops.append("start the registry (supervised)")
        if pid is None:
            _check_access_as_user(s)
            taken = free_port_hint(s.address, s.port)
            if taken:
                raise RegistryError("cannot start the registry: %s; stop what listens there or choose another "
                                    "port" % taken)
            pid = _start_supervisor(s, fp)
    else:
        active = _systemctl("is-active", "--quiet", s.name, check=False).returncode == 0
        enabled = _systemctl("is-enabled", "--quiet", s.name, check=False).returncode == 0
        fp = fingerprint(s)
        restart = active and (_state(s).get("fingerprint") != fp or (not dry_run and probe(s, ca_pem) != 401))
        if not enabled:
            ops.append("enable %s.service" % s.name)
        if not active or restart:
            ops.append(("restart" if restart else "start") + " %s.service" % s.name)
        if dry_run:
            return ops, None
        if not enabled:
            _systemctl("enable", s.name)
        if not active or restart:
            _systemctl("restart", s.name)
            write_file(s.state_file, json.dumps({"fingerprint": fp, "registry": s.registry}) + "\n", 0o644)
        pid = int(_systemctl("show", "-p", "MainPID", "--value", s.name).stdout.strip() or 0) or None
    if not _wait_ready(s, ca_pem):
        raise RegistryError("the registry did not answer on https://%s/v2/ within %d s (log %s):\n%s"
                            % (s.registry, START_TIMEOUT, s.log, _log_tail(s)))
    return ops, pid


# ----------------------------------------------------------------------------------------------
# Server: converge and remove
# ----------------------------------------------------------------------------------------------

def converge(s, dry_run=False):
    """Make the registry run as ``s`` says. Returns dict(changed, operations, registry, ca_cert, pid, service)."""
    if not pki.HAS_BCRYPT:
        raise RegistryError("the Python package bcrypt is missing (pip install bcrypt)")
    if not pki.HAS_CRYPTOGRAPHY:
        raise RegistryError("the Python package cryptography is missing (pip install cryptography)")
    if not s.username or not s.password:
        raise RegistryError("username and password are required")
    ops = []
    if not os.access(s.binary, os.X_OK):
        missing = ("%s is missing: install Debian's docker-registry package (apt-get install docker-registry) "
                   "or set binary" % s.binary)
        if not dry_run:
            raise RegistryError(missing)
        ops.append(missing)  # check mode before the package is installed: say so, plan the rest
    try:
        uid, gid = ids_of(s.user)
    except RegistryError:
        if not dry_run:
            raise
        uid, gid = 0, 0
    ops += ensure_address(s, dry_run)
    for path, mode, owner in ((s.config_dir, 0o750, (0, gid)), (s.tls_dir, 0o750, (0, gid)),
                              (s.storage_dir, 0o750, (uid, gid)), (s.log_dir, None, None),
                              (s.run_dir, None, None)):
        if owner is None:
            if not os.path.isdir(path):
                ops.append("create %s" % path)
                if not dry_run:
                    os.makedirs(path, exist_ok=True)
            continue
        if path == s.tls_dir and s.own_tls:
            continue
        existed = os.path.isdir(path)
        if ensure_dir(path, mode, owner[0], owner[1], dry_run):
            ops.append("fix mode/owner of %s" % path if existed else "create %s" % path)
    marker = os.path.join(s.storage_dir, MARKER)
    if not os.path.exists(marker):
        ops.append("mark %s as the registry's storage" % s.storage_dir)
        if not dry_run:
            write_file(marker, "storage of the testbed registry %s; removed with it\n" % s.name, 0o644, uid, gid)

    pki_ops, ca_pem = pki.ensure_tls(s, gid, dry_run)
    ops += pki_ops

    changed_files = bool(pki_ops)
    htpasswd = pki.htpasswd_entry(read_text(s.htpasswd), s.username, s.password, s.bcrypt_cost)
    files = [(s.htpasswd, htpasswd, 0o640, 0, gid), (s.config, render_config(s), 0o640, 0, gid)]
    if s.service == "supervisor":
        files.append((s.script, render_supervisor(s), 0o750, 0, 0))
    else:
        files.append((s.unit, render_unit(s), 0o644, 0, 0))
    for path, content, mode, fuid, fgid in files:
        if write_file(path, content, mode, fuid, fgid, dry_run):
            changed_files = True
            ops.append("write %s" % path)
            if path == s.unit and not dry_run:
                _systemctl("daemon-reload")
    if s.service == "systemd":
        ops += _disable_package_service(dry_run)

    run_ops, pid = _ensure_running(s, ca_pem, changed_files, dry_run)
    ops += run_ops
    return {"changed": bool(ops), "operations": ops, "registry": s.registry, "ca_cert": ca_pem or "",
            "ca_cert_path": s.ca_cert, "pid": pid, "service": s.service, "address": s.address, "port": s.port}


def _disable_package_service(dry_run):
    """Debian's own docker-registry.service (no TLS, no working auth, all addresses) must not run."""
    ops = []
    if _systemctl("is-enabled", "--quiet", "docker-registry", check=False).returncode == 0:
        ops.append("disable Debian's docker-registry.service")
        if not dry_run:
            _systemctl("disable", "docker-registry", check=False)
    if _systemctl("is-active", "--quiet", "docker-registry", check=False).returncode == 0:
        ops.append("stop Debian's docker-registry.service")
        if not dry_run:
            _systemctl("stop", "docker-registry", check=False)
    return ops


def remove(s, dry_run=False):
    """Stop the registry and remove what :func:`converge` created (storage too unless keep_storage)."""
    ops = []
    if s.service == "supervisor":
        pid = supervisor_pid(s)
        if pid is not None:
            ops.append("stop the registry (supervised, pid %d)" % pid)
            if not dry_run:
                _stop_supervisor(s, pid)
    elif os.path.exists(s.unit):
        ops.append("stop and disable %s.service" % s.name)
        if not dry_run:
            _systemctl("disable", "--now", s.name, check=False)
            os.unlink(s.unit)
            _systemctl("daemon-reload", check=False)
        ops.append("remove %s" % s.unit)
    gone = set()
    for path in s.generated_files() + [s.state_file, s.log, s.unit if s.service == "systemd" else s.script]:
        if path and remove_file(path, dry_run):
            ops.append("remove %s" % path)
            gone.add(path)
    for path in (s.tls_dir, s.config_dir):
        if not os.path.isdir(path):
            continue
        left = [e for e in os.listdir(path) if os.path.join(path, e) not in gone]
        if not left:
            ops.append("remove %s" % path)
            gone.add(path)
            if not dry_run:
                os.rmdir(path)
    if not s.keep_storage and os.path.isdir(s.storage_dir):
        if os.path.exists(os.path.join(s.storage_dir, MARKER)):
            ops.append("remove storage %s" % s.storage_dir)
            if not dry_run:
                shutil.rmtree(s.storage_dir)
        else:
            raise RegistryError("%s has no %s marker: not removing a directory the registry did not create "
                                "(set keep_storage, or remove it yourself)" % (s.storage_dir, MARKER))
    ops += remove_address(s, dry_run)
    # de-duplicate while keeping order (the unit may be listed twice)
    seen, out = set(), []
    for op in ops:
        if op not in seen:
            seen.add(op)
            out.append(op)
    return {"changed": bool(out), "operations": out, "registry": s.registry, "service": s.service}


def free_port_hint(address, port):
    """A clear message when something else already listens on address:port (None when free)."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    except OSError as exc:
        return "%s:%d is taken (%s)" % (address, port, exc)
    finally:
        sock.close()
    return None


def missing_libraries(present, interface):
    """The Python libraries the registry module lacks for this call (bcrypt and cryptography to
    make the password file and certificates, pyroute2 for the registry's address)."""
    missing = []
    if present and not pki.HAS_BCRYPT:
        missing.append("bcrypt")
    if present and not pki.HAS_CRYPTOGRAPHY:
        missing.append("cryptography")
    if interface and not netlink.HAS_PYROUTE2:
        missing.append("pyroute2")
    return missing


def run(params, dry_run=False):
    """The registry module's work for its options: ``state`` present converges, absent removes;
    every other option is a Settings argument (``prefix`` is ``prefixlen``). Returns the result
    (changed, operations, ...); RegistryError for bad settings or a failed step."""
    options = dict((k, v) for k, v in params.items() if k not in ("state", "prefix"))
    settings = Settings(prefixlen=params["prefix"], **options)
    return converge(settings, dry_run=dry_run) if params["state"] == "present" else remove(settings, dry_run=dry_run)
