#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: experiment_fidelity
short_description: Build the fidelity report's measurement experiment, and write the report
version_added: 0.2.0
description:
  - The controller side of the fidelity report (playbooks/fidelity.yml, docs/fidelity.md).
  - O(step=design) reads the measurement template O(template) (examples/fidelity.yml - nodes C(a) and C(b), LANs
    C(plain) and C(qdisc), link C(delay)), checks it as an experiment file, and writes the measurement experiment
    for O(hosts) beside the experiment's record (C(PROJECT/NAME.fidelity-experiment.yml) under O(record_dir)) -
    host N gets nodes C(aN) and C(bN) pinned to it on C(plainN), C(qdiscN) and link C(delayN); consecutive hosts
    N and N+1 get LAN C(vxlanN) between C(aN) and C(bN+1). A path whose kernel features a host lacks (O(missing))
    is left out, and its measurement says why it is skipped. Returns the paths to measure (C(measurements)).
  - O(step=report) turns the measured paths O(results) into the report - the paths, the overhead each layer adds
    over the path beneath it (veth + bridge over the netns baseline, shaping qdiscs over the plain LAN, the
    cross-host LAN over the hosts' own path), the error of the shaped delay - as lines and as the JSON document
    C(PROJECT/NAME.fidelity.json) beside the record, which teardown keeps.
options:
  step:
    description: What to do.
    type: str
    choices: [design, report]
    required: true
  template:
    description: With O(step=design), the measurement template (an experiment file).
    type: path
  hosts:
    description: With O(step=design), the physical hosts to measure on, in inventory order.
    type: list
    elements: str
  missing:
    description: With O(step=design), per host the kernel features it lacks (M(testbed.containers.node_measure)'s probe).
    type: dict
    default: {}
  plan:
    description: With O(step=report), the experiment's recorded plan.
    type: dict
  results:
    description: With O(step=report), the C(result) of M(testbed.containers.node_measure) for each of the design's C(measurements).
    type: list
    elements: dict
  settings:
    description: With O(step=report), the measurement settings recorded in the document (C(ping_count), C(ping_interval), C(iperf_seconds)).
    type: dict
    default: {}
extends_documentation_fragment:
  - testbed.containers.common.record_dir
  - ansible.builtin.action_common_attributes
  - testbed.containers.common
attributes:
  check_mode:
    details: Nothing is written; the design's measurements and the report's lines are returned all the same.
"""

EXAMPLES = r"""
- name: Build the measurement experiment for the inventory's hosts
  testbed.containers.experiment_fidelity:
    step: design
    template: examples/fidelity.yml
    hosts: "{{ groups['testbed_hosts'] }}"
  register: fidelity_design

- name: Write the report
  testbed.containers.experiment_fidelity:
    step: report
    plan: "{{ record.plan }}"
    results: "{{ measured.results | map(attribute='result') | list }}"
    settings: {ping_count: 200, ping_interval: 0.01, iperf_seconds: 3}
"""

RETURN = r"""
path:
  description: The file written (the measurement experiment, or the report's JSON document).
  returned: success
  type: str
project:
  description: With O(step=design), the experiment's project.
  returned: step is design
  type: str
name:
  description: With O(step=design), the experiment's name.
  returned: step is design
  type: str
measurements:
  description:
    - With O(step=design), the paths to measure - C(id), C(host), C(path), C(client), C(server), C(lan), C(peer_host),
      C(tools), C(asked_rtt_ms), C(skipped).
  returned: step is design
  type: list
  elements: dict
lines:
  description: With O(step=report), the report people read.
  returned: step is report
  type: list
  elements: str
document:
  description: With O(step=report), the report's JSON document (docs/fidelity.md).
  returned: step is report
  type: dict
failures:
  description: With O(step=report), the ids of the measurements that failed.
  returned: step is report
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import fidelity


def _design(p, dry_run):
    return fidelity.write_design(p["template"], p["hosts"], p["missing"], p["record_dir"], dry_run)


def _report(p, dry_run):
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return fidelity.write_report(p["plan"], p["results"], p["settings"], p["record_dir"], measured_at, dry_run)


STEPS = {"design": _design, "report": _report}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            step=dict(type="str", choices=sorted(STEPS), required=True),
            template=dict(type="path"), hosts=dict(type="list", elements="str"), missing=dict(type="dict", default={}),
            plan=dict(type="dict"), results=dict(type="list", elements="dict"), settings=dict(type="dict", default={}),
            record_dir=dict(type="path", default="~/.testbed/experiments"),
        ),
        required_if=[("step", "design", ("template", "hosts")), ("step", "report", ("plan", "results"))],
        supports_check_mode=True,
    )
    try:
        changed, result = STEPS[module.params["step"]](module.params, module.check_mode)
    except fidelity.FidelityError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
