#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: experiment_slice
short_description: Converge, or tear down, one physical host's slice of an experiment
version_added: 0.1.0
description:
  - With O(state=present), converges every node the plan places on this host in one call
    (a thread pool inside) - node containers on the control network C(dockercnet), one Linux
    bridge per experiment LAN, a veth per attachment plumbed into the node as C(ethN) with its
    address and MAC, static routes, and a bind-mounted C(/etc/hosts).
  - Reads the actual state first and acts only on the difference, so a second run reports
    C(changed=false); nodes whose settings did not change keep running.
  - With O(state=absent), removes every container, interface, firewall rule and file the
    experiment owns on this host, found by label, kernel name prefix and comment, and nothing
    else. This also cleans a swap-in that failed halfway.
  - Check mode returns the operations it would do; diff mode shows them too.
  - Images of this slice the host lacks are pulled from O(registry) and tagged as the plan names them; an
    image the host has is never pulled. Without O(registry), every image must already be on the host.
requirements:
  - docker (Docker SDK for Python)
  - pyroute2
  - iptables
options:
  plan:
    description: The plan from M(testbed.containers.experiment_plan). Required with O(state=present).
    type: dict
  host:
    description: This host's inventory name, as the plan knows it.
    type: str
    required: true
  project:
    description: Project of the experiment to tear down (O(state=absent) without O(plan)).
    type: str
  name:
    description: Name of the experiment to tear down (O(state=absent) without O(plan)).
    type: str
  state:
    description: Whether the slice should exist.
    type: str
    choices: [present, absent]
    default: present
  workers:
    description: Nodes converged at the same time.
    type: int
    default: 8
  public_address:
    description: The address people use to reach this host; shown in each node's C(ssh -p PORT root@ADDRESS).
    type: str
  boot_timeout:
    description:
      - With O(state=present), after converging, wait up to this many seconds until every node of the
        slice is booted (or dead) and return their states in RV(status), as
        M(testbed.containers.experiment_status) does (0 reads them without waiting; check mode never waits).
      - Omitted, the states are not read.
    type: int
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.state_dir
  - testbed.containers.common.control
  - testbed.containers.common.lock_timeout
  - testbed.containers.common.registry
  - testbed.containers.common
attributes:
  check_mode:
    details: Check mode returns in RV(operations) what would be done and changes nothing.
  diff_mode:
    support: full
    details: The diff lists the operations done (or, in check mode, that would be done).
"""

EXAMPLES = r"""
- name: Swap in this host's slice
  testbed.containers.experiment_slice:
    plan: "{{ hostvars['localhost'].testbed_plan }}"
    host: "{{ inventory_hostname }}"

- name: Swap it out
  testbed.containers.experiment_slice:
    project: default
    name: demo
    host: "{{ inventory_hostname }}"
    state: absent
"""

RETURN = r"""
operations:
  description: What was done (in check mode, what would be done), one line per action.
  returned: always
  type: list
  elements: str
  sample: ["create bridge tb02c8cb5bbe3e3 (testbed:default/demo/lan0)", "create node client"]
record:
  description: The host's record of its slice (plan, state, container ids per node).
  returned: when state=present
  type: dict
dead:
  description:
    - The nodes of this slice that could not be started, each with the engine's reason (a command that
      does not exist, the OOM killer, an exit code). The rest of the slice is converged; the report
      role fails the swap-in after showing the table.
  returned: when state=present
  type: dict
  sample: {"server": "its main process exited at start: exited with code 127 (docker logs tb_default_demo_server)"}
status:
  description:
    - With O(boot_timeout), the slice's nodes after the wait (C(nodes), as
      M(testbed.containers.experiment_status) returns them) and the seconds waited (C(boot_waited)).
  returned: when state=present and boot_timeout is given
  type: dict
timings:
  description: Seconds per phase of this converge (images, networks, nodes, shaping, control); the swap-in's summary.
  returned: when state=present
  type: dict
  sample: {"images": 0.4, "networks": 0.1, "nodes": 12.3, "shaping": 0.2, "control": 0.6}
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.testbed.containers.plugins.module_utils import engine, images, netlink
from ansible_collections.testbed.containers.plugins.module_utils.slice import run as slice_run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            plan=dict(type="dict"),
            host=dict(type="str", required=True),
            project=dict(type="str"),
            name=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            state_dir=dict(type="path", default="/var/lib/testbed"),
            workers=dict(type="int", default=8),
            public_address=dict(type="str"),
            control=dict(type="dict"),
            registry=images.OPTION_SPEC,
            lock_timeout=dict(type="int", default=900),
            boot_timeout=dict(type="int"),
        ),
        required_if=[("state", "present", ("plan",))],
        required_one_of=[("plan", "name")],
        required_together=[("project", "name")],
        supports_check_mode=True,
    )
    if not engine.HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"))
    if not netlink.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2"))
    params = module.params
    try:
        ops, extra, warnings = slice_run(params, module.check_mode)
    except Exception as exc:
        module.fail_json(msg="%s: %s" % (params["host"], exc), exception=traceback.format_exc())
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=bool(ops), operations=ops, diff={"before": "", "after": "\n".join(ops)}, **extra)


if __name__ == "__main__":
    main()
