"""The host agent runs from a copy of the module_utils it lists: the list must be closed
under imports, or the copied agent dies at its first import (seen once: a new module)."""
import os
import re

from ansible_collections.testbed.containers.plugins.module_utils import agent

MODULE_UTILS = os.path.dirname(os.path.abspath(agent.__file__))
IMPORT = re.compile(r"from ansible_collections\.testbed\.containers\.plugins\.module_utils(?:\.(\w+))? import "
                    r"(\([\w ,\n]+\)|[\w ,]+)")


def imported_module_utils(name):
    with open(os.path.join(MODULE_UTILS, name + ".py")) as f:
        text = f.read()
    found = set()
    for module, names in IMPORT.findall(text):
        if module:
            found.add(module)
        else:
            names = names.strip("()").replace("\n", " ")
            found.update(n.strip().split(" as ")[0] for n in names.split(",") if n.strip())
    return found


def test_agent_copies_every_module_util_it_imports():
    closure = set(agent.MODULES)
    for name in agent.MODULES:
        missing = imported_module_utils(name) - closure
        assert not missing, "%s imports %s, which agent.MODULES does not copy" % (name, sorted(missing))


def test_the_import_scan_sees_multi_line_imports():
    assert {"augment", "services", "slice", "netlink"} <= imported_module_utils("slice") | {"slice"}
