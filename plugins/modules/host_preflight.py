#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_preflight
short_description: Check that a physical host can realize experiments
version_added: 0.1.0
description:
  - Checks that the Python on the host has the Docker SDK and pyroute2, the Docker engine
    answers, C(iptables) is installed, and the kernel has each feature in O(features).
  - Kernel features are probed by creating and deleting a throwaway object of each kind.
  - Fails with a message naming the host, each missing feature and the kernel option that
    provides it. Changes nothing, but for the agent with O(agent).
  - With O(agent), once the checks pass, also runs the host agent as M(testbed.containers.host_agent)
    does (one module run less per host in a swap-in).
requirements:
  - docker (Docker SDK for Python)
  - pyroute2
options:
  features:
    description: Kernel features to check.
    type: list
    elements: str
    default: [bridge, veth]
  lans:
    description:
      - The plan's LANs (C(testbed_plan.lans)); those with a member on O(host) must not overlap a route of
        the host's own (its uplink's subnet, C(docker0), ...), or the nodes could not reach those addresses.
    type: dict
    default: {}
  host:
    description: The inventory name of this host, as the plan names it.
    type: str
  agent:
    description: Also run the host agent (M(testbed.containers.host_agent) with O(control)) once the checks pass.
    type: bool
    default: false
  stamp:
    description:
      - Once the host passed (and its agent runs, with O(agent)), write this digest (filter
        C(testbed.containers.preflight_key) of the checks' inputs) with the kernel's boot id to the host's
        C(preflight.stamp) in the control settings' C(host_dir), so the host role can skip the next preflight
        with the same inputs (docs/performance.md). A failed preflight removes the stamp. Not written in check mode.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.control
  - testbed.containers.common
attributes:
  check_mode:
    details: Probes create and delete throwaway kernel objects in check mode too; nothing is left behind.
"""

EXAMPLES = r"""
- name: Check the host
  testbed.containers.host_preflight:
    features: [bridge, veth]
"""

RETURN = r"""
docker_version:
  description: The Docker engine's version.
  returned: success
  type: str
operations:
  description: What was done to run the agent (with O(agent)).
  returned: success
  type: list
  elements: str
agent_pid:
  description: The agent's pid (with O(agent)).
  returned: success
  type: int
"""

import platform
import sys

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.testbed.containers.plugins.module_utils import agent, control, engine, netlink, preflight


def main():
    module = AnsibleModule(
        argument_spec=dict(features=dict(type="list", elements="str", default=["bridge", "veth"]),
                           lans=dict(type="dict", default={}), host=dict(type="str"),
                           agent=dict(type="bool", default=False), control=dict(type="dict"),
                           stamp=dict(type="str")),
        supports_check_mode=True,
    )
    host = platform.node()
    for ok, lib in ((engine.HAS_DOCKER, "docker"), (netlink.HAS_PYROUTE2, "pyroute2")):
        if not ok:
            module.fail_json(msg="%s: %s" % (host, missing_required_lib(lib)))
    try:
        problems, version = preflight.check_host(module.params["features"], module.params["lans"],
                                                 module.params["host"] or host)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    cfg = control.settings(module.params["control"])
    if problems:
        preflight.clear_stamp(cfg["host_dir"])
        module.fail_json(msg="host %s cannot realize this experiment: %s" % (host, "; ".join(problems)),
                         problems=problems)
    if not module.params["agent"]:
        preflight.write_stamp(cfg["host_dir"], module.params["stamp"], module.check_mode)
        module.exit_json(changed=False, docker_version=version)
    try:
        ops = agent.ensure_running(cfg, sys.executable, module.check_mode)
    except Exception as exc:
        preflight.clear_stamp(cfg["host_dir"])
        module.fail_json(msg="host agent: %s" % exc)
    preflight.write_stamp(cfg["host_dir"], module.params["stamp"], module.check_mode)
    module.exit_json(changed=bool(ops), operations=ops, docker_version=version, agent_pid=agent.agent_pid(cfg))


if __name__ == "__main__":
    main()
