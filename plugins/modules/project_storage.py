#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: project_storage
short_description: Share the project storage between physical hosts over NFS (server or client side)
version_added: 0.1.0
description:
  - With O(role=server), exports O(export) (the server's C(testbed_project_root)) to O(clients)
    through its own exports file (C(/etc/exports.d/testbed.exports)), starts the NFS server and
    re-exports (C(exportfs -ra)).
  - With O(role=client), mounts C(SERVER:EXPORT) (NFSv4) at O(root) (the host's
    C(testbed_project_root)) and, with O(persist), keeps one marked line in C(/etc/fstab). A
    different file system already mounted at O(root) is refused.
  - Before changing anything, checks that the kernel has what the role needs (C(nfsd) or C(nfs4)
    in C(/proc/filesystems), after one C(modprobe)) and fails with what to do instead when it has not.
  - With O(state=absent), unmounts and removes the fstab line (client) or removes the exports file
    and re-exports (server); the projects' files stay on the server.
  - Idempotent; supports check mode.
options:
  role:
    description: This host's side.
    type: str
    choices: [server, client]
    required: true
  state:
    description: V(present) serves or mounts; V(absent) undoes it.
    type: str
    choices: [present, absent]
    default: present
  export:
    description: The directory the server exports (its C(testbed_project_root)).
    type: path
    required: true
  root:
    description: Where a client mounts it (its C(testbed_project_root)); required with O(role=client).
    type: path
  server:
    description: The server's address as the client reaches it; required with O(role=client).
    type: str
  clients:
    description: Addresses, networks (CIDR) or host names the server exports to.
    type: list
    elements: str
    default: []
  export_options:
    description: The exports(5) options of each client.
    type: list
    elements: str
    default: [rw, sync, no_subtree_check, no_root_squash]
  mount_options:
    description: The nfs(5) mount options.
    type: list
    elements: str
    default: [rw, hard, vers=4, noatime, _netdev]
  persist:
    description: Keep the client's mount in C(/etc/fstab).
    type: bool
    default: true
  check_only:
    description: Only check the kernel (what the role does before installing packages).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.operations
  - testbed.containers.common
"""

EXAMPLES = r"""
- name: Export the project storage to the other hosts
  testbed.containers.project_storage:
    role: server
    export: /var/lib/testbed/projects
    clients: [10.0.0.12, 10.0.0.13]

- name: Mount it on a client host
  testbed.containers.project_storage:
    role: client
    export: /var/lib/testbed/projects
    root: /var/lib/testbed/projects
    server: 10.0.0.11
"""

RETURN = r"""
role:
  description: This host's side.
  returned: always
  type: str
source:
  description: What a client mounts, C(SERVER:EXPORT).
  returned: with role=client
  type: str
operations:
  description: What the module did (or would do in check mode); empty when nothing changed.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import storage
from ansible_collections.testbed.containers.plugins.module_utils.modules import exit_converged


def main():
    module = AnsibleModule(
        argument_spec=dict(
            role=dict(type="str", choices=["server", "client"], required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            export=dict(type="path", required=True),
            root=dict(type="path"),
            server=dict(type="str"),
            clients=dict(type="list", elements="str", default=[]),
            export_options=dict(type="list", elements="str", default=list(storage.DEFAULT_EXPORT_OPTIONS)),
            mount_options=dict(type="list", elements="str", default=list(storage.DEFAULT_MOUNT_OPTIONS)),
            persist=dict(type="bool", default=True),
            check_only=dict(type="bool", default=False),
        ),
        required_if=[("role", "client", ("root", "server"))],
        supports_check_mode=True,
    )
    exit_converged(module, storage.converge, storage.StorageError, **module.params)


if __name__ == "__main__":
    main()
