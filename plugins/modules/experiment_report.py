#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: experiment_report
short_description: Keep the controller's experiment record and print the node table
version_added: 0.1.0
description:
  - With O(state=present), merges the plan and every host's node status into one
    machine-readable record (nodes, host, container, addresses, MACs, interface names),
    writes it under O(record_dir) and returns it with a table for people.
  - With O(state=absent), removes the record.
  - The record is what the next M(testbed.containers.experiment_plan) reads to keep
    interface numbers and addresses stable when the experiment is modified in place.
options:
  statuses:
    description: The C(nodes) lists of M(testbed.containers.experiment_status), one per host.
    type: list
    elements: list
    default: []
  state:
    description: Whether the record should exist.
    type: str
    choices: [present, absent]
    default: present
  write:
    description: Write the record (false only reports, as status does).
    type: bool
    default: true
  boot_timeout:
    description: The swap-in's boot wait in seconds; nodes still not booted after it are named in RV(failure).
    type: int
  timings:
    description:
      - Each host's seconds per phase of the swap-in (C(host), then C(hosts), C(images), C(networks), C(nodes),
        C(shaping), C(control), C(boot)); shown after the table.
    type: list
    elements: dict
    default: []
  plan_seconds:
    description: Seconds the planning took, shown with the timings.
    type: float
  capacity:
    description:
      - Per physical host, its capacity as the plan role collects it (C(max_nodes), C(cpus), C(memory) from
        C(testbed_max_nodes), C(testbed_cpus), C(testbed_memory)); the table's and the status document's host
        lines show how full each host is against it.
    type: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.plan
  - testbed.containers.common.record_dir
  - testbed.containers.common
attributes:
  check_mode:
    details: Check mode reports whether the record would change and writes nothing.
"""

EXAMPLES = r"""
- name: Record and report
  testbed.containers.experiment_report:
    plan: "{{ testbed_plan }}"
    statuses: "{{ groups['testbed_hosts'] | map('extract', hostvars, ['testbed_status', 'nodes']) | list }}"
  register: testbed_report
"""

RETURN = r"""
record:
  description: The merged record.
  returned: when state=present
  type: dict
table:
  description: The node table, one line per node after a summary and a header line.
  returned: when state=present
  type: list
  elements: str
dead:
  description: One line per dead node, C(NODE on HOST) then its reason in the engine's words.
  returned: when state=present
  type: list
  elements: str
failure:
  description:
    - Why the swap-in fails, empty when it does not - the dead nodes (with the end of their log) and, with
      O(boot_timeout), the nodes still not booted (C(running)) after the boot wait.
  returned: when state=present
  type: str
status:
  description:
    - For automation, one object per node (node, host, container, state, reason, start, start_exit,
      control_address, ssh, interfaces with ifname, lan, address, prefixlen, mac, host_interface,
      to_node, from_node, capture_command) and the count of nodes per state.
  returned: when state=present
  type: dict
path:
  description: Where the record is kept.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import report


# Shared with the action plugin of the same name (plugins/action/experiment_report.py), which
# merges the record in the controller's own process: the module runs only where the action does not.
ARGUMENT_SPEC = dict(
    plan=dict(type="dict", required=True),
    statuses=dict(type="list", elements="list", default=[]),
    record_dir=dict(type="path", default="~/.testbed/experiments"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    write=dict(type="bool", default=True),
    boot_timeout=dict(type="int"),
    timings=dict(type="list", elements="dict", default=[]),
    plan_seconds=dict(type="float"),
    capacity=dict(type="dict"),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    changed, _ops, result = report.converge_record(dry_run=module.check_mode, **module.params)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
