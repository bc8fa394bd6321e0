# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action of M(testbed.containers.experiment_report): merge the record in the controller's
own process.

The record is the controller's (its record_dir, default ~/.testbed/experiments): the module ran
there anyway, paying a module process for a merge of milliseconds, with the plan and the
statuses through JSON both ways (plugin_utils/controller_action.py). Check mode included."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.testbed.containers.plugins.module_utils import report
from ansible_collections.testbed.containers.plugins.modules.experiment_report import ARGUMENT_SPEC
from ansible_collections.testbed.containers.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args, check_mode):
        changed, _ops, result = report.converge_record(dry_run=check_mode, **args)
        return dict(result, changed=changed)
