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
