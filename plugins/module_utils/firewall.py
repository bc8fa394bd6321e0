# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iptables rules the experiments own, kept declaratively in chains of our own.

Why chains of ours (decision 1 of the design): dockerd sets the FORWARD policy to DROP and
bridge-nf-call-iptables=1, so frames between two nodes on an experiment bridge traverse
FORWARD and are dropped.  Rather than flip either global, ``TESTBED-LANS`` (jumped from
``DOCKER-USER``) holds one ``-i BR -o BR -j ACCEPT`` rule per experiment bridge.  The control
network adds ``TESTBED-SPOOF`` (anti-spoofing, from DOCKER-USER and INPUT), ``TESTBED-NODES``
(connections DNATed to a node's own SSH server, from DOCKER-USER) and, in the nat table,
``TESTBED-SSH`` (a node's SSH port, from PREROUTING and OUTPUT) and ``TESTBED-HAIRPIN``
(``ssh -p PORT USER@localhost`` into a node's own SSH server, from POSTROUTING).

Every rule carries the comment ``OWNER DIGEST``: OWNER is ``testbed:PROJECT/NAME`` (or
``testbed:host`` for host-wide rules) and DIGEST a hash of the rule's arguments, so a rule is
compared by its comment, not by how iptables prints it back.  ``ensure_rules`` makes an
owner's rules exactly the desired set and removes a chain and its jumps once empty, so
``iptables-save`` after teardown equals the one before swap-in.  The ``iptables`` on PATH is
the flavour dockerd uses (nft on Debian 12).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex
import subprocess

from ansible_collections.testbed.containers.plugins.module_utils.names import (
    CONTROL_NETWORK, GUARD_CHAIN, HAIRPIN_CHAIN, LAN_CHAIN, NODES_CHAIN, SPOOF_CHAIN, SSH_CHAIN, short_hash)
# (table, chain) -> the jumps into it: (hook chain, match arguments), inserted first.
HOOKS = {
    LAN_CHAIN: [("DOCKER-USER", [])],
    SPOOF_CHAIN: [("DOCKER-USER", ["-i", CONTROL_NETWORK]), ("INPUT", ["-i", CONTROL_NETWORK])],
    SSH_CHAIN: [("PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL"]),
                ("OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL"])],
    GUARD_CHAIN: [("INPUT", [])],
    NODES_CHAIN: [("DOCKER-USER", [])],
    HAIRPIN_CHAIN: [("POSTROUTING", ["-o", CONTROL_NETWORK])],
}
CHAINS = list(HOOKS)


class FirewallError(Exception):
    pass


def _iptables(table, *args, check=True):
    proc = subprocess.run(("iptables", "-w", "10", "-t", table) + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if check and proc.returncode != 0:
        raise FirewallError("iptables -t %s %s failed: %s" % (table, " ".join(args), proc.stderr.strip()))
    return proc


def comment_of(owner, args):
    return "%s %s" % (owner, short_hash(" ".join(args), 10))


def _hook_of(table, hook):
    """DOCKER-USER when dockerd manages iptables, FORWARD otherwise."""
    if hook == "DOCKER-USER" and _iptables(table, "-S", hook, check=False).returncode != 0:
        return "FORWARD"
    return hook


def owned_rules(table, chain, owner):
    """comment -> the rule's arguments (after ``-A CHAIN``) for the rules of ``owner``."""
    proc = _iptables(table, "-S", chain, check=False)
    if proc.returncode != 0:
        return {}
    rules = {}
    for line in proc.stdout.splitlines():
        args = shlex.split(line)
        if args[:2] != ["-A", chain] or "--comment" not in args:
            continue
        comment = args[args.index("--comment") + 1]
        if comment == owner or comment.startswith(owner + " "):
            rules[comment] = args[2:]
    return rules


def ensure_rules(owner, desired, dry_run=False, sweep=False):
    """Make the rules of ``owner`` exactly ``desired``: {(table, chain): [args, ...]}.

    Chains not named in ``desired`` lose all of the owner's rules.  With ``sweep``, every chain
    the owner wants nothing in is also removed when it is empty though the owner had no rule
    there: a run killed between removing the last rules and their chain left it (teardown
    sweeps).  Returns the operations.
    """
    ops = []
    batches = {}  # table -> iptables-restore lines: one process per table, not one per rule
    emptied = []
    swept = []
    for table, chain in CHAINS:
        want = dict((comment_of(owner, args), args) for args in desired.get((table, chain), []))
        have = owned_rules(table, chain, owner)
        lines = batches.setdefault(table, [])
        for comment, args in sorted(have.items()):
            if comment not in want:
                ops.append("remove %s rule %s" % (chain, " ".join(args)))
                lines.append(_restore_line(["-D", chain] + list(args)))
        missing = [(c, a) for c, a in want.items() if c not in have]
        if missing and not dry_run:
            _ensure_chain(table, chain)
        for comment, args in missing:
            ops.append("add %s rule %s" % (chain, " ".join(args)))
            lines.append(_restore_line(["-A", chain] + list(args) + ["-m", "comment", "--comment", comment]))
        if not want and have:
            emptied.append((table, chain))
        elif not want and sweep:
            swept.append((table, chain))
    if not dry_run:
        for table, lines in batches.items():
            if lines:
                _restore(table, lines)
        for table, chain in emptied:
            _drop_chain_if_empty(table, chain)
        for table, chain in swept:
            if _drop_chain_if_empty(table, chain):
                ops.append("remove empty chain %s (left by a killed run)" % chain)
    return ops


def _restore_line(args):
    return " ".join('"%s"' % a if (" " in a or not a) else a for a in args)


def _restore(table, lines):
    text = "*%s\n%s\nCOMMIT\n" % (table, "\n".join(lines))
    proc = subprocess.run(("iptables-restore", "-w", "10", "--noflush"), input=text, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if proc.returncode != 0:
        raise FirewallError("iptables-restore of table %s failed: %s\n%s" % (table, proc.stderr.strip(), text))


def remove_rules(owner, dry_run=False):
    """Remove every rule of ``owner``, and every chain of ours left empty (also by a killed run)."""
    return ensure_rules(owner, {}, dry_run, sweep=True)


def _jumps_to(table, hook, chain):
    """The rules of ``hook`` that jump to ``chain``, as argument lists after ``-A HOOK``."""
    proc = _iptables(table, "-S", hook, check=False)
    jumps = []
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        args = shlex.split(line)
        if args[:2] == ["-A", hook] and args[-2:] == ["-j", chain]:
            jumps.append(args[2:])
    return jumps


def _ensure_chain(table, chain):
    """The chain exists and is jumped to exactly as HOOKS says (a jump an earlier version made
    with other matches is replaced)."""
    if _iptables(table, "-S", chain, check=False).returncode != 0:
        _iptables(table, "-N", chain)
    hooks = {}
    for hook, match in HOOKS[(table, chain)]:
        hooks.setdefault(_hook_of(table, hook), []).append(list(match) + ["-j", chain])
    for hook, wanted in hooks.items():
        present = _jumps_to(table, hook, chain)
        for jump in present:
            if jump not in wanted:
                _iptables(table, "-D", hook, *jump)
        for jump in wanted:
            if _iptables(table, "-C", hook, *jump, check=False).returncode != 0:
                _iptables(table, "-I", hook, "1", *jump)


def _drop_chain_if_empty(table, chain):
    """Remove an empty chain with every jump to it (whatever matches the jump has); True if it did."""
    proc = _iptables(table, "-S", chain, check=False)
    if proc.returncode != 0 or any(line.startswith("-A ") for line in proc.stdout.splitlines()):
        return False
    for hook, _match in HOOKS[(table, chain)]:
        for name in set((hook, _hook_of(table, hook))):
            for jump in _jumps_to(table, name, chain):
                _iptables(table, "-D", name, *jump)
    _iptables(table, "-X", chain)
    return True


def lan_rules(bridges):
    """Accept forwarding between the ports of each experiment bridge."""
    return [["-i", b, "-o", b, "-j", "ACCEPT"] for b in bridges]
