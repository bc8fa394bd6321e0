#!/usr/bin/env bash
# Build the static tools that augmentation injects into images (docs/augmentation.md):
#   supervisor  tools/supervisor/supervisor.c, gcc -static -Os (runs in any image: scratch,
#               distroless, any libc)
#   busybox     Debian's static busybox (package busybox-static), for `sh -c` of start
#               commands in images without a shell, and for inspecting any node
#
# Usage: scripts/build-tools.sh [--force] [--out DIR]
#   DIR defaults to $TESTBED_TOOLS_DIR, else /var/cache/testbed/tools: one well-known place
#   per machine, which module_utils/augment.py (and the image_augment module, wherever the
#   collection is installed) looks in.  Idempotent: the supervisor is rebuilt only when its
#   source, the compiler or the flags changed (a stamp file records their hash); busybox is
#   copied only when it differs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${TESTBED_TOOLS_DIR:-/var/cache/testbed/tools}
SRC=$ROOT/tools/supervisor/supervisor.c
BUSYBOX=/bin/busybox
CC=${CC:-gcc}
CFLAGS=(-static -Os -s -Wall -Wextra -Werror -std=gnu11 -D_FORTIFY_SOURCE=2 -fno-asynchronous-unwind-tables)

say() { printf '[tools] %s\n' "$*"; }
die() { printf '[tools] ERROR: %s\n' "$*" >&2; exit 1; }

force=0
while (($#)); do
  case $1 in
    --force) force=1 ;;
    --out) shift; OUT=${1:?--out needs a directory} ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" ;;
  esac
  shift
done

command -v "$CC" >/dev/null || die "$CC missing: apt-get install gcc libc6-dev"
[[ -x $BUSYBOX ]] || die "$BUSYBOX missing: apt-get install busybox-static"
file_type=$(head -c 4 "$BUSYBOX" | od -An -c | tr -d ' ')
[[ $file_type == 177ELF ]] || die "$BUSYBOX is not an ELF binary"
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
