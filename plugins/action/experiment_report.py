# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action of M(testbed.containers.experiment_report): merge the record in the controller's
own process.

The record is the controller's (its record_dir, default ~/.testbed/experiments): the module ran
there anyway, paying a module process (packing, a new interpreter, imports, the plan and the
statuses through JSON both ways) for a merge of a few milliseconds. The action validates the
module's argument spec and calls the same function (report.converge_record), check mode
included."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.testbed.containers.plugins.module_utils import report
from ansible_collections.testbed.containers.plugins.modules.experiment_report import ARGUMENT_SPEC


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        changed, _ops, merged = report.converge_record(dry_run=bool(self._play_context.check_mode), **args)
        result.update(merged)
        result["changed"] = changed
        return result
