# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the thin modules share around a ``converge`` of module_utils: the host's name in every
error, the operations a failure had already done, and the operations as the diff."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import platform


def operations_diff(operations):
    """The diff of a module that returns operations: what it did (or would do), one per line."""
    return {"before": "", "after": "".join("%s\n" % op for op in operations), "after_header": "operations"}


def exit_converged(module, converge, errors=(), **kwargs):
    """Run ``converge(dry_run=check_mode, **kwargs)`` -> (changed, operations, result) and exit the
    module with it; ValueError (bad settings) and ``errors`` (with their ``operations``, if any)
    fail it with the host's name in front."""
    host = platform.node()
    try:
        changed, ops, result = converge(dry_run=module.check_mode, **kwargs)
    except ValueError as exc:
        module.fail_json(msg="%s: %s" % (host, exc))
    except errors as exc:  # pylint: disable=catching-non-exception
        module.fail_json(msg="%s: %s" % (host, exc), operations=list(getattr(exc, "operations", [])))
    result = dict(result, operations=result.get("operations", ops))
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = operations_diff(ops)
    module.exit_json(changed=changed, **result)
