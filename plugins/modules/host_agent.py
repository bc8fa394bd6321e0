#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_agent
short_description: Run the testbed agent that re-plumbs nodes when their containers start again
version_added: 0.1.0
description:
  - A container restart (C(docker restart), a crash under the restart policy, dockerd restarting,
    C(reboot) in an augmented node) removes a node's experiment interfaces. The agent watches
    Docker's container events and, on every start of a node, re-creates its interfaces,
    addresses, routes, shaping and firewall rules from the host's record, then marks the node
    ready again so its start command runs.
  - Copies the collection's module_utils under the C(host_dir) control setting (C(/var/lib/testbed/agent)) and starts the agent
    there as a detached process with a pid file (a host without systemd needs nothing else);
    restarts it when the collection's code or the settings changed.
requirements:
  - docker (Docker SDK for Python)
  - pyroute2
options:
  state:
    description: Whether the agent should run.
    type: str
    choices: [started, stopped]
    default: started
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.control
  - testbed.containers.common
"""

EXAMPLES = r"""
- name: Run the agent
  testbed.containers.host_agent:
"""

RETURN = r"""
operations:
  description: What was done.
  returned: always
  type: list
  elements: str
pid:
  description: The agent's process id.
  returned: when running
  type: int
"""

import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import agent, control


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "stopped"], default="started"),
            control=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    cfg = control.settings(module.params["control"])
    try:
        if module.params["state"] == "started":
            ops = agent.ensure_running(cfg, sys.executable, module.check_mode)
        else:
            ops = [] if module.check_mode else agent.stop(cfg)
    except Exception as exc:
        module.fail_json(msg="host agent: %s" % exc)
    module.exit_json(changed=bool(ops), operations=ops, pid=agent.agent_pid(cfg))


if __name__ == "__main__":
    main()
