#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: node_capture
short_description: Capture packets on the host side of a node's attachment to a LAN
version_added: 0.2.0
description:
  - Finds, in the experiment's recorded plan, the host interface of O(node) on O(lan) (the veth of that
    attachment) or, with O(node=all), the LAN's bridge, and runs tcpdump on it into a pcap file on this host.
  - Needs no privilege in the node and does not touch its traffic or shaping. The veth carries the
    shaping of the node's attachment, so the capture sees traffic to the node after the shaper and
    traffic from it before. docs/operate.md.
options:
  plan:
    description: The experiment's recorded plan (its record's C(plan)).
    type: dict
    required: true
  node:
    description: The node, or C(all) for the LAN's bridge.
    type: str
    required: true
  lan:
    description: The LAN or link.
    type: str
    required: true
  path:
    description: Where the pcap file is written on this host.
    type: path
    required: true
  seconds:
    description: Stop after this many seconds.
    type: int
    default: 10
  count:
    description: Stop after this many packets.
    type: int
  filter:
    description: A BPF filter (tcpdump's syntax), e.g. C(icmp) or C(tcp port 5201).
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common
attributes:
  check_mode:
    details: In check mode only the interface is found, nothing is captured.
"""

EXAMPLES = r"""
- name: Capture ICMP of node a on lan0
  testbed.containers.node_capture:
    plan: "{{ record.plan }}"
    node: a
    lan: lan0
    path: /tmp/a-lan0.pcap
    filter: icmp
    seconds: 5
"""

RETURN = r"""
interface:
  description: The host interface captured on.
  returned: always
  type: str
packets:
  description: Packets in the pcap file.
  returned: success
  type: int
seconds:
  description: How long the capture ran.
  returned: success
  type: float
path:
  description: The pcap file on this host.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import capture


def main():
    module = AnsibleModule(
        argument_spec=dict(
            plan=dict(type="dict", required=True),
            node=dict(type="str", required=True),
            lan=dict(type="str", required=True),
            path=dict(type="path", required=True),
            seconds=dict(type="int", default=10),
            count=dict(type="int"),
            filter=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        _host, interface = capture.locate(p["plan"], p["node"], p["lan"])
        if module.check_mode:
            module.exit_json(changed=False, interface=interface)
        packets, took = capture.capture(interface, p["path"], p["seconds"], p["count"], p["filter"])
    except capture.CaptureError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, interface=interface, packets=packets, seconds=round(took, 2), path=p["path"])


if __name__ == "__main__":
    main()
