# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: progress
type: aggregate
short_description: Print each host's swap-in progress while its slice converges
version_added: 0.2.0
description:
  - The slice role converges a big slice as an asynchronous job and polls
    M(testbed.containers.experiment_progress) until it finishes. Ansible's own output shows only
    C(FAILED - RETRYING) for each poll; this callback prints the progress line of each poll instead
    (phase, nodes plumbed of the total, created, started, seconds), one line per host and poll.
  - Enable it with C(callbacks_enabled = testbed.containers.progress) in C(ansible.cfg) (the
    repository's ansible.cfg does) or C(ANSIBLE_CALLBACKS_ENABLED=testbed.containers.progress).
requirements:
  - enable in configuration
"""

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "testbed.containers.progress"
    CALLBACK_NEEDS_ENABLED = True

    def v2_runner_retry(self, result):
        res = result._result  # pylint: disable=protected-access
        if not isinstance(res, dict) or not res.get("testbed_progress"):
            return
        self._display.display("  progress [%s]: %s" % (result._host.get_name(), res.get("line", "")))  # pylint: disable=protected-access
