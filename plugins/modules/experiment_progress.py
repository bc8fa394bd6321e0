#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: experiment_progress
short_description: How far this host's slice converge has got, while it runs
version_added: 0.2.0
description:
  - Reads the progress the slice module writes beside the host's record while it converges (its phase, and
    nodes created, started and plumbed of the slice's total) and whether its asynchronous job has finished.
  - Waits up to O(wait) seconds for the job to finish, so a retry loop over it polls at that pace. The slice role
    runs the converge asynchronously for big slices and loops over this module; the callback plugin
    C(testbed.containers.progress) prints RV(line) at each retry.
options:
  results_file:
    description: The results file of the asynchronous slice job (its C(results_file)).
    type: path
    required: true
  wait:
    description: Seconds to wait for the job to finish before returning.
    type: float
    default: 2
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.reads_only
  - testbed.containers.common.state_dir
  - testbed.containers.common.experiment
  - testbed.containers.common
"""

EXAMPLES = r"""
- name: Follow the converge
  testbed.containers.experiment_progress:
    name: demo
    results_file: "{{ testbed_slice_job.results_file }}"
  register: testbed_slice_progress
  until: testbed_slice_progress.finished
  retries: 3600
  delay: 0
"""

RETURN = r"""
finished:
  description: Whether the slice job has finished (then read its result with ansible.builtin.async_status).
  returned: always
  type: bool
progress:
  description: The slice's progress (phase, nodes, created, started, plumbed, elapsed), or an empty dict before it starts.
  returned: always
  type: dict
line:
  description: The progress for people, e.g. C(nodes 120/200 plumbed (130 created, 125 started), 14.2 s).
  returned: always
  type: str
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils.slice import read_progress


def job_finished(path):
    """Ansible's async wrapper writes ``{"started": 1, "finished": 0}`` first, then the module's
    result (without ``started``) when it ends: what async_status reads as finished."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (IOError, OSError, ValueError):
        return False
    return isinstance(data, dict) and ("started" not in data or bool(data.get("finished")))


def describe(progress):
    if not progress:
        return "starting"
    text = "%s: nodes %d/%d plumbed (%d created, %d started)" % (
        progress.get("phase"), progress.get("plumbed", 0), progress.get("nodes", 0), progress.get("created", 0),
        progress.get("started", 0))
    return text + (", %.1f s" % progress["elapsed"] if progress.get("elapsed") is not None else "")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project=dict(type="str", default="default"),
            name=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/testbed"),
            results_file=dict(type="path", required=True),
            wait=dict(type="float", default=2),
        ),
        supports_check_mode=True,
    )
    p = module.params
    deadline = time.time() + max(0.0, p["wait"])
    finished = job_finished(p["results_file"])
    while not finished and time.time() < deadline:
        time.sleep(0.1)
        finished = job_finished(p["results_file"])
    progress = read_progress(p["state_dir"], p["project"], p["name"]) or {}
    module.exit_json(changed=False, finished=finished, progress=progress, line=describe(progress),
                     testbed_progress=True)


if __name__ == "__main__":
    main()
