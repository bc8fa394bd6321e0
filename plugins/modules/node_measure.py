#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: node_measure
short_description: Measure RTT and TCP throughput of one path of the fidelity experiment on this host
version_added: 0.2.0
description:
  - The host side of the fidelity report (playbooks/fidelity.yml, docs/fidelity.md).
  - O(action=probe) returns the kernel features the measured paths need that this host lacks (C(vxlan); C(htb),
    C(ifb), C(ingress), C(u32), C(mirred) for the shaping qdiscs; C(netem) for the delay).
  - O(action=measure) measures one path of the swapped-in experiment (one of M(testbed.containers.experiment_fidelity)'s
    C(measurements)) whose client is on this host - O(count) pings O(interval) seconds apart (after 3 unmeasured ones)
    and O(seconds) of C(iperf3 -c). Between nodes the tools run in the client node through the engine. The C(netns)
    baseline is two network namespaces joined by a veth pair, made with pyroute2 for the measurement and removed
    at once; there, and between the hosts' tunnel addresses, the tools are the measurement node's own (the process
    enters its mount namespace), so the host needs neither ping nor iperf3. A measurement that fails is returned
    with its C(error); the module does not fail.
  - O(action=serve), on the peer host of a C(hosts) item, starts the iperf3 server of the hosts' own path on this
    host's tunnel address and port O(port), left running until O(action=cleanup).
  - O(action=cleanup) stops the experiment's measurement processes on this host and removes baseline namespaces
    and server logs a failed run left.
requirements:
  - docker (Docker SDK for Python)
  - pyroute2
options:
  action:
    description: What to do.
    type: str
    choices: [probe, measure, serve, cleanup]
    default: measure
  plan:
    description: The experiment's recorded plan (its record's C(plan)); needed except for O(action=probe).
    type: dict
  item:
    description: The path to measure or serve (one of M(testbed.containers.experiment_fidelity)'s C(measurements)).
    type: dict
  host:
    description: This host's inventory name, as the plan knows it.
    type: str
  count:
    description: Pings measured.
    type: int
    default: 200
  interval:
    description: Seconds between two pings.
    type: float
    default: 0.01
  seconds:
    description: Seconds of each iperf3 test.
    type: int
    default: 3
  port:
    description: TCP port of the iperf3 server of the hosts' own path (the nodes' servers listen on 5201).
    type: int
    default: 5201
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common
attributes:
  check_mode:
    support: none
    details: It measures, so it runs only for real.
"""

EXAMPLES = r"""
- name: Measure one path on the host that holds its client
  testbed.containers.node_measure:
    plan: "{{ record.plan }}"
    item: "{{ item }}"
    host: "{{ item.host }}"
  delegate_to: "{{ item.host }}"
  loop: "{{ fidelity_design.measurements }}"
"""

RETURN = r"""
missing:
  description: With O(action=probe), the kernel features this host lacks (preflight's names).
  returned: action is probe
  type: list
  elements: str
result:
  description:
    - With O(action=measure), the item with C(address) (pinged and connected to), C(rtt) (C(sent), C(received),
      C(loss), and in milliseconds C(min), C(median), C(p99), C(max), C(mean)), C(tcp) (C(bits_per_second) as
      received, C(sent_bits_per_second), C(retransmits), C(bytes), C(seconds)) and C(error) (why it failed, or null).
  returned: action is measure
  type: dict
pid:
  description: With O(action=serve), the server's process id.
  returned: action is serve
  type: int
operations:
  description: With O(action=cleanup), what was stopped or removed.
  returned: action is cleanup
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.testbed.containers.plugins.module_utils import engine, measure, netlink


def _measure(p):
    host = measure.HostMeasure(p["plan"], p["host"], p["count"], p["interval"], p["seconds"], p["port"])
    return False, {"result": host.measure(p["item"])}


def _serve(p):
    return True, {"pid": measure.HostMeasure(p["plan"], p["host"], port=p["port"]).serve(p["item"])}


def _cleanup(p):
    ops = measure.cleanup(p["plan"])
    return bool(ops), {"operations": ops}


ACTIONS = {"probe": lambda p: (False, {"missing": measure.probe()}), "measure": _measure, "serve": _serve,
           "cleanup": _cleanup}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=sorted(ACTIONS), default="measure"),
            plan=dict(type="dict"), item=dict(type="dict"), host=dict(type="str"),
            count=dict(type="int", default=200), interval=dict(type="float", default=0.01),
            seconds=dict(type="int", default=3), port=dict(type="int", default=measure.IPERF3_PORT),
        ),
        required_if=[("action", "measure", ("plan", "item")), ("action", "serve", ("plan", "item")),
                     ("action", "cleanup", ("plan",))],
        supports_check_mode=False,
    )
    for ok, lib in ((engine.HAS_DOCKER, "docker"), (netlink.HAS_PYROUTE2, "pyroute2")):
        if not ok:
            module.fail_json(msg=missing_required_lib(lib))
    try:
        changed, result = ACTIONS[module.params["action"]](module.params)
    except (measure.MeasureError, engine.EngineError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
