#!/usr/bin/env bash
# Build the static tools that augmentation injects into images (docs/augmentation.md):
#   supervisor  tools/supervisor/supervisor.c, gcc -static -Os (runs in any image: scratch,
#               distroless, any libc)
#   busybox     Debian's static busybox (package busybox-static), for `sh -c` of start
#               commands in images without a shell, and for inspecting any node
#   dropbearmulti  dropbear SSH server (multi binary: dropbear, dropbearkey, scp; dispatch by
#               the name it is called by, or `dropbearmulti dropbear ...`), built from Debian
#               bookworm's source package (fetched with apt, so verified by apt's signed
#               indexes; Debian's patches applied) plus tools/dropbear/testbed.patch, linked
#               statically with musl (musl-gcc): runs in any image and reads /etc/passwd
#               itself (no NSS).  Public-key logins only.  Its license: dropbear.LICENSE.
#
# Usage: scripts/build-tools.sh [--force] [--update-sources] [--out DIR]
#   DIR defaults to $TESTBED_TOOLS_DIR, else /var/cache/testbed/tools: one well-known place
#   per machine, which module_utils/augment.py (and the image_augment module, wherever the
#   collection is installed) looks in.  Idempotent: the supervisor and dropbear are rebuilt
#   only when their source, the compiler or the flags changed (a stamp file records their
#   hash); busybox is copied only when it differs.  The dropbear source is downloaded once
#   into $TESTBED_SRC_DIR, else /var/cache/testbed/src (private apt lists there; the
#   system's apt configuration is not touched); --update-sources asks apt again, e.g. for
#   a new Debian security revision.  --force rebuilds from the cached source.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${TESTBED_TOOLS_DIR:-/var/cache/testbed/tools}
SRC=$ROOT/tools/supervisor/supervisor.c
BUSYBOX=/bin/busybox
CC=${CC:-gcc}
CFLAGS=(-static -Os -s -Wall -Wextra -Werror -std=gnu11 -D_FORTIFY_SOURCE=2 -fno-asynchronous-unwind-tables)

SRC_DIR=${TESTBED_SRC_DIR:-/var/cache/testbed/src}
DROPBEAR_PATCH=$ROOT/tools/dropbear/testbed.patch
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MUSL_CC=musl-gcc
# syslog stays compiled in: without it dropbear rejects -E ("Invalid option -E")
DROPBEAR_CONFIGURE=(--enable-static --enable-bundled-libtom --disable-zlib --disable-shadow
  --disable-lastlog --disable-utmp --disable-utmpx --disable-wtmp --disable-wtmpx
  --disable-loginfunc --disable-pututline --disable-pututxline)
DROPBEAR_MAKE=("PROGRAMS=dropbear dropbearkey scp" MULTI=1)
DROPBEAR_LOCALOPTIONS='/* testbed (scripts/build-tools.sh) */
#define DROPBEAR_SVR_PASSWORD_AUTH 0
#define DROPBEAR_SVR_PAM_AUTH 0
#define DROPBEAR_X11FWD 0
#define DROPBEAR_REEXEC 0
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin:/.testbed/tools"
#define DEFAULT_ROOT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.testbed/tools"'

say() { printf '[tools] %s\n' "$*"; }
die() { printf '[tools] ERROR: %s\n' "$*" >&2; exit 1; }

force=0
update_sources=0
while (($#)); do
  case $1 in
    --force) force=1 ;;
    --update-sources) update_sources=1 ;;
    --out) shift; OUT=${1:?--out needs a directory} ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" ;;
  esac
  shift
done

command -v "$CC" >/dev/null || die "$CC missing: apt-get install gcc libc6-dev"
[[ -x $BUSYBOX ]] || die "$BUSYBOX missing: apt-get install busybox-static"
file_type=$(head -c 4 "$BUSYBOX" | od -An -c | tr -d ' ')
[[ $file_type == 177ELF ]] || die "$BUSYBOX is not an ELF binary"
command -v "$MUSL_CC" >/dev/null || die "$MUSL_CC missing (dropbear is linked with musl): apt-get install musl-tools"
command -v dpkg-source >/dev/null || die "dpkg-source missing (unpacks dropbear's Debian source): apt-get install dpkg-dev"
for tool in make patch strip bzip2 xz; do
  command -v "$tool" >/dev/null || die "$tool missing (dropbear build): apt-get install dpkg-dev bzip2 xz-utils"
done
[[ -f $DROPBEAR_PATCH ]] || die "$DROPBEAR_PATCH missing"
mkdir -p "$OUT"

# --- supervisor ---------------------------------------------------------------------
stamp=$( { sha256sum "$SRC" | cut -d' ' -f1; "$CC" --version | head -n1; printf '%s ' "${CFLAGS[@]}"; } | sha256sum | cut -d' ' -f1)
if [[ $force == 0 && -x $OUT/supervisor && -f $OUT/supervisor.stamp && $(<"$OUT/supervisor.stamp") == "$stamp" ]]; then
  say "supervisor: up to date ($OUT/supervisor)"
else
  tmp=$(mktemp "$OUT/.supervisor.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  "$CC" "${CFLAGS[@]}" -o "$tmp" "$SRC"
  # a static binary must not need the dynamic loader
  if readelf -l "$tmp" 2>/dev/null | grep -q 'INTERP'; then
    die "supervisor is not statically linked"
  fi
  chmod 0755 "$tmp"
  mv -f "$tmp" "$OUT/supervisor"
  trap - EXIT
  printf '%s\n' "$stamp" >"$OUT/supervisor.stamp"
  say "supervisor: built $OUT/supervisor ($(stat -c %s "$OUT/supervisor") bytes)"
fi

# --- busybox ------------------------------------------------------------------------
if readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'INTERP'; then
  die "$BUSYBOX is dynamically linked: install busybox-static (not busybox)"
fi
if [[ $force == 0 && -x $OUT/busybox ]] && cmp -s "$BUSYBOX" "$OUT/busybox"; then
  say "busybox: up to date ($OUT/busybox)"
else
  install -m 0755 "$BUSYBOX" "$OUT/busybox.tmp"
  mv -f "$OUT/busybox.tmp" "$OUT/busybox"
  say "busybox: copied $BUSYBOX to $OUT/busybox"
fi

# --- dropbear -----------------------------------------------------------------------
# The source: the .dsc and the files it lists, as `apt-get source --download-only` fetched
# them from Debian bookworm (+ bookworm-security), kept in $SRC_DIR/dropbear.
fetch_dropbear_source() {
  local apt_dir=$SRC_DIR/apt stage
  [[ -f $DEBIAN_KEYRING ]] || die "$DEBIAN_KEYRING missing: apt-get install debian-archive-keyring"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache"
  cat >"$apt_dir/sources.list" <<EOF
deb-src [signed-by=$DEBIAN_KEYRING] http://deb.debian.org/debian bookworm main
deb-src [signed-by=$DEBIAN_KEYRING] http://deb.debian.org/debian-security bookworm-security main
EOF
  # private sources, lists, caches and an empty dpkg status: apt picks the newest source
  # version in these two suites, whatever this machine's apt configuration or packages
  local apt=(apt-get -qq -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o Dir::Etc::SourceParts=/nonexistent -o Dir::Etc::Preferences=/nonexistent
    -o Dir::Etc::PreferencesParts=/nonexistent -o "Dir::State::Lists=$apt_dir/lists"
    -o Dir::State::status=/dev/null -o "Dir::Cache=$apt_dir/cache")
  say "dropbear: fetching Debian bookworm's source package with apt"
  "${apt[@]}" update || die "apt-get update of the deb-src lists failed (is deb.debian.org reachable?)"
  stage=$(mktemp -d "$SRC_DIR/.dropbear.XXXXXX")
  # apt run by root downloads as user _apt, which must be able to write there
  if [[ $(id -u) == 0 ]] && id -u _apt >/dev/null 2>&1; then chown _apt "$stage"; fi
  (cd "$stage" && "${apt[@]}" source --download-only --only-source dropbear) \
    || { rm -rf "$stage"; die "apt-get source dropbear failed"; }
  chown -R "$(id -u):$(id -g)" "$stage"
  chmod 0755 "$stage"
  rm -rf "$SRC_DIR/dropbear"
  mv "$stage" "$SRC_DIR/dropbear"
}

# run a build step quietly; on failure show the end of its output and stop
run_logged() {
  local what=$1 log=$2; shift 2
  if ! "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "dropbear: $what failed"
  fi
}

mkdir -p "$SRC_DIR"
shopt -s nullglob
dscs=("$SRC_DIR"/dropbear/dropbear_*.dsc)
if [[ $update_sources == 1 || ${#dscs[@]} -ne 1 ]]; then
  fetch_dropbear_source
  dscs=("$SRC_DIR"/dropbear/dropbear_*.dsc)
fi
shopt -u nullglob
((${#dscs[@]} == 1)) || die "expected one dropbear_*.dsc in $SRC_DIR/dropbear, found ${#dscs[@]}"
dsc=${dscs[0]}
dropbear_version=$(sed -n 's/^Version: //p' "$dsc")
# the files the .dsc lists (apt checked them when it downloaded them; check the cache)
(cd "$SRC_DIR/dropbear" && awk '/^Checksums-Sha256:/ {f = 1; next} /^[^ ]/ {f = 0} f && NF == 3 {print $1 "  " $3}' "$dsc" \
  | sha256sum --quiet -c -) || die "cached dropbear source in $SRC_DIR/dropbear is damaged: rerun with --update-sources"

stamp=$( { sha256sum "$dsc" "$DROPBEAR_PATCH" | cut -d' ' -f1; printf '%s\n' "$DROPBEAR_LOCALOPTIONS";
  printf '%s ' "${DROPBEAR_CONFIGURE[@]}" "${DROPBEAR_MAKE[@]}"; "$MUSL_CC" --version | head -n1;
  dpkg-query -W -f='musl-dev ${Version}\n' musl-dev 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)
if [[ $force == 0 && -x $OUT/dropbearmulti && -f $OUT/dropbear.LICENSE && -f $OUT/dropbearmulti.stamp \
      && $(<"$OUT/dropbearmulti.stamp") == "$stamp" ]]; then
  say "dropbear: up to date ($OUT/dropbearmulti, $dropbear_version)"
else
  say "dropbear: building $dropbear_version with $MUSL_CC"
  work=$(mktemp -d "${TMPDIR:-/tmp}/testbed-dropbear.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # fixed layout and relative paths inside $work: __FILE__ strings do not depend on
  # $work, so the binary is reproducible
  run_logged "unpacking $dsc" "$work/unpack.log" dpkg-source --no-check -x "$dsc" "$work/src"
  patch -d "$work/src" -p1 --forward --batch --no-backup-if-mismatch <"$DROPBEAR_PATCH" >"$work/patch.log" 2>&1 \
    || { cat "$work/patch.log" >&2; die "tools/dropbear/testbed.patch does not apply to dropbear $dropbear_version: update the patch"; }
  mkdir "$work/build"
  printf '%s\n' "$DROPBEAR_LOCALOPTIONS" >"$work/build/localoptions.h"
  # configure and make must not pick up this shell's compiler flags
  (
    cd "$work/build"
    unset CFLAGS CPPFLAGS LDFLAGS LIBS MAKEFLAGS
    run_logged configure configure.log env CC="$MUSL_CC" ../src/configure "${DROPBEAR_CONFIGURE[@]}"
    run_logged make make.log make -j"$(nproc)" "${DROPBEAR_MAKE[@]}"
  ) || exit 1
  strip -o "$work/dropbearmulti" "$work/build/dropbearmulti"
  # a static binary must not need the dynamic loader
  if readelf -l "$work/dropbearmulti" 2>/dev/null | grep -q 'INTERP'; then
    die "dropbearmulti is not statically linked"
  fi
  # the multi binary dispatches on the name it is called by: make a key through a symlink
  mkdir "$work/check"
  ln -s "$work/dropbearmulti" "$work/check/dropbearkey"
  if ! "$work/check/dropbearkey" -t ed25519 -f "$work/check/key" >/dev/null 2>&1 || [[ ! -s $work/check/key ]]; then
    die "dropbearmulti does not work (dropbearkey -t ed25519 failed)"
  fi
  version_line=$("$work/dropbearmulti" dropbear -V 2>&1) || true
  [[ $version_line == *Dropbear* ]] || die "dropbearmulti does not work (dropbear -V: $version_line)"
  install -m 0644 "$work/src/LICENSE" "$OUT/.dropbear.LICENSE.tmp"
  mv -f "$OUT/.dropbear.LICENSE.tmp" "$OUT/dropbear.LICENSE"
  install -m 0755 "$work/dropbearmulti" "$OUT/.dropbearmulti.tmp"
  mv -f "$OUT/.dropbearmulti.tmp" "$OUT/dropbearmulti"
  rm -rf "$work"
  trap - EXIT
  printf '%s\n' "$stamp" >"$OUT/dropbearmulti.stamp"
  say "dropbear: built $OUT/dropbearmulti ($(stat -c %s "$OUT/dropbearmulti") bytes)"
fi
