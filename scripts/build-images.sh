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

IMAGES=(busybox debian)

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
