#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: experiment_visualize
short_description: Draw an experiment's topology with graphviz
version_added: 0.2.0
description:
  - Draws the experiment's plan as a graphviz graph and writes it as pictures (SVG and PNG by default).
  - One box per physical host holds the nodes placed on it; each node is a box with its name and image. A LAN is a
    small ellipse with its name and subnet, inside the box of its host, or outside the boxes when it spans hosts, with
    an edge to each member labelled with the member's interface, address and shaping (both directions when they
    differ, C(to) being the LAN to the node). A link is one edge between its endpoints with both addresses and the
    shaping of each direction.
  - With O(record), each node is coloured by its state (booted green, running yellow, dead red, absent grey).
  - Needs graphviz's C(dot) command on this host (C(apt-get install graphviz)). docs/operate.md.
options:
  record:
    description: The controller's experiment record (C(nodes) with each node's C(state)); without it nodes are plain.
    type: dict
  dest:
    description:
      - Path prefix of the pictures; each format is written to C(DEST.FORMAT), e.g. C(./default-demo.svg).
      - Its directory is created when missing.
    type: path
    required: true
  formats:
    description: The graphviz output formats (C(dot -T)), e.g. C(svg), C(png), C(pdf), or C(dot) for the laid-out source.
    type: list
    elements: str
    default: [svg, png]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.plan
  - testbed.containers.common
attributes:
  check_mode:
    details: In check mode only the DOT source is returned, nothing is written.
"""

EXAMPLES = r"""
- name: Draw the plan before swap-in
  testbed.containers.experiment_visualize:
    plan: "{{ testbed_plan }}"
    dest: /tmp/default-demo

- name: Draw what is swapped in, nodes coloured by state, as a PDF
  testbed.containers.experiment_visualize:
    plan: "{{ record.plan }}"
    record: "{{ record }}"
    dest: /tmp/default-demo
    formats: [pdf]
"""

RETURN = r"""
files:
  description: The pictures written, one per format (none in check mode).
  returned: always
  type: list
  elements: str
  sample: [/tmp/default-demo.svg, /tmp/default-demo.png]
dot:
  description: The graphviz DOT source of the picture.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import picture


def main():
    module = AnsibleModule(
        argument_spec=dict(
            plan=dict(type="dict", required=True),
            record=dict(type="dict"),
            dest=dict(type="path", required=True),
            formats=dict(type="list", elements="str", default=["svg", "png"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        source = picture.dot_source(p["plan"], p["record"])
    except (KeyError, TypeError, ValueError) as exc:
        module.fail_json(msg="the plan cannot be drawn (not a plan of experiment_plan?): %s: %s"
                         % (type(exc).__name__, exc))
    if module.check_mode:
        module.exit_json(changed=False, files=[], dot=source)
    try:
        files = picture.render(source, p["dest"], p["formats"])
    except picture.PictureError as exc:
        module.fail_json(msg=str(exc), dot=source)
    module.exit_json(changed=True, files=files, dot=source)


if __name__ == "__main__":
    main()
