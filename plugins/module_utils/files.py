# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing the host's state files so that a crash, a kill or a full disk never leaves a torn one.

Every record and allocation file is replaced whole: written to a temporary file beside it,
flushed to disk, renamed over the old one, and the directory flushed; a failure (ENOSPC)
removes the temporary file and leaves the previous version as it was.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import threading


class StateWriteError(OSError):
    """A state file could not be written; the previous version is intact."""


def atomic_write(path, text, mode=0o644, uid=None, gid=None, durable=True):
    """Replace ``path`` with ``text`` (all or nothing)."""
    directory = os.path.dirname(path) or "."
    tmp = "%s.tmp%d.%d" % (path, os.getpid(), threading.get_ident())
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if uid is not None:
            os.chown(tmp, uid, -1 if gid is None else gid)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise StateWriteError(exc.errno, "cannot write %s: %s (the previous version is kept)"
                                  % (path, exc.strerror or exc))
        raise
    if durable:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError, UnicodeDecodeError):
        return None


def write_if_changed(path, text, mode=0o644, dry_run=False):
    """Replace ``path`` atomically with ``text`` unless it holds it already; True if it differed
    (in dry run: would be written)."""
    if read_text(path) == text:
        return False
    if not dry_run:
        atomic_write(path, text, mode, durable=False)
    return True


def read_json(path):
    """The JSON document at ``path``, or None when it is missing or unreadable."""
    text = read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def write_json(path, document):
    atomic_write(path, json.dumps(document, indent=1, sort_keys=True))
