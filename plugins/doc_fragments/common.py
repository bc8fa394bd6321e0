# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """What every module of the collection shares: its attributes' usual values (a module's own
    entries override them) and its author; then the options and attributes several modules share.

    A module lists the fragments it takes before ``testbed.containers.common`` itself: Ansible merges
    fragments in order and keeps a value already there, so ``common`` gives only what no earlier
    fragment (nor the module) set, e.g. the C(diff_mode) C(support: partial) of ``common.operations``.
    Each fragment is a plain string (ansible-test reads them without running this file)."""

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

    # Where a host keeps its experiments (the modules that read or write a slice's record on a host).
    STATE_DIR = r"""
options:
  state_dir:
    description: Where the host keeps experiment records, per-node files and locks.
    type: path
    default: /var/lib/testbed
"""

    # The host's control network settings, as every module that converges nodes on a host takes them.
    CONTROL = r"""
options:
  control:
    description:
      - Settings of the host's control network; every key is optional.
      - C(control_subnet) (default C(172.30.0.0/16)) is the subnet of the Docker network C(dockercnet).
      - C(ssh_ports) (default C([30000, 39999])) is the range of public SSH ports of the nodes.
      - C(exec_subnet) (default C(169.254.240.0/20)) holds one local address per node for exec-style SSH.
      - C(exec_port) (default C(2222)) is the port of the host's exec-style sshd.
      - C(control_interface) (default none) is a NIC on the testbed's control LAN, bridged into C(dockercnet) so the
        LAN reaches the nodes' control addresses without NAT (nodes only answer through it).
    type: dict
"""

    # The wait for an experiment's lock on a host (the slice and event modules).
    LOCK_TIMEOUT = r"""
options:
  lock_timeout:
    description:
      - Seconds to wait for the experiment's lock on this host when another swap-in, teardown, event or the
        host agent holds it; then fail naming the holder (its process, what it does, for how long).
      - The holder may be a module whose ansible-playbook was killed; it finishes its work first.
    type: int
    default: 900
"""

    # Where the controller keeps its experiment records.
    RECORD_DIR = r"""
options:
  record_dir:
    description: Directory of the controller's experiment records.
    type: path
    default: ~/.testbed/experiments
"""

    # The plan a controller module acts on.
    PLAN = r"""
options:
  plan:
    description: The experiment's plan (the result of M(testbed.containers.experiment_plan), or the C(plan) of its record).
    type: dict
    required: true
"""

    # The attributes of a module that only reads.
    READS_ONLY = r"""
attributes:
  check_mode:
    details: Reads only.
"""

    # The attributes of a module that returns its operations (also in check mode) as its diff.
    OPERATIONS = r"""
attributes:
  check_mode:
    details: Reports the operations it would do without doing them.
  diff_mode:
    support: partial
    details: The diff lists the operations, not file contents.
"""
