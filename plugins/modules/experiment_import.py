#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: experiment_import
short_description: Convert an NS file, a containerlab topology or a compose project into an experiment file
version_added: 0.2.0
description:
  - Reads an Emulab/DETER NS file (a Tcl subset, evaluated), a containerlab topology or a
    docker-compose project and returns our experiment document; with O(dest), writes it as YAML
    with every note as a comment, so it can be edited from then on.
  - Every construct not carried over as written is a note with file, line and reason; warnings are
    shown as Ansible warnings, errors (constructs that change the experiment's meaning and cannot
    be honoured) fail the task before anything exists. docs/importing.md has the mapping tables.
  - The plan role converts with the same code, so a converted file and its source plan identically.
  - A file in our own format is returned as it is (its project and name are read by the teardown).
options:
  path:
    description: The source file.
    type: path
    required: true
  format:
    description: Its format; default from its name (C(*.ns)/C(*.tcl), C(*.clab.yml), C(compose.yml)/C(docker-compose.yml), else ours).
    type: str
    choices: [native, ns, clab, compose]
  options:
    description:
      - C(name), C(project) of the experiment; C(default_image) for nodes the source gives none;
        C(os_images) (NS, a mapping of tb-set-node-os names to images); C(kind_images) (containerlab,
        a mapping of kinds to images); C(max_nodes), C(max_steps) (NS limits).
    type: dict
    default: {}
  strict:
    description: Warnings are errors.
    type: bool
    default: false
  dest:
    description: Write the converted experiment file here (YAML).
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common
attributes:
  check_mode:
    details: In check mode O(dest) is not written; C(changed) says whether it would be.
"""

EXAMPLES = r"""
- name: Convert an Emulab NS file
  testbed.containers.experiment_import:
    path: lab.ns
    dest: lab.yml
    options:
      os_images: {UBUNTU22-64-STD: "testbed/debian:bookworm"}
"""

RETURN = r"""
format:
  description: The source's format.
  returned: always
  type: str
document:
  description: The experiment document.
  returned: success
  type: dict
notes:
  description: What was not carried over as written (level, file, line, message).
  returned: always
  type: list
  elements: dict
messages:
  description: "The notes as lines C(FILE:LINE: LEVEL: MESSAGE)."
  returned: success
  type: list
  elements: str
project:
  description: The experiment's project (C(default) when the document has none).
  returned: success
  type: str
name:
  description: The experiment's name.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import importers

# Shared with the action plugin of the same name (plugins/action/experiment_import.py), which
# converts in the controller's own process: the module runs only where the action does not.
ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    format=dict(type="str", choices=list(importers.FORMATS)),
    options=dict(type="dict", default={}),
    strict=dict(type="bool", default=False),
    dest=dict(type="path"),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = importers.import_task(module.params, module.check_mode)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
