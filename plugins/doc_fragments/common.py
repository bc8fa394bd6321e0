# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """What every module of the collection shares: its attributes' usual values (a module's own
    entries override them) and its author."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
author:
  - testbed.containers contributors (!UNKNOWN)
"""

    # The registry option of the modules that pull from or push to the testbed registry.
    REGISTRY = r"""
options:
  registry:
    description:
      - The testbed registry (the C(testbed_registry) fact of the P(testbed.containers.registry#role) role),
        a dict with C(registry) (C(ADDRESS:PORT)) and C(credentials) (C(username), C(password)).
      - What the module pulls from it or pushes to it is in its description.
    type: dict
    suboptions:
      registry:
        description: The registry as Docker names it, C(ADDRESS:PORT).
        type: str
        required: true
      ca_cert:
        description: The registry's CA certificate (PEM); not used here (the host trusts it already).
        type: str
      credentials:
        description: The registry login.
        type: dict
        suboptions:
          username:
            description: Registry user.
            type: str
            default: testbed
          password:
            description: Registry password.
            type: str
            required: true
"""

    # The experiment a module acts on, by project and name.
    EXPERIMENT = r"""
options:
  project:
    description: The experiment's project.
    type: str
    default: default
  name:
    description: The experiment's name.
    type: str
    required: true
"""
