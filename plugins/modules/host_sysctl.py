#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_sysctl
short_description: Raise the kernel settings a physical host with many nodes needs
version_added: 0.1.0
description:
  - Sets each kernel setting (sysctl) of O(settings) on the running kernel and writes them all
    to O(persist) so that they hold after a reboot.
  - A number is a minimum, a larger current value is kept (an operator who raised a limit
    further is not overruled); a string is an exact value, compared word by word.
  - Fails naming the key when the kernel has no such setting, before writing anything, unless
    the key is in O(optional); then it is skipped with one warning naming every such key.
options:
  settings:
    description:
      - Mapping of sysctl keys (dotted, as C(sysctl) names them) to a number (minimum) or a
        string (exact value).
    type: dict
    required: true
  optional:
    description:
      - Keys of O(settings) that may be missing on this kernel (the host role's defaults the user did
        not set); they are skipped with a warning, and left out of O(persist).
    type: list
    elements: str
    default: []
  persist:
    description:
      - The C(sysctl.d) file that applies the same settings at boot; an empty string writes none.
      - Named C(60-...) by default so that an operator's later file wins.
    type: str
    default: /etc/sysctl.d/60-testbed.conf
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - testbed.containers.common
attributes:
  diff_mode:
    support: full
    details: Shows the settings it would raise, as before and after values.
"""

EXAMPLES = r"""
- name: Let the host run hundreds of nodes
  testbed.containers.host_sysctl:
    settings:
      net.ipv4.ip_forward: 1
      fs.inotify.max_user_instances: 8192
      kernel.pid_max: 4194304
"""

RETURN = r"""
raised:
  description: The settings written on the running kernel, each with its value before and after.
  returned: success
  type: dict
  sample: {"fs.inotify.max_user_instances": {"before": "128", "after": "8192"}}
skipped:
  description: Keys of O(optional) this kernel does not have, left alone.
  returned: success
  type: list
  elements: str
  sample: [net.ipv4.neigh.default.gc_thresh1]
persisted:
  description: Whether the O(persist) file was (or in check mode would be) written.
  returned: success
  type: bool
"""

import platform

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.testbed.containers.plugins.module_utils import preflight


def main():
    module = AnsibleModule(
        argument_spec=dict(settings=dict(type="dict", required=True),
                           optional=dict(type="list", elements="str", default=[]),
                           persist=dict(type="str", default="/etc/sysctl.d/60-testbed.conf")),
        supports_check_mode=True,
    )
    p = module.params
    try:
        changed, _ops, result = preflight.converge_sysctls(p["settings"], p["optional"], p["persist"], platform.node(),
                                                           dry_run=module.check_mode, diff=module._diff,
                                                           warn=module.warn)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    except preflight.SysctlError as exc:
        module.fail_json(msg=str(exc), raised=exc.raised)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
