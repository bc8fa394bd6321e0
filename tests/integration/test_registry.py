"""The testbed registry for real: Debian's docker-registry behind TLS and htpasswd, on an address
of an interface the role creates (not loopback, so dockerd really checks the certificate).

The role runs through ansible-playbook (tests/integration/playbooks/registry.yml) with an
instance of its own (name, interface, address, port, directories, password file and Docker
client config all private to the test), so a registry in real use on this machine is never
touched.  Tests run in file order against one registry; the module fixture removes everything
at the end, also when a test failed.
"""
import base64
import http.client
import io
import json
import os
import re
import signal
import ssl
import subprocess
import tarfile
import tempfile
import time
import uuid

import docker
import pytest
import yaml

from helpers import BUSYBOX, DOCKER, ROOT, VENV_BIN, recap_changed, sh

from ansible_collections.testbed.containers.plugins.module_utils import images, registry, trust

NAME = "tbreg-itest"
IFACE = "tbregt0"
ADDRESS = "198.18.255.201"
PORT = 5450
REGISTRY = "%s:%d" % (ADDRESS, PORT)
CERTS_DIR = "/etc/docker/certs.d"
PLAYBOOK = os.path.join(ROOT, "tests", "integration", "playbooks", "registry.yml")


def _pids_using(path):
    """Processes whose command line mentions ``path`` (our supervisor and registry)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if path.encode() in f.read():
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def _iface_exists(name):
    return subprocess.run(["ip", "link", "show", name], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode == 0


class Env:
    """The test's registry instance: role variables, the same settings for module_utils, helpers."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.config_dir = os.path.join(tmp, "etc")
        self.storage_dir = os.path.join(tmp, "storage")
        self.log_dir = os.path.join(tmp, "log")
        self.password_file = os.path.join(tmp, "password")
        self.docker_config_dir = os.path.join(tmp, "docker")      # gets the role's login
        self.anonymous_config_dir = os.path.join(tmp, "anonymous")  # a Docker client with no login
        os.makedirs(self.anonymous_config_dir)
        self.vars = {
            "testbed_registry_instance": NAME,
            "testbed_registry_address": ADDRESS,
            "testbed_registry_interface": IFACE,
            "testbed_registry_port": PORT,
            "testbed_registry_config_dir": self.config_dir,
            "testbed_registry_storage_dir": self.storage_dir,
            "testbed_registry_log_dir": self.log_dir,
            "testbed_registry_password_file": self.password_file,
            "testbed_registry_docker_config": os.path.join(self.docker_config_dir, "config.json"),
            "testbed_registry_certs_dir": CERTS_DIR,
            "testbed_registry_service": "supervisor",
        }
        self.vars_file = os.path.join(tmp, "vars.yml")
        with open(self.vars_file, "w") as f:
            yaml.safe_dump(self.vars, f)
        self.settings = registry.Settings(name=NAME, address=ADDRESS, interface=IFACE, port=PORT,
                                          config_dir=self.config_dir, storage_dir=self.storage_dir,
                                          log_dir=self.log_dir, service="supervisor")
        self.client = docker.from_env(timeout=120)
        self.timings = {}

    def play(self, *extra, check=True, label=None):
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        args = [os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-e", "@" + self.vars_file] + list(extra)
        start = time.time()
        proc = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=300, check=False)
        if label:
            self.timings[label] = round(time.time() - start, 1)
        if check and proc.returncode != 0:
            raise AssertionError("ansible-playbook registry.yml failed (%d):\n%s" % (proc.returncode, proc.stdout))
        return proc

    @property
    def password(self):
        with open(self.password_file) as f:
            return f.read().split()[0]

    @property
    def credentials(self):
        return {"username": "testbed", "password": self.password}

    @property
    def ca_pem(self):
        with open(os.path.join(CERTS_DIR, REGISTRY, "ca.crt")) as f:
            return f.read()

    def docker(self, *args, config=None, check=True):
        return sh(DOCKER, "--config", config or self.docker_config_dir, *args, check=check)

    def cleanup(self, remove_tmp=True):
        """Remove everything the role or the tests made; works whatever state a failure left."""
        problems = []
        s = registry.Settings(name=NAME, address=ADDRESS, interface=IFACE, port=PORT, config_dir=self.config_dir,
                              storage_dir=self.storage_dir, log_dir=self.log_dir, service="supervisor")
        try:
            registry.remove(s)
        except Exception as exc:  # keep cleaning
            problems.append("remove: %s" % exc)
        for pid in _pids_using(self.config_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if _iface_exists(IFACE):
            subprocess.run(["ip", "link", "del", IFACE], check=False)
        trust.remove_trust(REGISTRY, CERTS_DIR)
        for image in self.client.images.list():
            for tag in image.tags:
                if tag.startswith(REGISTRY + "/"):
                    try:
                        self.client.images.remove(tag, force=True)
                    except docker.errors.APIError as exc:
                        problems.append("rmi %s: %s" % (tag, exc))
        if remove_tmp:
            sh("rm", "-rf", self.tmp, check=False)
        return problems


@pytest.fixture(scope="module")
def reg():
    # not under pytest's 0700 tmp: the registry runs as docker-registry and must reach its files
    tmp = tempfile.mkdtemp(prefix="tbreg-itest-")
    os.chmod(tmp, 0o755)
    env = Env(tmp)
    env.cleanup(remove_tmp=False)  # what a previous run killed halfway left
    try:
        proc = env.play("-v", label="first run")
        env.first = proc.stdout
        yield env
    finally:
        problems = env.cleanup()
        print("registry timings (s): %s" % json.dumps(env.timings))
        assert not problems, problems


def _status(path="/v2/", auth=None, ca_pem=None):
    ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    conn = http.client.HTTPSConnection(ADDRESS, PORT, timeout=5, context=ctx)
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_first_run_starts_a_tls_registry_on_our_interface(reg):
    assert recap_changed(reg.first).get("localhost", 0) > 0
    assert "registry %s, user testbed" % REGISTRY in reg.first
    # the address sits on the interface the role created, and it is not loopback
    out = sh("ip", "-o", "addr", "show", "dev", IFACE).stdout
    assert "inet %s/32" % ADDRESS in out
    alias = sh("ip", "-d", "link", "show", IFACE).stdout
    assert "alias testbed registry %s" % NAME in alias
    # the process runs as docker-registry, supervised, with our config
    pids = _pids_using(os.path.join(reg.config_dir, "config.yml"))
    users = set(sh("ps", "-o", "user=", "-p", ",".join(map(str, pids))).stdout.split())
    assert "docker-registry" in users
    assert _pids_using(os.path.join(reg.config_dir, "supervise.sh"))
    # nothing answers on loopback: the registry listens on its one address only
    conn = http.client.HTTPSConnection("127.0.0.1", PORT, timeout=3, context=ssl._create_unverified_context())
    with pytest.raises(ConnectionRefusedError):
        conn.request("GET", "/v2/")
    # files: bcrypt htpasswd, CA for dockerd, login in the Docker client config
    with open(os.path.join(reg.config_dir, "htpasswd")) as f:
        assert re.fullmatch(r"testbed:\$2[aby]\$05\$\S{53}\n", f.read())
    assert os.stat(os.path.join(reg.config_dir, "tls", "ca.key")).st_mode & 0o077 == 0
    with open(os.path.join(reg.docker_config_dir, "config.json")) as f:
        auth = json.load(f)["auths"][REGISTRY]["auth"]
    assert base64.b64decode(auth).decode() == "testbed:" + reg.password
    with open(os.path.join(reg.config_dir, "tls", "ca.crt")) as f:
        assert f.read() == reg.ca_pem


def test_certificate_names_the_address_and_the_name(reg):
    from cryptography import x509
    import ipaddress
    with open(os.path.join(reg.config_dir, "tls", "server.crt"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(ADDRESS)]
    assert san.get_values_for_type(x509.DNSName) == ["registry.testbed"]
    # a client that trusts only the system CAs refuses the registry's certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        _status()


def test_second_run_changes_nothing(reg):
    proc = reg.play(label="second run")
    assert recap_changed(proc.stdout) == {"localhost": 0}, proc.stdout
    assert registry.converge(registry.Settings(
        name=NAME, address=ADDRESS, interface=IFACE, port=PORT, config_dir=reg.config_dir,
        storage_dir=reg.storage_dir, log_dir=reg.log_dir, service="supervisor", password=reg.password),
        dry_run=True)["operations"] == []


def test_push_with_credentials(reg):
    start = time.time()
    ref = images.push(reg.client, BUSYBOX, REGISTRY, reg.credentials)
    assert ref == "%s/testbed/busybox:latest" % REGISTRY
    status, body = _status("/v2/testbed/busybox/tags/list", auth=("testbed", reg.password), ca_pem=reg.ca_pem)
    assert status == 200 and json.loads(body)["tags"] == ["latest"]
    # pushing again sends nothing and returns the same reference
    assert images.push(reg.client, BUSYBOX, REGISTRY, reg.credentials) == ref
    assert images.is_pushed(reg.client, BUSYBOX, REGISTRY, reg.credentials)
    reg.timings["push"] = round(time.time() - start, 1)


def _unique_image(client):
    """A one-layer image no one else has, so a pull must really transfer its layer."""
    marker = uuid.uuid4().hex
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = marker.encode()
        info = tarfile.TarInfo("marker")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    ref = "tbregtest/unique:%s" % marker[:12]
    client.api.import_image_from_data(buf.getvalue(), repository="tbregtest/unique", tag=marker[:12])
    return ref


def test_docker_pull_with_credentials_after_removing_the_local_copy(reg):
    start = time.time()
    remote = "%s/testbed/busybox:latest" % REGISTRY
    reg.docker("rmi", remote)
    assert reg.docker("image", "inspect", remote, check=False).returncode != 0
    out = reg.docker("pull", remote).stdout
    assert "Digest: sha256:" in out
    # a layer nobody has locally: push, remove every local copy, pull it back
    local = _unique_image(reg.client)
    image_id = reg.client.images.get(local).id
    remote_unique = images.push(reg.client, local, REGISTRY, reg.credentials)
    reg.client.images.remove(local)
    reg.client.images.remove(remote_unique)
    with pytest.raises(docker.errors.ImageNotFound):
        reg.client.images.get(image_id)
    out = reg.docker("pull", remote_unique).stdout
    assert "Pull complete" in out, out
    assert reg.client.images.get(remote_unique).id == image_id
    # ensure_pulled: nothing to do when present, pulls (with credentials) when missing
    assert images.ensure_pulled(reg.client, remote_unique, reg.credentials) is False
    reg.client.images.remove(remote_unique)
    assert images.ensure_pulled(reg.client, remote_unique, reg.credentials) is True
    assert reg.client.images.get(remote_unique).id == image_id
    reg.timings["pull"] = round(time.time() - start, 1)


def test_without_credentials_everything_is_refused(reg):
    remote = "%s/testbed/busybox:latest" % REGISTRY
    status, body = _status(ca_pem=reg.ca_pem)
    assert status == 401 and "UNAUTHORIZED" in body
    assert _status("/v2/testbed/busybox/manifests/latest", ca_pem=reg.ca_pem)[0] == 401
    assert _status("/v2/", auth=("testbed", "wrong"), ca_pem=reg.ca_pem)[0] == 401
    assert _status("/v2/", auth=("testbed", reg.password), ca_pem=reg.ca_pem)[0] == 200
    anon = reg.anonymous_config_dir
    proc = reg.docker("pull", remote + "-nonexistent", config=anon, check=False)
    assert proc.returncode != 0 and "no basic auth credentials" in proc.stdout, proc.stdout
    reg.client.images.remove(remote)
    proc = reg.docker("pull", remote, config=anon, check=False)
    assert proc.returncode != 0 and "no basic auth credentials" in proc.stdout, proc.stdout
    proc = reg.docker("manifest", "inspect", remote, config=anon, check=False)
    assert proc.returncode != 0 and "no basic auth credentials" in proc.stdout, proc.stdout
    with pytest.raises(images.ImageError, match="no basic auth credentials|unauthorized"):
        images.ensure_pulled(docker.from_env(), remote, {"username": "testbed", "password": "wrong"})


def test_plain_http_is_refused(reg):
    conn = http.client.HTTPConnection(ADDRESS, PORT, timeout=5)
    try:
        conn.request("GET", "/v2/")
        resp = conn.getresponse()
        body = resp.read().decode()
    finally:
        conn.close()
    assert resp.status == 400 and "HTTP request to an HTTPS server" in body


def test_teardown_keeping_storage_then_all(reg):
    proc = reg.play("-e", "testbed_registry_state=absent", "-e", "testbed_registry_keep_storage=true",
                    label="teardown")
    assert recap_changed(proc.stdout).get("localhost", 0) > 0
    deadline = time.time() + 5
    while _pids_using(reg.config_dir) and time.time() < deadline:
        time.sleep(0.1)
    assert _pids_using(reg.config_dir) == []
    assert not _iface_exists(IFACE)
    assert not os.path.exists(os.path.join(CERTS_DIR, REGISTRY))
    assert not os.path.exists(reg.config_dir)
    assert not os.path.exists(os.path.join("/run", NAME + ".json"))
    with open(os.path.join(reg.docker_config_dir, "config.json")) as f:
        assert REGISTRY not in json.load(f).get("auths", {})
    # told to keep the storage: the pushed repositories are still there
    assert os.path.isdir(os.path.join(reg.storage_dir, "docker", "registry", "v2", "repositories", "testbed",
                                      "busybox"))
    # without keep, the storage goes too (module_utils directly: one playbook run less), and
    # then there is nothing left to do
    ops = registry.remove(reg.settings)["operations"]
    assert ops == ["remove storage %s" % reg.storage_dir], ops
    assert not os.path.exists(reg.storage_dir)
    assert registry.remove(reg.settings)["operations"] == []
