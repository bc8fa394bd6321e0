#!/usr/bin/env bash
# Build the container images the collection's example and tests use, fully
# offline of any image registry (none is reachable): root file systems are made
# from Debian packages and loaded with `docker import`.
#
# Usage: scripts/build-images.sh [--force] [IMAGE_FUNCTION...]
#   default: every image in IMAGES below; --force rebuilds even when up to date.
#
# Each image carries the label testbed.image-recipe=<sha256 of its recipe inputs>
# (the text of its build function plus its inputs, e.g. the busybox binary or the
# package list); an image whose label matches is skipped.
#
# To add an image: write `image_<name>` that sets IMAGE_NAME and RECIPE_INPUTS
# and defines how to build in `build_<name> TAG RECIPE_SHA`, then add
# <name> to IMAGES.
set -euo pipefail

DOCKER=/usr/bin/docker      # Debian's client; /usr/local/bin/docker may be another one
CACHE_DIR=/var/cache/testbed
LABEL_KEY=testbed.image-recipe
DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DEBIAN_MIRROR=http://deb.debian.org/debian
ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

IMAGES=(busybox debian host barehost)

say() { printf '[images] %s\n' "$*"; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

WORK_DIRS=()
cleanup() {
  local d
  for d in "${WORK_DIRS[@]}"; do
    [[ -d $d ]] || continue
    # debootstrap may leave proc/sys mounted when it fails
    grep -o " $d/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf --one-file-system "$d"
  done
}
trap cleanup EXIT

# Sets WORKDIR to a new scratch directory, removed when the script exits.
new_workdir() {
  WORKDIR=$(mktemp -d /var/tmp/testbed-image.XXXXXX)
  WORK_DIRS+=("$WORKDIR")
}

# --- testbed/busybox:latest ------------------------------------------------------
# Debian's busybox-static binary with a symlink per applet, root in passwd/group.
image_busybox() {
  IMAGE_NAME=testbed/busybox:latest
  [[ -x /bin/busybox ]] || die "/bin/busybox missing: apt-get install busybox-static"
  RECIPE_INPUTS="$(declare -f build_busybox)
busybox=$(sha256sum /bin/busybox | cut -d' ' -f1)"
}

build_busybox() {
  local tag=$1 sha=$2 dir applet
  new_workdir; dir=$WORKDIR
  mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev}
  chmod 1777 "$dir/tmp"
  chmod 700 "$dir/root"
  cp /bin/busybox "$dir/bin/busybox"
  # --list-full gives each applet with its usual directory (bin/sh, sbin/ip, usr/bin/...)
  while read -r applet; do
    [[ -n $applet && $applet != bin/busybox ]] || continue
    ln -sf /bin/busybox "$dir/$applet"
  done < <(/bin/busybox --list-full)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  tar --numeric-owner -C "$dir" -c . |
    "$DOCKER" import -c 'CMD ["sh"]' -c "ENV PATH=$DEFAULT_PATH" \
      -c "LABEL $LABEL_KEY=$sha" - "$tag" >/dev/null
}

# --- testbed/debian:bookworm -----------------------------------------------------
# debootstrap minbase with the network tools the experiments use.
DEBIAN_SUITE=bookworm
DEBIAN_PACKAGES=iproute2,iputils-ping,iperf3,procps,netcat-openbsd,ca-certificates

image_debian() {
  IMAGE_NAME=testbed/debian:$DEBIAN_SUITE
  RECIPE_INPUTS="$(declare -f build_debian debian_rootfs_tarball)
suite=$DEBIAN_SUITE packages=$DEBIAN_PACKAGES mirror=$DEBIAN_MIRROR"
}

# Sets DEBIAN_TARBALL to the cached, cleaned root fs tarball; runs debootstrap
# only when it is missing. Its name includes a hash of suite + package list.
debian_rootfs_tarball() {
  local key tarball dir
  key=$(printf '%s minbase %s' "$DEBIAN_SUITE" "$DEBIAN_PACKAGES" | sha256sum | cut -c1-12)
  tarball=$CACHE_DIR/debian-$DEBIAN_SUITE-minbase-$key.tar
  if [[ ! -s $tarball ]]; then
    command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install debootstrap"
    mkdir -p "$CACHE_DIR"
    new_workdir; dir=$WORKDIR
    say "debootstrap $DEBIAN_SUITE (minbase + $DEBIAN_PACKAGES), about a minute"
    if ! debootstrap --variant=minbase --include="$DEBIAN_PACKAGES" \
        "$DEBIAN_SUITE" "$dir/rootfs" "$DEBIAN_MIRROR" >"$dir/debootstrap.log" 2>&1; then
      tail -n 30 "$dir/debootstrap.log" >&2
      die "debootstrap failed"
    fi
    # keep the image small: no package lists, archives or logs
    rm -rf "$dir/rootfs"/var/lib/apt/lists/* "$dir/rootfs"/var/cache/apt/*.bin \
      "$dir/rootfs"/var/cache/apt/archives/*.deb "$dir/rootfs"/var/cache/apt/archives/partial/* \
      "$dir/rootfs"/var/log/*.log "$dir/rootfs"/var/log/apt/* "$dir/rootfs"/tmp/* \
      "$dir/rootfs"/debootstrap
    mkdir -p "$dir/rootfs/var/lib/apt/lists/partial"
    tar --numeric-owner -C "$dir/rootfs" -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
  fi
  DEBIAN_TARBALL=$tarball
}

build_debian() {
  local tag=$1 sha=$2
  debian_rootfs_tarball
  "$DOCKER" import -c 'CMD ["bash"]' -c "ENV PATH=$DEFAULT_PATH" \
    -c "LABEL $LABEL_KEY=$sha" "$DEBIAN_TARBALL" "$tag" >/dev/null
}

# --- testbed/host:bookworm ----------------------------------------------------------
# A simulated physical host for the multi-host tests (tests/multihost/hosts.py): Debian with
# its own Docker engine (Docker-in-Docker), sshd for root key login and the project's pinned
# Python requirements (roles/host/files/requirements.txt, what the host role installs) in a virtualenv (design decision 12: one pinned set via pip in a venv on
# every host; ansible_python_interpreter=/opt/testbed/venv/bin/python). Built with
# `docker build` FROM the local testbed/debian image; apt and PyPI are reached through NAT.
# Run it with the Docker-in-Docker flags of ../shared/machine.md (not --privileged):
#   docker run -d --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
#     --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
#     -v /sys/fs/cgroup:/sys/fs/cgroup -v NAME-docker:/var/lib/docker \
#     -e TESTBED_AUTHORIZED_KEYS="$(cat key.pub)" testbed/host:bookworm
HOST_PACKAGES="docker.io iptables iproute2 openssh-server python3 python3-venv python3-pip busybox-static iperf3 procps tcpdump"

# The recipe of a simulated host image: the functions that build it, its packages and the base
# image's id (a rebuilt testbed/debian rebuilds it too); sets RECIPE_INPUTS.
sim_host_recipe() {
  local name=$1 packages=$2 base
  shift 2
  base=$("$DOCKER" image inspect -f '{{.Id}}' "testbed/debian:$DEBIAN_SUITE" 2>/dev/null) ||
    die "testbed/debian:$DEBIAN_SUITE missing: build it first (scripts/build-images.sh debian $name)"
  RECIPE_INPUTS="$(declare -f "build_$name" "$@" host_ssh_setup host_sshd_config sim_host_dockerfile build_sim_host)
packages=$packages base=$base"
}

image_host() {
  IMAGE_NAME=testbed/host:$DEBIAN_SUITE
  sim_host_recipe host "$HOST_PACKAGES" host_init_script
  RECIPE_INPUTS="$RECIPE_INPUTS
requirements=$(sha256sum "$ROOT_DIR/roles/host/files/requirements.txt" | cut -d' ' -f1)"
}

# The entrypoint (under tini): per-container SSH host keys, authorized keys from
# $TESTBED_AUTHORIZED_KEYS and/or /etc/testbed/authorized_keys (a bind mount), dockerd, and
# sshd only once dockerd answers, so a host that accepts SSH has a working engine. Logs go
# to the container's output (`docker logs HOST`). Either daemon exiting ends the container.
# Storage driver: overlay2 (works nested when /var/lib/docker is a volume, i.e. not on
# overlayfs), vfs when /var/lib/docker is on overlayfs; TESTBED_STORAGE_DRIVER overrides.
# TESTBED_CGROUP_PARENT puts the inner containers' cgroups under one parent (the outer
# machine's /sys/fs/cgroup is shared), TESTBED_DOCKERD_ARGS adds dockerd flags.
host_init_script() {
  cat <<'EOF'
#!/bin/bash
set -uo pipefail
log() { printf '[testbed-host] %s\n' "$*"; }
EOF
  host_ssh_setup
  cat <<'EOF'

driver=${TESTBED_STORAGE_DRIVER:-}
if [[ -z $driver ]]; then
  if [[ $(stat -f -c %T /var/lib/docker) == overlayfs ]]; then driver=vfs; else driver=overlay2; fi
fi
args=(--iptables=true --storage-driver="$driver")
[[ -z ${TESTBED_CGROUP_PARENT:-} ]] || args+=(--cgroup-parent="$TESTBED_CGROUP_PARENT")
# Like a freshly booted machine: forwarding off, so dockerd turns it on and sets the FORWARD
# policy to DROP as it does on a real host (a new netns copies the outer machine's value, 1).
sysctl -qw net.ipv4.ip_forward=0 || log "cannot reset net.ipv4.ip_forward"
# stale pid files from an earlier run of this container (docker restart)
rm -f /run/docker.pid /run/docker/containerd/containerd.pid
log "starting dockerd ${args[*]} ${TESTBED_DOCKERD_ARGS:-}"
# shellcheck disable=SC2086
dockerd "${args[@]}" ${TESTBED_DOCKERD_ARGS:-} &
dockerd_pid=$!
sshd_pid=
stop() {
  log "stopping"
  [[ -z $sshd_pid ]] || kill -TERM "$sshd_pid" 2>/dev/null
  kill -TERM "$dockerd_pid" 2>/dev/null
  wait "$dockerd_pid"
  exit 0
}
trap stop TERM INT

for ((i = 0; i < 120; i++)); do
  docker info >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || { log "dockerd exited during start"; exit 1; }
  sleep 0.5
done
docker info >/dev/null 2>&1 || { log "dockerd did not answer within 60 s"; exit 1; }
log "dockerd ready (storage driver $driver)"

/usr/sbin/sshd -D -e &
sshd_pid=$!
touch /run/testbed-host.ready
log "sshd started: ready"
wait -n "$dockerd_pid" "$sshd_pid"
rc=$?
log "a daemon exited (status $rc): stopping the host"
kill -TERM "$dockerd_pid" "$sshd_pid" 2>/dev/null
wait
exit 1
EOF
}

# Root's SSH login (both simulated host kinds): host keys, authorized keys from
# $TESTBED_AUTHORIZED_KEYS and/or /etc/testbed/authorized_keys (a bind mount).
host_ssh_setup() {
  cat <<'EOF'
ssh-keygen -A >/dev/null
install -d -m 700 /root/.ssh
touch /root/.ssh/authorized_keys
if [[ -n ${TESTBED_AUTHORIZED_KEYS:-} ]]; then
  grep -qxF "$TESTBED_AUTHORIZED_KEYS" /root/.ssh/authorized_keys ||
    printf '%s\n' "$TESTBED_AUTHORIZED_KEYS" >>/root/.ssh/authorized_keys
fi
if [[ -r /etc/testbed/authorized_keys ]]; then
  cat /etc/testbed/authorized_keys >>/root/.ssh/authorized_keys
fi
chmod 600 /root/.ssh/authorized_keys
install -d -m 755 /run/sshd
EOF
}

host_sshd_config() {
  cat <<'EOF'
# testbed/host: root logs in with a key only (the multi-host tests inject theirs)
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 100
MaxStartups 100:30:200
EOF
}

# A simulated host's Dockerfile: FROM testbed/debian, Debian PACKAGES, the lines of EXTRA (read
# from stdin), sshd's config, the entrypoint INIT under tini, the /var/lib/docker volume.
sim_host_dockerfile() {
  local packages=$1 init=$2 role=$3 sha=$4
  cat <<EOF
FROM testbed/debian:$DEBIAN_SUITE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/*.log \\
 && rm -f /etc/ssh/ssh_host_*
EOF
  cat
  cat <<EOF
COPY sshd-testbed.conf /etc/ssh/sshd_config.d/testbed.conf
COPY $init /usr/local/sbin/$init
RUN chmod 755 /usr/local/sbin/$init
VOLUME /var/lib/docker
EXPOSE 22
ENV PATH=$DEFAULT_PATH
LABEL $LABEL_KEY=$sha testbed.role=$role
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/$init"]
EOF
}

# Builds DIR (with its Dockerfile) as TAG with the classic builder, which uses the local FROM
# image as is (BuildKit would ask a registry).
build_sim_host() {
  local tag=$1 dir=$2
  if ! DOCKER_BUILDKIT=0 "$DOCKER" build --network bridge -t "$tag" "$dir" >"$dir/build.log" 2>&1; then
    tail -n 30 "$dir/build.log" >&2
    die "docker build of $tag failed"
  fi
}

build_host() {
  local tag=$1 sha=$2 dir
  new_workdir; dir=$WORKDIR
  cp "$ROOT_DIR/roles/host/files/requirements.txt" "$dir/requirements.txt"
  host_init_script >"$dir/testbed-host-init"
  host_sshd_config >"$dir/sshd-testbed.conf"
  # pip inside the build verifies PyPI's certificate against this machine's CA bundle: egress
  # may pass a TLS-inspecting proxy whose CA only this machine's bundle has. Used and removed
  # in one step; transport only, so not part of the recipe.
  cp /etc/ssl/certs/ca-certificates.crt "$dir/build-ca.crt"
  sim_host_dockerfile "$HOST_PACKAGES" testbed-host-init simulated-host "$sha" >"$dir/Dockerfile" <<'EOF'
COPY requirements.txt /opt/testbed/requirements.txt
COPY build-ca.crt /tmp/build-ca.crt
RUN python3 -m venv /opt/testbed/venv \
 && /opt/testbed/venv/bin/pip install --no-cache-dir --disable-pip-version-check -q \
      --cert /tmp/build-ca.crt -r /opt/testbed/requirements.txt \
 && rm -f /tmp/build-ca.crt
EOF
  build_sim_host "$tag" "$dir"
}

# --- testbed/barehost:bookworm -------------------------------------------------------------
# A freshly installed physical host for the host role's install path (molecule scenario
# host, tests/multihost/test_bare_host.py): Debian with sshd and python3 only, no Docker
# engine, no testbed Python packages; roles/host installs them. Like a machine a testbed just
# imaged: net.ipv4.ip_forward=0. Site settings a real testbed would have come from the
# environment and mounts: TESTBED_AUTHORIZED_KEYS, TESTBED_CGROUP_PARENT (written to
# /etc/docker/daemon.json before the engine exists, so the inner containers' cgroups have one
# parent) and a CA bundle at /etc/testbed/site-ca.crt (named in /etc/pip.conf: egress may
# pass a TLS-inspecting proxy). Same Docker-in-Docker flags and /var/lib/docker volume as
# testbed/host.
BAREHOST_PACKAGES="openssh-server python3 tini"

image_barehost() {
  IMAGE_NAME=testbed/barehost:$DEBIAN_SUITE
  sim_host_recipe barehost "$BAREHOST_PACKAGES" barehost_init_script
}

barehost_init_script() {
  cat <<'EOF'
#!/bin/bash
set -uo pipefail
log() { printf '[testbed-barehost] %s\n' "$*"; }
EOF
  host_ssh_setup
  cat <<'EOF'
if [[ -n ${TESTBED_CGROUP_PARENT:-} && ! -e /etc/docker/daemon.json ]]; then
  install -d /etc/docker
  printf '{"cgroup-parent": "%s"}\n' "$TESTBED_CGROUP_PARENT" >/etc/docker/daemon.json
fi
if [[ -r /etc/testbed/site-ca.crt ]]; then
  printf '[global]\ncert = /etc/testbed/site-ca.crt\n' >/etc/pip.conf
fi
sysctl -qw net.ipv4.ip_forward=0 || log "cannot reset net.ipv4.ip_forward"
# a restarted container: the engine the host role installed starts again, as at boot (as the
# role starts it here: Debian's init script fails raising ulimits without CAP_SYS_RESOURCE)
if [[ -x /usr/sbin/dockerd ]]; then
  rm -f /run/docker.pid /run/docker-testbed.pid
  start-stop-daemon --start --background --make-pidfile --pidfile /run/docker-testbed.pid \
    --output /var/log/docker.log --exec /usr/sbin/dockerd || log "dockerd did not start"
fi
touch /run/testbed-host.ready
log "sshd starting: ready"
exec /usr/sbin/sshd -D -e
EOF
}

build_barehost() {
  local tag=$1 sha=$2 dir
  new_workdir; dir=$WORKDIR
  barehost_init_script >"$dir/testbed-barehost-init"
  host_sshd_config >"$dir/sshd-testbed.conf"
  sim_host_dockerfile "$BAREHOST_PACKAGES" testbed-barehost-init simulated-bare-host "$sha" >"$dir/Dockerfile" </dev/null
  build_sim_host "$tag" "$dir"
}

# --- driver ------------------------------------------------------------------------
ensure_image() {
  local name=$1 force=$2 sha old_id current start
  IMAGE_NAME='' RECIPE_INPUTS=''
  "image_$name"
  sha=$(printf '%s' "$RECIPE_INPUTS" | sha256sum | cut -d' ' -f1)
  old_id=$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE_NAME" 2>/dev/null || true)
  current=$("$DOCKER" image inspect -f "{{index .Config.Labels \"$LABEL_KEY\"}}" "$IMAGE_NAME" 2>/dev/null || true)
  if [[ $force == 0 && $current == "$sha" ]]; then
    say "$IMAGE_NAME: up to date"
    return
  fi
  start=$SECONDS
  "build_$name" "$IMAGE_NAME" "$sha"
  # drop the image this one replaced (now untagged), unless a container still uses it
  if [[ -n $old_id && $old_id != "$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE_NAME")" ]]; then
    "$DOCKER" image rm "$old_id" >/dev/null 2>&1 || true
  fi
  say "$IMAGE_NAME: built in $((SECONDS - start)) s ($("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE_NAME" | numfmt --to=si)B)"
}

main() {
  local force=0 selected=() name
  for arg in "$@"; do
    case $arg in
      --force) force=1 ;;
      -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
      *) declare -F "image_$arg" >/dev/null || die "unknown image '$arg' (known: ${IMAGES[*]})"
         selected+=("$arg") ;;
    esac
  done
  ((${#selected[@]})) || selected=("${IMAGES[@]}")
  [[ $(id -u) -eq 0 ]] || die "run as root (debootstrap)"
  "$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers '$DOCKER info' (run setup.sh)"
  for name in "${selected[@]}"; do
    ensure_image "$name" "$force"
  done
}

main "$@"
