#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: image_publish
short_description: Push the experiment's images from the controller to the testbed registry
version_added: 0.1.0
description:
  - For each image in O(images) that exists in this host's Docker engine (the controller's), pushes
    it to the testbed registry as C(REGISTRY/REPOSITORY:TAG), so physical hosts that lack it pull it
    from there (M(testbed.containers.experiment_slice) with its O(testbed.containers.experiment_slice#module:registry) option).
  - An image the registry already holds under that reference, as this exact image, is not sent again.
  - An image this engine does not have is skipped and listed in RV(missing), since a physical host may have it.
  - Check mode lists what it would push.
requirements:
  - docker (Docker SDK for Python)
options:
  images:
    description: Image references (as the experiment file names them).
    type: list
    elements: str
    required: true
  registry:
    description: The testbed registry, C(ADDRESS:PORT).
    type: str
    required: true
  username:
    description: Registry user.
    type: str
    default: testbed
  password:
    description: Registry password.
    type: str
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common
attributes:
  check_mode:
    details: Lists the images it would push.
"""

EXAMPLES = r"""
- name: Publish the experiment's images
  testbed.containers.image_publish:
    images: "{{ testbed_plan.nodes.values() | map(attribute='image') | unique }}"
    registry: "{{ testbed_registry.registry }}"
    password: "{{ testbed_registry.credentials.password }}"
"""

RETURN = r"""
pushed:
  description: Remote references pushed now (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["198.18.255.1:5443/testbed/debian:bookworm"]
current:
  description: Remote references the registry already held as these images.
  returned: always
  type: list
  elements: str
missing:
  description: Images this engine does not have (not published).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.testbed.containers.plugins.module_utils import engine, images


def main():
    module = AnsibleModule(
        argument_spec=dict(
            images=dict(type="list", elements="str", required=True),
            registry=dict(type="str", required=True),
            username=dict(type="str", default="testbed"),
            password=dict(type="str", required=True, no_log=True),
        ),
        supports_check_mode=True,
    )
    if not engine.HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"))
    params = module.params
    credentials = {"username": params["username"], "password": params["password"]}
    try:
        pushed, current, missing = images.publish(engine.client(), params["images"], params["registry"], credentials,
                                                  module.check_mode)
    except Exception as exc:
        module.fail_json(msg="publishing images to %s: %s" % (params["registry"], exc))
    module.exit_json(changed=bool(pushed), pushed=pushed, current=current, missing=missing)


if __name__ == "__main__":
    main()
