#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: experiment_plan
short_description: Validate an experiment file and plan it onto the physical hosts
version_added: 0.1.0
description:
  - Reads an experiment file (nodes, LANs, links, routing), validates every field and plans
    subnets, addresses, MAC addresses, interface numbers, placement, static routes and
    C(/etc/hosts) entries.
  - Pure and deterministic; creates nothing. Runs on the controller.
  - "Every validation error names the field path, for example C(lans.lan0.members[2]: unknown node 'srv')."
  - When a record of an earlier swap-in exists under O(record_dir), the plan keeps that
    swap-in's placement, interface numbers, subnets and addresses for what did not change.
  - The file may also be an Emulab/DETER NS file, a containerlab topology or a docker-compose
    project (see O(format)); it is converted by the same code as M(testbed.containers.experiment_import)
    and every construct not carried over as written is shown as a warning.
options:
  path:
    description: Path of the experiment file (ours, or NS, containerlab or compose).
    type: path
    required: true
  format:
    description:
      - The file's format. Default from its name (C(*.ns), C(*.tcl) NS; C(*.clab.yml) containerlab;
        C(compose.yml), C(docker-compose.yml) compose; anything else ours).
    type: str
    choices: [native, ns, clab, compose]
  import_options:
    description:
      - Options of the importers (docs/importing.md) C(name), C(project), C(default_image), C(os_images),
        C(kind_images), C(strict), C(max_nodes), C(max_steps).
    type: dict
    default: {}
  hosts:
    description: Inventory names of the physical hosts, in order.
    type: list
    elements: str
    required: true
  host_vars:
    description:
      - Per physical host settings, keyed by inventory name; every key is optional.
      - C(max_nodes) (inventory C(testbed_max_nodes)), C(mode) (C(testbed_mode), shared or dedicated),
        C(cpus) (C(testbed_cpus)), C(memory) (C(testbed_memory)) bound the placement.
      - C(tunnel_address) (C(testbed_tunnel_address), default C(ansible_host)) is the IPv4 address that
        carries the VXLAN tunnels of LANs spanning hosts.
      - C(trunk_interface) (C(testbed_trunk_interface)) switches LANs spanning hosts to VLAN mode, where an
        802.1Q device with the LAN's VLAN id on that interface joins the LAN's bridge, for a switched
        testbed network; every host of such a LAN needs one.
      - C(used_by) lists the experiments (C(PROJECT/NAME)) the host holds nodes of now (the plan role reads
        it from the host's record for dedicated hosts); a dedicated host used by another experiment takes
        no node of this one.
      - C(control_subnet) and C(exec_subnet) (the host's C(testbed_control) settings, defaults
        C(172.30.0.0/16) and C(169.254.240.0/20)) are reserved. A LAN subnet overlapping them is an
        error naming the LAN, and allocated subnets skip them.
    type: dict
    default: {}
  registry_address:
    description:
      - The testbed registry's address (C(testbed_registry_address)); no LAN subnet may hold it.
      - Default C(198.18.255.1), the registry role's.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.record_dir
  - testbed.containers.common
attributes:
  check_mode:
    details: Planning reads files only; check mode returns the same plan.
  diff_mode:
    details: The plan is returned, not a diff.
"""

EXAMPLES = r"""
- name: Plan the experiment
  testbed.containers.experiment_plan:
    path: examples/demo.yml
    hosts: "{{ groups['testbed_hosts'] }}"
  register: testbed_plan_result
"""

RETURN = r"""
plan:
  description: The plan; its C(nodes) hold placement, interfaces (ifname, lan, address, prefixlen, mac, veth) and routes.
  returned: success
  type: dict
project:
  description: The experiment's project.
  returned: success
  type: str
name:
  description: The experiment's name.
  returned: success
  type: str
import_notes:
  description: What the importer reported (level, file, line, message) for a file that is not ours.
  returned: success
  type: list
  elements: dict
errors:
  description: Every validation error, one per item, each starting with the field path.
  returned: failure
  type: list
  elements: str
changed_nodes:
  description:
    - Per physical host, how many of its nodes are new or planned differently than in the recorded
      earlier swap-in (all of them on a first swap-in); the slice role follows a converge with many
      of them as an asynchronous job.
  returned: success
  type: dict
  sample: {"localhost": 3}
seconds:
  description: Seconds the planning took (reading, importing, validating, placing, addressing, routing).
  returned: success
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils.model import ExperimentError
from ansible_collections.testbed.containers.plugins.module_utils.plan import plan_task

# Shared with the action plugin of the same name (plugins/action/experiment_plan.py), which runs
# the planning in the controller's own process: the module runs only where the action does not.
ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    hosts=dict(type="list", elements="str", required=True),
    record_dir=dict(type="path", default="~/.testbed/experiments"),
    host_vars=dict(type="dict", default={}),
    registry_address=dict(type="str"),
    format=dict(type="str", choices=["native", "ns", "clab", "compose"]),
    import_options=dict(type="dict", default={}),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result, warnings = plan_task(**module.params)
    except ExperimentError as exc:
        module.fail_json(msg="invalid experiment %s:\n%s" % (module.params["path"], exc), errors=exc.errors)
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
