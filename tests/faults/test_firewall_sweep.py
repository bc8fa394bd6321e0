"""A teardown killed between removing an experiment's last iptables rules and removing their
now empty chains left the chains and their jumps (CI, kill at 70% of tests/faults/
test_kill_playbooks.py: TESTBED-LANS and TESTBED-SPOOF with their jumps from DOCKER-USER and
INPUT). The next teardown had no rule of that experiment left to remove and kept them; it now
sweeps every empty chain of ours (real iptables, as the killed run leaves them)."""
import pytest

from ansible_collections.testbed.containers.plugins.module_utils import firewall
from ansible_collections.testbed.containers.plugins.module_utils.names import LAN_CHAIN, SPOOF_CHAIN

from helpers import iptables_rules, sh


@pytest.fixture
def no_experiment_running():
    before = iptables_rules()
    if any(LAN_CHAIN[1] in line or SPOOF_CHAIN[1] in line for line in before):
        pytest.skip("an experiment's chains are on this host: the sweep would be checked against its rules")
    yield before
    for table, chain in (LAN_CHAIN, SPOOF_CHAIN):
        firewall._drop_chain_if_empty(table, chain)


def test_a_teardown_removes_the_empty_chains_a_killed_teardown_left(no_experiment_running):
    before = no_experiment_running
    owner = "testbed:faults/sweep"
    lan = {LAN_CHAIN: [["-i", "tbsweep0", "-o", "tbsweep0", "-j", "ACCEPT"]]}
    firewall.ensure_rules(owner, lan)
    assert any(line.startswith(":%s " % LAN_CHAIN[1]) for line in iptables_rules())
    # what the killed teardown did: the rule removed, the chain and its jump not yet
    args = lan[LAN_CHAIN][0] + ["-m", "comment", "--comment", firewall.comment_of(owner, lan[LAN_CHAIN][0])]
    sh("iptables", "-w", "10", "-t", "filter", "-D", LAN_CHAIN[1], *args)
    sh("iptables", "-w", "10", "-t", "filter", "-N", SPOOF_CHAIN[1])
    sh("iptables", "-w", "10", "-t", "filter", "-I", "INPUT", "1", "-i", "dockercnet", "-j", SPOOF_CHAIN[1])
    left = iptables_rules()
    assert ":%s - " % LAN_CHAIN[1] in left and "-A INPUT -i dockercnet -j %s" % SPOOF_CHAIN[1] in left
    assert firewall.remove_rules(owner, dry_run=True) == []
    ops = firewall.remove_rules(owner)
    assert "remove empty chain %s (left by a killed run)" % LAN_CHAIN[1] in ops
    assert "remove empty chain %s (left by a killed run)" % SPOOF_CHAIN[1] in ops
    assert iptables_rules() == before
    assert firewall.remove_rules(owner) == []
