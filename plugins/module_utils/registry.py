# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The testbed registry: a real image registry (distribution 2.8, Debian's ``docker-registry``)
with htpasswd authentication and TLS from a CA of its own, and the image pipeline's calls into it.

Server side (on ``testbed_registry_host``): :func:`converge` / :func:`remove` with a
:class:`Settings`.  The registry listens on one address that every physical host reaches and
that is not loopback (Docker treats 127.0.0.0/8 registries as insecure, so TLS would prove
nothing there); on a single host that address sits on a dummy interface we create.  The process
is a systemd unit where systemd runs, otherwise a small shell supervisor started in its own
session that restarts the registry when it exits.

Host side (every physical host): :func:`ensure_trust` puts the CA at
``/etc/docker/certs.d/HOST:PORT/ca.crt`` (dockerd reads it at each connection: no restart), and
:func:`ensure_login` writes the credentials into a Docker client config (``docker login``).

Image pipeline: :func:`push` and :func:`ensure_pulled` through the Docker SDK.

Everything here is importable without Ansible; every function that changes the host takes
``dry_run`` and returns the list of operations it did (or would do).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import errno
import grp
import hashlib
import http.client
import ipaddress
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time

try:
    import bcrypt
    HAS_BCRYPT = True
except ImportError:  # pragma: no cover - reported by the module
    bcrypt = None
    HAS_BCRYPT = False

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported by the module
    x509 = None
    HAS_CRYPTOGRAPHY = False

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
except ImportError:  # pragma: no cover - reported by the module
    IPRoute = None
    NetlinkError = OSError
    HAS_PYROUTE2 = False

# Bump when the generated files change meaning, so running registries restart onto them.
LAYOUT_VERSION = 1
MARKER = ".testbed-registry"          # in the storage directory: we created it, we may delete it
RENEW_DAYS = 30                        # re-issue a certificate this close to its expiry
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
DEFAULT_NAME = "testbed-registry"
# distribution checks the bcrypt hash on EVERY request (a push or pull makes dozens), and the
# cost doubles per step: cost 10 takes about 250 ms a request here, cost 5 about 2 ms. The
# password is random and long (the role generates 32 characters), which is what resists
# guessing; the cost only slows offline cracking of a weak password. Configurable.
DEFAULT_BCRYPT_COST = 5


class RegistryError(Exception):
    pass


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


def render_config(s):
    """distribution 2.8's configuration file: storage, TLS-only listener, htpasswd auth."""
    lines = [
        "# Generated by testbed.containers (registry role) for %s; changes are overwritten." % s.name,
        "version: 0.1",
        "log:",
        "  level: info",
        "  fields:",
        "    service: %s" % s.name,
        "storage:",
        "  filesystem:",
        "    rootdirectory: %s" % json.dumps(s.storage_dir),
        "  delete:",
        "    enabled: true",
        "  cache:",
        "    blobdescriptor: inmemory",
        "http:",
        "  addr: %s" % json.dumps(s.registry),
        "  relativeurls: false",
        "  tls:",
        "    certificate: %s" % json.dumps(s.tls_cert),
        "    key: %s" % json.dumps(s.tls_key),
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
        "auth:",
        "  htpasswd:",
        "    realm: %s" % json.dumps(s.name),
        "    path: %s" % json.dumps(s.htpasswd),
        "health:",
        "  storagedriver:",
        "    enabled: true",
        "    interval: 10s",
        "    threshold: 3",
    ]
    return "\n".join(lines) + "\n"


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
# htpasswd (bcrypt, the only scheme distribution accepts)
# ----------------------------------------------------------------------------------------------

def htpasswd_line(username, password, cost=DEFAULT_BCRYPT_COST):
    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=cost)).decode("ascii")
    return "%s:%s\n" % (username, hashed)


def htpasswd_matches(content, username, password, cost=None):
    """True when ``content`` is exactly one entry, for ``username``, whose hash matches ``password``
    (and has bcrypt cost ``cost`` when given)."""
    entries = [line for line in (content or "").splitlines() if line.strip()]
    if len(entries) != 1 or ":" not in entries[0]:
        return False
    user, hashed = entries[0].split(":", 1)
    if user != username or not hashed.startswith("$2"):
        return False
    if cost is not None and hashed[4:7] != "%02d$" % cost:
        return False
    try:
        return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------
# PKI (python cryptography): a CA of our own, a server certificate with the address as SAN
# ----------------------------------------------------------------------------------------------

def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _not_after(cert):
    try:
        return cert.not_valid_after_utc
    except AttributeError:  # cryptography < 42
        return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def make_ca(common_name, days):
    """A self-signed CA (ECDSA P-256) allowed to sign server certificates only: (cert_pem, key_pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "testbed.containers"),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return _pem_cert(cert), _pem_key(key)


def make_server_cert(ca_cert_pem, ca_key_pem, address, dns_names, days):
    """A server certificate for ``address`` (IP SAN) and ``dns_names``, signed by the CA: (cert_pem, key_pem)."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode("ascii"))
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode("ascii"), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + datetime.timedelta(days=days), _not_after(ca_cert))
    sans = [x509.IPAddress(ipaddress.ip_address(address))] + [x509.DNSName(n) for n in dns_names]
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0] if dns_names
                                                           else str(address))]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .add_extension(x509.SubjectAlternativeName(sans), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    try:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
    except Exception:  # pragma: no cover - unusual CA key types
        pass
    cert = builder.sign(ca_key, hashes.SHA256())
    return _pem_cert(cert), _pem_key(key)


def ca_problem(ca_cert_pem, ca_key_pem=None):
    """Why this CA cannot serve (None when it can)."""
    try:
        cert = x509.load_pem_x509_certificate(ca_cert_pem.encode("ascii"))
    except Exception as exc:
        return "not a PEM certificate (%s)" % exc
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca:
            return "not a CA certificate"
    except x509.ExtensionNotFound:
        return "not a CA certificate (no basicConstraints)"
    if _not_after(cert) < _now() + datetime.timedelta(days=RENEW_DAYS):
        return "expires on %s" % _not_after(cert).date()
    if ca_key_pem is not None:
        problem = _key_problem(cert, ca_key_pem)
        if problem:
            return problem
    return None


def _key_problem(cert, key_pem):
    try:
        key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    except Exception as exc:
        return "its key cannot be read (%s)" % exc
    fmt = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*fmt) != cert.public_key().public_bytes(*fmt):
        return "the key does not belong to the certificate"
    return None


def server_cert_problem(cert_pem, key_pem, ca_cert_pem, address, dns_names):
    """Why this server certificate does not fit (None when it does): SAN, issuer, expiry, key."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        ca = x509.load_pem_x509_certificate(ca_cert_pem.encode("ascii"))
    except Exception as exc:
        return "not a PEM certificate (%s)" % exc
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subjectAltName"
    if ipaddress.ip_address(address) not in sans.get_values_for_type(x509.IPAddress):
        return "its subjectAltName lacks %s" % address
    missing = set(dns_names) - set(sans.get_values_for_type(x509.DNSName))
    if missing:
        return "its subjectAltName lacks %s" % ", ".join(sorted(missing))
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:
        return "not issued by the CA"
    if _not_after(cert) < _now() + datetime.timedelta(days=RENEW_DAYS):
        return "expires on %s" % _not_after(cert).date()
    return _key_problem(cert, key_pem)


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------

def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise RegistryError("cannot read %s: %s" % (path, exc))


def write_file(path, content, mode=0o644, uid=0, gid=0, dry_run=False):
    """Write ``content`` atomically with this mode and owner; True when anything changed."""
    try:
        st = os.stat(path)
        same = (read_text(path) == content and (st.st_mode & 0o7777) == mode
                and st.st_uid == uid and st.st_gid == gid)
    except OSError:
        same = False
    if same:
        return False
    if dry_run:
        return True
    tmp = "%s.tmp%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


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


def remove_file(path, dry_run=False):
    if not os.path.lexists(path):
        return False
    if not dry_run:
        os.unlink(path)
    return True


def remove_empty_dir(path, dry_run=False):
    try:
        if os.listdir(path):
            return False
    except OSError:
        return False
    if not dry_run:
        os.rmdir(path)
    return True


# ----------------------------------------------------------------------------------------------
# The listen address: a dummy interface of ours (single host) or an existing address
# ----------------------------------------------------------------------------------------------

def _attr(msg, name):
    return msg.get_attr(name)


def _link(ipr, ifname):
    idx = ipr.link_lookup(ifname=ifname)
    if not idx:
        return None
    msg = ipr.get_links(idx[0])[0]
    linkinfo = _attr(msg, "IFLA_LINKINFO")
    return {"index": idx[0], "alias": _attr(msg, "IFLA_IFALIAS"),
            "kind": linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo else None,
            "up": bool(msg["flags"] & 1)}


def _addresses(ipr, index=None):
    kw = {"index": index} if index is not None else {}
    return [(_attr(m, "IFA_ADDRESS"), m["prefixlen"], m["index"]) for m in ipr.get_addr(**kw)]


def ensure_address(s, dry_run=False):
    """Our dummy interface with the registry's address (or check the address exists); operations."""
    if not HAS_PYROUTE2:
        raise RegistryError("pyroute2 is missing on this host")
    ops = []
    with IPRoute() as ipr:
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
        except NetlinkError as exc:
            raise RegistryError("interface %s: %s" % (s.interface, exc))
    return ops


def _add_holder(ipr, ifname, kind):
    """Create the interface that holds the address: a dummy, or (kernels without CONFIG_DUMMY) an
    empty bridge, which holds a local address just as well. Returns the kind created."""
    if kind in ("auto", "dummy"):
        try:
            ipr.link("add", ifname=ifname, kind="dummy")
            return "dummy"
        except NetlinkError as exc:
            if kind == "dummy" or exc.code not in (errno.EOPNOTSUPP, errno.ENOENT):
                raise
    ipr.link("add", ifname=ifname, kind="bridge")
    return "bridge"


def remove_address(s, dry_run=False):
    if not s.interface or not HAS_PYROUTE2:
        return []
    with IPRoute() as ipr:
        link = _link(ipr, s.interface)
        if link is None:
            return []
        if link["alias"] != s.alias:
            raise RegistryError("interface %s is not this registry's (alias %r, expected %r): leaving it alone"
                                % (s.interface, link["alias"], s.alias))
        if not dry_run:
            try:
                ipr.link("del", index=link["index"])
            except NetlinkError as exc:
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
    return http_status(s.registry, ca_pem, auth=auth, timeout=timeout)


def http_status(registry, ca_pem, auth=None, timeout=3.0, path="/v2/"):
    host, port = _split_host_port(registry)
    ctx = ssl.create_default_context(cadata=ca_pem)
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode("utf-8")).decode("ascii")
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    except (OSError, ssl.SSLError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _split_host_port(registry):
    host, port = registry.rsplit(":", 1)
    return host.strip("[]"), int(port)


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

def _pki(s, uid, gid, dry_run):
    """CA and server certificate; returns (operations, ca_pem)."""
    ops = []
    ca_pem = read_text(s.ca_cert)
    if s.own_tls:
        if ca_pem is None:
            raise RegistryError("ca_cert %s does not exist" % s.ca_cert)
        cert, key = read_text(s.tls_cert), read_text(s.tls_key)
        if cert is None or key is None:
            raise RegistryError("tls_cert %s or tls_key %s does not exist" % (s.tls_cert, s.tls_key))
        problem = server_cert_problem(cert, key, ca_pem, s.address, s.dns_names)
        if problem:
            raise RegistryError("tls_cert %s does not fit: %s" % (s.tls_cert, problem))
        return ops, ca_pem
    ca_key = read_text(s.ca_key)
    if s.own_ca:
        if ca_pem is None or ca_key is None:
            raise RegistryError("ca_cert %s or ca_key %s does not exist" % (s.ca_cert, s.ca_key))
        problem = ca_problem(ca_pem, ca_key)
        if problem:
            raise RegistryError("ca_cert %s cannot sign the registry's certificate: %s" % (s.ca_cert, problem))
    else:
        problem = "missing" if ca_pem is None or ca_key is None else ca_problem(ca_pem, ca_key)
        if problem:
            ops.append("create CA %s (%s)" % (s.ca_cert, "it was " + problem if problem != "missing" else "new"))
            if dry_run:
                return ops + ["issue server certificate %s" % s.tls_cert], None
            ca_pem, ca_key = make_ca("%s CA" % s.name, s.ca_days)
            write_file(s.ca_key, ca_key, 0o600, 0, 0)
            write_file(s.ca_cert, ca_pem, 0o644, 0, 0)
    cert, key = read_text(s.tls_cert), read_text(s.tls_key)
    if cert is None or key is None:
        problem = "missing"
    else:
        problem = server_cert_problem(cert, key, ca_pem, s.address, s.dns_names)
    if problem:
        ops.append("issue server certificate %s (%s)" % (s.tls_cert, "new" if problem == "missing" else problem))
        if not dry_run:
            cert, key = make_server_cert(ca_pem, ca_key, s.address, s.dns_names, s.cert_days)
            write_file(s.tls_key, key, 0o640, 0, gid)
            write_file(s.tls_cert, cert, 0o644, 0, 0)
    elif not dry_run:
        if write_file(s.tls_key, key, 0o640, 0, gid) | write_file(s.tls_cert, cert, 0o644, 0, 0):
            ops.append("fix mode/owner of %s" % s.tls_dir)
    return ops, ca_pem


def converge(s, dry_run=False):
    """Make the registry run as ``s`` says. Returns dict(changed, operations, registry, ca_cert, pid, service)."""
    if not HAS_BCRYPT:
        raise RegistryError("the Python package bcrypt is missing (pip install bcrypt)")
    if not HAS_CRYPTOGRAPHY:
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

    pki_ops, ca_pem = _pki(s, uid, gid, dry_run)
    ops += pki_ops

    changed_files = bool(pki_ops)
    current = read_text(s.htpasswd)
    if current is not None and htpasswd_matches(current, s.username, s.password, s.bcrypt_cost):
        htpasswd = current
    else:
        htpasswd = htpasswd_line(s.username, s.password, s.bcrypt_cost)
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


# ----------------------------------------------------------------------------------------------
# Host side: trust the CA, log in
# ----------------------------------------------------------------------------------------------

def trust_path(registry, certs_dir="/etc/docker/certs.d"):
    return os.path.join(certs_dir, registry, "ca.crt")


def ensure_trust(registry, ca_pem, certs_dir="/etc/docker/certs.d", dry_run=False):
    """dockerd trusts ``ca_pem`` for ``registry`` (read at each connection: no restart needed)."""
    path = trust_path(registry, certs_dir)
    ops = []
    if not os.path.isdir(os.path.dirname(path)):
        ops.append("create %s" % os.path.dirname(path))
        if not dry_run:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if write_file(path, ca_pem, 0o644, 0, 0, dry_run):
        ops.append("install the registry CA as %s" % path)
    return ops


def remove_trust(registry, certs_dir="/etc/docker/certs.d", dry_run=False):
    path = trust_path(registry, certs_dir)
    ops = []
    if remove_file(path, dry_run):
        ops.append("remove %s" % path)
    if os.path.isdir(os.path.dirname(path)) and remove_empty_dir(os.path.dirname(path), dry_run):
        ops.append("remove %s" % os.path.dirname(path))
    return ops


def default_docker_config():
    return os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")


def _load_docker_config(path):
    text = read_text(path)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RegistryError("%s is not JSON (%s): fix or remove it" % (path, exc))
    if not isinstance(data, dict):
        raise RegistryError("%s is not a JSON object" % path)
    return data


def _write_docker_config(path, data, dry_run):
    st = None
    try:
        st = os.stat(path)
    except OSError:
        pass
    content = json.dumps(data, indent="\t", sort_keys=True) + "\n"
    if not os.path.isdir(os.path.dirname(path)) and not dry_run:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    uid, gid = (st.st_uid, st.st_gid) if st else (os.getuid(), os.getgid())
    return write_file(path, content, 0o600, uid, gid, dry_run)


def auth_entry(username, password):
    return base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")


def ensure_login(registry, username, password, config_path=None, dry_run=False):
    """``docker login REGISTRY`` without the CLI: the credentials in the client config's ``auths``.

    Returns (operations, warnings).  A config with a ``credsStore`` makes the CLI ask that helper
    instead: warned about, still written (the Docker SDK reads ``auths`` first)."""
    path = config_path or default_docker_config()
    data = _load_docker_config(path)
    warnings = []
    if data.get("credsStore") or (data.get("credHelpers") or {}).get(registry):
        warnings.append("%s names a credential helper: the docker CLI may ignore the auths entry for %s"
                        % (path, registry))
    auths = data.setdefault("auths", {})
    want = auth_entry(username, password)
    if (auths.get(registry) or {}).get("auth") == want:
        return [], warnings
    auths[registry] = {"auth": want}
    _write_docker_config(path, data, dry_run)
    return ["log in to %s in %s" % (registry, path)], warnings


def remove_login(registry, config_path=None, dry_run=False):
    path = config_path or default_docker_config()
    data = _load_docker_config(path)
    if registry not in (data.get("auths") or {}):
        return []
    del data["auths"][registry]
    _write_docker_config(path, data, dry_run)
    return ["log out of %s in %s" % (registry, path)]


def verify_access(registry, ca_pem, username, password, timeout=5.0):
    """None when TLS checks out against the CA, credentials are accepted and anonymous access is refused;
    otherwise what is wrong."""
    anonymous = http_status(registry, ca_pem, timeout=timeout)
    if anonymous is None:
        return ("nothing answers https://%s/v2/ with a certificate from the registry CA (unreachable, "
                "or the certificate does not match)" % registry)
    if anonymous != 401:
        return "https://%s/v2/ answered %d without credentials, expected 401" % (registry, anonymous)
    status = http_status(registry, ca_pem, auth=(username, password), timeout=timeout)
    if status != 200:
        return "https://%s/v2/ answered %s with the credentials, expected 200" % (registry, status)
    return None


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
