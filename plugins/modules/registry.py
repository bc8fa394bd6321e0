#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: registry
short_description: Run the testbed's image registry (TLS, htpasswd) on this host, or remove it
version_added: 0.1.0
description:
  - Runs Debian's C(docker-registry) (distribution 2.8) on one address of this host, always with
    TLS and htpasswd authentication, so that physical hosts pull augmented images with credentials.
  - The address must not be loopback (Docker does not check TLS for loopback registries). With
    O(interface) set, the module creates that interface (a dummy, or an empty bridge where the
    kernel has no dummy driver) and puts O(address) on it; with O(interface) empty the address
    must already be on the host.
  - Creates a CA (unless O(ca_cert)/O(ca_key) or O(tls_cert)/O(tls_key) name the operator's own)
    and a server certificate whose subjectAltName holds O(address) and O(dns_names); re-issues it
    when the address or names change, when the CA changes, or 30 days before it expires.
  - Where systemd runs the registry is the unit C(NAME.service); otherwise a small shell supervisor
    started in its own session restarts it when it exits. The registry restarts when its
    configuration, certificate, key, credentials or binary change, or when it does not answer.
  - With O(state=absent), stops the registry and removes the interface, the generated
    configuration, CA, certificate, credentials and log, and the storage unless O(keep_storage).
  - Idempotent; supports check mode (the operations that would be done are returned).
requirements:
  - bcrypt
  - cryptography
  - pyroute2
  - Debian's docker-registry package (the C(docker-registry) binary and account)
options:
  state:
    description: V(present) runs the registry; V(absent) stops it and removes what the module created.
    type: str
    choices: [present, absent]
    default: present
  name:
    description:
      - Instance name; names the systemd unit, the supervisor's state file C(RUN_DIR/NAME.json), the log
        C(LOG_DIR/NAME.log) and the interface's alias (which proves the interface is ours).
    type: str
    default: testbed-registry
  address:
    description: The single address the registry listens on; every physical host must reach it.
    type: str
    default: 198.18.255.1
  prefix:
    description: Prefix length of O(address) on O(interface).
    type: int
    default: 32
  interface:
    description:
      - Interface the module creates to hold O(address) (15 characters at most). Empty to use an
        address that already exists on the host (for instance its own address on the hosts' network).
      - An existing interface of that name that is not ours (another alias or kind) is an error.
    type: str
    default: tbreg0
  interface_kind:
    description: Kind of O(interface); V(auto) tries a dummy and falls back to an empty bridge.
    type: str
    choices: [auto, dummy, bridge]
    default: auto
  port:
    description: TCP port of the registry.
    type: int
    default: 5443
  dns_names:
    description: DNS names put in the certificate's subjectAltName besides O(address).
    type: list
    elements: str
    default: [registry.testbed]
  config_dir:
    description: Directory of the generated configuration, htpasswd file, supervisor script and C(tls/).
    type: path
    default: /etc/testbed/registry
  storage_dir:
    description: Where the registry stores images (owned by O(user)).
    type: path
    default: /var/lib/testbed/registry
  keep_storage:
    description: With O(state=absent), keep O(storage_dir) (so a later O(state=present) serves the same images).
    type: bool
    default: false
  run_dir:
    description: Directory of the supervisor's state file.
    type: path
    default: /run
  log_dir:
    description: Directory of the registry's log (supervised mode).
    type: path
    default: /var/log/testbed
  binary:
    description: The registry binary.
    type: path
    default: /usr/bin/docker-registry
  user:
    description: Account the registry runs as (Debian's package creates C(docker-registry)).
    type: str
    default: docker-registry
  service:
    description: V(systemd) unit, V(supervisor) process, or V(auto) (systemd when C(/run/systemd/system) exists).
    type: str
    choices: [auto, systemd, supervisor]
    default: auto
  username:
    description: The registry's single user (htpasswd).
    type: str
    default: testbed
  password:
    description: That user's password; required with O(state=present).
    type: str
  bcrypt_cost:
    description:
      - bcrypt cost of the htpasswd entry. The registry checks it on every request, so a high cost
        slows every push and pull (cost 10 is about 250 ms a request); a long random password is
        what makes it safe.
    type: int
    default: 5
  ca_cert:
    description: Path of your own CA certificate on this host (with O(ca_key), or with O(tls_cert)); never removed.
    type: path
  ca_key:
    description: Path of your own CA's private key; the module signs the server certificate with it.
    type: path
  tls_cert:
    description:
      - Path of your own server certificate (its subjectAltName must hold O(address) and O(dns_names),
        issued directly by O(ca_cert)); the module then issues nothing. Never removed.
    type: path
  tls_key:
    description: Path of the key of O(tls_cert); it must be readable by O(user).
    type: path
  ca_days:
    description: Validity of a CA the module creates, in days.
    type: int
    default: 3650
  cert_days:
    description: Validity of the server certificate the module issues, in days.
    type: int
    default: 825
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.operations
  - testbed.containers.common
"""

EXAMPLES = r"""
- name: Run the testbed registry on a dummy interface of the controller
  testbed.containers.registry:
    address: 198.18.255.1
    interface: tbreg0
    password: "{{ lookup('ansible.builtin.password', '~/.testbed/registry/password length=32 chars=ascii_letters,digits') }}"
  register: reg

- name: Use the host's own address and the organisation's CA
  testbed.containers.registry:
    address: 192.0.2.10
    interface: ""
    ca_cert: /etc/pki/testbed/ca.crt
    ca_key: /etc/pki/testbed/ca.key
    password: "{{ vault_registry_password }}"

- name: Stop the registry, keeping the images
  testbed.containers.registry:
    state: absent
    keep_storage: true
"""

RETURN = r"""
registry:
  description: The registry as Docker names it, C(ADDRESS:PORT); image references start with it.
  returned: always
  type: str
  sample: 198.18.255.1:5443
address:
  description: The listen address.
  returned: always
  type: str
port:
  description: The listen port.
  returned: always
  type: int
ca_cert:
  description: The CA certificate (PEM) that hosts must trust for the registry; empty in check mode before it exists.
  returned: state=present
  type: str
ca_cert_path:
  description: Where the CA certificate is on this host.
  returned: state=present
  type: str
pid:
  description: PID of the supervisor, or the unit's main PID (null in check mode before it runs).
  returned: state=present
  type: int
service:
  description: How the registry runs, C(systemd) or C(supervisor).
  returned: always
  type: str
operations:
  description: What the module did (or would do in check mode); empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: ["create bridge interface tbreg0", "add 198.18.255.1/32 to tbreg0", "start the registry (supervised)"]
"""

import platform

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.testbed.containers.plugins.module_utils import pki, registry
from ansible_collections.testbed.containers.plugins.module_utils.modules import operations_diff


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            name=dict(type="str", default=registry.DEFAULT_NAME),
            address=dict(type="str", default="198.18.255.1"),
            prefix=dict(type="int", default=32),
            interface=dict(type="str", default="tbreg0"),
            interface_kind=dict(type="str", choices=["auto", "dummy", "bridge"], default="auto"),
            port=dict(type="int", default=5443),
            dns_names=dict(type="list", elements="str", default=["registry.testbed"]),
            config_dir=dict(type="path", default="/etc/testbed/registry"),
            storage_dir=dict(type="path", default="/var/lib/testbed/registry"),
            keep_storage=dict(type="bool", default=False),
            run_dir=dict(type="path", default="/run"),
            log_dir=dict(type="path", default="/var/log/testbed"),
            binary=dict(type="path", default="/usr/bin/docker-registry"),
            user=dict(type="str", default="docker-registry"),
            service=dict(type="str", choices=["auto", "systemd", "supervisor"], default="auto"),
            username=dict(type="str", default="testbed"),
            password=dict(type="str", no_log=True),
            bcrypt_cost=dict(type="int", default=pki.DEFAULT_BCRYPT_COST),
            ca_cert=dict(type="path"),
            ca_key=dict(type="path", no_log=False),
            tls_cert=dict(type="path"),
            tls_key=dict(type="path", no_log=False),
            ca_days=dict(type="int", default=3650),
            cert_days=dict(type="int", default=825),
        ),
        required_if=[("state", "present", ["password"])],
        required_together=[("tls_cert", "tls_key")],
        supports_check_mode=True,
    )
    host = platform.node()
    for library in registry.missing_libraries(module.params["state"] == "present", module.params["interface"]):
        module.fail_json(msg="%s: %s" % (host, missing_required_lib(library)))
    try:
        result = registry.run(module.params, dry_run=module.check_mode)
    except registry.RegistryError as exc:
        module.fail_json(msg="%s: registry %s: %s" % (host, module.params["name"], exc))
    if module._diff:
        result["diff"] = operations_diff(result["operations"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
