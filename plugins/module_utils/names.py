# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names of the objects an experiment owns (decision 3 of the design).

Linux interface names are at most 15 characters, and two experiments on one host may use
the same node and LAN names, so kernel names are a fixed prefix, a short hash of
(project, name) and a short hash of the object.  The readable name goes into the interface
alias (``testbed:PROJECT/NAME/...``), which teardown checks before it deletes anything.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

PREFIX = "tb"
LABEL_PROJECT = "testbed.project"
LABEL_EXPERIMENT = "testbed.experiment"
LABEL_NODE = "testbed.node"
LABEL_CONFIG = "testbed.config-hash"
LABEL_VOLUME = "testbed.volume"
LABEL_KEEP = "testbed.keep"
CONTROL_NETWORK = "dockercnet"
# iptables chains of ours, as (table, chain): see firewall.py for what each holds
LAN_CHAIN = ("filter", "TESTBED-LANS")
SPOOF_CHAIN = ("filter", "TESTBED-SPOOF")
SSH_CHAIN = ("nat", "TESTBED-SSH")
GUARD_CHAIN = ("filter", "TESTBED-INPUT")
NODES_CHAIN = ("filter", "TESTBED-NODES")
HAIRPIN_CHAIN = ("nat", "TESTBED-HAIRPIN")
# the owner of host-wide rules and interfaces (an experiment's is firewall_comment(project, name))
HOST_OWNER = "testbed:host"


def short_hash(text, length):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def experiment_key(project, name):
    return "%s/%s" % (project, name)


def kernel_prefix(project, name):
    """Every kernel object of the experiment starts with this (7 characters)."""
    return PREFIX + short_hash(experiment_key(project, name), 5)


def bridge_name(project, name, lan):
    return kernel_prefix(project, name) + "b" + short_hash("lan/" + lan, 7)


def vxlan_name(project, name, lan):
    return kernel_prefix(project, name) + "x" + short_hash("vxlan/" + lan, 7)


def vlan_name(project, name, lan):
    return kernel_prefix(project, name) + "q" + short_hash("vlan/" + lan, 7)


def vlan_id(project, name, lan, attempt=0):
    """An 802.1Q VLAN id (2 .. 4094) per experiment LAN in VLAN mode; the planner probes again
    (``attempt``) when two LANs of one experiment meet, the hosts detect other experiments'."""
    suffix = "" if attempt == 0 else "/%d" % attempt
    return int(short_hash("vid/%s/%s/%s%s" % (project, name, lan, suffix), 8), 16) % 4093 + 2


def tunnel_id(project, name, lan):
    """A VXLAN network identifier (1 .. 2**24-2) per experiment LAN; collisions are detected
    on the hosts (the kernel refuses a second device with the same id)."""
    return int(short_hash("vni/%s/%s/%s" % (project, name, lan), 8), 16) % (2 ** 24 - 2) + 1


def veth_name(project, name, node, lan):
    return kernel_prefix(project, name) + "v" + short_hash("veth/%s/%s" % (node, lan), 7)


def ifb_name(veth):
    """The IFB shaping traffic from the node behind ``veth``: our veths are PREFIX(7) + 'v' +
    7 hex, the IFB takes 'i' in place of the 'v'; any other name gets a hash-derived one."""
    if len(veth) == 15 and veth[7] == "v":
        return veth[:7] + "i" + veth[8:]
    return veth[:7] + "i" + short_hash("ifb/" + veth, 7)


def port_ifb(project, name, host, interface):
    """The IFB shaping what a host's NIC on a LAN (a port) brings in: the experiment's prefix."""
    return kernel_prefix(project, name) + "i" + short_hash("ifb/port/%s/%s" % (host, interface), 7)


def stack_names(project, name, host, lan):
    """(stack, port): the veth pair that puts a host's own network stack on a LAN; ``stack``
    keeps the host's address and routes on the LAN, ``port`` is the bridge's end."""
    tail = short_hash("stack/%s/%s" % (host, lan), 7)
    return kernel_prefix(project, name) + "h" + tail, kernel_prefix(project, name) + "g" + tail


def is_stack(ifname):
    """Is ``ifname`` the host end of an experiment's veth to a host's own stack (stack_names)?"""
    return len(ifname) == 15 and ifname.startswith(PREFIX) and ifname[7] == "h"


def alias(project, name, *parts):
    """The readable name stored as the interface alias; the ownership proof for teardown."""
    return "testbed:" + "/".join((project, name) + parts)


def alias_prefix(project, name):
    return alias(project, name) + "/"


def container_name(project, name, node):
    # '_' never occurs in project, experiment or node names, so the name is unambiguous.
    return "tb_%s_%s_%s" % (project, name, node)


def volume_name(project, name, node, volume):
    """The Docker volume of a node's named volume (the container name's scheme: unambiguous)."""
    return "tb_%s_%s_%s_%s" % (project, name, node, volume)


def account_uid(user, attempt=0):
    """The uid (and gid) of an account whose home is on a project's shared directory: the same
    on every node of every experiment, so its files keep their owner (2000 .. 59999; the planner
    probes again on a collision)."""
    return 2000 + int(short_hash("uid/%s/%d" % (user, attempt), 8), 16) % 58000


def firewall_comment(project, name):
    return "testbed:" + experiment_key(project, name)


def mac_address(project, name, node, lan, attempt=0):
    """A locally administered unicast MAC derived from the attachment."""
    digest = short_hash("mac/%s/%s/%s/%s/%d" % (project, name, node, lan, attempt), 10)
    return "02:" + ":".join(digest[i:i + 2] for i in range(0, 10, 2))
