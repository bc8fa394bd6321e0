#!/usr/bin/env bash
# Prepare this machine (Debian 12, run as root) for the testbed.containers collection:
# Debian packages, a running Docker engine, the Python virtualenv .venv, the
# collection path link, an SSH key and the locally built container images.
# Idempotent: a second run only checks and takes a few seconds.
#
#   ./setup.sh          what running experiments needs
#   ./setup.sh --dev    also what the tests need: the development tools (requirements-dev.txt
#                       and the shell linter) and the simulated-host images testbed/host
#                       and testbed/barehost (tests/multihost, Molecule); .ci/run uses this
set -euo pipefail

DEV=0
for arg in "$@"; do
  case $arg in
    --dev) DEV=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) printf '[setup] ERROR: unknown argument %s (known: --dev)\n' "$arg" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "$0")" && pwd)"
cd "$ROOT"

DOCKER=/usr/bin/docker      # Debian's client; /usr/local/bin/docker may be another one
DOCKERD=/usr/sbin/dockerd
DOCKERD_LOG=/var/log/testbed-dockerd.log
VENV="$ROOT/.venv"
COLLECTION_LINK="$ROOT/.collections/ansible_collections/testbed/containers"

APT_PACKAGES=(
  docker.io iptables debootstrap busybox-static iproute2 iperf3 tcpdump graphviz
  python3-venv python3-pip git openssh-client openssh-server ca-certificates
  docker-registry  # the testbed registry (roles/registry, tests/integration/test_registry.py)
  gcc libc6-dev musl-tools  # scripts/build-tools.sh: the supervisor (glibc), dropbear (musl)
  dpkg-dev bzip2 xz-utils  # scripts/build-tools.sh: unpacks Debian's dropbear source package
)

((DEV == 0)) || APT_PACKAGES+=(shellcheck)  # ansible-test sanity's shellcheck test (scripts/sanity.sh)

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (installs packages and starts dockerd)"

# --- a. Debian packages ------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ $status == ii* ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  say "Debian packages: all installed"
fi

# --- b. Docker engine (no systemd: start dockerd ourselves) -------------------
if "$DOCKER" info >/dev/null 2>&1; then
  say "Docker engine: running"
else
  if pgrep -x dockerd >/dev/null 2>&1; then
    say "Docker engine: dockerd process found, waiting for it to answer"
  else
    say "Docker engine: starting dockerd (log: $DOCKERD_LOG)"
    setsid nohup "$DOCKERD" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    disown || true
  fi
  for ((i = 0; i < 60; i++)); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! "$DOCKER" info >/dev/null 2>&1; then
    tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
    die "Docker engine did not answer '$DOCKER info' within 60 s (see $DOCKERD_LOG)"
  fi
  say "Docker engine: running after ${i} s"
fi

# --- c. Python virtualenv -------------------------------------------------------
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  say "creating virtualenv .venv"
  python3 -m venv "$VENV"
fi
req_sha=$(cat requirements.txt roles/host/files/requirements.txt | sha256sum | cut -d' ' -f1)
if [[ -f $VENV/.requirements.sha && $(<"$VENV/.requirements.sha") == "$req_sha" ]]; then
  say "Python requirements: up to date"
else
  say "installing Python requirements into .venv"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
  printf '%s\n' "$req_sha" >"$VENV/.requirements.sha"
fi
# development tools (ansible-lint, antsibull-changelog, molecule), with requirements.txt as
# constraints: --dev only
dev_sha=$(cat requirements.txt roles/host/files/requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if ((DEV == 0)); then
  :
elif [[ -f $VENV/.requirements-dev.sha && $(<"$VENV/.requirements-dev.sha") == "$dev_sha" ]]; then
  say "development requirements: up to date"
else
  say "installing development requirements (requirements-dev.txt) into .venv"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt -c requirements.txt
  printf '%s\n' "$dev_sha" >"$VENV/.requirements-dev.sha"
fi
# static tools injected by augmentation (supervisor, busybox) -> /var/cache/testbed/tools
bash "$ROOT/scripts/build-tools.sh"

# --- d. collection path: .collections/ansible_collections/testbed/containers -> repo
mkdir -p "$(dirname "$COLLECTION_LINK")"
if [[ -L $COLLECTION_LINK && $(readlink "$COLLECTION_LINK") == "$ROOT" ]]; then
  say "collection link: ok"
else
  if [[ -e $COLLECTION_LINK && ! -L $COLLECTION_LINK ]]; then
    die "$COLLECTION_LINK exists and is not a symlink; remove it and rerun"
  fi
  ln -sfn "$ROOT" "$COLLECTION_LINK"
  say "collection link: $COLLECTION_LINK -> $ROOT"
fi

# the command for people: .venv/bin/testbed (tools/testbed, docs/operations.md)
ln -sfn "$ROOT/tools/testbed" "$VENV/bin/testbed"

# --- SSH key (later features inject ~/.ssh/id_*.pub into containers) ------------
if compgen -G "$HOME/.ssh/id_*.pub" >/dev/null; then
  say "SSH key: present"
else
  mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"
  ssh-keygen -q -t ed25519 -N '' -C "testbed@$(hostname)" -f "$HOME/.ssh/id_ed25519"
  say "SSH key: created $HOME/.ssh/id_ed25519"
fi

# --- e. container images (built locally, no registry) ---------------------------
# the experiments' images; --dev adds the simulated physical hosts the tests start
if ((DEV)); then
  bash "$ROOT/scripts/build-images.sh" busybox debian host barehost
else
  bash "$ROOT/scripts/build-images.sh" busybox debian
fi

# --- f. -------------------------------------------------------------------------
say "done. Run the default experiment with:"
printf '  .venv/bin/ansible-playbook playbooks/experiment.yml\n'
if ((DEV)); then
  say "and the tests with:"
  printf '  .venv/bin/python -m pytest -q -p no:cacheprovider tests\n'
fi
