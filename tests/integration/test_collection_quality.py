"""The collection as Ansible users meet it: sanity, lint, module docs and a release install.

Each test runs the real tool on the checkout and leaves the checkout untouched: sanity works on a
copy (scripts/sanity.sh), the others use a private ANSIBLE_HOME and collections path under
pytest's tmp_path, and the release test installs the built tarball into a fresh virtualenv.
"""
import glob
import os
import re
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
DOCKER = "/usr/bin/docker"
COLLECTION = "testbed.containers"
MODULES = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
                 if not os.path.basename(p).startswith("_"))
ROLES = sorted(os.path.basename(os.path.dirname(os.path.dirname(p)))
               for p in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")))
# The sanity tests that must have run (ansible-test skips a test whose tool is missing with only
# a warning; a test with nothing to check, e.g. pslint without PowerShell files, is not listed).
EXPECTED_SANITY_TESTS = ("ansible-doc", "changelog", "compile", "import", "pep8", "pylint", "runtime-metadata",
                         "shebang", "shellcheck", "validate-modules", "yamllint")
# The Python packages of requirements.txt a user installs to run the collection.
RUNTIME_PACKAGES = ("ansible-core", "docker", "pyroute2")


def run(args, timeout, **kw):
    """Run a command, output and error merged; returns (CompletedProcess, seconds)."""
    start = time.monotonic()
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=timeout, check=False, **kw)
    return proc, time.monotonic() - start


def tail(text, lines=80):
    return "\n".join(text.splitlines()[-lines:])


def clean_env(**extra):
    """This process's environment without ANSIBLE_* settings, plus ``extra``."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1")
    env.update(extra)
    return env


def checkout_env(tmp):
    """Environment where testbed.containers is the checkout, with a private ANSIBLE_HOME under ``tmp``."""
    link = tmp / "collections" / "ansible_collections" / "testbed" / "containers"
    link.parent.mkdir(parents=True)
    link.symlink_to(ROOT)
    config = tmp / "ansible.cfg"
    config.write_text("[defaults]\n")
    return clean_env(ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"), ANSIBLE_HOME=str(tmp / "home"),
                     ANSIBLE_CONFIG=str(config), PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture
def checkout_collections(tmp_path):
    return checkout_env(tmp_path)


@pytest.fixture(scope="module")
def rendered_docs(tmp_path_factory):
    """ansible-doc's text for every module and role, one ansible-doc call per kind (each costs seconds)."""
    tmp = tmp_path_factory.mktemp("ansible-doc")
    env = checkout_env(tmp)
    docs = {}
    for kind, names in (("module", MODULES), ("role", ROLES)):
        proc = run([os.path.join(VENV_BIN, "ansible-doc"), "-t", kind] + ["%s.%s" % (COLLECTION, n) for n in names],
                   timeout=180, cwd=str(tmp), env=env)[0]
        parts = re.split(r"^> (?:MODULE|ROLE:) \*?%s\.(\w+)\*? " % re.escape(COLLECTION), proc.stdout, flags=re.M)
        rendered = dict(zip(parts[1::2], parts[2::2]))
        docs[kind] = (proc, rendered)
    return docs


def test_ansible_test_sanity_passes_with_every_applicable_test():
    proc, seconds = run(["bash", os.path.join(ROOT, "scripts", "sanity.sh")], timeout=420,
                        env=clean_env())
    print("ansible-test sanity: %.0f s" % seconds)
    assert proc.returncode == 0, "scripts/sanity.sh failed (%d):\n%s" % (proc.returncode, tail(proc.stdout, 120))
    ran = set(re.findall(r'^Running sanity test "([^"]+)"', proc.stdout, re.M))
    missing = [t for t in EXPECTED_SANITY_TESTS if t not in ran]
    assert not missing, "sanity tests that did not run: %s\n%s" % (missing, tail(proc.stdout))
    skipped = [line for line in proc.stdout.splitlines()
               if re.match(r"^WARNING: (Required program|Skipping|Sanity test .* skipped)", line)]
    assert not skipped, "ansible-test skipped checks:\n" + "\n".join(skipped)


def test_ansible_lint_production_profile_passes_offline(checkout_collections):
    proc, seconds = run([os.path.join(VENV_BIN, "ansible-lint"), "--profile", "production", "--offline",
                         "--nocolor", "roles/", "playbooks/"],
                        timeout=240, cwd=ROOT, env=checkout_collections)
    print("ansible-lint: %.0f s" % seconds)
    assert proc.returncode == 0, "ansible-lint failed (%d):\n%s" % (proc.returncode, tail(proc.stdout, 120))
    assert "Profile 'production' was required, and it passed" in proc.stdout, tail(proc.stdout)


def problems_of(proc, name):
    """ansible-doc's warnings and errors about ``name`` (it reports them and goes on with the others)."""
    return [line for line in proc.stdout.splitlines()
            if re.match(r"^\[(WARNING|ERROR)\]", line) and name in line]


@pytest.mark.parametrize("module", MODULES)
def test_module_documentation_renders_in_ansible_doc(module, rendered_docs):
    proc, rendered = rendered_docs["module"]
    name = "%s.%s" % (COLLECTION, module)
    assert module in rendered and not problems_of(proc, name), \
        "ansible-doc %s did not render (exit %d):\n%s" % (name, proc.returncode, "\n".join(problems_of(proc, name))
                                                          or tail(proc.stdout, 30))
    for section in ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES"):
        assert section in rendered[module], "ansible-doc %s has no %s:\n%s" % (name, section, rendered[module])


@pytest.mark.parametrize("role", ROLES)
def test_role_argument_specs_render_in_ansible_doc(role, rendered_docs):
    proc, rendered = rendered_docs["role"]
    name = "%s.%s" % (COLLECTION, role)
    assert role in rendered and not problems_of(proc, name), \
        "ansible-doc -t role %s did not render (exit %d):\n%s" % (name, proc.returncode,
                                                                  "\n".join(problems_of(proc, name))
                                                                  or tail(proc.stdout, 30))
    assert re.search(r"ENTRY POINT: \*?main\*? - \S", rendered[role]), rendered[role]


def demo_containers():
    out = subprocess.run([DOCKER, "ps", "-a", "--filter", "label=testbed.experiment=demo", "--format",
                          "{{.Names}}"], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    return out.split()


def requirement_lines(path):
    """The requirement lines of a pip requirements file, following its ``-r FILE`` includes."""
    lines = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.startswith("-r "):
                lines.extend(requirement_lines(os.path.join(os.path.dirname(path), line[3:].strip())))
            elif line:
                lines.append(line)
    return lines


def requirement_pins(names):
    """``name==version`` lines of requirements.txt (and the files it includes) for ``names``."""
    pins = {}
    for line in requirement_lines(os.path.join(ROOT, "requirements.txt")):
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*[=<>!~]", line)
        if match and match.group(1).lower() in names:
            pins[match.group(1).lower()] = line
    assert sorted(pins) == sorted(names), "requirements.txt lacks %s" % sorted(set(names) - set(pins))
    return [pins[n] for n in names]


def test_release_tarball_installs_in_a_fresh_virtualenv_and_runs_the_default_experiment(tmp_path):
    before = demo_containers()
    assert not before, ("the default experiment 'demo' is swapped in on this host already (%s): swap it out "
                        "first (ansible-playbook playbooks/teardown.yml)" % " ".join(before))
    timings = {}

    # a fresh virtualenv with only what a user installs: ansible-core, docker, pyroute2
    venv = tmp_path / "venv"
    proc, timings["venv"] = run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    assert proc.returncode == 0, proc.stdout
    pins = requirement_pins(RUNTIME_PACKAGES)
    proc, seconds = run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
                        + pins, timeout=300)
    timings["venv"] += seconds
    assert proc.returncode == 0, "pip install %s failed:\n%s" % (" ".join(pins), tail(proc.stdout))
    bin_ = venv / "bin"

    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\nretry_files_enabled = False\nhost_key_checking = False\n")
    collections = tmp_path / "collections"
    env = clean_env(ANSIBLE_CONFIG=str(config), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
                    ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_REMOTE_TMP=str(tmp_path / "remote-tmp"),
                    ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",
                    PATH=str(bin_) + os.pathsep + os.environ.get("PATH", ""))

    # build from the checkout, install the tarball (no Galaxy: --offline)
    dist = tmp_path / "dist"
    proc, timings["build"] = run([str(bin_ / "ansible-galaxy"), "collection", "build", "--output-path", str(dist),
                                  ROOT], timeout=180, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, "ansible-galaxy collection build failed:\n" + tail(proc.stdout)
    tarballs = glob.glob(str(dist / "testbed-containers-*.tar.gz"))
    assert len(tarballs) == 1, os.listdir(str(dist))
    proc, timings["install"] = run([str(bin_ / "ansible-galaxy"), "collection", "install", "--offline",
                                    "-p", str(collections), tarballs[0]], timeout=180, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, "ansible-galaxy collection install failed:\n" + tail(proc.stdout)
    installed = collections / "ansible_collections" / "testbed" / "containers"
    assert not installed.is_symlink()
    for path in ("playbooks/experiment.yml", "playbooks/teardown.yml", "examples/demo.yml", "MANIFEST.json"):
        assert (installed / path).is_file(), "%s is not in the release" % path
    for path in (".collections", ".venv", "bench"):
        assert not (installed / path).exists(), "%s should not be in the release" % path

    # an inventory without the group testbed_hosts: the message names the bundled inventory's installed path
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("others:\n  hosts:\n    somewhere:\n      ansible_host: 127.0.0.1\n")
    proc, _seconds = run([str(bin_ / "ansible-playbook"), "-i", str(inventory), "%s.experiment" % COLLECTION],
                         timeout=120, cwd=str(tmp_path), env=env)
    assert proc.returncode != 0
    assert "The inventory group 'testbed_hosts' has no host" in proc.stdout, tail(proc.stdout)
    assert "-i %s" % (installed / "inventories" / "localhost.yml") in " ".join(proc.stdout.split()), tail(proc.stdout)

    # no inventory at all (only Ansible's implicit localhost), from an empty directory: this machine is the host
    common = ["-e", "testbed_record_dir=%s" % (tmp_path / "records"), "-e", "testbed_state_dir=%s" % (tmp_path / "state")]
    try:
        proc, timings["swap-in"] = run([str(bin_ / "ansible-playbook"), "%s.experiment" % COLLECTION] + common,
                                       timeout=600, cwd=str(tmp_path), env=env)
        assert proc.returncode == 0, "ansible-playbook %s.experiment failed:\n%s" % (COLLECTION, tail(proc.stdout))
        assert re.search(r"server\s+localhost\s+booted\s+tb_default_demo_server\s+\S+\s+[^\n]*?eth\d+=10\.9\.1\.20/24\(lan1\)",
                         proc.stdout), "no node table line for 'server':\n" + tail(proc.stdout)
        assert (tmp_path / "records" / "default" / "demo.json").is_file()
    finally:
        teardown, timings["teardown"] = run([str(bin_ / "ansible-playbook"), "%s.teardown" % COLLECTION] + common,
                                            timeout=600, cwd=str(tmp_path), env=env)
        print("release: " + ", ".join("%s %.0f s" % kv for kv in timings.items()))
    assert teardown.returncode == 0, "ansible-playbook %s.teardown failed:\n%s" % (COLLECTION, tail(teardown.stdout))
    assert not demo_containers(), "containers of the demo experiment left after teardown"
    assert not (tmp_path / "records" / "default" / "demo.json").exists()
