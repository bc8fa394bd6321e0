# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The testbed registry's secrets: a CA of its own, the server certificate with the registry's
address in its subjectAltName, the htpasswd entry (bcrypt, the only scheme distribution accepts),
and the files that keep them, written whole with their owner and mode.

Used by the server (registry.py, :func:`ensure_tls` for its ``tls/`` directory) and by the host
side (trust.py: the CA file dockerd reads and the Docker client configuration).  Importable
without Ansible; the functions that change the host take ``dry_run``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import ipaddress
import os

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

RENEW_DAYS = 30                        # re-issue a certificate this close to its expiry
# distribution checks the bcrypt hash on EVERY request (a push or pull makes dozens), and the
# cost doubles per step: cost 10 takes about 250 ms a request here, cost 5 about 2 ms. The
# password is random and long (the role generates 32 characters), which is what resists
# guessing; the cost only slows offline cracking of a weak password. Configurable.
DEFAULT_BCRYPT_COST = 5


class RegistryError(Exception):
    """What stops a step of the registry (server or host side), said so a person can fix it."""


# ----------------------------------------------------------------------------------------------
# Files: read, written whole with owner and mode, removed
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


def htpasswd_entry(current, username, password, cost):
    """The htpasswd file's content: ``current`` while it holds exactly this user, password and cost
    (a new bcrypt salt would rewrite it, and restart the registry, at every run), else a new entry."""
    if current is not None and htpasswd_matches(current, username, password, cost):
        return current
    return htpasswd_line(username, password, cost)


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


def ensure_tls(s, gid, dry_run):
    """The registry's CA and server certificate as the settings ``s`` say (the operator's own, checked,
    or ours, created and renewed), the key readable by group ``gid``; returns (operations, ca_pem)."""
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
