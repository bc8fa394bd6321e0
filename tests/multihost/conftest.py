"""Fixtures of the multi-host tests: physical hosts simulated as Docker-in-Docker containers.

`testbed_hosts` (session scope) starts three hosts (tests/multihost/hosts.py) once for the whole
run and removes them at its end, also after failures. Environment:
  TESTBED_SIMHOSTS_INVENTORY=PATH  reuse hosts started by `hosts.py up` (PATH is what it printed)
                                   and leave them running
  TESTBED_SIMHOSTS_N=N             number of hosts (default 3)
"""
import json
import os

import pytest

from hosts import DEFAULT_PREFIX, SimulatedHosts, simulated_hosts

_STARTED = []


@pytest.fixture(scope="session")
def testbed_hosts():
    inventory = os.environ.get("TESTBED_SIMHOSTS_INVENTORY")
    if inventory:
        yield SimulatedHosts.load(os.path.dirname(os.path.abspath(inventory)))
        return
    with simulated_hosts(n=int(os.environ.get("TESTBED_SIMHOSTS_N", "3")), name_prefix=DEFAULT_PREFIX) as sim:
        _STARTED.append(sim)
        try:
            yield sim
        finally:
            # experiment.yml runs the testbed registry for experiments on several hosts:
            # removed at the end, so a second run starts from a clean controller
            sim.remove_registry()


def pytest_terminal_summary(terminalreporter):
    for sim in _STARTED:
        terminalreporter.write_line("simulated hosts %s (%s): %s" % (sim.prefix, sim.subnet, json.dumps(sim.timings)))
