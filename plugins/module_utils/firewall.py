# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iptables rules the experiments own (decision 1 of the design).

dockerd sets the FORWARD policy to DROP and bridge-nf-call-iptables=1, so frames between two
nodes on an experiment bridge traverse FORWARD and are dropped.  Rather than flip either
global, a chain of ours (``TESTBED-LANS``), jumped from ``DOCKER-USER``, holds one
``-i BR -o BR -j ACCEPT`` rule per experiment bridge, commented ``testbed:PROJECT/NAME``.
Teardown deletes exactly the rules with its comment, and the chain when it is empty, so
``iptables-save`` after teardown equals the one before swap-in.  The ``iptables`` on PATH is
the flavour dockerd uses (nft on Debian 12).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex
import subprocess

from ansible_collections.testbed.containers.plugins.module_utils.names import FIREWALL_CHAIN


class FirewallError(Exception):
    pass


def _iptables(*args, check=True):
    proc = subprocess.run(("iptables", "-w", "10") + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if check and proc.returncode != 0:
        raise FirewallError("iptables %s failed: %s" % (" ".join(args), proc.stderr.strip()))
    return proc


def _hook_chain():
    """DOCKER-USER when dockerd manages iptables, FORWARD otherwise."""
    return "DOCKER-USER" if _iptables("-S", "DOCKER-USER", check=False).returncode == 0 else "FORWARD"


def lan_rules(comment):
    """The bridges that have an ACCEPT rule with ``comment``, as {bridge: rule args}."""
    proc = _iptables("-S", FIREWALL_CHAIN, check=False)
    if proc.returncode != 0:
        return {}
    rules = {}
    for line in proc.stdout.splitlines():
        args = shlex.split(line)
        if args[:2] != ["-A", FIREWALL_CHAIN] or "--comment" not in args:
            continue
        if args[args.index("--comment") + 1] != comment:
            continue
        bridge = args[args.index("-i") + 1] if "-i" in args else None
        rules[bridge] = args[2:]
    return rules


def ensure_lan_rules(bridges, comment, dry_run=False):
    """Exactly one ACCEPT rule per bridge in ``bridges`` carries ``comment``."""
    ops = []
    have = lan_rules(comment)
    for bridge, args in sorted(have.items()):
        if bridge not in bridges:
            ops.append("remove firewall rule for %s" % bridge)
            if not dry_run:
                _iptables("-D", FIREWALL_CHAIN, *args)
    missing = [b for b in bridges if b not in have]
    if missing and not dry_run:
        _ensure_chain()
    for bridge in missing:
        ops.append("accept forwarding on bridge %s" % bridge)
        if not dry_run:
            _iptables("-A", FIREWALL_CHAIN, "-i", bridge, "-o", bridge, "-m", "comment", "--comment", comment,
                      "-j", "ACCEPT")
    if not dry_run and not bridges:
        _drop_chain_if_empty()
    return ops


def remove_rules(comment, dry_run=False):
    return ensure_lan_rules([], comment, dry_run)


def _ensure_chain():
    if _iptables("-S", FIREWALL_CHAIN, check=False).returncode != 0:
        _iptables("-N", FIREWALL_CHAIN)
    hook = _hook_chain()
    if _iptables("-C", hook, "-j", FIREWALL_CHAIN, check=False).returncode != 0:
        _iptables("-I", hook, "1", "-j", FIREWALL_CHAIN)


def _drop_chain_if_empty():
    proc = _iptables("-S", FIREWALL_CHAIN, check=False)
    if proc.returncode != 0:
        return
    if any(line.startswith("-A ") for line in proc.stdout.splitlines()):
        return
    for hook in ("DOCKER-USER", "FORWARD"):
        while _iptables("-C", hook, "-j", FIREWALL_CHAIN, check=False).returncode == 0:
            _iptables("-D", hook, "-j", FIREWALL_CHAIN)
    _iptables("-X", FIREWALL_CHAIN)
