#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: node_snapshot
short_description: Commit a node's container into an image (a snapshot of the node)
version_added: 0.1.0
description:
  - Commits the container of node O(node) of experiment O(project)/O(name) on this host into an image,
    pausing it while it runs; the image keeps the container's entrypoint, command, environment, user and
    working directory, blanks the node's own labels (Docker merges them into a commit), drops its hostname, and is labelled
    C(testbed.snapshot.of=PROJECT/NAME/NODE).
  - A node of any experiment may then name the image as its C(image). An augmented node's snapshot gets
    the image's original entrypoint, user and working directory back and its augmentation labels blanked,
    so it runs with C(augment=none) and is augmented afresh at any level, its changes kept.
  - With O(registry), every tag is pushed to the testbed registry, from which other hosts pull it.
  - Fails naming the field when the node is not on this host or the image name is not valid, before
    anything is committed.
requirements:
  - docker (Docker SDK for Python)
options:
  node:
    description: The node to snapshot.
    type: str
    required: true
  image:
    description:
      - C(REPOSITORY:TAG) of the snapshot, or C(REPOSITORY) for a UTC time tag (C(YYYYMMDD-HHMMSS)) and C(latest).
      - Default C(testbed-snapshot/PROJECT-NAME-NODE) with a time tag and C(latest).
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common
  - testbed.containers.common.experiment
  - testbed.containers.common.registry
attributes:
  check_mode:
    details: Finds the node and names the image it would make; commits nothing.
"""

EXAMPLES = r"""
- name: Snapshot the server node of default/demo
  testbed.containers.node_snapshot:
    name: demo
    node: server
  register: snap

- name: Snapshot it under a name of your own
  testbed.containers.node_snapshot:
    name: demo
    node: server
    image: lab/server-configured:v1
"""

RETURN = r"""
image:
  description: The snapshot's reference (its first tag).
  returned: success
  type: str
  sample: testbed-snapshot/default-demo-server:20261123-173000
repository:
  description: The snapshot's repository.
  returned: success
  type: str
tags:
  description: Its tags.
  returned: success
  type: list
  elements: str
  sample: ["20261123-173000", "latest"]
container:
  description: The node's container.
  returned: success
  type: str
id:
  description: The image id.
  returned: success and not check mode
  type: str
size:
  description: The image's size in bytes.
  returned: success and not check mode
  type: int
pushed:
  description: The references pushed to the testbed registry.
  returned: success
  type: list
  elements: str
left_out:
  description:
    - The node paths the snapshot does not capture (a commit leaves mounts out) - the node's volumes, binds and
      the project's directory; their files stay where they are.
  returned: success and not check mode
  type: list
  elements: str
  sample: ["/data", "/proj/default"]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.testbed.containers.plugins.module_utils import engine, images, snapshot


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project=dict(type="str", default="default"),
            name=dict(type="str", required=True),
            node=dict(type="str", required=True),
            image=dict(type="str"),
            registry=images.OPTION_SPEC,
        ),
        supports_check_mode=True,
    )
    if not engine.HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"))
    params = module.params
    reg = params["registry"] or {}
    try:
        result = snapshot.snapshot(engine.client(), params["project"], params["name"], params["node"], params["image"],
                                   registry_address=reg.get("registry"), credentials=reg.get("credentials"),
                                   dry_run=module.check_mode)
    except (snapshot.SnapshotError, engine.EngineError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
