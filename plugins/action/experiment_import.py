# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action of M(testbed.containers.experiment_import): convert in the controller's own process.

Converting is pure and reads the file where it is, on the controller: as a module it paid a
module process (about 0.5 s) for a few milliseconds of work on every teardown, snapshot and
convert (plugin_utils/controller_action.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.testbed.containers.plugins.module_utils.importers import import_task
from ansible_collections.testbed.containers.plugins.modules.experiment_import import ARGUMENT_SPEC
from ansible_collections.testbed.containers.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args, check_mode):
        return import_task(args, check_mode)
