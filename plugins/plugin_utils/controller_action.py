# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the action plugins that do a module's work in the controller's own process.

A module whose work is controller-side and takes milliseconds (planning, merging the record)
pays more for its module process (packing, a new interpreter, its arguments and result through
JSON) than for the work. Its action plugin of the same name sets ``ARGUMENT_SPEC`` to the
module's (so both validate alike) and implements :meth:`work`."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.plugins.action import ActionBase


class ControllerAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    ARGUMENT_SPEC = {}

    def work(self, args, check_mode):
        """The module's result for the validated ``args`` (a dict with ``changed``; ``warnings``
        and ``failed``/``msg`` as a module would give them)."""
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super(ControllerAction, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        # plain data, as a module receives it: Ansible's templated values are its own str and dict
        # subclasses (tagged with their origin), which yaml.safe_dump, for one, refuses
        args = json.loads(json.dumps(args))
        done = self.work(args, bool(self._play_context.check_mode))
        warnings = result.get("warnings", []) + done.pop("warnings", [])
        result.update(done)
        if warnings:
            result["warnings"] = warnings
        return result
