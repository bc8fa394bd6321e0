"""The collection's Molecule scenarios (extensions/molecule/), each a full `molecule test`.

Every scenario (one per role, plus `experiment` for the roles together) starts its own simulated
physical host (a Docker-in-Docker container of testbed/host:bookworm, testbed/barehost:bookworm
for `host`, named tbmol-<scenario>, see extensions/molecule/shared/), converges the roles on it
over SSH, runs the idempotence step (changed=0) and its verify playbook, and destroys
the host whatever happened. The scenarios share nothing, so they run at the same time, as separate
`molecule test` processes started when the module begins (TESTBED_MOLECULE_JOBS=N runs at most N
at once; 1 runs them one by one, each in its test). Each test waits for its own scenario and
checks its log and that nothing of it is left.

Logs: $TMPDIR/pytest-of-$USER/.../molecule*/<scenario>.log (the tail is in the failure message).
By hand, from the collection root:  PATH=$PWD/.venv/bin:$PATH molecule test -s experiment
"""
import os
import re
import signal
import subprocess
import time

import pytest

from helpers import DOCKER, ROOT, VENV_BIN

SCENARIOS = ("experiment", "host", "plan", "registry", "report", "slice", "teardown")
LABEL = "testbed.molecule"  # every container and volume of scenario S carries testbed.molecule=S
TIMEOUT = 600  # seconds one scenario may take (about 1-2 minutes here)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

pytestmark = pytest.mark.timeout(TIMEOUT + 300)


def molecule_env():
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_")))
    env.update(PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1", PY_COLORS="0",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", COLUMNS="160")
    return env


def leftovers(scenario):
    """Containers and volumes of the scenario still on the engine (by label, and by name)."""
    name = "tbmol-%s" % scenario
    flt = "label=%s=%s" % (LABEL, scenario)
    found = []
    for args, names in ((("ps", "-a", "--filter", flt, "--format", "{{.Names}}"), None),
                        (("volume", "ls", "-q", "--filter", flt), None),
                        (("ps", "-a", "--format", "{{.Names}}"), (name,)),
                        (("volume", "ls", "-q"), (name + "-docker",))):
        proc = subprocess.run((DOCKER,) + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout
        found += [n for n in proc.stdout.split() if names is None or n in names]
    return sorted(set(found))


class Run:
    """One `molecule test -s SCENARIO` process, its log file and its duration."""

    def __init__(self, scenario, log_path):
        self.scenario = scenario
        self.log_path = log_path
        self.proc = None
        self.started = None
        self.seconds = None

    def start(self):
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([os.path.join(VENV_BIN, "molecule"), "test", "-s", self.scenario], cwd=ROOT,
                                         env=molecule_env(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = time.monotonic()

    def poll(self):
        if self.proc is None or self.seconds is not None:
            return self.seconds is not None
        if self.proc.poll() is None:
            return False
        self.seconds = time.monotonic() - self.started
        return True

    def stop(self):
        """Ends the process group of an unfinished run (molecule, ansible-playbook and ssh)."""
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    pass

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return ANSI.sub("", f.read())


class Runs:
    """Runs the selected scenarios, at most `jobs` at once, in the order of the tests."""

    def __init__(self, scenarios, logdir, jobs):
        self.runs = dict((s, Run(s, os.path.join(str(logdir), "%s.log" % s))) for s in scenarios)
        self.pending = list(scenarios)
        self.jobs = max(1, jobs)

    def _running(self):
        return [r for r in self.runs.values() if r.proc is not None and not r.poll()]

    def _fill(self, first=None):
        if first in self.pending and len(self._running()) < self.jobs:
            self.pending.remove(first)
            self.runs[first].start()
        while self.pending and len(self._running()) < self.jobs:
            self.runs[self.pending.pop(0)].start()

    def start(self):
        self._fill()

    def wait(self, scenario, timeout):
        """Waits for the scenario's run (starting it when a slot frees) and returns it."""
        run = self.runs[scenario]
        deadline = time.monotonic() + timeout
        while not run.poll():
            for other in self.runs.values():
                other.poll()  # notes when each run ends, for the timings
            self._fill(first=scenario)
            if time.monotonic() > deadline:
                run.stop()
                run.poll()
                pytest.fail("molecule test -s %s did not finish within %d s; log %s:\n%s"
                            % (scenario, timeout, run.log_path, tail(run.output())))
            time.sleep(0.5)
        self._fill()
        return run

    def stop_all(self):
        for run in self.runs.values():
            run.stop()
        for scenario, run in self.runs.items():
            if run.proc is not None and leftovers(scenario):
                # an interrupted run: destroy what it made (the scenario's destroy playbook)
                subprocess.run([os.path.join(VENV_BIN, "molecule"), "destroy", "-s", scenario], cwd=ROOT,
                               env=molecule_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=300, check=False)


def tail(text, lines=120):
    return "\n".join(text.splitlines()[-lines:])


def selected_scenarios(request):
    found = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is request.module and callspec is not None:
            found.add(callspec.params.get("scenario"))
    return [s for s in SCENARIOS if s in found]


@pytest.fixture(scope="module")
def molecule_runs(request, tmp_path_factory):
    jobs = int(os.environ.get("TESTBED_MOLECULE_JOBS", len(SCENARIOS)))
    runs = Runs(selected_scenarios(request), tmp_path_factory.mktemp("molecule"), jobs)
    runs.start()
    yield runs
    runs.stop_all()
    timings = ", ".join("%s %.0f s" % (s, r.seconds) for s, r in runs.runs.items() if r.seconds is not None)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None and timings:
        with capture.global_and_fixture_disabled():  # shown also when the tests pass
            print("\nmolecule test timings (%d at once): %s" % (min(runs.jobs, len(runs.runs)), timings))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(molecule_runs, scenario):
    run = molecule_runs.wait(scenario, TIMEOUT)
    out = run.output()
    context = "molecule test -s %s (%.0f s), log %s:\n%s" % (scenario, run.seconds, run.log_path, tail(out))
    assert run.proc.returncode == 0, context
    # every step of the sequence ran and passed, the idempotence step included (changed=0 everywhere)
    for step in ("create", "converge", "idempotence", "verify", "destroy"):
        # the recap's DETAILS lines, "experiment > idempotence: Executed: Successful" (no colours)
        assert re.search(r"^%s > %s: Executed: Successful$" % (scenario, step), out, re.M), \
            "step %s did not pass\n%s" % (step, context)
    assert not re.search(r"Idempotence test failed", out), context
    # no error was ignored on the way (cleanup is lenient so that destroy always runs)
    assert not re.search(r"\bignored=[1-9]", out), context
    left = leftovers(scenario)
    assert not left, "left behind by %s: %s\n%s" % (scenario, left, context)
