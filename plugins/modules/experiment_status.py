#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: experiment_status
short_description: Report the state of each node of an experiment on this host
version_added: 0.1.0
description:
  - For every node of the experiment's slice on this host, reports C(dead) (its container is
    not running), C(running) (running, experiment interfaces not all in place) or C(booted)
    (running and plumbed), with its container and addresses.
  - Reads the host's record of the slice; changes nothing.
requirements:
  - docker (Docker SDK for Python)
  - pyroute2
options:
  boot_timeout:
    description:
      - Wait up to this many seconds until every node is C(booted) or C(dead) (swap-in waits for the
        boot). Nodes still C(running) then are reported as they are, with RV(boot_waited). C(0) does not wait.
      - Not in check mode, where nothing was started.
    type: int
    default: 0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.reads_only
  - testbed.containers.common.state_dir
  - testbed.containers.common.experiment
  - testbed.containers.common
"""

EXAMPLES = r"""
- name: Node states on this host
  testbed.containers.experiment_status:
    name: demo
  register: testbed_status_result
"""

RETURN = r"""
nodes:
  description:
    - One entry per node of this host's slice, in file order.
    - A running node's C(resources) is what it uses against its limits, read from its cgroup twice 0.5 s apart
      (all nodes at once) - C(cpu_percent) (percent of one CPU), C(memory_bytes) (without the inactive page cache),
      C(memory_limit), C(cpus_limit), C(pids_limit) (null when none), C(pids) (its processes).
  returned: always
  type: list
  elements: dict
  sample: [{"node": "client", "state": "booted", "host": "localhost", "container": "tb_default_demo_client",
            "addresses": ["10.10.0.1/24"],
            "resources": {"cpu_percent": 12.5, "memory_bytes": 3145728, "memory_limit": 268435456, "cpus_limit": 0.5,
                          "pids": 2, "pids_limit": 4096}}]
boot_waited:
  description: Seconds waited for the nodes to boot (O(boot_timeout)).
  returned: always
  type: float
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils.slice import wait_booted


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project=dict(type="str", default="default"),
            name=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/testbed"),
            boot_timeout=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    try:
        timeout = 0 if module.check_mode else max(0, module.params["boot_timeout"])
        nodes, waited = wait_booted(module.params["project"], module.params["name"], module.params["state_dir"],
                                    timeout)
    except Exception as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    module.exit_json(changed=False, nodes=list(nodes.values()), boot_waited=round(waited, 2))


if __name__ == "__main__":
    main()
