#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: registry_trust
short_description: Make a physical host's Docker engine trust the testbed registry and log in to it
version_added: 0.1.0
description:
  - Installs the registry's CA as C(CERTS_DIR/REGISTRY/ca.crt) (default
    C(/etc/docker/certs.d/ADDRESS:PORT/ca.crt)), which dockerd reads at each connection, so no
    engine restart is needed.
  - With O(login), writes the credentials into a Docker client configuration (C(auths), what
    C(docker login) writes), so the C(docker) CLI and the Docker SDK pull with them.
  - With O(verify), checks from this host that the registry answers over TLS with a certificate
    from that CA, refuses anonymous access (401) and accepts the credentials (200).
  - With O(state=absent), removes the CA file (and its directory when empty) and the login entry.
  - Idempotent; supports check mode.
options:
  registry:
    description: The registry as Docker names it, C(ADDRESS:PORT) (the V(registry) return value of M(testbed.containers.registry)).
    type: str
    required: true
  state:
    description: V(present) installs trust and login; V(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  ca_cert:
    description: The CA certificate (PEM text); required with O(state=present) (may be empty in check mode).
    type: str
  certs_dir:
    description: dockerd's per-registry certificate directory.
    type: path
    default: /etc/docker/certs.d
  login:
    description: Write the credentials into O(docker_config).
    type: bool
    default: true
  docker_config:
    description: The Docker client configuration file; default C($DOCKER_CONFIG/config.json) or C(~/.docker/config.json).
    type: path
  username:
    description: Registry user.
    type: str
    default: testbed
  password:
    description: Registry password; required with O(login) or O(verify) when O(state=present).
    type: str
  verify:
    description: Check the registry from this host (TLS against O(ca_cert), 401 anonymous, 200 with the credentials).
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.operations
  - testbed.containers.common
"""

EXAMPLES = r"""
- name: Trust the registry and log in
  testbed.containers.registry_trust:
    registry: "{{ reg.registry }}"
    ca_cert: "{{ reg.ca_cert }}"
    username: testbed
    password: "{{ registry_password }}"

- name: Forget the registry
  testbed.containers.registry_trust:
    registry: 198.18.255.1:5443
    state: absent
"""

RETURN = r"""
ca_path:
  description: Where the CA certificate is (or was) installed.
  returned: always
  type: str
  sample: /etc/docker/certs.d/198.18.255.1:5443/ca.crt
docker_config:
  description: The Docker client configuration file the login went to.
  returned: when login
  type: str
operations:
  description: What the module did (or would do in check mode); empty when nothing changed.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import trust
from ansible_collections.testbed.containers.plugins.module_utils.modules import exit_converged


def main():
    module = AnsibleModule(
        argument_spec=dict(
            registry=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            ca_cert=dict(type="str"),
            certs_dir=dict(type="path", default="/etc/docker/certs.d"),
            login=dict(type="bool", default=True),
            docker_config=dict(type="path"),
            username=dict(type="str", default="testbed"),
            password=dict(type="str", no_log=True),
            verify=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    exit_converged(module, trust.converge, trust.TrustError, warn=module.warn, **module.params)


if __name__ == "__main__":
    main()
