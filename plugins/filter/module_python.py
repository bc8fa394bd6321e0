# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Python the collection's own modules run with on a host (filter ``module_python``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: module_python
short_description: The Python the collection's modules use on a host
version_added: 0.1.0
description:
  - The interpreter the roles and playbooks of testbed.containers set (as C(ansible_python_interpreter),
    on their own tasks only) for the modules of this collection on a host, so that an inventory's own
    C(ansible_python_interpreter), or Ansible's discovery, stays as it is for every other task.
  - The host's C(testbed_python) when the inventory sets it; else, for a host reached with the
    C(local) connection (the controller itself), the Python that runs ansible-playbook; else the
    virtualenv the host role installs, C(testbed_host_venv)/bin/python (default C(/opt/testbed/venv/bin/python)).
positional: _input, hostvars, controller_python
options:
  _input:
    description: The inventory name of the host.
    type: str
    required: true
  hostvars:
    description: Ansible's C(hostvars).
    type: dict
    required: true
  controller_python:
    description: C(ansible_playbook_python), the controller's Python.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Run a module of the collection with the collection's Python, whatever the inventory says
  testbed.containers.host_agent:
    control: {}
  vars:
    ansible_python_interpreter: "{{ inventory_hostname | testbed.containers.module_python(hostvars, ansible_playbook_python) }}"
"""

RETURN = r"""
_value:
  description: The path of the Python interpreter.
  type: str
"""

DEFAULT_VENV = "/opt/testbed/venv"


def _get(host_vars, key):
    try:
        return host_vars.get(key)
    # an undefined or broken variable counts as unset
    except Exception:  # pylint: disable=broad-except
        return None


def module_python(host, hostvars, controller_python):
    """See DOCUMENTATION."""
    try:
        host_vars = hostvars[host]
    except (KeyError, TypeError):
        host_vars = {}
    chosen = _get(host_vars, "testbed_python")
    if chosen:
        return str(chosen)
    connection = _get(host_vars, "ansible_connection")
    if connection == "local" or (connection is None and host in ("localhost", "127.0.0.1")):
        return str(controller_python)
    return "%s/bin/python" % str(_get(host_vars, "testbed_host_venv") or DEFAULT_VENV).rstrip("/")


class FilterModule:
    """testbed.containers filters."""

    def filters(self):
        return {"module_python": module_python}
