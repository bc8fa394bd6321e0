#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection as it is in this checkout.
#
# Usage: scripts/sanity.sh [ANSIBLE-TEST SANITY OPTIONS...]
#   default options: --venv --python 3.11 (extra ones are appended, e.g. --test pep8)
#
# ansible-test needs the collection at ansible_collections/testbed/containers/ inside a
# git tree, and the checkout's .collections/ link points back at the repository (a loop), so
# the files of the checkout (tracked, plus untracked ones not ignored by .gitignore) are copied
# to a temporary tree, which becomes a fresh git repository. Nothing is written to the checkout.
#
# With --venv, ansible-test makes a virtualenv per test and bootstraps pip into it with a
# `get-pip` script downloaded from a host that is not reachable here; a small stand-in is
# written to its cache path first: it installs the pinned pip from its wheel, fetched once
# into the same cache (or, without it, with ensurepip and then `pip install` of the pinned pip).
#
# Environment: ANSIBLE_TEST (default .venv/bin/ansible-test), SANITY_PYTHON (default 3.11),
#              SANITY_KEEP=1 keeps the temporary tree (its path is printed).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ANSIBLE_TEST=${ANSIBLE_TEST:-$ROOT/.venv/bin/ansible-test}
PYTHON_VERSION=${SANITY_PYTHON:-3.11}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

say() { printf '[sanity] %s\n' "$*"; }
die() { printf '[sanity] ERROR: %s\n' "$*" >&2; exit 1; }

[[ -x $ANSIBLE_TEST ]] || die "$ANSIBLE_TEST not found: run setup.sh (or set ANSIBLE_TEST)"
command -v git >/dev/null || die "git is missing: apt-get install git"

# --- get-pip stand-in, for every pip version this ansible-test bootstraps ----------------
ansible_test_python=$(head -n1 "$ANSIBLE_TEST" | sed 's/^#!//')
pip_versions=$("$ansible_test_python" - <<'EOF'
import re, pathlib, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(" ".join(sorted(set(re.findall(r"pip='([0-9.]+)'", src.read_text())))) or "24.2")
EOF
)
cache_dir="$HOME/.ansible/test/cache"
mkdir -p "$cache_dir"
for version in $pip_versions; do
  # the pip wheel itself, fetched once, makes each bootstrap a local install of a few seconds
  wheel="$cache_dir/pip-$version-py3-none-any.whl"
  if [[ ! -s $wheel ]] && ! "$ansible_test_python" -m pip download -q --disable-pip-version-check \
      --no-deps --only-binary=:all: -d "$cache_dir" "pip==$version" >/dev/null 2>&1; then
    say "could not fetch the pip $version wheel; the stand-in falls back to ensurepip"
  fi
  shim="$cache_dir/get_pip_${version//./_}.py"
  cat >"$shim.tmp" <<EOF
"""Stand-in for get-pip.py (written by testbed.containers scripts/sanity.sh).

ansible-test runs it inside a new virtualenv as: get_pip.py [pip options] pip==$version
--no-setuptools --no-wheel. Like get-pip.py it runs pip from the pip wheel (cached next to
this file) to install that wheel, without network; without the wheel it installs the bundled
pip with ensurepip, then pip==$version from the index. The flags --no-setuptools/--no-wheel are
get-pip's own and are dropped; the CA bundle is passed explicitly because the new virtualenv
does not read this machine's pip certificate setting.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WHEEL = os.path.join(HERE, "pip-$version-py3-none-any.whl")
CERT = "$CA_BUNDLE"

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if os.path.isfile(WHEEL):
    sys.path.insert(0, WHEEL)
    from pip._internal.cli.main import main

    sys.exit(main(["install", "--no-index", "--find-links", HERE] + args))

import ensurepip

ensurepip.bootstrap(upgrade=True)
command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
if os.path.exists(CERT):
    command += ["--cert", CERT]
sys.exit(subprocess.call(command + args))
EOF
  if ! cmp -s "$shim.tmp" "$shim"; then
    mv -f "$shim.tmp" "$shim"
    say "wrote get-pip stand-in $shim"
  else
    rm -f "$shim.tmp"
  fi
done

# --- a copy of the collection at ansible_collections/testbed/containers in a git tree ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/testbed-sanity.XXXXXX")
if [[ ${SANITY_KEEP:-0} == 1 ]]; then
  say "keeping $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi
dest="$tmp/ansible_collections/testbed/containers"
mkdir -p "$dest"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # tracked and untracked-but-not-ignored files; skips .venv/, .collections/ (the loop), caches
  git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
      --exclude=.ruff_cache/ --exclude=.mypy_cache/ --exclude=/tests/output/ |
    while IFS= read -r -d '' f; do if [[ -e $ROOT/$f || -L $ROOT/$f ]]; then printf '%s\0' "$f"; fi; done |
    tar -C "$ROOT" --null --no-recursion -T - -cf - | tar -C "$dest" -xf -
else
  tar -C "$ROOT" --exclude=./.venv --exclude=./.collections --exclude=./.git \
    --exclude='*.tar.gz' --exclude=__pycache__ --exclude=.ruff_cache --exclude=.mypy_cache \
    --exclude=./tests/output -cf - . | tar -C "$dest" -xf -
fi
git -C "$dest" init -q
# ansible-test lists the collection's files with git (tracked and untracked, not ignored) and
# writes its delegation virtualenv and results under tests/output/: keep those out.
printf '/tests/output/\n' >>"$dest/.git/info/exclude"
git -C "$dest" add -A
say "collection copied to $dest ($(git -C "$dest" ls-files | wc -l) files)"

# --- run ---------------------------------------------------------------------------------
cd "$dest"
say "ansible-test sanity --venv --python $PYTHON_VERSION $*"
"$ANSIBLE_TEST" sanity --venv --python "$PYTHON_VERSION" --color no "$@"
