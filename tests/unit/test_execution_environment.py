"""The execution environment files: meta/execution-environment.yml (what ansible-builder adds for
this collection: the pinned runtime packages and bindep.txt's default profile, never the test
tools), ./execution-environment.yml (the definition that builds one with the collection),
meta/runtime.yml's requires_ansible and bindep.txt's profiles. Their structure is checked always;
where ansible-builder is installed (importable here, on PATH, or ANSIBLE_BUILDER=PATH), its
`create` writes the build context and the build's own galaxy and introspection steps run here, on
the collection's tarball, to show which packages the image would get. The image build itself
needs a container engine and the base image's registry: not here."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from packaging.specifiers import SpecifierSet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
RUNTIME = "roles/host/files/requirements.txt"
# what the collection's requirements.txt adds for developers, never wanted in an EE
DEV_ONLY = ("ansible-core", "pytest", "pytest-timeout", "hypothesis", "ansible-lint", "molecule", "antsibull-changelog")


def load(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def pins(path):
    """{package: version} of a pinned requirements file (following -r)."""
    result = {}
    with open(os.path.join(ROOT, path)) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.startswith("-r"):
                result.update(pins(os.path.join(os.path.dirname(path), line[2:].strip())))
            elif line:
                name, sep, version = line.partition("==")
                assert sep, "%s: %r is not pinned" % (path, line)
                result[name.strip()] = version.strip()
    return result


def galaxy_tarball():
    galaxy = load("galaxy.yml")
    return "%s-%s-%s.tar.gz" % (galaxy["namespace"], galaxy["name"], galaxy["version"])


def test_collection_metadata_points_at_the_runtime_packages_and_bindep_relative_to_the_root():
    meta = load("meta/execution-environment.yml")
    assert meta["version"] == 3 and set(meta) == {"version", "dependencies"}
    deps = meta["dependencies"]
    # ansible-builder's introspection reads these two keys as file paths relative to the collection root
    assert deps == {"python": RUNTIME, "system": "bindep.txt"}
    for path in deps.values():
        assert not os.path.isabs(path) and os.path.isfile(os.path.join(ROOT, path)), path
    runtime = pins(RUNTIME)
    assert {"docker", "pyroute2"} <= set(runtime) and not set(runtime) & set(DEV_ONLY), runtime


def test_build_definition_installs_this_collection_with_the_tested_ansible_core():
    definition = load("execution-environment.yml")
    assert definition["version"] == 3
    deps = definition["dependencies"]
    assert deps["ansible_core"] == {"package_pip": "ansible-core==%s" % pins("requirements.txt")["ansible-core"]}
    assert "ansible-runner" in deps["ansible_runner"]["package_pip"]
    # galaxy.yml's version names the tarball `ansible-galaxy collection build` writes
    assert definition["additional_build_files"] == [{"src": galaxy_tarball(), "dest": "collections"}]
    assert deps["galaxy"] == {"collections": [{"name": "collections/" + galaxy_tarball(), "type": "file"}]}
    # the collection's own packages come from its metadata, not listed twice
    assert "python" not in deps and "system" not in deps
    assert definition["images"]["base_image"]["name"]


def test_requires_ansible_admits_the_tested_ansible_core_and_no_older_minor():
    tested = pins("requirements.txt")["ansible-core"]
    spec = SpecifierSet(load("meta/runtime.yml")["requires_ansible"])
    assert tested in spec
    major, minor = tested.split(".")[:2]
    assert "%s.%d.99" % (major, int(minor) - 1) not in spec


def bindep_lines():
    """(package, selectors) of bindep.txt."""
    result = []
    with open(os.path.join(ROOT, "bindep.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                match = re.match(r"^([A-Za-z0-9.+_-]+)(?: \[([^]]+)\])?$", line)
                assert match, "bindep.txt: cannot read %r" % line
                result.append((match.group(1), set((match.group(2) or "").split())))
    return result


def test_bindep_default_profile_is_an_ssh_client_and_the_rest_is_in_profiles():
    profiles = set()
    default = []
    for package, selectors in bindep_lines():
        named = set(s for s in selectors if not s.startswith("platform:"))
        profiles |= named
        if not named:
            default.append((package, selectors))
    assert default == [("openssh-client", {"platform:dpkg"}), ("openssh-clients", {"platform:rpm"})]
    assert profiles == {"host", "setup", "graph"}
    host = set(p for p, s in bindep_lines() if "host" in s)
    assert set(load("roles/host/defaults/main.yml")["testbed_host_packages"]) <= host


# --- with ansible-builder ---------------------------------------------------------------------

def builder():
    """(ansible-builder argv prefix, the Python it runs with), or None."""
    path = os.environ.get("ANSIBLE_BUILDER") or shutil.which("ansible-builder")
    if path:
        with open(path) as f:
            first = f.readline()
        python = first[2:].strip() if first.startswith("#!") else sys.executable
        return [path], python
    try:
        import ansible_builder  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        return None
    return [sys.executable, "-m", "ansible_builder"], sys.executable


def run(argv, cwd, timeout=300):
    proc = subprocess.run(argv, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, "%s failed (%d):\n%s" % (" ".join(argv), proc.returncode, proc.stdout)
    return proc.stdout


NO_BUILDER = "ansible-builder is not installed (pip install ansible-builder, or set ANSIBLE_BUILDER to its path)"


@pytest.mark.skipif(builder() is None, reason=NO_BUILDER)
def test_ansible_builder_creates_the_context_and_the_image_would_get_only_the_runtime_packages(tmp_path):
    prefix, python = builder()
    # the tarball beside the definition, as `ansible-galaxy collection build` leaves it at the root
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", ROOT, "--output-path", str(tmp_path)], ROOT)
    shutil.copy(os.path.join(ROOT, "execution-environment.yml"), str(tmp_path))
    run(prefix + ["create", "-f", "execution-environment.yml", "-c", "context", "--output-filename", "Containerfile"],
        tmp_path)
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-core==%s" % pins("requirements.txt")["ansible-core"] in containerfile
    assert "introspect.py introspect" in containerfile  # the collection's metadata is read at build time
    build = context / "_build"
    assert (build / "collections" / galaxy_tarball()).is_file()
    # the build's galaxy stage (offline: a file), then its introspection, here
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "-r", "requirements.yml",
         "-p", str(tmp_path / "installed")], build)
    found = yaml.safe_load(run([python, str(build / "scripts" / "introspect.py"), "introspect", str(tmp_path / "installed")],
                               tmp_path))
    python_deps = dict(line.split("#")[0].strip().split("==") for line in found["python"])
    # PyYAML is left out by ansible-builder (ansible-core brings it)
    assert python_deps == dict((k, v) for k, v in pins(RUNTIME).items() if k != "PyYAML")
    system = [line.split("#")[0].strip() for line in found["system"]]
    assert system[:2] == ["openssh-client [platform:dpkg]", "openssh-clients [platform:rpm]"]
    bindep = os.path.join(os.path.dirname(python), "bindep")
    if os.path.exists(bindep):  # the build installs bindep's default profile: only the SSH client
        (tmp_path / "bindep.txt").write_text("\n".join(found["system"]) + "\n")
        listed = run([bindep, "-l", "newline", "-f", str(tmp_path / "bindep.txt")], tmp_path).split()
        assert listed in (["openssh-client"], ["openssh-clients"]), listed
