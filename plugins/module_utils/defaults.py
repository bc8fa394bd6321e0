# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host settings both sides need: the hosts use them, the planner keeps experiment LANs out
of the address ranges they take.  Pure data, so the planner imports no netlink."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

CONTROL = {
    "control_subnet": "172.30.0.0/16",
    "ssh_ports": [30000, 39999],
    "exec_subnet": "169.254.240.0/20",
    "exec_port": 2222,
    "exec_interface": "tbexec0",
    # A host NIC on the testbed's control LAN, bridged into dockercnet (Emulab's control net:
    # nodes' control addresses reachable without NAT); None: the control network stays host-local.
    "control_interface": None,
    "docker": "/usr/bin/docker",
    # Host-wide state (allocations, the exec sshd, the host lock): one place per host, whatever
    # directory each experiment's records use, so every experiment sees every allocation.
    "host_dir": "/var/lib/testbed",
}
# Processes a node may run at once (Docker's pids limit) unless it sets ``pids:``: a fork bomb
# in one node stops there.
NODE_PIDS = 4096
# roles/registry's testbed_registry_address (198.18.0.0/15: benchmarking, never routed publicly)
REGISTRY_ADDRESS = "198.18.255.1"
# Resource limits a node may set besides cpus, memory and pids (which every plan has): in its
# plan only when set, and never in its settings hash (a change of a limit is a docker update of
# the node, not a recreate: engine.limit_changes).
LIMIT_KEYS = ("cpu_shares", "blkio_weight")
# Node settings of the container itself (model.py checks them): in a node's plan, and (but
# LIMIT_KEYS) in its settings hash, only when the node sets them, so plans and nodes made before
# they existed stay as they were.
CONTAINER_KEYS = ("entrypoint", "user", "workdir", "binds", "cap_add", "cap_drop", "sysctls", "labels",
                  "ports") + LIMIT_KEYS
# The capabilities Docker gives a container (moby's oci/caps DefaultCapabilities).
DOCKER_DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
                       "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")
# The capabilities the testbed's own services of each augmentation level need, kept when a node
# drops capabilities (cap_drop): basic's supervisor switches to the image's USER (SETUID, SETGID,
# setgroups) and signals the application's process group (KILL); full's accounts service makes
# homes owned by their users and writes into them (CHOWN, FOWNER, DAC_OVERRIDE) and its dropbear
# listens on port 22 (NET_BIND_SERVICE), reads users' keys and gives their terminals to them.
LEVEL_CAPS = {"none": (), "basic": ("KILL", "SETGID", "SETUID"),
              "full": ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "NET_BIND_SERVICE", "SETGID", "SETUID")}
# Host paths no node may bind: they hold the host, the engine or other experiments (a node with
# /var/run/docker.sock or /var/lib/testbed would reach beyond itself).
HOST_ONLY_PATHS = ("/", "/proc", "/sys", "/dev", "/run", "/var/run", "/var/lib/docker", "/var/lib/containerd",
                   "/var/lib/testbed", "/etc", "/boot", "/usr", "/bin", "/sbin", "/lib", "/opt/testbed")


def host_only(source):
    """True when a node may not bind the host path ``source`` (it is or lies under HOST_ONLY_PATHS)."""
    parts = [p for p in source.split("/") if p]
    if ".." in parts:
        return True
    source = "/" + "/".join(parts)
    return any(source == p or (p != "/" and source.startswith(p + "/")) for p in HOST_ONLY_PATHS) or source == "/"
