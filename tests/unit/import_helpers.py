"""What the importer tests share: reading a fixture or an inline source, converting it, and
finding notes and lines."""
import os
import textwrap

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import importers, model

SOURCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "import_sources")
NEW_NODE_KEYS = ("entrypoint", "user", "workdir", "binds", "cap_add", "sysctls", "labels", "ports")
NEW_MODEL = set(NEW_NODE_KEYS) <= set(model.NODE_KEYS) and "interface" in getattr(model, "MEMBER_KEYS", ())
needs_new_model = pytest.mark.skipif(not NEW_MODEL, reason="model.py does not have the new node and member keys yet")


class Sources:
    """Fixtures under import_sources/SUBDIR and inline sources named ``default_name``, converted
    by ``importer`` (a module with convert(text, path, options))."""

    def __init__(self, importer, subdir, default_name):
        self.importer, self.dir, self.default_name = importer, os.path.join(SOURCES, subdir), default_name

    def fixture(self, name):
        path = os.path.join(self.dir, name)
        with open(path) as f:
            return path, f.read()

    def convert_file(self, name, options=None):
        path, text = self.fixture(name)
        doc, notes = self.importer.convert(text, path, options or {})
        return text, doc, notes

    def failing_file(self, name, options=None):
        path, text = self.fixture(name)
        with pytest.raises(importers.ImportFailed) as exc:
            self.importer.convert(text, path, options or {})
        return text, exc.value.notes

    def write(self, tmp_path, text, name=None):
        path = tmp_path / (name or self.default_name)
        path.write_text(textwrap.dedent(text))
        return str(path), path.read_text()

    def convert_text(self, tmp_path, text, options=None):
        path, text = self.write(tmp_path, text)
        doc, notes = self.importer.convert(text, path, options or {})
        return text, doc, notes

    def failing_text(self, tmp_path, text, options=None):
        path, text = self.write(tmp_path, text)
        with pytest.raises(importers.ImportFailed) as exc:
            self.importer.convert(text, path, options or {})
        return text, exc.value.notes


def line_of(text, needle, nth=1):
    """The 1-based line of the nth line of ``text`` containing ``needle``."""
    found = [i for i, line in enumerate(text.split("\n"), 1) if needle in line]
    assert len(found) >= nth, "%r is not in the source" % needle
    return found[nth - 1]


def only(notes, level, fragment):
    """The one note of ``level`` whose message contains ``fragment``."""
    found = [n for n in notes if n.level == level and fragment in n.message]
    assert len(found) == 1, "%s %r: %r" % (level, fragment, [str(n) for n in notes])
    return found[0]


def levels(notes, level):
    return [n for n in notes if n.level == level]
