#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: image_augment
short_description: Augment Docker images so they can host testbed node services
version_added: 0.2.0
description:
  - For each image of O(images), present in the host's Docker engine, derives an augmented
    image with C(docker build) (C(FROM) the local image id, one C(COPY) layer of C(/.testbed),
    nothing pulled, no network needed). In it a static supervisor becomes the entrypoint; it runs
    the image's own ENTRYPOINT and CMD with its USER, WORKDIR and ENV, runs the node's start
    command once the host marks the node ready, and reports their state.
  - The result is tagged by content, C(testbed-augmented/NAME:LEVEL-KEY), KEY hashing the base
    image id, the level, the augmentation version and the injected tools. An existing tag is a
    cache hit, never rebuilt, and reported as C(changed=false).
  - An image that is already augmented (for example a C(docker commit) of a running node) is
    never wrapped twice; see C(docs/augmentation.md).
  - Level V(none) returns each image unchanged.
  - The injected static tools are built by C(scripts/build-tools.sh) on the host that runs this
    module.
options:
  images:
    description: Image references (name, name:tag or id) present on the host.
    type: list
    elements: str
    required: true
  level:
    description: Augmentation level. V(full) (SSH) is not available in this version.
    type: str
    choices: [none, basic]
    default: basic
  tools_dir:
    description:
      - Directory of the prebuilt static tools (C(supervisor), C(busybox)).
      - Defaults to E(TESTBED_TOOLS_DIR), else C(/var/cache/testbed/tools), where
        C(scripts/build-tools.sh) puts them.
    type: path
requirements:
  - docker (Python SDK) >= 5.0 on the host
  - a Docker engine on the host
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common
attributes:
  check_mode:
    details: Check mode reports which images would be built, and their tags, without building.
"""

EXAMPLES = r"""
- name: Augment the experiment's images
  testbed.containers.image_augment:
    images:
      - testbed/debian:bookworm
      - testbed/busybox:latest
    level: basic
  register: testbed_augmented

- name: Show the image each node will run
  ansible.builtin.debug:
    msg: "{{ testbed_augmented.refs }}"
"""

RETURN = r"""
refs:
  description: Each requested image reference mapped to the image to run at O(level).
  returned: success
  type: dict
  sample: {"testbed/busybox:latest": "testbed-augmented/testbed/busybox:basic-37a0bd09f721948f969f"}
images:
  description: One entry per requested image, in order.
  returned: success
  type: list
  elements: dict
  contains:
    image:
      description: The requested reference.
      type: str
    augmented:
      description: The image to run (the content tag, or the image itself when nothing is needed).
      type: str
    result:
      description: >-
        V(built) (built now, or would be in check mode), V(cached) (the content tag existed),
        V(current) (the image is already augmented at this level, version and tools), V(none) (level none).
      type: str
    changed:
      description: Whether this image was (or would be) built.
      type: bool
    seconds:
      description: Time spent on this image.
      type: float
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.testbed.containers.plugins.module_utils import engine, images


def main():
    module = AnsibleModule(
        argument_spec=dict(
            images=dict(type="list", elements="str", required=True),
            level=dict(type="str", choices=["none", "basic"], default="basic"),
            tools_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    if not engine.HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"))
    p = module.params
    try:
        changed, _ops, result = images.augment_images(p["images"], p["level"], p["tools_dir"], dry_run=module.check_mode)
    except images.AugmentFailed as exc:
        module.fail_json(msg=str(exc), images=exc.images)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
