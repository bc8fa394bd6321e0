# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Importers: experiments written for Emulab/DETER (NS files), containerlab and docker-compose,
converted into our experiment document (docs/importing.md).

Each format is one module of this package with one function::

    convert(text, path, options) -> (document, notes)

pure (it reads only ``text``, plus files the source itself names relative to ``path``, such as
a compose ``env_file``), deterministic, and raising ``ImportFailed(notes)`` when a construct
changes the experiment's meaning and cannot be honoured.  ``notes`` are ``Note``s: every
construct that is not carried over as it is written is reported with file, line and reason,
never dropped silently.  ``options`` is a dict (``Options`` below lists the keys).

``load(path, fmt=None, options=None)`` detects the format, converts, and applies ``strict``
(warnings become errors).  The plan role and the ``experiment_import`` module call it, so a
converted file and its source plan identically.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

FORMATS = ("native", "ns", "clab", "compose")
LEVELS = ("info", "warning", "error")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}\Z")
# What options each importer understands (the module's and playbooks' option names).
OPTION_KEYS = (
    "name",             # the experiment's name (default: from the file: its name: key or its file name)
    "project",          # the experiment's project (default: left out, i.e. "default")
    "default_image",    # the image of nodes the source does not give one (NS nodes, clab kinds without image)
    "os_images",        # NS: {OS name of tb-set-node-os: image}
    "kind_images",      # clab: {kind: image} for kinds other than linux and bridge
    "strict",           # warnings become errors
    "max_nodes",        # NS: stop an NS file that builds more nodes than this
    "max_steps",        # NS: stop an NS file that evaluates more commands than this (a loop that never ends)
)
DEFAULT_IMAGE = "testbed/debian:bookworm"
DEFAULT_MAX_NODES = 10000
DEFAULT_MAX_STEPS = 2000000


class Note:
    """One thing the converter reports: ``level`` info|warning|error, the source ``file`` and
    ``line`` (1-based, None when it is about the whole file), and the ``message``."""

    def __init__(self, level, file, line, message):
        if level not in LEVELS:
            raise ValueError("note level must be one of %s, got %r" % (", ".join(LEVELS), level))
        self.level, self.file, self.line, self.message = level, file, line, message

    def __str__(self):
        where = self.file if self.line is None else "%s:%d" % (self.file, self.line)
        return "%s: %s: %s" % (where, self.level, self.message)

    def __repr__(self):
        return "Note(%r)" % str(self)

    def as_dict(self):
        return {"level": self.level, "file": self.file, "line": self.line, "message": self.message}


class ImportFailed(Exception):
    """The source cannot be converted; ``notes`` holds every note found, the errors among them."""

    def __init__(self, notes):
        self.notes = list(notes)
        errors = [n for n in self.notes if n.level == "error"] or self.notes
        super(ImportFailed, self).__init__("\n".join(str(n) for n in errors))


class Notes:
    """Collects notes for one source file."""

    def __init__(self, path):
        self.path = path
        self.items = []

    def add(self, level, line, message):
        self.items.append(Note(level, self.path, line, message))

    def info(self, line, message):
        self.add("info", line, message)

    def warn(self, line, message):
        self.add("warning", line, message)

    def error(self, line, message):
        self.add("error", line, message)

    def errors(self):
        return [n for n in self.items if n.level == "error"]

    def gate(self):
        """Raise ImportFailed if any error was noted."""
        if self.errors():
            raise ImportFailed(self.items)


def detect_format(path, explicit=None):
    """The format of the experiment file at ``path``: ``explicit`` (ns|clab|compose|native) when
    given, else by its name: ``*.ns``/``*.tcl`` -> ns, ``*.clab.yml``/``*.clab.yaml`` -> clab,
    ``compose.yml``/``compose.yaml``/``docker-compose.yml``/``docker-compose.yaml`` (also with a
    suffix such as ``docker-compose.prod.yml``) -> compose, anything else -> native (ours)."""
    if explicit:
        if explicit not in FORMATS:
            raise ValueError("experiment_format must be one of %s, got %r" % (", ".join(FORMATS), explicit))
        return explicit
    base = os.path.basename(path).lower()
    if base.endswith((".ns", ".tcl")):
        return "ns"
    if base.endswith((".clab.yml", ".clab.yaml")):
        return "clab"
    if re.match(r"^(docker-)?compose(\.[^/]*)?\.ya?ml\Z", base):
        return "compose"
    return "native"


def node_name(raw):
    """A source's node or LAN name as one of ours: lowercase, ``_``/``.``/``(``...``)`` become
    ``-`` (Emulab's ``b(3)`` -> ``b-3``), a leading digit gets an ``n`` before it, 31 characters
    at most.  Returns the name, or None when nothing usable is left."""
    name = re.sub(r"[^a-z0-9]+", "-", str(raw).lower()).strip("-")
    if not name:
        return None
    if not name[0].isalpha():
        name = "n" + name
    name = name[:31].rstrip("-")
    return name if NAME_RE.match(name) else None


class Renamer:
    """Maps source names to unique names of ours, reporting every name that changed."""

    ARRAY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\Z")

    def __init__(self, notes, what):
        self.notes, self.what = notes, what
        self.mapping, self.used = {}, set()
        self.arrays = set()  # Tcl arrays whose elements were renamed by the rule, noted once

    def __call__(self, raw, line=None):
        if raw in self.mapping:
            return self.mapping[raw]
        name = node_name(raw)
        if name is None:
            self.notes.error(line, "%s name %r has no letter or digit to make a name of" % (self.what, raw))
            name = "unnamed"
        base, k = name, 2
        while name in self.used:
            suffix = "-%d" % k
            name = base[:31 - len(suffix)] + suffix
            k += 1
        array = self.ARRAY_RE.match(str(raw))
        if name != raw and array and name == node_name(raw) and name == node_name(array.group(1) + "-" + array.group(2)):
            # b(1), b(2), ... one note for the whole array: the rule is the same for each element
            if array.group(1) not in self.arrays:
                self.arrays.add(array.group(1))
                self.notes.info(line, "%s %r is named %r here, and so is every element of the array %s: %s(I) is %s-I"
                                % (self.what, raw, name, array.group(1), array.group(1), node_name(array.group(1))))
        elif name != raw:
            self.notes.info(line, "%s %r is named %r here" % (self.what, raw, name))
        self.mapping[raw] = name
        self.used.add(name)
        return name


def experiment_name(path, given=None):
    """The experiment's name: ``given``, else the file name without its extensions, as a name."""
    if given:
        return given
    base = os.path.basename(path)
    for suffix in (".clab.yml", ".clab.yaml", ".yml", ".yaml", ".ns", ".tcl"):
        if base.lower().endswith(suffix):
            base = base[:-len(suffix)]
            break
    return node_name(base) or "imported"


def source_name(notes, raw, line, what):
    """The experiment's name from the source's own ``name:`` (``raw``, not empty), as one of ours:
    an info note when it changes, an error (and "imported") when nothing usable is left."""
    name = node_name(raw)
    if name is None:
        notes.error(line, "%s name %r has no letter or digit to make a name of" % (what, raw))
        return "imported"
    if name != raw:
        notes.info(line, "%s %r is the experiment %r here" % (what, raw, name))
    return name


def given_name(options, data, notes, line, what):
    """The experiment's name given by the ``name`` option, else by the source's own ``name:`` (as
    ``source_name`` makes it ours; ``line(key)`` is the source's line of a key); None if neither."""
    given = options.get("name")
    if given:
        return given
    raw = data.get("name")
    if raw:
        return source_name(notes, raw, line("name"), what)
    return None


def yaml_loader():
    """PyYAML's safe loader, the libyaml one when PyYAML has it (ten times faster on big files)."""
    import yaml
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_with_lines(text, path, notes):
    """Parse YAML ``text``; returns (data, line_of) where ``line_of(keys)`` is the 1-based line of
    the value at the key path ``keys`` (a tuple of mapping keys and list indexes), or of the
    deepest part of it that exists; a syntax error is an error note with its line (and data None)."""
    import yaml
    try:
        root = yaml.compose(text, Loader=yaml_loader())
        data = yaml.load(text, Loader=yaml_loader())  # nosec: a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        notes.error(mark.line + 1 if mark else None, "not valid YAML: %s" % (exc.problem or exc))
        return None, lambda keys: None
    except yaml.YAMLError as exc:
        notes.error(None, "not valid YAML: %s" % exc)
        return None, lambda keys: None

    def line_of(keys):
        node = root
        line = node.start_mark.line + 1 if node is not None else None
        for key in keys:
            child = None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if k.value == str(key):
                        child = v
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
                child = node.value[key]
            if child is None:
                break
            node = child
            line = node.start_mark.line + 1
        return line

    return data, line_of


def load(path, fmt=None, options=None, text=None):
    """Read and convert the experiment file at ``path``: returns (format, document, notes).

    ``native`` files are read as YAML and returned as they are (notes empty).  With
    ``options['strict']`` every warning becomes an error (ImportFailed)."""
    options = dict(options or {})
    fmt = detect_format(path, fmt)
    if text is None:
        with open(path) as f:
            text = f.read()
    if fmt == "native":
        import yaml
        try:
            return fmt, yaml.load(text, Loader=yaml_loader()), []  # nosec: a safe loader
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise ImportFailed([Note("error", path, mark.line + 1 if mark else None, "not valid YAML: %s" % (exc.problem or exc))])
        except yaml.YAMLError as exc:
            raise ImportFailed([Note("error", path, None, "not valid YAML: %s" % exc)])
    if fmt == "ns":
        from ansible_collections.testbed.containers.plugins.module_utils.importers import ns as importer
    elif fmt == "clab":
        from ansible_collections.testbed.containers.plugins.module_utils.importers import clab as importer
    else:
        from ansible_collections.testbed.containers.plugins.module_utils.importers import compose as importer
    doc, notes = importer.convert(text, path, options)
    if options.get("strict"):
        strict = [Note("error", n.file, n.line, n.message + " (strict: warnings are errors)")
                  if n.level == "warning" else n for n in notes]
        if any(n.level == "error" for n in strict):
            raise ImportFailed(strict)
    return fmt, doc, notes


def identity(doc):
    """(project, name) of a converted or native document, or None when it has no name."""
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        return None
    project = doc.get("project", "default")
    return (project if isinstance(project, str) else "default"), doc["name"]


def render_yaml(doc, notes=(), source=None, fmt=None):
    """Our experiment file as YAML text: a header naming the source and every note as a comment,
    then the document in the order the converter built it."""
    import yaml
    lines = []
    if source:
        lines.append("# converted from %s (%s) by testbed.containers' importer; edit this file from now on" % (source, fmt))
    for note in notes:
        lines.append("# %s" % str(note).replace("\n", " "))
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)
    return ("\n".join(lines) + "\n" if lines else "") + body


def options_from(params):
    """The importer options of a module's parameters: ``options`` plus ``strict``."""
    options = dict(params.get("options") or {})
    for key in options:
        if key not in OPTION_KEYS:
            raise ValueError("unknown import option %r: use %s" % (key, ", ".join(OPTION_KEYS)))
    if params.get("strict"):
        options["strict"] = True
    return options


def import_task(params, check_mode=False):
    """The work of ``experiment_import`` (its module, and its action plugin in the controller's
    process): convert ``params["path"]``, write it to ``dest`` when given; the task's result, with
    ``warnings`` (the warning notes), or ``failed`` and ``msg``."""
    from ansible_collections.testbed.containers.plugins.module_utils import files

    path = params["path"]

    def failed(msg, notes=()):
        return dict(failed=True, changed=False, msg=msg, notes=[n.as_dict() for n in notes])

    try:
        fmt, doc, notes = load(path, params.get("format"), options_from(params))
    except ImportFailed as exc:
        return failed("cannot convert %s:\n%s" % (path, exc), exc.notes)
    except (IOError, OSError, ValueError) as exc:
        return failed("cannot convert %s: %s" % (path, exc))
    ident = identity(doc)
    if ident is None:
        return failed("%s: name: is missing or not a string; name the experiment" % path)
    changed = False
    if params.get("dest"):
        changed = files.write_if_changed(params["dest"], render_yaml(doc, notes, path, fmt), dry_run=check_mode)
    return dict(changed=changed, format=fmt, document=doc, notes=[n.as_dict() for n in notes],
                messages=[str(n) for n in notes], project=ident[0], name=ident[1],
                warnings=[str(n) for n in notes if n.level == "warning"])
