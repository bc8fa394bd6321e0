"""Simulated physical hosts for the multi-host tests: Docker-in-Docker containers reached over SSH.

Each host is a container of the image ``testbed/host:bookworm`` (scripts/build-images.sh): Debian
with its own Docker engine, sshd for root key login and the project's pinned Python requirements in
/opt/testbed/venv. The hosts sit on one Docker network that stands for the testbed's network; an
Ansible inventory puts them in the group ``testbed_hosts`` and reaches them over SSH with a
throwaway key pair, as a controller reaches real physical hosts.

From pytest (tests/multihost/conftest.py gives the session fixture ``testbed_hosts``)::

    with simulated_hosts(n=3) as hosts:
        hosts.ansible("testbed_hosts", "-m", "ping")
        hosts.exec("tbhost1", "docker", "ps")

From a shell, to poke at them (the inventory path goes to stdout, the rest to stderr)::

    INV=$(.venv/bin/python tests/multihost/hosts.py up)       # -n 3 --prefix tbhost --subnet ...
    .venv/bin/ansible -i "$INV" testbed_hosts -m ping
    docker exec -it tbhost1 bash
    TESTBED_SIMHOSTS_INVENTORY=$INV .venv/bin/python -m pytest tests/multihost   # reuse, keep them
    .venv/bin/python tests/multihost/hosts.py down

Everything a set of hosts owns carries the label ``testbed.simulated-hosts=<prefix>``: containers
``<prefix>1..n``, their volumes ``<prefix>N-docker`` (the inner /var/lib/docker, overlay2), the
volume ``<prefix>-projects`` mounted at PROJECTS_ROOT in every host (one shared file system, as
an NFS export would be: the projects' shared directories, docs/experiment-file.md#storage), the
network ``<prefix>s-net``; keys, inventory and SSH control sockets live in
``$TMPDIR/testbed-simhosts/<prefix>/``. Teardown removes all of it, also when the start fails, and
also what an earlier crashed run left behind under the same prefix.

The project's base images are copied into each inner engine with ``docker save | docker load``
(as a testbed's hosts would have them preinstalled); an image only the controller has reaches
the hosts through the testbed registry (experiment.yml runs it for experiments on several hosts).
"""
import argparse
import contextlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
DOCKER = "/usr/bin/docker"  # Debian's client; /usr/local/bin/docker may be another one
HOST_IMAGE = "testbed/host:bookworm"
BARE_HOST_IMAGE = "testbed/barehost:bookworm"
# the site's CA for a bare host's pip (egress may pass a TLS-inspecting proxy)
BARE_HOST_RUN_ARGS = ("-v", "/etc/ssl/certs/ca-certificates.crt:/etc/testbed/site-ca.crt:ro")
IMAGES = ("testbed/busybox:latest", "testbed/debian:bookworm")
LABEL = "testbed.simulated-hosts"
PYTHON = "/opt/testbed/venv/bin/python"
DEFAULT_PREFIX = "tbhost"
# Where every simulated host mounts the one shared volume of the projects' directories
PROJECTS_ROOT = "/srv/testbed-projects"
# Outside Docker's default address pools (172.17-31/16, 192.168/16), the planner's default pool
# 10.10.0.0/16 and the registry's 198.18.0.0/15.
DEFAULT_SUBNET = "10.250.0.0/24"
FIRST_HOST_OFFSET = 11  # tbhost1 = .11, tbhost2 = .12, ...
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
# ../shared/machine.md: --privileged fails on this machine (no cap_sys_resource); these work.
DIND_FLAGS = (
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup",
)
CGROUP_ROOT = "/sys/fs/cgroup"
READY_TIMEOUT = 120
REGISTRY_ABSENT = """---
- name: Remove the testbed registry the multi-host tests made
  hosts: testbed_hosts
  gather_facts: false
  roles:
    - role: testbed.containers.registry
      vars:
        testbed_registry_state: absent
"""


def log(msg):
    sys.stderr.write("[simhosts] %s\n" % msg)
    sys.stderr.flush()


def run(*args, check=True, timeout=120, input=None, stdin=None):
    """Runs a command; returns the CompletedProcess (stdout and stderr as text, apart)."""
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout, input=input, stdin=stdin, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(args), proc.returncode, proc.stdout, proc.stderr))
    return proc


def default_workdir(prefix):
    base = os.environ.get("TESTBED_SIMHOSTS_DIR") or os.path.join(tempfile.gettempdir(), "testbed-simhosts")
    return os.path.join(base, prefix)


def network_name(prefix):
    return "%ss-net" % prefix


def cgroup_parent(name):
    # the inner engine's containers get their cgroups under /sys/fs/cgroup/*/<this> (the
    # outer machine's hierarchy is shared), so teardown can remove what a killed engine left
    return "testbed-simhost-%s" % name


class SimHost:
    def __init__(self, name, address):
        self.name = name
        self.address = address
        self.volume = "%s-docker" % name

    def __repr__(self):
        return "SimHost(%s, %s)" % (self.name, self.address)


class SimulatedHosts:
    """A running set of simulated hosts: names, addresses, key, inventory and helpers."""

    def __init__(self, prefix, subnet, hosts, workdir, timings=None):
        self.prefix = prefix
        self.subnet = subnet
        self.network = network_name(prefix)
        self.projects_volume = "%s-projects" % prefix
        self.hosts = hosts
        self.workdir = workdir
        self.private_key = os.path.join(workdir, "id_ed25519")
        self.public_key = self.private_key + ".pub"
        self.inventory = os.path.join(workdir, "inventory.yml")
        self.control_path_dir = os.path.join(workdir, "cp")
        self.timings = timings if timings is not None else {}
        # the inventory's ansible_python_interpreter: None is Ansible's discovery (what most
        # inventories use); the collection's own tasks pick the host's venv themselves
        self.interpreter = None

    @property
    def names(self):
        return [h.name for h in self.hosts]

    def host(self, name):
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    # --- state file, so that `hosts.py down` and a reusing pytest run find the hosts ---------
    def state_path(self):
        return os.path.join(self.workdir, "state.json")

    def save(self):
        with open(self.state_path(), "w") as f:
            json.dump({"prefix": self.prefix, "subnet": self.subnet, "timings": self.timings,
                       "hosts": [[h.name, h.address] for h in self.hosts]}, f, indent=1)

    @classmethod
    def load(cls, workdir):
        with open(os.path.join(workdir, "state.json")) as f:
            st = json.load(f)
        return cls(st["prefix"], st["subnet"], [SimHost(n, a) for n, a in st["hosts"]], workdir,
                   st.get("timings"))

    # --- helpers for tests -----------------------------------------------------------------
    def exec(self, name, *cmd, check=True, timeout=120, input=None):
        """Runs a command inside host `name` (docker exec, as root)."""
        args = [DOCKER, "exec"] + (["-i"] if input is not None else []) + [name] + list(cmd)
        return run(*args, check=check, timeout=timeout, input=input)

    def ssh(self, name, command, check=True, timeout=120):
        """Runs a shell command on host `name` over SSH, the way Ansible reaches it."""
        args = ["ssh", "-i", self.private_key, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "-o", "LogLevel=ERROR"] + SSH_COMMON_ARGS.split() + ["root@%s" % self.host(name).address, command]
        return run(*args, check=check, timeout=timeout)

    def ansible_env(self):
        return dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")

    def ansible(self, pattern, *args, check=True, timeout=300):
        """Runs the ansible CLI against the inventory from the repository root (its ansible.cfg)."""
        cmd = [os.path.join(VENV_BIN, "ansible"), "-i", self.inventory, pattern] + list(args)
        proc = subprocess.run(cmd, cwd=ROOT, env=self.ansible_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), proc.returncode, proc.stdout))
        return proc

    def ansible_playbook(self, *args, check=True, timeout=900):
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", self.inventory] + list(args)
        proc = subprocess.run(cmd, cwd=ROOT, env=self.ansible_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), proc.returncode, proc.stdout))
        return proc

    def remove_registry(self):
        """Removes the testbed registry (controller and these hosts' trust) experiment.yml made."""
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write(REGISTRY_ABSENT)
        try:
            self.ansible_playbook(f.name, check=False)
        finally:
            os.unlink(f.name)

    def inventory_data(self):
        return {"all": {"children": {"testbed_hosts": {
            "hosts": dict((h.name, {"ansible_host": h.address, "testbed_tunnel_address": h.address})
                          for h in self.hosts),
            "vars": dict({
                "ansible_user": "root",
                "ansible_ssh_private_key_file": self.private_key,
                "ansible_ssh_common_args": SSH_COMMON_ARGS,
                # private control sockets: a master left from an earlier set of hosts at the
                # same address is never reused
                "ansible_control_path_dir": self.control_path_dir,
                # the host role's namespaced settings only: fs.* and kernel.* would be this
                # machine's own, and the neighbour table's gc_thresh exist in the first netns only
                "testbed_host_sysctls": {"net.ipv4.ip_forward": 1, "net.core.somaxconn": 8192},
            }, **({"ansible_python_interpreter": self.interpreter} if self.interpreter else {}))}}}}

    def write_inventory(self):
        with open(self.inventory, "w") as f:
            f.write("# Simulated physical hosts (tests/multihost/hosts.py, prefix %s): removed by\n"
                    "# `python tests/multihost/hosts.py down --prefix %s`\n" % (self.prefix, self.prefix))
            yaml.safe_dump(self.inventory_data(), f, sort_keys=False, default_flow_style=False)


# --- start -------------------------------------------------------------------------------------

def _ssh_banner(address, timeout=2.0):
    try:
        with socket.create_connection((address, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _wait_ready(host, deadline):
    """Waits until the host's entrypoint reports dockerd and sshd up and sshd answers."""
    while True:
        state = run(DOCKER, "inspect", "-f", "{{.State.Status}}", host.name, check=False).stdout.strip()
        if state != "running":
            logs = run(DOCKER, "logs", "--tail", "30", host.name, check=False)
            raise RuntimeError("simulated host %s is %s:\n%s%s" % (host.name, state or "missing", logs.stdout,
                                                                   logs.stderr))
        ready = run(DOCKER, "exec", host.name, "test", "-e", "/run/testbed-host.ready", check=False).returncode == 0
        if ready and _ssh_banner(host.address):
            return
        if time.monotonic() > deadline:
            logs = run(DOCKER, "logs", "--tail", "30", host.name, check=False)
            raise RuntimeError("simulated host %s not ready (dockerd and sshd) within %d s:\n%s%s"
                               % (host.name, READY_TIMEOUT, logs.stdout, logs.stderr))
        time.sleep(0.3)


def _load_images(sim, images):
    """docker save once on the controller, docker load into every inner engine in parallel."""
    tar = os.path.join(sim.workdir, "images.tar")
    t0 = time.monotonic()
    run(DOCKER, "save", "-o", tar, *images, timeout=300)
    sim.timings["image_save_s"] = round(time.monotonic() - t0, 1)
    sim.timings["image_tar_mb"] = round(os.path.getsize(tar) / 1e6)

    def load(host):
        with open(tar, "rb") as f:
            proc = subprocess.run([DOCKER, "exec", "-i", host.name, "docker", "load", "-q"], stdin=f,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                  timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError("docker load into %s failed:\n%s%s" % (host.name, proc.stdout, proc.stderr))

    t0 = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=len(sim.hosts)) as pool:
            list(pool.map(load, sim.hosts))
    finally:
        os.unlink(tar)
    sim.timings["image_load_s"] = round(time.monotonic() - t0, 1)


def up(n=3, name_prefix=DEFAULT_PREFIX, subnet=None, images=IMAGES, workdir=None, image=HOST_IMAGE):
    """Starts n simulated hosts and returns a SimulatedHosts; on any failure removes what it made.

    ``image`` BARE_HOST_IMAGE gives freshly installed hosts (no engine: pass ``images=()``) that
    the host role installs; they get this machine's CA bundle as the site's (for pip).
    Leftovers of an earlier run under the same prefix are removed first."""
    if not 1 <= n <= 200:
        raise ValueError("n must be 1..200, got %r" % (n,))
    subnet = subnet or os.environ.get("TESTBED_SIMHOSTS_SUBNET") or DEFAULT_SUBNET
    net = ipaddress.ip_network(subnet)
    addresses = list(net.hosts())
    if len(addresses) < FIRST_HOST_OFFSET - 1 + n:
        raise ValueError("subnet %s too small for %d hosts" % (subnet, n))
    workdir = workdir or default_workdir(name_prefix)
    if run(DOCKER, "image", "inspect", image, check=False).returncode != 0:
        raise RuntimeError("image %s missing: run ./setup.sh --dev (scripts/build-images.sh host barehost)" % image)
    for img in images:
        if run(DOCKER, "image", "inspect", img, check=False).returncode != 0:
            raise RuntimeError("image %s missing: run ./setup.sh --dev (scripts/build-images.sh host barehost)" % img)

    if any(_owned(name_prefix)):
        log("removing leftovers of an earlier run with prefix %s" % name_prefix)
    down(name_prefix, workdir)

    hosts = [SimHost("%s%d" % (name_prefix, i), str(addresses[FIRST_HOST_OFFSET - 2 + i])) for i in range(1, n + 1)]
    sim = SimulatedHosts(name_prefix, str(net), hosts, workdir)
    if image == BARE_HOST_IMAGE:
        # a freshly installed host as many inventories describe it: the system's Python
        sim.interpreter = "/usr/bin/python3"
    t_start = time.monotonic()
    try:
        os.makedirs(sim.control_path_dir, mode=0o700)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "testbed-simhosts-%s" % name_prefix,
            "-f", sim.private_key)
        with open(sim.public_key) as f:
            pubkey = f.read().strip()
        label = "%s=%s" % (LABEL, name_prefix)
        run(DOCKER, "network", "create", "--driver", "bridge", "--label", label, "--subnet", str(net),
            "--gateway", str(addresses[0]), sim.network)
        run(DOCKER, "volume", "create", "--label", label, sim.projects_volume)
        for h in hosts:
            run(DOCKER, "volume", "create", "--label", label, h.volume)
            run(DOCKER, "run", "-d", "--name", h.name, "--hostname", h.name, "--label", label,
                "--network", sim.network, "--ip", h.address, *DIND_FLAGS,
                "-v", "%s:/var/lib/docker" % h.volume,
                "-v", "%s:%s" % (sim.projects_volume, PROJECTS_ROOT),
                "-e", "TESTBED_AUTHORIZED_KEYS=%s" % pubkey,
                "-e", "TESTBED_CGROUP_PARENT=/%s" % cgroup_parent(h.name),
                *(BARE_HOST_RUN_ARGS if image == BARE_HOST_IMAGE else ()),
                image)
        deadline = time.monotonic() + READY_TIMEOUT
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(lambda h: _wait_ready(h, deadline), hosts))
        sim.timings["hosts"] = n
        sim.timings["start_s"] = round(time.monotonic() - t_start, 1)
        if images:
            _load_images(sim, images)
        sim.timings["total_s"] = round(time.monotonic() - t_start, 1)
        sim.write_inventory()
        sim.save()
    except BaseException:
        log("start failed: removing the simulated hosts")
        down(name_prefix, workdir)
        raise
    log("%d hosts up (%s) in %.1f s: %s" % (n, ", ".join("%s=%s" % (h.name, h.address) for h in hosts),
                                            sim.timings["total_s"], json.dumps(sim.timings)))
    return sim


# --- teardown ----------------------------------------------------------------------------------

def _owned(prefix):
    """Names of the containers, volumes and networks labelled with this prefix."""
    flt = "label=%s=%s" % (LABEL, prefix)
    containers = run(DOCKER, "ps", "-aq", "--filter", flt, "--format", "{{.Names}}", check=False).stdout.split()
    volumes = run(DOCKER, "volume", "ls", "-q", "--filter", flt, check=False).stdout.split()
    networks = run(DOCKER, "network", "ls", "-q", "--filter", flt, "--format", "{{.Name}}", check=False).stdout.split()
    return containers, volumes, networks


def _remove_host(name):
    # the inner engine removes its containers (their netns, veths and cgroups) itself
    run(DOCKER, "exec", name, "sh", "-c", "docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1",
        check=False, timeout=120)
    run(DOCKER, "rm", "-f", "-v", name, check=False, timeout=120)
    _remove_cgroups(cgroup_parent(name))


def _remove_cgroups(parent):
    """Removes /sys/fs/cgroup/*/<parent> trees (empty once their processes are gone)."""
    if not os.path.isdir(CGROUP_ROOT):
        return
    for controller in os.listdir(CGROUP_ROOT):
        top = os.path.join(CGROUP_ROOT, controller, parent)
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def _stop_ssh_masters(workdir):
    cp = os.path.join(workdir, "cp")
    if not os.path.isdir(cp):
        return
    for sock in os.listdir(cp):
        run("ssh", "-o", "ControlPath=%s" % os.path.join(cp, sock), "-O", "exit", "simulated-host",
            check=False, timeout=10)


def down(name_prefix=DEFAULT_PREFIX, workdir=None):
    """Removes every container, volume and network labelled with the prefix, and the work dir
    (keys, inventory). Idempotent; never touches anything without the label."""
    workdir = workdir or default_workdir(name_prefix)
    _stop_ssh_masters(workdir)
    containers, _volumes, _networks = _owned(name_prefix)
    if containers:
        with ThreadPoolExecutor(max_workers=len(containers)) as pool:
            list(pool.map(_remove_host, containers))
    containers, volumes, networks = _owned(name_prefix)
    for name in containers:  # a container that refused the first time
        run(DOCKER, "rm", "-f", "-v", name, check=False)
    if volumes:
        run(DOCKER, "volume", "rm", "-f", *volumes, check=False)
    for name in networks:
        run(DOCKER, "network", "rm", name, check=False)
    shutil.rmtree(workdir, ignore_errors=True)
    left = [x for x in _owned(name_prefix) if x]
    if left:
        raise RuntimeError("could not remove simulated hosts %s: %s" % (name_prefix, left))


@contextlib.contextmanager
def simulated_hosts(n=3, name_prefix=DEFAULT_PREFIX, subnet=None, images=IMAGES, workdir=None, image=HOST_IMAGE):
    """Context manager: n simulated hosts up for the block, removed after it (also on failure)."""
    sim = up(n, name_prefix, subnet, images, workdir, image)
    try:
        yield sim
    finally:
        down(name_prefix, sim.workdir)


# --- command line ------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description="Simulated physical hosts for the multi-host tests.")
    parser.add_argument("action", choices=("up", "down", "inventory"),
                        help="up: start (prints the inventory path); down: remove; inventory: print its path")
    parser.add_argument("-n", type=int, default=3, help="number of hosts (default 3)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="host name prefix (default %(default)s)")
    parser.add_argument("--subnet", default=None, help="network subnet (default %s)" % DEFAULT_SUBNET)
    parser.add_argument("--no-images", action="store_true", help="do not load %s" % " ".join(IMAGES))
    parser.add_argument("--bare", action="store_true",
                        help="freshly installed hosts (%s) for the host role to install" % BARE_HOST_IMAGE)
    args = parser.parse_args(argv)
    if args.action == "up":
        sim = up(args.n, args.prefix, args.subnet, () if args.no_images or args.bare else IMAGES, None,
                 BARE_HOST_IMAGE if args.bare else HOST_IMAGE)
        print(sim.inventory)
    elif args.action == "down":
        down(args.prefix)
        log("removed simulated hosts with prefix %s" % args.prefix)
    else:
        path = os.path.join(default_workdir(args.prefix), "inventory.yml")
        if not os.path.exists(path):
            log("no simulated hosts with prefix %s are up" % args.prefix)
            return 1
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
