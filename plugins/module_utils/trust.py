# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of the testbed registry (every physical host): trust its CA, log in, check it.

:func:`ensure_trust` puts the CA at ``/etc/docker/certs.d/HOST:PORT/ca.crt`` (dockerd reads it at
each connection: no restart), :func:`ensure_login` writes the credentials into a Docker client
config (what ``docker login`` does), and :func:`verify_access` checks from this host that the
registry answers over TLS with a certificate from that CA and wants the credentials
(:func:`http_status` also serves the server's readiness probe).

Importable without Ansible; every function that changes the host takes ``dry_run`` and returns
the operations it did (or would do).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import http.client
import json
import os
import ssl

from ansible_collections.testbed.containers.plugins.module_utils.pki import (
    RegistryError, read_text, remove_empty_dir, remove_file, write_file)


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


class TrustError(RegistryError):
    """What stopped :func:`converge`, with the operations done before (``operations``)."""

    def __init__(self, message, operations):
        super().__init__(message)
        self.operations = operations


def converge(registry, state="present", ca_cert=None, certs_dir="/etc/docker/certs.d", login=True,
             docker_config=None, username="testbed", password=None, verify=True, dry_run=False, warn=None):
    """Module registry_trust: this host trusts the registry's CA and is logged in to it (``state``
    present, then checked from here with ``verify``), or neither (absent).

    Returns (changed, operations, result); ValueError when a parameter it needs is missing,
    TrustError when a step fails.  ``warn(text)`` hears, on success, what the person should know."""
    config = docker_config or default_docker_config()
    ops, warnings = [], []
    if state == "present":
        if not ca_cert and not dry_run:
            raise ValueError("ca_cert is required with state=present")
        if (login or verify) and not password:
            raise ValueError("password is required with login or verify")
    try:
        if state == "present":
            if ca_cert:
                ops += ensure_trust(registry, ca_cert, certs_dir, dry_run)
            elif dry_run:
                ops.append("install the registry CA as %s" % trust_path(registry, certs_dir))
            if login:
                login_ops, warnings = ensure_login(registry, username, password, config, dry_run)
                ops += login_ops
            if verify and not dry_run:
                problem = verify_access(registry, ca_cert, username, password)
                if problem:
                    raise RegistryError(problem)
        else:
            ops += remove_trust(registry, certs_dir, dry_run)
            if login:
                ops += remove_login(registry, config, dry_run)
    except RegistryError as exc:
        raise TrustError("registry %s: %s" % (registry, exc), ops) from exc
    for warning in warnings if warn else ():
        warn(warning)
    result = dict(operations=ops, ca_path=trust_path(registry, certs_dir))
    if login:
        result["docker_config"] = config
    return bool(ops), ops, result
