# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The testbed services of the ``full`` augmentation level: accounts and an SSH server.

Image side: the script the supervisor runs as the ``sshd`` service (``/.testbed/services/sshd``,
interpreted by the injected static busybox shell, so it needs nothing from the image).  It
creates the experiment's accounts in the node's ``/etc/passwd`` (``/etc/group``, ``/etc/shadow``
when there is one) when they are missing, links each account's ``~/.ssh/authorized_keys`` to
the keys the host keeps for it, and runs the statically linked dropbear SSH server (keys only,
no passwords) on port 22.

Host side: ``write_accounts`` and ``ensure_host_key`` fill the node's directory (bind-mounted
read-only at ``/.testbed/node``, decision 9: accounts and keys reach a node at run time, never
baked into the image):

- ``users``: one account name per line (root is implicit);
- ``keys/NAME``: the authorized keys of account NAME (``keys/root``: every user's keys, since
  every experiment user may log in as root);
- ``ssh_host_ed25519_key``: the node's host key (dropbear format), made on the host once, so
  it survives restarts and is not copied by ``docker commit``.

docs/augmentation.md ("The full level") has the design.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess

from ansible_collections.testbed.containers.plugins.module_utils import files

USERS_FILE = "users"
KEYS_DIR = "keys"
HOST_KEY = "ssh_host_ed25519_key"
# A POSIX account name as useradd accepts it (Debian's default NAME_REGEX, plus uppercase).
ACCOUNT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")

SSHD_SERVICE = r"""# testbed.containers, augmentation level `full`: accounts, then the SSH server.
# Run by the supervisor as root with the injected busybox shell; output in
# /var/log/testbed/sshd.log.  `sh /.testbed/services/sshd --accounts` only updates accounts
# (the host runs it when an experiment's users change on a running node).
set -u
TB=/.testbed
BB=$TB/bin/busybox
NODE=$TB/node

log() { echo "$($BB date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }

# The login shell of a new account: the image's bash or sh, else the injected one.
login_shell() {
  for s in /bin/bash /bin/sh; do
    if [ -x "$s" ]; then echo "$s"; return; fi
  done
  echo "$TB/bin/sh"
}

# entry FILE NAME FIELD: field FIELD of NAME's line in the colon-separated FILE
entry() { $BB awk -F: -v n="$2" -v f="$3" '$1 == n { print $f; exit }' "$1" 2>/dev/null; }

# The lowest id >= 2000 used neither as a uid nor as a gid.
free_id() { $BB awk -F: '{ used[$3] = 1 } END { id = 2000; while (id in used) id++; print id }' /etc/passwd /etc/group; }

# id_used ID: prints something when ID is a uid or a gid already
id_used() { $BB awk -F: -v id="$1" '$3 == id { print; exit }' /etc/passwd /etc/group; }

# ensure_account NAME [UID [HOME]]: the account, with the uid (and gid) and home the host asks for
# (an account whose home is on the project's shared directory), else the next free id and /home/NAME
ensure_account() {
  name=$1 want=${2:-} home=${3:-/home/$1}
  [ -n "$(entry /etc/passwd "$name" 1)" ] && return 0
  id=$want
  if [ -z "$id" ] || [ -n "$(id_used "$id")" ]; then
    [ -z "$id" ] || log "account $name: uid $id is taken in this image: another one"
    id=$(free_id)
  fi
  gid=$(entry /etc/group "$name" 3)
  if [ -z "$gid" ]; then
    gid=$id
    echo "$name:x:$gid:" >>/etc/group || return 1
  fi
  echo "$name:x:$id:$gid:testbed user:$home:$(login_shell)" >>/etc/passwd || return 1
  if [ -f /etc/shadow ]; then echo "$name:*:19000:0:99999:7:::" >>/etc/shadow; fi
  log "account $name created: uid $id gid $gid"
}

# install_keys NAME: ~NAME/.ssh/authorized_keys -> the host's keys of NAME (read-only, current)
install_keys() {
  name=$1
  uid=$(entry /etc/passwd "$name" 3)
  gid=$(entry /etc/passwd "$name" 4)
  home=$(entry /etc/passwd "$name" 6)
  [ -n "$uid" ] || return 1
  [ -n "$home" ] || home=/
  if [ ! -d "$home" ]; then
    $BB mkdir -p "$home" && $BB chown "$uid:$gid" "$home" && $BB chmod 0755 "$home" || return 1
  fi
  $BB chmod go-w "$home"
  $BB mkdir -p "$home/.ssh" && $BB chown "$uid:$gid" "$home/.ssh" && $BB chmod 0700 "$home/.ssh" || return 1
  $BB ln -sfn "$NODE/keys/$name" "$home/.ssh/authorized_keys"
}

accounts() {
  for f in /etc/passwd /etc/group; do
    [ -e "$f" ] || { $BB mkdir -p /etc && : >"$f"; } || return 1
  done
  [ -n "$(entry /etc/passwd root 1)" ] || echo "root:x:0:0:root:/root:$(login_shell)" >>/etc/passwd || return 1
  [ -n "$(entry /etc/group root 1)" ] || echo "root:x:0:" >>/etc/group || return 1
  rc=0
  if [ -f "$NODE/keys/root" ]; then install_keys root || rc=1; fi
  if [ -f "$NODE/users" ]; then
    while read -r name uid home; do
      case $name in ''|'#'*|root) continue ;; esac
      if ensure_account "$name" "$uid" "$home" && [ -f "$NODE/keys/$name" ]; then install_keys "$name" || rc=1; fi
    done <"$NODE/users"
  fi
  return $rc
}

if [ "${1:-}" = --accounts ]; then
  accounts
  exit $?
fi
accounts || log "accounts: could not be set up completely (read-only file system?)"
key=$NODE/ssh_host_ed25519_key
if [ ! -s "$key" ]; then
  # a node the testbed did not set up (a plain docker run): a key of its own
  key=$TB/run/ssh_host_ed25519_key
  [ -s "$key" ] || $TB/bin/dropbearkey -t ed25519 -f "$key" >/dev/null 2>&1
fi
log "starting dropbear on port %(port)d"
exec $TB/bin/dropbear -F -E -p %(port)d -r "$key" -P $TB/run/dropbear.pid
"""


def sshd_service(port=22):
    """The text of /.testbed/services/sshd."""
    return SSHD_SERVICE.replace("%(port)d", str(int(port)))


def _key_lines(keys):
    return "".join(k.strip() + "\n" for k in keys if k and k.strip())


def write_accounts(node_dir, users, root_keys=(), dry_run=False):
    """The node's accounts: ``users`` is a list of {name, ssh_keys}; root gets ``root_keys`` plus
    every user's keys.  Returns True if anything changed."""
    keys_dir = os.path.join(node_dir, KEYS_DIR)
    if not dry_run:
        os.makedirs(keys_dir, mode=0o755, exist_ok=True)
    wanted = {"root": list(root_keys)}
    for user in users:
        if user["name"] == "root":
            wanted["root"].extend(user.get("ssh_keys") or [])
            continue
        wanted[user["name"]] = list(user.get("ssh_keys") or [])
        wanted["root"].extend(user.get("ssh_keys") or [])
    seen = set()
    wanted["root"] = [k for k in wanted["root"] if not (k.strip() in seen or seen.add(k.strip()))]
    # NAME, or NAME UID HOME for an account whose home is on the project's directory
    users_text = "".join(" ".join([u["name"]] + ([str(u["uid"]), u["home"]] if u.get("uid") else [])) + "\n"
                         for u in users if u["name"] != "root")
    changed = files.write_if_changed(os.path.join(node_dir, USERS_FILE), users_text, 0o644, dry_run)
    for name, keys in sorted(wanted.items()):
        changed = files.write_if_changed(os.path.join(keys_dir, name), _key_lines(keys), 0o644, dry_run) or changed
    try:
        present = os.listdir(keys_dir)
    except OSError:
        present = []
    for name in present:
        if name not in wanted and not name.endswith(".tmp"):
            changed = True
            if not dry_run:
                os.unlink(os.path.join(keys_dir, name))
    return changed


def ensure_host_key(node_dir, dropbearmulti, dry_run=False):
    """The node's SSH host key, made once on the host with the injected dropbear's keygen.
    Returns True if it was made now."""
    path = os.path.join(node_dir, HOST_KEY)
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return False
    if dry_run:
        return True
    os.makedirs(node_dir, mode=0o755, exist_ok=True)
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    proc = subprocess.run([dropbearmulti, "dropbearkey", "-t", "ed25519", "-f", tmp],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if proc.returncode != 0:
        raise OSError("%s dropbearkey failed: %s" % (dropbearmulti, proc.stdout.strip()))
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)
    return True


def host_key_fingerprint(node_dir, dropbearmulti):
    """The SHA256 fingerprint of the node's host key (``dropbearkey -y``), or None."""
    path = os.path.join(node_dir, HOST_KEY)
    if not os.path.exists(path):
        return None
    proc = subprocess.run([dropbearmulti, "dropbearkey", "-y", "-f", path], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, universal_newlines=True, check=False)
    match = re.search(r"Fingerprint: (\S+)", proc.stdout or "")
    return match.group(1) if match else None
