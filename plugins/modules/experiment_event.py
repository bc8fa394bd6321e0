#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: experiment_event
short_description: Check, apply and log one event of a running experiment (link down/up, node stop/start, shaping, exec)
version_added: 0.2.0
description:
  - An event is one line in the manner of Emulab's C(tevc) - C(link LAN down|up), C(link NODE:LAN down|up),
    C(node NODE stop|start|restart), C(shape LAN|NODE:LAN bandwidth=.. delay=.. jitter=.. loss=.. queue=..)
    (changed in place; C(none) removes a parameter), C(exec NODE COMMAND). docs/operate.md.
  - Without O(host) and O(results), checks the event against the experiment's recorded plan and returns the
    hosts it touches and each host's actions; nothing is changed.
  - With O(host), run on that host, waits until O(not_before), then applies that host's actions. A link or
    shaping event is also written into the host's record of the slice, so a node re-plumbed after a restart
    keeps it; a swap-in brings back what the experiment file says.
  - With O(results), run on the controller, appends the event, its time, timing error and each host's result
    to the experiment's event log beside its record (status.yml shows the last ones), and writes what a link
    or shaping event changed into the controller's record.
requirements:
  - docker (Docker SDK for Python), with O(host)
  - pyroute2, with O(host)
options:
  plan:
    description: The experiment's recorded plan (the C(plan) of its controller record).
    type: dict
    required: true
  event:
    description: The event, as text.
    type: str
    required: true
  host:
    description: Apply this host's part of the event (its inventory name, as the plan knows it).
    type: str
  not_before:
    description: Wait until this time (seconds since the epoch) before applying (scheduled events).
    type: float
  at:
    description: The event's time in its schedule (seconds after the schedule started), for the log.
    type: float
  stop_timeout:
    description: Seconds a stopped or restarted node has to exit before the engine kills it.
    type: int
    default: 5
  results:
    description: Each host's result of applying the event (the registered results of the O(host) calls); log them under O(record_dir).
    type: list
    elements: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common.state_dir
  - testbed.containers.common.control
  - testbed.containers.common.lock_timeout
  - testbed.containers.common.record_dir
  - testbed.containers.common
attributes:
  check_mode:
    details: In check mode the event is checked and resolved and the actions are listed, nothing is applied or logged.
"""

EXAMPLES = r"""
- name: Which hosts does the event touch?
  testbed.containers.experiment_event:
    plan: "{{ record.plan }}"
    event: link lan0 down
  register: testbed_event

- name: Apply it on each of them
  testbed.containers.experiment_event:
    plan: "{{ record.plan }}"
    event: "{{ testbed_event.event }}"
    host: "{{ item }}"
  delegate_to: "{{ item }}"
  loop: "{{ testbed_event.hosts }}"
"""

RETURN = r"""
event:
  description: The event's canonical text.
  returned: always
  type: str
  sample: link lan0 down
hosts:
  description: The hosts the event touches, in the plan's order.
  returned: always
  type: list
  elements: str
actions:
  description: Each host's actions.
  returned: always
  type: dict
operations:
  description: What was done on the host (O(host)).
  returned: with host
  type: list
  elements: str
applied_at:
  description: When the actions started (seconds since the epoch).
  returned: with host
  type: float
late:
  description: Seconds after O(not_before) the actions started (the timing error).
  returned: with host and not_before
  type: float
rc:
  description: The exit code of an C(exec) event's command.
  returned: with host, for exec
  type: int
output:
  description: The output of an C(exec) event's command (its last 20,000 characters).
  returned: with host, for exec
  type: str
entry:
  description: The logged entry (O(results)).
  returned: with results
  type: dict
line:
  description: The logged entry for people.
  returned: with results
  type: str
failed_hosts:
  description: The hosts where the event failed, each with its message (O(results)).
  returned: with results
  type: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import events, report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            plan=dict(type="dict", required=True),
            event=dict(type="str", required=True),
            host=dict(type="str"),
            not_before=dict(type="float"),
            at=dict(type="float"),
            state_dir=dict(type="path", default="/var/lib/testbed"),
            control=dict(type="dict"),
            lock_timeout=dict(type="int", default=900),
            stop_timeout=dict(type="int", default=5),
            results=dict(type="list", elements="dict"),
            record_dir=dict(type="path", default="~/.testbed/experiments"),
        ),
        mutually_exclusive=[("host", "results")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        text, actions = events.plan_event(p["plan"], p["event"])
    except events.EventError as exc:
        module.fail_json(msg=str(exc))
    out = {"event": text, "hosts": list(actions), "actions": actions}
    if p["results"] is not None:
        entry, failed = report.log_event(p["record_dir"], p["plan"], text, p["at"], p["results"], actions,
                                         module.check_mode)
        module.exit_json(changed=not module.check_mode, entry=entry, line=report.event_line(entry), failed_hosts=failed,
                         **out)
    if not p["host"]:
        module.exit_json(changed=False, **out)
    from ansible_collections.testbed.containers.plugins.module_utils import operate
    applier = operate.HostEvents(p["plan"], p["host"], p["state_dir"], p["control"], p["lock_timeout"],
                                 module.check_mode, p["stop_timeout"])
    try:
        result = applier.result(actions.get(p["host"], []), p["not_before"])
    except Exception as exc:  # every failure is the event's: shown and logged, never a traceback alone
        module.fail_json(msg="%s: %s: %s" % (p["host"], text, exc), host=p["host"], operations=applier.ops,
                         exception=traceback.format_exc(), **out)
    module.exit_json(**dict(out, **result))


if __name__ == "__main__":
    main()
