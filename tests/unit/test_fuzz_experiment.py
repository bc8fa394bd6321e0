"""Property: every generated experiment file and inventory is either planned, the same way
each time and under any hash seed, or refused with field-path messages; never a traceback,
never a hang.  10,000 documents per run (seeded: a failure reproduces); bench/fuzz.py runs more."""
import json
import os
import subprocess
import sys

from hypothesis import HealthCheck, given, seed, settings

from .fuzz_documents import documents
from ansible_collections.testbed.containers.plugins.module_utils import model
from ansible_collections.testbed.containers.plugins.module_utils.model import ExperimentError
from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan

HOSTS = ["h1", "h2", "h3"]
EXAMPLES = int(os.environ.get("TESTBED_FUZZ_EXAMPLES", "10000"))
ACCEPTED = []


def plan_or_errors(doc, hvars):
    try:
        return make_plan(doc, HOSTS, host_vars=hvars, controller_keys=["ssh-ed25519 AAAAC3Nz ctl@h"],
                         controller_user="ctl"), None
    except ExperimentError as exc:
        return None, exc.errors


def assert_carried_safely(plan):
    """What a plan hands to the hosts is safe to use in names, paths and the engine's API."""
    text = json.dumps(plan)
    assert "\\u0000" not in text
    for name in [plan["project"], plan["name"]] + list(plan["nodes"]) + list(plan["lans"]):
        assert model.NAME_RE.match(name), name
    for node in plan["nodes"].values():
        assert model.IMAGE_RE.match(node["image"]), node["image"]
    for key in plan["ssh_keys"] + [k for u in plan["users"] for k in u["ssh_keys"]]:
        assert "\n" not in key and not key.startswith("command="), key


@seed(20261202)
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(case=documents())
def test_every_document_is_planned_deterministically_or_refused_with_field_paths(case):
    doc, hvars = case
    plan, errors = plan_or_errors(doc, hvars)
    if plan is None:
        assert errors and all(isinstance(e, str) and e.strip() for e in errors), errors
        # a message names a field (``path: ...``) or is about the whole document
        for error in errors:
            assert ": " in error, error
        return
    assert_carried_safely(plan)
    again = plan_or_errors(doc, hvars)[0]
    assert json.dumps(plan, sort_keys=True) == json.dumps(again, sort_keys=True)
    json.dumps(plan)  # the plan travels to the hosts as JSON
    if len(ACCEPTED) < 300:
        ACCEPTED.append((doc, hvars, json.dumps(plan, sort_keys=True)))


def test_accepted_documents_plan_the_same_under_other_hash_seeds():
    assert ACCEPTED, "the fuzzer accepted no document: the strategies are too hostile to test the planner"
    script = (
        "import json, sys\n"
        "sys.path.insert(0, %r)\n"
        "import checkout; checkout.importable()\n"
        "from ansible_collections.testbed.containers.plugins.module_utils.plan import make_plan\n"
        "for doc, hvars in json.load(sys.stdin):\n"
        "    print(json.dumps(make_plan(doc, %r, host_vars=hvars, controller_keys=['ssh-ed25519 AAAAC3Nz ctl@h'],"
        " controller_user='ctl'), sort_keys=True))\n" % (os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                         HOSTS))
    payload = json.dumps([entry[:2] for entry in ACCEPTED])
    for hash_seed in ("1", "4242"):
        proc = subprocess.run([sys.executable, "-c", script], input=payload, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, check=False,
                              env=dict(os.environ, PYTHONHASHSEED=hash_seed))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.splitlines() == [entry[2] for entry in ACCEPTED]
