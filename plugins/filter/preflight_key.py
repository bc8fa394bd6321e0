# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host's passed preflight depends on, as one digest (filter ``preflight_key``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: preflight_key
short_description: The digest a host's passed preflight is stamped with
version_added: 0.1.0
description:
  - A SHA-256 digest of what the host role's preflight (module C(host_preflight)) checks against and
    of the code it and the host agent run (the kernel features and LANs of the plan, the control
    settings, the host's name, its modules' Python, and the source of this collection's module_utils
    on the controller).
  - C(host_preflight) given this digest as C(stamp) writes it, with the kernel's boot id, on the
    host once the host passed; the host role skips the preflight when the host's stamp holds the same
    digest and boot id, its engine answers and its agent and the agent's supervisor run (a no-change
    re-run saves a module run per host). Any change of these inputs, a reboot or new code runs it again.
positional: _input
options:
  _input:
    description: What the preflight checks against (features, lans, control, host, python), any JSON value.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: The digest of this host's preflight
  ansible.builtin.set_fact:
    testbed_host_preflight_key: "{{ [features, lans, control, inventory_hostname, python] | testbed.containers.preflight_key }}"
"""

RETURN = r"""
_value:
  description: The digest, 64 hexadecimal digits.
  type: str
"""

import hashlib
import json
import os

_CODE = []


def code_digest():
    """SHA-256 of every module_utils source file of this collection (read once per process)."""
    if not _CODE:
        base = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
        digest = hashlib.sha256()
        for name in sorted(os.listdir(base)):
            if name.endswith(".py"):
                with open(os.path.join(base, name), "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read() + b"\0")
        _CODE.append(digest.hexdigest())
    return _CODE[0]


def preflight_key(inputs):
    """See DOCUMENTATION."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256((text + "\0" + code_digest()).encode()).hexdigest()


class FilterModule:
    """testbed.containers filters."""

    def filters(self):
        return {"preflight_key": preflight_key}
