# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Emulab/DETER NS files (ns-2 Tcl plus Emulab's ``tb-*`` commands) converted into our
experiment document.

An NS file is a program: topologies are built by loops over arrays, procs and nested command
substitutions (``set X [set Y [$ns node]]``), so it is evaluated, not pattern-matched.  The
evaluator is a small Tcl interpreter written here, in pure Python, rather than a binding to a
real Tcl (tkinter's):

* no dependency: tkinter is often missing from servers and containers, and a real Tcl would
  need every ns-2/Emulab class (Simulator, Node, OTcl's ``instproc``) stubbed anyway;
* every note carries the line of the command that caused it, also inside procs and loop
  bodies (a body keeps the line where its brace opened);
* a file cannot do what it likes: there is no file, socket or exec command, every evaluated
  command counts against ``max_steps`` (a loop that never ends stops with an error naming
  the line and the option), created nodes against ``max_nodes``, values are capped at
  ``MAX_VALUE`` characters, integers at 4096 bits, procs nest at most ``MAX_DEPTH`` deep and
  evaluations ``MAX_LEVELS``, and the result is deterministic (``rand()`` is seeded);
* a syntax error (an unbalanced brace, bracket or quote) names the line where the unclosed
  construct opened; bodies are parsed once per text and line, so loops cost no parsing.

The Tcl subset follows the dodekalogue (Tcl(n)): commands separated by newlines and ``;``,
words, ``"..."`` with substitutions and ``{...}`` without (both may span lines), backslash
escapes and backslash-newline continuation, ``#`` comments at command start, ``$var``,
``${var}``, arrays ``a($i)`` with substitution in the index, ``[...]`` nested to any depth and
``{*}``.  Commands: set, unset, incr, append, lappend, list, llength, lindex, lrange, lsearch,
lsort, concat, join, split, string (subset), format, expr (integers, floats, all of Tcl's
operators but none on lists except in/ni, the usual math functions), if/elseif/else, for,
foreach (several variable lists), while, break, continue, proc (defaults, ``args``), return,
global, eval, info exists, array (subset), puts (ignored: an info note), ``source
tb_compat.tcl`` (ignored) and ``new Simulator``.  Anything else is an error with its line, as
in Emulab's parser (whose ``unknown`` fails), except ``tb-*`` commands this module does not
know, which are warnings.  Integers with a leading 0 are octal, as in Tcl 8 (Emulab's).

Emulab semantics (tbsetup/ns2ir: tb_compat.tcl, lanlink.tcl, sim.tcl, parse.tcl, and the way
assign_wrapper combines them), reproduced here:

* Objects take the name of the global variable they are assigned to right after their
  creation (Emulab's ``set``), ``b(3)`` giving ``b-3``; an object never so assigned (a local
  variable in a proc, ``lappend``) keeps Emulab's own name (``tbnode-n4``, ``tblink-l7``,
  ``tblan-lan9``, one counter for all).  A second object of the same name is an error, as in
  Emulab.  Names are then made ours with ``importers.Renamer`` (an info note each), in one
  name space, and a LAN whose NODE-LAN host name would be another's is renamed.
* Every LAN/link member has two sides: node->LAN (delay, bandwidth, loss, queue) and
  LAN->node (rdelay, rbandwidth, rloss).  make-lan and duplex-link put half the delay on each
  side; tb-set-link-loss/tb-set-lan-loss put ``1 - sqrt(1 - loss)`` on each side, so that the
  two sides a packet crosses compound to the loss asked for.  That split is Emulab's own choice,
  checked by its test suite (testsuite tbcmd: a LAN loss of 0.2 is 0.106 per member, a link
  loss of 0.1 is 0.051, 0.05 is 0.025); it is about half for small losses.  Per-member commands
  (tb-set-node-lan-*, tb-set-lan-simplex-params) set a side as given, not halved.
  A->B crosses A's node->LAN side then B's LAN->node side: delays add, bandwidth is the
  smaller, losses compound.
* Ours: a LAN's values apply on each member's attachment both ways, which is exactly a side,
  so a LAN gets the sides' values (make-lan 100ms -> ``delay: 50ms``, the full bandwidth, the
  per-side loss) and members whose sides differ get per-member keys, ``from_node`` (node->LAN,
  Emulab's "to" parameters of tb-set-lan-simplex-params) and ``to_node`` (LAN->node, its
  "from" ones).  tb-set-node-lan-* take NODE LAN (Emulab's order); LAN NODE is read with a
  warning.  A link's values are end to end per direction, so a duplex link's delay (the
  one-way delay), bandwidth (each direction's) and loss are copied as they are and
  tb-set-link-simplex-params becomes ``SRC_to_DST``; ``[[$ns link A B] queue] set limit_ N``
  becomes ``A_to_B: {queue: N}`` (RED and other queue types: drop-tail, a warning).
* Units (parse_bw, parse_delay): bandwidth ``b bps k kb kbps K Kb Kbps M Mb Mbps G Gb Gbps``,
  all bits per second in powers of 1000; a bare number is bit/s (as in ns-2; Emulab stores
  kbit/s but reads a bare number as bits); ``*`` means unshaped.  Delay ``s ms`` (Emulab) and
  ``us ns``; a bare number is seconds (as in ns-2 and Emulab).
* Routing: Emulab sets up no routes unless ``$ns rtproto`` says so: Static (and Static-old,
  Static-ddijk) -> ``routing: static``, Session (OSPF) -> static with a warning, Manual or
  none -> ``routing: none``.  With static routing nodes with two or more attachments forward.
* Addresses: a member with tb-set-ip* gets ``{node, ip}`` and its LAN/link the subnet of the
  address under the netmask (default 255.255.255.0); the other members get addresses as
  Emulab gives them, from .2 up.  A netmask without addresses gets a subnet chosen here (from
  the top of the pool); other subnets are the planner's, and ``addressing.pool`` widens when
  10.10.0.0/16 is too small.  find_link (tb-set-ip-interface, three-argument
  tb-set-link-loss, ``$ns link``) takes the last link created between two nodes, as Emulab's.
* ``$ns run`` ends the setup (what follows is ignored, a warning, as Emulab ignores it);
  ``$ns at``, agents, applications and programs are warnings (events are not carried over
  yet); make-cloud, make-path, bridges and add-route are errors.

Notes: errors for what changes the experiment and cannot be honoured (unknown commands, bad
units, addresses that do not fit, manual routes), warnings for what has no container meaning
(tb-set-hardware, RPMs, tar files, the sync server, ...: each names the command), infos for
names and choices (renames, default images, addresses given as Emulab gives them).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import fnmatch
import ipaddress
import math
import random
import re

from ansible_collections.testbed.containers.plugins.module_utils import importers
from ansible_collections.testbed.containers.plugins.module_utils.units import format_rate, format_time

MAX_DEPTH = 100              # nested proc calls / eval levels
MAX_LEVELS = 150             # nested evaluations: bodies, [ ] and proc calls together
MAX_NESTING = 150            # nested [ ] when parsing, expression parentheses
MAX_VALUE = 4 * 1024 * 1024  # characters of one Tcl value
DEFAULT_NETMASK = "255.255.255.0"
DEFAULT_POOL = "10.10.0.0/16"

# ---------------------------------------------------------------------------------------------
# Errors and control flow


class TclError(Exception):
    """An error that stops the evaluation (as it stops Emulab's parser), with its line."""

    def __init__(self, line, message):
        super(TclError, self).__init__(message)
        self.line, self.message = line, message


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Return(Exception):
    def __init__(self, value):
        super(_Return, self).__init__(value)
        self.value = value


class _Stop(Exception):
    """``$ns run``: the end of the experiment's setup."""

# ---------------------------------------------------------------------------------------------
# Parser (dodekalogue)


class _Cmd:
    __slots__ = ("line", "words", "expand")

    def __init__(self, line, words):
        self.line, self.words = line, words
        self.expand = any(w.expand for w in words)


class _Word:
    """One word: ``const`` when it has no substitution, else ``parts`` (str literals, ('$', name,
    index) and ('[', commands)); ``raw`` is a braced word's text as written (for bodies)."""
    __slots__ = ("const", "parts", "line", "raw", "expand")

    def __init__(self, const, parts, line, raw=None, expand=False):
        self.const, self.parts, self.line, self.raw, self.expand = const, parts, line, raw, expand


_SPACE = " \t\r\f\v"
_WORD_END = " \t\r\f\v\n;"
_BARE_PLAIN = re.compile(r"[^ \t\r\f\v\n;$\[\]\\]+")
_QUOTED_PLAIN = re.compile(r'[^"$\[\\]+')
_INDEX_PLAIN = re.compile(r"[^)$\[\\]+")
_BRACE_CHARS = re.compile(r"[{}\\]")
_VARNAME = re.compile(r"(?:[A-Za-z0-9_]+|::+)+")
_BS_NEWLINE = re.compile(r"\\\n[ \t]*")
_HEX = re.compile(r"[0-9a-fA-F]{1,2}")
_UNI = re.compile(r"[0-9a-fA-F]{1,4}")
_OCT = re.compile(r"[0-7]{1,3}")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unbackslash_newlines(raw):
    """A braced word's value: backslash-newline and the spaces after it become one space (only
    where the backslash is not itself escaped)."""
    if "\\\n" not in raw:
        return raw
    out, pos = [], 0
    for match in _BS_NEWLINE.finditer(raw):
        start = match.start()
        k = start
        while k > 0 and raw[k - 1] == "\\":
            k -= 1
        if (start - k) % 2:  # the backslash is escaped: keep it all
            continue
        out.append(raw[pos:start])
        out.append(" ")
        pos = match.end()
    out.append(raw[pos:])
    return "".join(out)


class _Parser:
    """Parses one text (a file, a body, an expression) whose first character is on ``base``."""

    def __init__(self, text, base, depth=0):
        self.text, self.n, self.base, self.depth = text, len(text), base, depth
        self.newlines = [m.start() for m in re.finditer("\n", text)] if "\n" in text else []

    def line(self, pos):
        return self.base + bisect.bisect_left(self.newlines, pos)

    def error(self, pos, message):
        raise TclError(self.line(pos), message)

    def skip(self, pos, chars):
        """The first position from ``pos`` that is neither one of ``chars`` nor a backslash-newline."""
        text, n = self.text, self.n
        while pos < n:
            if text[pos] in chars:
                pos += 1
            elif text.startswith("\\\n", pos):
                pos += 2
            else:
                break
        return pos

    def script(self, pos=0, open_at=None):
        """Commands up to the end, or up to the ``]`` closing the ``[`` at ``open_at``."""
        text, n = self.text, self.n
        close = open_at is not None
        if close:
            self.depth += 1
            if self.depth > MAX_NESTING:
                self.error(open_at, "command substitutions nest deeper than %d levels" % MAX_NESTING)
        cmds = []
        while True:
            pos = self.skip(pos, _WORD_END)
            if pos >= n:
                if close:
                    self.error(open_at, "missing close-bracket: the '[' opened at line %d is never closed"
                               % self.line(open_at))
                return cmds, pos
            c = text[pos]
            if close and c == "]":
                self.depth -= 1
                return cmds, pos + 1
            if c == "#":
                pos = self._comment(pos)
                continue
            words = []
            while True:
                word, pos = self.word(pos, close)
                words.append(word)
                pos = self.skip(pos, _SPACE)
                if pos >= n:
                    break
                c = text[pos]
                if c == "\n" or c == ";":
                    pos += 1
                    break
                if close and c == "]":
                    break
            cmds.append(_Cmd(words[0].line, words))

    def _comment(self, pos):
        text = self.text
        while True:
            nl = text.find("\n", pos)
            if nl < 0:
                return self.n
            k = nl
            while k > 0 and text[k - 1] == "\\":
                k -= 1
            if (nl - k) % 2 == 0:
                return nl + 1
            pos = nl + 1

    def word(self, pos, close):
        text, n = self.text, self.n
        line = self.line(pos)
        expand = False
        if text.startswith("{*}", pos) and pos + 3 < n and text[pos + 3] not in _WORD_END \
                and not (close and text[pos + 3] == "]"):
            expand, pos = True, pos + 3
        c = text[pos]
        if c == "{":
            raw, end = self.braced(pos)
            self._check_end(end, close, "close-brace")
            return _Word(_unbackslash_newlines(raw), None, line, raw, expand), end
        if c == '"':
            parts, end = self.parts(pos + 1, close, quote_at=pos)
            self._check_end(end, close, "close-quote")
        else:
            parts, end = self.parts(pos, close)
        if not parts:
            return _Word("", None, line, None, expand), end
        if len(parts) == 1 and parts[0].__class__ is str:
            return _Word(parts[0], None, line, None, expand), end
        return _Word(None, parts, line, None, expand), end

    def _check_end(self, pos, close, what):
        if pos < self.n:
            c = self.text[pos]
            if c not in _WORD_END and not (close and c == "]") and not self.text.startswith("\\\n", pos):
                self.error(pos, "extra characters after %s: %r" % (what, self.text[pos:pos + 10].split("\n")[0]))

    def braced(self, pos):
        """(text between the braces, position after the closing one); nested braces count,
        backslashed ones do not.  An unclosed brace names the line of the innermost one open."""
        text = self.text
        opened = [pos]
        i = pos + 1
        while True:
            match = _BRACE_CHARS.search(text, i)
            if match is None:
                self.error(opened[-1], "missing close-brace: the '{' opened at line %d is never closed"
                           % self.line(opened[-1]))
            i = match.start()
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == "{":
                opened.append(i)
            else:
                opened.pop()
                if not opened:
                    return text[pos + 1:i], i + 1
            i += 1

    def parts(self, pos, close, quote_at=None, index_at=None):
        """Literal and substituted parts of a bare word, a quoted word (``quote_at``: position of
        its opening quote) or an array index (``index_at``: position of its '(')."""
        text, n = self.text, self.n
        quote = quote_at is not None
        index = index_at is not None
        plain = _QUOTED_PLAIN if quote else _INDEX_PLAIN if index else _BARE_PLAIN
        parts, buf = [], []
        while pos < n:
            c = text[pos]
            if quote:
                if c == '"':
                    pos += 1
                    break
            elif index:
                if c == ")":
                    pos += 1
                    break
            elif c in _WORD_END or (close and c == "]"):
                break
            if c == "$":
                part, end = self.variable(pos)
                if part is None:
                    buf.append("$")
                    pos += 1
                    continue
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(part)
                pos = end
            elif c == "[":
                cmds, pos = self.script(pos + 1, open_at=pos)
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(("[", cmds))
            elif c == "\\":
                if not quote and not index and text.startswith("\\\n", pos):
                    break  # a bare word ends at a line continuation
                s, pos = self.backslash(pos)
                buf.append(s)
            else:
                match = plain.match(text, pos)
                if match is None:
                    buf.append(c)
                    pos += 1
                else:
                    buf.append(match.group())
                    pos = match.end()
        else:
            if quote:
                self.error(quote_at, "missing close-quote: the '\"' opened at line %d is never closed" % self.line(quote_at))
            if index:
                self.error(index_at, "missing ')': the array index opened at line %d is never closed" % self.line(index_at))
        if buf:
            parts.append("".join(buf))
        return parts, pos

    def variable(self, pos):
        """(('$', name, index), end) for the variable reference at ``pos``, or (None, pos) when
        the ``$`` is a literal one."""
        text, n = self.text, self.n
        p = pos + 1
        if p < n and text[p] == "{":
            end = text.find("}", p + 1)
            if end < 0:
                self.error(pos, "missing close-brace for the variable name opened at line %d" % self.line(pos))
            return ("$", text[p + 1:end], None), end + 1
        match = _VARNAME.match(text, p)
        if match is None:
            return None, pos
        name, p = match.group(), match.end()
        if p < n and text[p] == "(":
            parts, p = self.parts(p + 1, False, index_at=p)
            if not parts:
                index = ""
            elif len(parts) == 1 and parts[0].__class__ is str:
                index = parts[0]
            else:
                index = parts
            return ("$", name, index), p
        return ("$", name, None), p

    def backslash(self, pos):
        text, n = self.text, self.n
        if pos + 1 >= n:
            return "\\", pos + 1
        c = text[pos + 1]
        if c in _ESCAPES:
            return _ESCAPES[c], pos + 2
        if c == "\n":
            p = pos + 2
            while p < n and text[p] in " \t":
                p += 1
            return " ", p
        if c == "x":
            match = _HEX.match(text, pos + 2)
            if match:
                return chr(int(match.group(), 16)), match.end()
            return "x", pos + 2
        if c == "u":
            match = _UNI.match(text, pos + 2)
            if match:
                return chr(int(match.group(), 16)), match.end()
            return "u", pos + 2
        match = _OCT.match(text, pos + 1)
        if match:
            return chr(int(match.group(), 8) & 0xFF), match.end()
        return c, pos + 2


# ---------------------------------------------------------------------------------------------
# Lists


class TclList(str):
    """A string that remembers its list elements (Tcl's dual representation), so that lappend
    and foreach over a long list do not parse it again."""
    __slots__ = ("items",)


_LIST_PLAIN = re.compile(r'[^ \t\n\r\f\v{}\[\]$"\\;]+\Z')
_LIST_SPECIAL = re.compile(r'([ \t\n\r\f\v{}\[\]$"\\;])')
_LIST_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\v": "\\v"}


_LIST_SPACE = re.compile(r"[ \t\n\r\f\v]+")


def _quote_element(s):
    if _LIST_PLAIN.match(s) and s[0] != "#":
        return s
    if not s:
        return "{}"
    if "\\" not in s and _balanced(s):
        return "{" + s + "}"
    return _LIST_SPECIAL.sub(lambda m: _LIST_ESCAPES.get(m.group(1), "\\" + m.group(1)), s)


_BRACES = re.compile(r"[{}]")


def _balanced(s):
    if s.count("{") != s.count("}"):
        return False
    depth = 0
    for match in _BRACES.finditer(s):
        depth += 1 if match.group() == "{" else -1
        if depth < 0:
            return False
    return True


def make_list(items):
    items = list(items)
    result = TclList(" ".join([_quote_element(i) for i in items]))
    result.items = items
    return result


def _substituted(parser, text, pos, stop):
    """A list element from ``pos`` up to a character of ``stop`` (or the end), backslash
    sequences substituted; returns (element, where it stopped)."""
    buf, n = [], len(text)
    while pos < n and text[pos] not in stop:
        if text[pos] == "\\":
            sub, pos = parser.backslash(pos)
            buf.append(sub)
        else:
            buf.append(text[pos])
            pos += 1
    return "".join(buf), pos


def split_list(value, line):
    """The elements of a Tcl list (a TclList's are already known)."""
    if value.__class__ is TclList:
        return value.items
    if "{" not in value and '"' not in value and "\\" not in value:
        return value.split() if value.isascii() else [v for v in _LIST_SPACE.split(value) if v]
    items, text, n, pos = [], value, len(value), 0
    parser = _Parser(value, line)
    while True:
        while pos < n and text[pos] in " \t\n\r\f\v":
            pos += 1
        if pos >= n:
            return items
        c = text[pos]
        if c == "{":
            try:
                raw, end = parser.braced(pos)
            except TclError:
                raise TclError(line, "unmatched open brace in list %r" % _clip(value))
            items.append(raw)
            pos = end
        elif c == '"':
            item, end = _substituted(parser, text, pos + 1, '"')
            if end >= n:
                raise TclError(line, "unmatched open quote in list %r" % _clip(value))
            items.append(item)
            pos = end + 1
        else:
            item, pos = _substituted(parser, text, pos, " \t\n\r\f\v")
            items.append(item)
            continue
        if pos < n and text[pos] not in " \t\n\r\f\v":
            raise TclError(line, "list element in %s followed by %r instead of space in %r"
                           % ("braces" if c == "{" else "quotes", text[pos], _clip(value)))


def _clip(value, size=40):
    return value if len(value) <= size else value[:size] + "..."


# ---------------------------------------------------------------------------------------------
# Numbers and expr

_INT_RE = re.compile(r"\s*([-+]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)\s*\Z")
_FLOAT_RE = re.compile(r"\s*[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?\s*\Z")
_EXPR_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_EXPR_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _int_value(text):
    match = _INT_RE.match(text)
    if match is None:
        return None
    sign, digits = match.groups()
    if len(digits) > 1000:  # beyond 4096 bits (and Python's int() limit): not a number here
        return None
    low = digits.lower()
    if low.startswith("0x"):
        value = int(low[2:], 16)
    elif low.startswith("0b"):
        value = int(low[2:], 2)
    elif low.startswith("0o"):
        value = int(low[2:], 8)
    elif len(low) > 1 and low[0] == "0":
        value = int(low, 8)  # Tcl 8: a leading 0 means octal
    else:
        value = int(low)
    return -value if sign == "-" else value


def _number(value):
    """An int or float for a Tcl value that looks like a number, else None."""
    if value.__class__ is not str and not isinstance(value, str):
        return value
    if len(value) < 20 and value.isascii() and value.isdigit() and (value[0] != "0" or value == "0"):
        return int(value)
    result = _int_value(value)
    if result is not None:
        return result
    if _FLOAT_RE.match(value):
        return float(value)
    return None


def _fmt(value):
    if value.__class__ is int:
        return str(value)
    if value.__class__ is float:
        if math.isnan(value):
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Inf" if value > 0 else "-Inf"
        return repr(value)
    if value is True or value is False:
        return "1" if value else "0"
    return value


def _truth(value, line):
    if value.__class__ is str or isinstance(value, str):
        number = _number(value)
        if number is None:
            b = _BOOLEANS.get(value.strip().lower())
            if b is None:
                raise TclError(line, 'expected boolean value but got "%s"' % _clip(value))
            return b
        value = number
    return value != 0


class _Expr:
    """Parses a Tcl expression into a tree of tuples (cached by the interpreter)."""

    BINARY = {"**": 13, "*": 12, "/": 12, "%": 12, "+": 11, "-": 11, "<<": 10, ">>": 10,
              "<": 9, ">": 9, "<=": 9, ">=": 9, "==": 8, "!=": 8, "eq": 7, "ne": 7, "in": 6, "ni": 6,
              "&": 5, "^": 4, "|": 3, "&&": 2, "||": 1}
    OPS = ("**", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "*", "/", "%", "+", "-", "<", ">", "&", "^", "|")

    def __init__(self, text, line):
        self.text, self.n, self.pos = text, len(text), 0
        self.parser = _Parser(text, line)
        self.depth = 0

    def error(self, message):
        raise TclError(self.parser.line(self.pos), "%s in expression %r" % (message, _clip(self.text, 60)))

    def parse(self):
        tree = self.ternary()
        self.skip()
        if self.pos < self.n:
            self.error("syntax error near %r" % self.text[self.pos:self.pos + 10])
        return tree

    def skip(self):
        text, n = self.text, self.n
        while self.pos < n and (text[self.pos] in " \t\r\n\f\v" or text.startswith("\\\n", self.pos)):
            self.pos += 2 if text[self.pos] == "\\" else 1

    def ternary(self):
        self.depth += 1
        if self.depth > MAX_NESTING:
            self.error("nesting deeper than %d levels" % MAX_NESTING)
        cond = self.binary(1)
        self.skip()
        if self.pos < self.n and self.text[self.pos] == "?":
            self.pos += 1
            a = self.ternary()
            self.skip()
            if self.pos >= self.n or self.text[self.pos] != ":":
                self.error("missing ':' after '?'")
            self.pos += 1
            b = self.ternary()
            cond = ("?", cond, a, b)
        self.depth -= 1
        return cond

    def peek_op(self):
        self.skip()
        text, pos = self.text, self.pos
        for op in self.OPS:
            if text.startswith(op, pos):
                return op
        for op in ("eq", "ne", "in", "ni"):
            if text.startswith(op, pos) and not (pos + 2 < self.n and (text[pos + 2].isalnum() or text[pos + 2] == "_")):
                return op
        return None

    def binary(self, min_bp):
        left = self.unary()
        while True:
            op = self.peek_op()
            if op is None:
                return left
            bp = self.BINARY[op]
            if bp < min_bp:
                return left
            self.pos += len(op)
            right = self.binary(bp if op == "**" else bp + 1)
            if op == "&&":
                left = ("&&", left, right)
            elif op == "||":
                left = ("||", left, right)
            else:
                left = ("b", op, left, right)

    def unary(self):
        self.skip()
        text, pos = self.text, self.pos
        if pos >= self.n:
            self.error("missing operand")
        c = text[pos]
        if c in "-+!~":
            self.pos += 1
            self.depth += 1
            if self.depth > MAX_NESTING:
                self.error("nesting deeper than %d levels" % MAX_NESTING)
            operand = self.unary()
            self.depth -= 1
            return ("u", c, operand)
        if c == "(":
            self.pos += 1
            tree = self.ternary()
            self.skip()
            if self.pos >= self.n or text[self.pos] != ")":
                self.error("missing ')'")
            self.pos += 1
            return tree
        if c == "$":
            part, end = self.parser.variable(pos)
            if part is None:
                self.error("invalid character '$'")
            self.pos = end
            return ("v", part)
        if c == "[":
            cmds, end = self.parser.script(pos + 1, open_at=pos)
            self.pos = end
            return ("c", cmds)
        if c == '"':
            parts, end = self.parser.parts(pos + 1, False, quote_at=pos)
            self.pos = end
            return ("s", parts)
        if c == "{":
            raw, end = self.parser.braced(pos)
            self.pos = end
            return ("k", _unbackslash_newlines(raw))
        match = _EXPR_NUMBER.match(text, pos)
        if match:
            self.pos = match.end()
            literal = match.group()
            value = _number(literal)
            if value is None:
                self.error('invalid number "%s" (a leading 0 means octal)' % literal)
            return ("k", value)
        match = _EXPR_WORD.match(text, pos)
        if match:
            word = match.group()
            self.pos = match.end()
            self.skip()
            if self.pos < self.n and text[self.pos] == "(":
                self.pos += 1
                args = []
                self.skip()
                if self.pos < self.n and text[self.pos] == ")":
                    self.pos += 1
                    return ("f", word, args)
                while True:
                    args.append(self.ternary())
                    self.skip()
                    if self.pos < self.n and text[self.pos] == ",":
                        self.pos += 1
                        continue
                    if self.pos < self.n and text[self.pos] == ")":
                        self.pos += 1
                        return ("f", word, args)
                    self.error("missing ')' after the arguments of %s()" % word)
            if word.lower() in _BOOLEANS:
                return ("k", word)
            self.pos = match.start()
            self.error('invalid bareword "%s"' % word)
        self.error("syntax error near %r" % text[pos:pos + 10])


def _math(fn):
    def call(*args):
        try:
            return fn(*[float(a) for a in args])
        except (ValueError, OverflowError):
            raise ValueError("domain error: argument not in valid range")
    return call


def _round(x):
    if x.__class__ is int:
        return x
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


_FUNCTIONS = {
    "abs": (1, abs), "int": (1, int), "wide": (1, int), "entier": (1, int),
    "double": (1, float), "round": (1, _round),
    "floor": (1, _math(lambda x: float(math.floor(x)))), "ceil": (1, _math(lambda x: float(math.ceil(x)))),
    "sqrt": (1, _math(math.sqrt)), "exp": (1, _math(math.exp)), "log": (1, _math(math.log)),
    "log10": (1, _math(math.log10)), "sin": (1, _math(math.sin)), "cos": (1, _math(math.cos)),
    "tan": (1, _math(math.tan)), "asin": (1, _math(math.asin)), "acos": (1, _math(math.acos)),
    "atan": (1, _math(math.atan)), "sinh": (1, _math(math.sinh)), "cosh": (1, _math(math.cosh)),
    "tanh": (1, _math(math.tanh)), "atan2": (2, _math(math.atan2)), "pow": (2, _math(math.pow)),
    "fmod": (2, _math(math.fmod)), "hypot": (2, _math(math.hypot)),
    "min": (-1, min), "max": (-1, max),
}


# ---------------------------------------------------------------------------------------------
# The interpreter


class _Frame:
    __slots__ = ("vars", "links")

    def __init__(self):
        self.vars, self.links = {}, None


class _Proc:
    __slots__ = ("name", "params", "text", "line")

    def __init__(self, name, params, text, line):
        self.name, self.params, self.text, self.line = name, params, text, line


def _split_name(name):
    """'a(1)' -> ('a', '1'); 'a' -> ('a', None)."""
    i = name.find("(")
    if i > 0 and name[-1] == ")":
        return name[:i], name[i + 1:-1]
    return name, None


def _wrong_args(cmd, usage):
    raise TclError(cmd.line, 'wrong # args: should be "%s"' % usage)


class Interp:
    """Evaluates parsed commands; ``ns`` (the NS model) answers every command that is not Tcl."""

    def __init__(self, notes, ns, max_steps):
        self.notes, self.ns, self.max_steps = notes, ns, max_steps
        self.globals = self.frame = _Frame()
        self.procs, self.parsed, self.exprs = {}, {}, {}
        self.steps = self.depth = self.levels = 0
        self.line = None
        self.rng = random.Random(0)
        self.noted = set()

    # -- notes ---------------------------------------------------------------------------------

    def note_once(self, level, line, message):
        key = (level, line, message)
        if key not in self.noted:
            self.noted.add(key)
            self.notes.add(level, line, message)

    # -- evaluation ----------------------------------------------------------------------------

    def step(self, line):
        self.steps += 1
        if self.steps > self.max_steps:
            raise TclError(line, "the NS file evaluates more than %d commands (option max_steps): stopped here; "
                                 "a loop that never ends? raise max_steps if the file is right" % self.max_steps)

    def run(self, cmds):
        self.levels += 1
        if self.levels > MAX_LEVELS:
            raise TclError(self.line, "commands nest deeper than %d levels (bodies, [ ] and proc calls)" % MAX_LEVELS)
        try:
            result = ""
            for cmd in cmds:
                result = self.call(cmd)
            return result
        finally:
            self.levels -= 1

    def call(self, cmd):
        self.steps += 1
        if self.steps > self.max_steps:
            self.step(cmd.line)
        self.line = cmd.line
        if cmd.expand:
            argv, words = self._expand(cmd)
            if not argv:
                return ""
        else:
            words = cmd.words
            argv = [w.const if w.const is not None else self.subst(w.parts) for w in words]
        self.line = cmd.line
        proc = self.procs.get(argv[0])
        if proc is not None:
            return self.call_proc(proc, argv, cmd)
        builtin = _BUILTINS.get(argv[0])
        if builtin is not None:
            return builtin(self, argv, cmd, words)
        return self.ns.command(self, argv, cmd, words)

    def _expand(self, cmd):
        argv, words = [], []
        for w in cmd.words:
            value = w.const if w.const is not None else self.subst(w.parts)
            if w.expand:
                items = split_list(value, w.line)
                argv.extend(items)
                words.extend([None] * len(items))
            else:
                argv.append(value)
                words.append(w)
        return argv, words

    def subst(self, parts):
        if len(parts) == 1:
            p = parts[0]
            if p.__class__ is str:
                return p
            return self.var_part(p) if p[0] == "$" else self.run(p[1])
        out = []
        for p in parts:
            if p.__class__ is str:
                out.append(p)
            elif p[0] == "$":
                out.append(self.var_part(p))
            else:
                out.append(self.run(p[1]))
        result = "".join(out)
        if len(result) > MAX_VALUE:
            raise TclError(self.line, "a value of more than %d characters: stopped here" % MAX_VALUE)
        return result

    def var_part(self, part):
        index = part[2]
        if index is None:
            return self.get(part[1])
        if index.__class__ is not str:
            index = self.subst(index)
        return self.get(part[1], index)

    def script_of(self, argv, words, i, cmd):
        """The parsed commands of argument ``i`` (a body), parsed once per text and line."""
        w = words[i] if i < len(words) else None
        if w is not None and w.raw is not None and w.const == argv[i]:
            text, line = w.raw, w.line
        else:
            text, line = argv[i], (w.line if w is not None else cmd.line)
        key = (text, line)
        cmds = self.parsed.get(key)
        if cmds is None:
            cmds = _Parser(text, line).script()[0]
            if len(self.parsed) > 50000:
                self.parsed.clear()
            self.parsed[key] = cmds
        return cmds

    def call_proc(self, proc, argv, cmd):
        args = argv[1:]
        params = proc.params
        variadic = bool(params) and params[-1][0] == "args"
        fixed = params[:-1] if variadic else params
        frame = _Frame()
        if len(args) > len(fixed) and not variadic:
            self._proc_usage(proc, cmd)
        for i, (pname, default) in enumerate(fixed):
            if i < len(args):
                frame.vars[pname] = args[i]
            elif default is not None:
                frame.vars[pname] = default
            else:
                self._proc_usage(proc, cmd)
        if variadic:
            frame.vars["args"] = make_list(args[len(fixed):])
        key = (proc.text, proc.line)
        cmds = self.parsed.get(key)
        if cmds is None:
            cmds = self.parsed[key] = _Parser(proc.text, proc.line).script()[0]
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TclError(cmd.line, "procs call each other more than %d deep: an endless recursion?" % MAX_DEPTH)
        saved, self.frame = self.frame, frame
        try:
            return self.run(cmds)
        except _Return as ret:
            return ret.value
        except (_Break, _Continue) as exc:
            raise TclError(self.line, 'invoked "%s" outside of a loop' % ("break" if isinstance(exc, _Break) else "continue"))
        finally:
            self.frame = saved
            self.depth -= 1

    def _proc_usage(self, proc, cmd):
        usage = [proc.name]
        for pname, default in proc.params:
            usage.append("?%s ...?" % pname if pname == "args" else "?%s?" % pname if default is not None else pname)
        _wrong_args(cmd, " ".join(usage))

    def eval_text(self, text, line):
        key = (text, line)
        cmds = self.parsed.get(key)
        if cmds is None:
            cmds = self.parsed[key] = _Parser(text, line).script()[0]
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TclError(line, "eval nests more than %d deep" % MAX_DEPTH)
        try:
            return self.run(cmds)
        finally:
            self.depth -= 1

    # -- variables -----------------------------------------------------------------------------

    def _table(self, name):
        if name.startswith("::"):
            return self.globals.vars, name.lstrip(":")
        frame = self.frame
        if frame.links is not None:
            target = frame.links.get(name)
            if target is not None:
                return self.globals.vars, target
        return frame.vars, name

    def get(self, name, index=None):
        table, key = self._table(name)
        value = table.get(key)
        if index is None:
            if value is None:
                raise TclError(self.line, 'can\'t read "%s": no such variable' % name)
            if value.__class__ is dict:
                raise TclError(self.line, 'can\'t read "%s": variable is array' % name)
            return value
        if value.__class__ is not dict:
            what = "no such variable" if value is None else "variable isn't array"
            raise TclError(self.line, 'can\'t read "%s(%s)": %s' % (name, index, what))
        element = value.get(index)
        if element is None:
            raise TclError(self.line, 'can\'t read "%s(%s)": no such element in array' % (name, index))
        return element

    def read(self, fullname):
        base, index = _split_name(fullname)
        return self.get(base, index)

    def exists(self, fullname):
        base, index = _split_name(fullname)
        table, key = self._table(base)
        value = table.get(key)
        if index is None:
            return value is not None
        return value.__class__ is dict and index in value

    def write(self, fullname, value):
        if len(value) > MAX_VALUE:
            raise TclError(self.line, "a value of more than %d characters: stopped here" % MAX_VALUE)
        base, index = _split_name(fullname)
        table, key = self._table(base)
        current = table.get(key)
        if index is None:
            if current.__class__ is dict:
                raise TclError(self.line, 'can\'t set "%s": variable is array' % fullname)
            table[key] = value
        else:
            if current is None:
                current = table[key] = {}
            elif current.__class__ is not dict:
                raise TclError(self.line, 'can\'t set "%s": variable isn\'t array' % fullname)
            current[index] = value
        return value

    def unset(self, fullname):
        base, index = _split_name(fullname)
        table, key = self._table(base)
        value = table.get(key)
        if index is None:
            if value is None:
                return False
            del table[key]
            return True
        if value.__class__ is not dict or index not in value:
            return False
        del value[index]
        return True

    # -- expressions ---------------------------------------------------------------------------

    def expr(self, text, line):
        key = (text, line)
        tree = self.exprs.get(key)
        if tree is None:
            tree = _Expr(text, line).parse()
            if len(self.exprs) > 50000:
                self.exprs.clear()
            self.exprs[key] = tree
        return self.ev(tree, line)

    def truth(self, text, line):
        return _truth(self.expr(text, line), line)

    def ev(self, t, line):
        kind = t[0]
        if kind == "k":
            return t[1]
        if kind == "v":
            return self.var_part(t[1])
        if kind == "b":
            return self.binop(t[1], self.ev(t[2], line), self.ev(t[3], line), line)
        if kind == "c":
            return self.run(t[1])
        if kind == "s":
            return self.subst(t[1]) if t[1] else ""
        if kind == "u":
            return self.unop(t[1], self.ev(t[2], line), line)
        if kind == "&&":
            return 1 if _truth(self.ev(t[1], line), line) and _truth(self.ev(t[2], line), line) else 0
        if kind == "||":
            return 1 if _truth(self.ev(t[1], line), line) or _truth(self.ev(t[2], line), line) else 0
        if kind == "?":
            return self.ev(t[2], line) if _truth(self.ev(t[1], line), line) else self.ev(t[3], line)
        return self.function(t[1], [self.ev(a, line) for a in t[2]], line)

    @staticmethod
    def _operand(value, op, line):
        number = _number(value)
        if number is None:
            if value == "":
                raise TclError(line, 'can\'t use empty string as operand of "%s"' % op)
            raise TclError(line, 'can\'t use non-numeric string "%s" as operand of "%s"' % (_clip(value), op))
        return number

    def binop(self, op, a, b, line):
        if op == "eq" or op == "ne":
            return 1 if (_fmt(a) == _fmt(b)) == (op == "eq") else 0
        if op == "in" or op == "ni":
            return 1 if (_fmt(a) in split_list(_fmt(b), line)) == (op == "in") else 0
        if op in ("==", "!=", "<", ">", "<=", ">="):
            na, nb = _number(a), _number(b)
            if na is None or nb is None:
                na, nb = _fmt(a), _fmt(b)
            if op == "==":
                return 1 if na == nb else 0
            if op == "!=":
                return 1 if na != nb else 0
            if op == "<":
                return 1 if na < nb else 0
            if op == ">":
                return 1 if na > nb else 0
            if op == "<=":
                return 1 if na <= nb else 0
            return 1 if na >= nb else 0
        a, b = self._operand(a, op, line), self._operand(b, op, line)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            result = a * b
        elif op == "/":
            if b == 0:
                raise TclError(line, "divide by zero")
            return a // b if a.__class__ is int and b.__class__ is int else a / b
        elif op == "**":
            result = self._power(a, b, line)
        else:
            if a.__class__ is not int or b.__class__ is not int:
                raise TclError(line, 'can\'t use floating-point value as operand of "%s"' % op)
            if op == "%":
                if b == 0:
                    raise TclError(line, "divide by zero")
                return a % b
            if op == "&":
                return a & b
            if op == "|":
                return a | b
            if op == "^":
                return a ^ b
            if abs(b) > 4096:
                raise TclError(line, "shift by %d bits: out of range" % b)
            result = a << b if op == "<<" else a >> b
        if result.__class__ is int and result.bit_length() > 4096:
            raise TclError(line, "integer value too large to represent")
        return result

    @staticmethod
    def _power(a, b, line):
        if a.__class__ is int and b.__class__ is int:
            if b < 0:
                if a == 0:
                    raise TclError(line, "exponentiation of zero by negative power")
                return a ** b if a in (1, -1) else 0
            if abs(a) > 1 and b * max(1, abs(a).bit_length()) > 4096:
                raise TclError(line, "integer value too large to represent")
            return a ** b
        try:
            return float(a) ** float(b)
        except (OverflowError, ZeroDivisionError, ValueError):
            raise TclError(line, "domain error: argument not in valid range")

    def unop(self, op, value, line):
        if op == "!":
            return 0 if _truth(value, line) else 1
        number = self._operand(value, op, line)
        if op == "-":
            return -number
        if op == "+":
            return number
        if number.__class__ is not int:
            raise TclError(line, 'can\'t use floating-point value as operand of "~"')
        return ~number

    def function(self, name, args, line):
        if name == "rand":
            if args:
                raise TclError(line, 'too many arguments for math function "rand"')
            self.note_once("info", line, "rand() is seeded with 0 here, so the conversion is deterministic")
            return self.rng.random()
        if name == "srand":
            if len(args) != 1:
                raise TclError(line, 'wrong # args for math function "srand"')
            self.rng.seed(self._operand(args[0], "srand", line))
            return self.rng.random()
        entry = _FUNCTIONS.get(name)
        if entry is None:
            raise TclError(line, 'unknown math function "%s"' % name)
        arity, fn = entry
        if (arity >= 0 and len(args) != arity) or (arity < 0 and not args):
            raise TclError(line, 'wrong # args for math function "%s"' % name)
        numbers = [self._operand(a, name + "()", line) for a in args]
        try:
            return fn(*numbers)
        except (ValueError, OverflowError) as exc:
            raise TclError(line, "%s(): %s" % (name, exc))


# ---------------------------------------------------------------------------------------------
# Tcl commands


def _cmd_set(it, argv, cmd, words):
    if len(argv) == 2:
        return it.read(argv[1])
    if len(argv) != 3:
        _wrong_args(cmd, "set varName ?newValue?")
    return it.ns.assign(it, argv[1], argv[2], cmd)


def _cmd_unset(it, argv, cmd, words):
    names = argv[1:]
    nocomplain = False
    while names and names[0] in ("-nocomplain", "--"):
        nocomplain = nocomplain or names[0] == "-nocomplain"
        names = names[1:]
    for name in names:
        if not it.unset(name) and not nocomplain:
            raise TclError(cmd.line, 'can\'t unset "%s": no such variable' % name)
    return ""


def _to_int(value, line):
    result = _int_value(value)
    if result is None:
        raise TclError(line, 'expected integer but got "%s"' % _clip(value))
    return result


def _cmd_incr(it, argv, cmd, words):
    if len(argv) not in (2, 3):
        _wrong_args(cmd, "incr varName ?increment?")
    amount = _to_int(argv[2], cmd.line) if len(argv) == 3 else 1
    current = _to_int(it.read(argv[1]), cmd.line) if it.exists(argv[1]) else 0
    return it.write(argv[1], str(current + amount))


def _cmd_append(it, argv, cmd, words):
    if len(argv) < 2:
        _wrong_args(cmd, "append varName ?value ...?")
    current = it.read(argv[1]) if it.exists(argv[1]) else ""
    return it.write(argv[1], current + "".join(argv[2:]))


def _cmd_lappend(it, argv, cmd, words):
    if len(argv) < 2:
        _wrong_args(cmd, "lappend varName ?value ...?")
    current = it.read(argv[1]) if it.exists(argv[1]) else ""
    new = argv[2:]
    items = split_list(current, cmd.line)
    if current.__class__ is TclList or not current.strip():
        quoted = " ".join([_quote_element(v) for v in new])
        result = TclList(current + " " + quoted if current and quoted else current + quoted)
        result.items = items + new
    else:
        result = make_list(items + new)
    return it.write(argv[1], result)


def _cmd_list(it, argv, cmd, words):
    return make_list(argv[1:])


def _cmd_llength(it, argv, cmd, words):
    if len(argv) != 2:
        _wrong_args(cmd, "llength list")
    return str(len(split_list(argv[1], cmd.line)))


def _index(text, size, line):
    text = text.strip()
    if text == "end":
        return size - 1
    match = re.match(r"end\s*([-+])\s*(\d+)\Z", text)
    if match:
        offset = int(match.group(2))
        return size - 1 - offset if match.group(1) == "-" else size - 1 + offset
    match = re.match(r"([-+]?\d+)\s*([-+])\s*(\d+)\Z", text)
    if match:
        a, b = int(match.group(1)), int(match.group(3))
        return a - b if match.group(2) == "-" else a + b
    number = _int_value(text)
    if number is None:
        raise TclError(line, 'bad index "%s": must be integer?[+-]integer? or end?[+-]integer?' % _clip(text))
    return number


def _cmd_lindex(it, argv, cmd, words):
    if len(argv) < 2:
        _wrong_args(cmd, "lindex list ?index ...?")
    value = argv[1]
    indexes = argv[2:]
    if len(indexes) == 1:
        indexes = split_list(indexes[0], cmd.line)
    for text in indexes:
        items = split_list(value, cmd.line)
        i = _index(text, len(items), cmd.line)
        if not 0 <= i < len(items):
            return ""
        value = items[i]
    return value


def _cmd_lrange(it, argv, cmd, words):
    if len(argv) != 4:
        _wrong_args(cmd, "lrange list first last")
    items = split_list(argv[1], cmd.line)
    first = max(0, _index(argv[2], len(items), cmd.line))
    last = min(len(items) - 1, _index(argv[3], len(items), cmd.line))
    return make_list(items[first:last + 1])


def _cmd_lsearch(it, argv, cmd, words):
    options = argv[1:-2]
    if len(argv) < 3 or any(o not in ("-exact", "-glob") for o in options):
        _wrong_args(cmd, "lsearch ?-exact|-glob? list pattern")
    items, pattern = split_list(argv[-2], cmd.line), argv[-1]
    exact = "-exact" in options
    for i, item in enumerate(items):
        if item == pattern if exact else fnmatch.fnmatchcase(item, pattern):
            return str(i)
    return "-1"


def _cmd_lsort(it, argv, cmd, words):
    options = argv[1:-1]
    known = ("-ascii", "-dictionary", "-integer", "-real", "-increasing", "-decreasing", "-unique")
    if len(argv) < 2 or any(o not in known for o in options):
        _wrong_args(cmd, "lsort ?-ascii|-dictionary|-integer|-real? ?-increasing|-decreasing? ?-unique? list")
    items = list(split_list(argv[-1], cmd.line))

    def integer_key(value):
        return _to_int(value, cmd.line)

    def real_key(value):
        return Interp._operand(value, "lsort", cmd.line)

    key = integer_key if "-integer" in options else real_key if "-real" in options else None
    items.sort(key=key, reverse="-decreasing" in options)
    if "-unique" in options:
        unique = []
        for item in items:
            if not unique or (key(item) if key else item) != (key(unique[-1]) if key else unique[-1]):
                unique.append(item)
        items = unique
    return make_list(items)


def _cmd_concat(it, argv, cmd, words):
    return " ".join([a.strip() for a in argv[1:] if a.strip()])


def _cmd_join(it, argv, cmd, words):
    if len(argv) not in (2, 3):
        _wrong_args(cmd, "join list ?joinString?")
    return (argv[2] if len(argv) == 3 else " ").join(split_list(argv[1], cmd.line))


def _cmd_split(it, argv, cmd, words):
    if len(argv) not in (2, 3):
        _wrong_args(cmd, "split string ?splitChars?")
    text, chars = argv[1], argv[2] if len(argv) == 3 else " \t\n\r"
    if not text:
        return make_list([])
    if not chars:
        return make_list(list(text))
    return make_list(re.split("[%s]" % re.escape(chars), text))


def _cmd_string(it, argv, cmd, words):
    if len(argv) < 3:
        _wrong_args(cmd, "string subcommand ?arg ...?")
    sub, args, line = argv[1], argv[2:], cmd.line
    nocase = False
    if sub in ("equal", "compare", "match", "first") and args and args[0] == "-nocase":
        nocase, args = True, args[1:]

    def need(count, usage):
        if len(args) not in ((count,) if isinstance(count, int) else count):
            _wrong_args(cmd, "string %s %s" % (sub, usage))

    if sub == "length":
        need(1, "string")
        return str(len(args[0]))
    if sub in ("equal", "compare"):
        need(2, "?-nocase? string1 string2")
        a, b = (args[0].lower(), args[1].lower()) if nocase else (args[0], args[1])
        if sub == "equal":
            return "1" if a == b else "0"
        return "0" if a == b else ("-1" if a < b else "1")
    if sub in ("tolower", "toupper"):
        need(1, "string")
        return args[0].lower() if sub == "tolower" else args[0].upper()
    if sub in ("trim", "trimleft", "trimright"):
        need((1, 2), "string ?chars?")
        chars = args[1] if len(args) == 2 else " \t\n\r"
        return {"trim": args[0].strip, "trimleft": args[0].lstrip, "trimright": args[0].rstrip}[sub](chars)
    if sub == "index":
        need(2, "string charIndex")
        i = _index(args[1], len(args[0]), line)
        return args[0][i] if 0 <= i < len(args[0]) else ""
    if sub == "range":
        need(3, "string first last")
        first = max(0, _index(args[1], len(args[0]), line))
        last = _index(args[2], len(args[0]), line)
        return args[0][first:last + 1]
    if sub in ("first", "last"):
        need(2, "needleString haystackString")
        needle, hay = (args[0].lower(), args[1].lower()) if nocase else (args[0], args[1])
        return str(hay.find(needle) if sub == "first" else hay.rfind(needle))
    if sub == "repeat":
        need(2, "string count")
        count = _to_int(args[1], line)
        if len(args[0]) * max(count, 0) > MAX_VALUE:
            raise TclError(line, "a value of more than %d characters: stopped here" % MAX_VALUE)
        return args[0] * max(count, 0)
    if sub == "match":
        need(2, "?-nocase? pattern string")
        pattern, text = (args[0].lower(), args[1].lower()) if nocase else (args[0], args[1])
        return "1" if fnmatch.fnmatchcase(text, pattern) else "0"
    if sub == "map":
        need(2, "mapping string")
        pairs = split_list(args[0], line)
        if len(pairs) % 2:
            raise TclError(line, "char map list unbalanced")
        text, out, i = args[1], [], 0
        mapping = [(pairs[k], pairs[k + 1]) for k in range(0, len(pairs), 2) if pairs[k]]
        while i < len(text):
            for key, value in mapping:
                if text.startswith(key, i):
                    out.append(value)
                    i += len(key)
                    break
            else:
                out.append(text[i])
                i += 1
        return "".join(out)
    if sub == "is":
        if len(args) == 3 and args[1] == "-strict":
            args = [args[0], args[2]]
        need(2, "class ?-strict? string")
        cls, text = args
        checks = {"integer": lambda s: _int_value(s) is not None, "double": lambda s: _number(s) is not None,
                  "digit": str.isdigit, "alpha": str.isalpha, "alnum": str.isalnum, "space": str.isspace,
                  "boolean": lambda s: s.lower() in _BOOLEANS or s in ("0", "1")}
        if cls not in checks:
            raise TclError(line, 'string is: class "%s" is not supported here (%s)' % (cls, ", ".join(sorted(checks))))
        return "1" if text == "" or checks[cls](text) else "0"
    raise TclError(line, 'string %s: not in the Tcl subset this importer evaluates' % sub)


_FORMAT_SPEC = re.compile(r"%([-+ 0#]*)(\*|\d+)?(?:\.(\*|\d+))?(?:ll|l|h|L|q)?([duioxXcsfeEgG%])")


def _cmd_format(it, argv, cmd, words):
    if len(argv) < 2:
        _wrong_args(cmd, "format formatString ?arg ...?")
    args, line = list(argv[2:]), cmd.line
    out, pos = [], 0

    def take():
        if not args:
            raise TclError(line, "not enough arguments for all format specifiers")
        return args.pop(0)

    for match in _FORMAT_SPEC.finditer(argv[1]):
        out.append(argv[1][pos:match.start()])
        pos = match.end()
        flags, width, precision, conv = match.groups()
        if conv == "%":
            out.append("%")
            continue
        width = str(_to_int(take(), line)) if width == "*" else (width or "")
        precision = str(_to_int(take(), line)) if precision == "*" else precision
        if max(abs(int(width or 0)), int(precision or 0)) > 100000:
            raise TclError(line, "format: a field of more than 100000 characters: stopped here")
        spec = "%" + flags + width + ("." + precision if precision is not None else "")
        value = take()
        if conv in "diu":
            out.append((spec + "d") % _to_int(value, line))
        elif conv in "oxX":
            out.append((spec + conv) % _to_int(value, line))
        elif conv == "c":
            out.append((spec + "c") % chr(_to_int(value, line) & 0x10FFFF))
        elif conv == "s":
            out.append((spec + "s") % value)
        else:
            out.append((spec + conv) % float(Interp._operand(value, "format", line)))
    out.append(argv[1][pos:])
    return "".join(out)


def _cmd_expr(it, argv, cmd, words):
    if len(argv) < 2:
        _wrong_args(cmd, "expr arg ?arg ...?")
    if len(argv) == 2:
        w = words[1] if len(words) > 1 else None
        return _fmt(it.expr(argv[1], w.line if w is not None else cmd.line))
    return _fmt(it.expr(" ".join(argv[1:]), cmd.line))


def _line_of(words, i, cmd):
    w = words[i] if i < len(words) else None
    return w.line if w is not None else cmd.line


def _cmd_if(it, argv, cmd, words):
    i, n = 1, len(argv)
    while True:
        if i >= n:
            raise TclError(cmd.line, 'wrong # args: no expression after "%s" argument' % argv[i - 1])
        taken = it.truth(argv[i], _line_of(words, i, cmd))
        i += 1
        if i < n and argv[i] == "then":
            i += 1
        if i >= n:
            raise TclError(cmd.line, 'wrong # args: no script following "%s" argument' % argv[i - 1])
        if taken:
            return it.run(it.script_of(argv, words, i, cmd))
        i += 1
        if i >= n:
            return ""
        if argv[i] == "elseif":
            i += 1
            continue
        if argv[i] == "else":
            i += 1
            if i >= n:
                raise TclError(cmd.line, 'wrong # args: no script following "else" argument')
        if i != n - 1:
            raise TclError(cmd.line, 'wrong # args: extra words after "else" clause in "if" command')
        return it.run(it.script_of(argv, words, i, cmd))


def _loop_body(it, body):
    """One pass of a loop's body: False when it ran ``break``; ``continue`` ends the pass."""
    try:
        it.run(body)
    except _Break:
        return False
    except _Continue:
        pass
    return True


def _cmd_for(it, argv, cmd, words):
    if len(argv) != 5:
        _wrong_args(cmd, "for start test next command")
    start, step_, body = (it.script_of(argv, words, i, cmd) for i in (1, 3, 4))
    test, test_line = argv[2], _line_of(words, 2, cmd)
    it.run(start)
    while it.truth(test, test_line):
        it.step(cmd.line)
        if not _loop_body(it, body):
            break
        it.run(step_)
    return ""


def _cmd_while(it, argv, cmd, words):
    if len(argv) != 3:
        _wrong_args(cmd, "while test command")
    body = it.script_of(argv, words, 2, cmd)
    test, test_line = argv[1], _line_of(words, 1, cmd)
    while it.truth(test, test_line):
        it.step(cmd.line)
        if not _loop_body(it, body):
            break
    return ""


def _cmd_foreach(it, argv, cmd, words):
    if len(argv) < 4 or len(argv) % 2:
        _wrong_args(cmd, "foreach varList list ?varList list ...? command")
    pairs = []
    rounds = 0
    for i in range(1, len(argv) - 1, 2):
        names = split_list(argv[i], cmd.line)
        if not names:
            raise TclError(cmd.line, "foreach varlist is empty")
        values = split_list(argv[i + 1], cmd.line)
        pairs.append((names, values))
        rounds = max(rounds, (len(values) + len(names) - 1) // len(names))
    body = it.script_of(argv, words, len(argv) - 1, cmd)
    for k in range(rounds):
        it.step(cmd.line)
        for names, values in pairs:
            width = len(names)
            for j, name in enumerate(names):
                index = k * width + j
                it.write(name, values[index] if index < len(values) else "")
        if not _loop_body(it, body):
            break
    return ""


def _cmd_break(it, argv, cmd, words):
    raise _Break()


def _cmd_continue(it, argv, cmd, words):
    raise _Continue()


def _cmd_return(it, argv, cmd, words):
    args = argv[1:]
    if len(args) >= 2 and args[0] == "-code":
        if args[1] not in ("ok", "0", "return", "2"):
            raise TclError(cmd.line, "return -code %s: not in the Tcl subset this importer evaluates" % args[1])
        args = args[2:]
    if len(args) > 1:
        _wrong_args(cmd, "return ?value?")
    raise _Return(args[0] if args else "")


def _cmd_proc(it, argv, cmd, words):
    if len(argv) != 4:
        _wrong_args(cmd, "proc name args body")
    params = []
    for spec in split_list(argv[2], cmd.line):
        parts = split_list(spec, cmd.line)
        if len(parts) == 1:
            params.append((parts[0], None))
        elif len(parts) == 2:
            params.append((parts[0], parts[1]))
        else:
            raise TclError(cmd.line, 'proc %s: argument specifier "%s" has more than 2 fields' % (argv[1], spec))
    w = words[3] if len(words) > 3 else None
    if w is not None and w.raw is not None and w.const == argv[3]:
        text, line = w.raw, w.line
    else:
        text, line = argv[3], _line_of(words, 3, cmd)
    it.procs[argv[1]] = _Proc(argv[1], params, text, line)
    return ""


def _cmd_global(it, argv, cmd, words):
    frame = it.frame
    if frame is it.globals:
        return ""
    if frame.links is None:
        frame.links = {}
    for name in argv[1:]:
        frame.links[name] = name.lstrip(":")
    return ""


def _cmd_eval(it, argv, cmd, words):
    if len(argv) < 2:
        _wrong_args(cmd, "eval arg ?arg ...?")
    if len(argv) == 2:
        w = words[1] if len(words) > 1 else None
        if w is not None and w.raw is not None and w.const == argv[1]:
            return it.eval_text(w.raw, w.line)
        return it.eval_text(argv[1], cmd.line)
    return it.eval_text(_cmd_concat(it, argv, cmd, words), cmd.line)


def _cmd_info(it, argv, cmd, words):
    if len(argv) == 3 and argv[1] == "exists":
        return "1" if it.exists(argv[2]) else "0"
    raise TclError(cmd.line, "info %s: not in the Tcl subset this importer evaluates (only info exists)"
                   % (argv[1] if len(argv) > 1 else ""))


def _cmd_array(it, argv, cmd, words):
    if len(argv) < 3:
        _wrong_args(cmd, "array subcommand arrayName ?arg ...?")
    sub, name = argv[1], argv[2]
    table, key = it._table(name)
    value = table.get(key)
    array = value if value.__class__ is dict else None
    if sub == "exists":
        return "1" if array is not None else "0"
    if sub == "size":
        return str(len(array or {}))
    if sub == "names":
        names = list(array or {})
        if len(argv) == 4:
            names = [n for n in names if fnmatch.fnmatchcase(n, argv[3])]
        return make_list(names)
    if sub == "get":
        items = []
        for k, v in (array or {}).items():
            items.extend((k, v))
        return make_list(items)
    if sub == "set" and len(argv) == 4:
        items = split_list(argv[3], cmd.line)
        if len(items) % 2:
            raise TclError(cmd.line, "list must have an even number of elements")
        for k in range(0, len(items), 2):
            it.write("%s(%s)" % (name, items[k]), items[k + 1])
        return ""
    raise TclError(cmd.line, "array %s: not in the Tcl subset this importer evaluates (exists, size, names, get, set)" % sub)


def _cmd_puts(it, argv, cmd, words):
    it.note_once("info", cmd.line, "puts: the NS file's output is not shown (ignored)")
    return ""


def _cmd_source(it, argv, cmd, words):
    if len(argv) != 2:
        _wrong_args(cmd, "source fileName")
    if re.search(r"(^|/)tb_compat\.tcl\Z", argv[1]):
        return ""
    raise TclError(cmd.line, "source %s: only 'source tb_compat.tcl' is understood; paste the other file into this one" % argv[1])


def _cmd_new(it, argv, cmd, words):
    return it.ns.new(it, argv, cmd)


_BUILTINS = {
    "set": _cmd_set, "unset": _cmd_unset, "incr": _cmd_incr, "append": _cmd_append, "lappend": _cmd_lappend,
    "list": _cmd_list, "llength": _cmd_llength, "lindex": _cmd_lindex, "lrange": _cmd_lrange,
    "lsearch": _cmd_lsearch, "lsort": _cmd_lsort, "concat": _cmd_concat, "join": _cmd_join, "split": _cmd_split,
    "string": _cmd_string, "format": _cmd_format, "expr": _cmd_expr, "if": _cmd_if, "for": _cmd_for,
    "while": _cmd_while, "foreach": _cmd_foreach, "break": _cmd_break, "continue": _cmd_continue,
    "return": _cmd_return, "proc": _cmd_proc, "global": _cmd_global, "eval": _cmd_eval, "info": _cmd_info,
    "array": _cmd_array, "puts": _cmd_puts, "source": _cmd_source, "new": _cmd_new,
}


# ---------------------------------------------------------------------------------------------
# Emulab's units

_NUMBER_UNIT = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*\Z")
# parse_bw in Emulab's parse.tcl: all bits per second, case-sensitive, a bare number is bits.
_BANDWIDTH_UNITS = {"": 1, "b": 1, "bps": 1, "k": 10 ** 3, "kb": 10 ** 3, "kbps": 10 ** 3, "K": 10 ** 3, "Kb": 10 ** 3,
                    "Kbps": 10 ** 3, "M": 10 ** 6, "Mb": 10 ** 6, "Mbps": 10 ** 6, "G": 10 ** 9, "Gb": 10 ** 9,
                    "Gbps": 10 ** 9}
# parse_delay: a bare number is seconds; s and ms are Emulab's, us and ns are accepted too (SI).
_DELAY_UNITS = {"": 10 ** 6, "s": 10 ** 6, "ms": 10 ** 3, "us": 1, "ns": 10 ** -3}
_LOSS_RE = re.compile(r"\s*(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*\Z")


def _bandwidth(text):
    """bit/s for an NS bandwidth, None for '*' (Emulab: let the mapper pick, i.e. unshaped)."""
    if text.strip() == "*":
        return None
    match = _NUMBER_UNIT.match(text)
    if match is None:
        raise ValueError("bandwidth %r is not a number with a unit such as 100Mb" % _clip(text))
    unit = match.group(2)
    if unit not in _BANDWIDTH_UNITS:
        raise ValueError("bandwidth %r: unknown unit %r (Emulab's: b, kb, Mb, Gb, also as bps/kbps/Mbps/Gbps "
                         "and k/K/M/G, all bits per second; a bare number is bits per second)" % (text, unit))
    bits = int(round(float(match.group(1)) * _BANDWIDTH_UNITS[unit]))
    if bits <= 0:
        raise ValueError("bandwidth %r must be more than 0" % text)
    return bits


def _delay(text):
    """Microseconds (a float) for an NS delay."""
    match = _NUMBER_UNIT.match(text)
    if match is None or match.group(2) not in _DELAY_UNITS:
        raise ValueError("delay %r is not a number with a unit such as 10ms (units s, ms, us, ns; "
                         "a bare number is seconds)" % _clip(text))
    return float(match.group(1)) * _DELAY_UNITS[match.group(2)]


def _loss(text):
    """A loss rate as Emulab accepts it: 0, or 0.000005 to 1."""
    if not _LOSS_RE.match(text):
        raise ValueError("loss rate %r is not a number" % _clip(text))
    value = float(text)
    if value != 0 and not 0.000005 <= value <= 1.0:
        raise ValueError("loss rate %s is not a valid loss rate (0, or 0.000005 to 1)" % text.strip())
    return value


def _side_loss(loss):
    """Emulab's per-side loss for a link/LAN loss: two sides compound to ``loss``."""
    return 1.0 - math.sqrt(1.0 - loss)


def _round_loss(value):
    return float("%.6g" % value)


SHAPE_KEYS = ("bandwidth", "delay", "loss", "queue")


def _formatted(delay, bandwidth, loss, queue, noshaping):
    """Our values of one side or direction: strings/numbers, None where unshaped."""
    micros = int(math.floor(delay + 0.5))
    return {"bandwidth": format_rate(bandwidth) if bandwidth and not noshaping else None,
            "delay": format_time(micros) if micros > 0 else None,
            "loss": _round_loss(loss) if loss > 0 else None,
            "queue": queue}


# ---------------------------------------------------------------------------------------------
# NS objects


class _Object:
    kind = "object"
    name = raw = line = None


class _Simulator(_Object):
    kind = "simulator"

    def __init__(self, name):
        self.name = name


class _Node(_Object):
    kind = "node"

    def __init__(self, name, line):
        self.name, self.line = name, line
        self.os = self.os_line = self.startup = self.startcmd = self.host = self.memory = None
        self.ports = []


class _LanLink(_Object):
    """A link (kind 'link') or LAN (kind 'lan') and its members' sides, as Emulab keeps them:
    ``out[i]`` member i -> LAN, ``inn[i]`` LAN -> member i."""

    def __init__(self, kind, name, line, members, bandwidth, delay):
        self.kind, self.name, self.line, self.members = kind, name, line, members
        self.index = dict((id(m), i) for i, m in enumerate(members))
        half = delay / 2.0
        self.default = {"delay": half, "bandwidth": bandwidth, "loss": 0.0}  # the LAN-wide values
        self.out = [{"delay": half, "bandwidth": bandwidth, "loss": 0.0, "queue": None} for _m in members]
        self.inn = [{"delay": half, "bandwidth": bandwidth, "loss": 0.0, "queue": None} for _m in members]
        self.ips = {}
        self.netmask = self.netmask_line = None
        self.noshaping = False
        self.queues = {}

    def side(self, node):
        return self.index.get(id(node))

    def what(self):
        return "%s %s" % ("LAN" if self.kind == "lan" else "link", self.name)


class _Handle(_Object):
    """``[$ns link A B]`` (kind 'simplex'), ``[$ns lanlink LAN NODE]`` ('lanlink'), their
    ``queue`` ('queue'): a side of a link or LAN."""

    def __init__(self, kind, name, lanlink, side):
        self.kind, self.name, self.lanlink, self.side = kind, name, lanlink, side
        self.vars = {}


class _Null(_Object):
    kind = "ignored"

    def __init__(self, name, what):
        self.name, self.what = name, what


_TRAFFIC = "NS traffic agents and applications (Emulab's traffic generators) are not carried over: " \
           "run the traffic from the nodes' start commands"
_IGNORED_NEW = {
    "Program": "Emulab program agents run through its event system, which is not carried over: "
               "put the command in tb-set-node-startcmd (the node's start:)",
    "EventGroup": "Emulab event groups are not carried over (no event system)",
    "Firewall": "Emulab firewalls are not carried over",
    "Console": "Emulab console agents are not carried over",
    "Topography": "wireless topographies are not carried over",
}
# Simulator methods that change the topology in a way this importer cannot carry over.
_SIM_UNSUPPORTED = ("make-cloud", "make-path", "make-simulated", "nsenode", "make-san", "make-portinvlan",
                    "blockstore", "bridge", "define-template-parameter")
_LANLINK_IGNORED = ("trace", "trace_snaplen", "trace_endnode", "trace_mysql", "implemented_by", "cost", "mustdelay",
                    "enable_openflow", "set_setting", "set_member_setting", "set_accesspoint", "set_fixed_iface")
_NODE_IGNORED = ("program-agent", "console", "topography", "add-desire", "set_numeric_id", "attach-agent")
_RED_PARAMS = ("thresh_", "maxthresh_", "q_weight_", "linterm_", "mean_pktsize_", "wait_", "setbit_", "gentle_",
               "red_", "drop-tail_")
_QUEUE_DEFAULTS = {"limit_": "50", "maxthresh_": "15", "thresh_": "5", "q_weight_": "0.002", "linterm_": "10",
                   "queue-in-bytes_": "0", "bytes_": "0", "mean_pktsize_": "500", "wait_": "1", "setbit_": "0",
                   "drop-tail_": "1", "gentle_": "0", "red_": "0"}

# tb-* commands with no container meaning here: warned about, with the reason, and ignored.
_NO_CONTAINER_MEANING = "has no container meaning"
_NO_CONTAINER_MEANING_PL = "have no container meaning"
# The Emulab commands that have no meaning here, by the reason given when one is ignored
# (tb-set-hardware, handled in the evaluator, names the type it was given).
_TB_IGNORED_BY_REASON = (
    ("RPMs are not installed in containers: build them into the node's image",
     ("tb-set-node-rpms",)),
    ("tar files are not unpacked in containers: put them into the node's image",
     ("tb-set-node-tarfiles",)),
    ("tar files are not unpacked in containers: put them into the nodes' image",
     ("tb-set-tarfiles",)),
    ("a kernel command line " + _NO_CONTAINER_MEANING + " (containers share the host's kernel)",
     ("tb-set-node-cmdline",)),
    ("OS load lists " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-node-loadlist",)),
    ("Emulab's virtual node packing " + _NO_CONTAINER_MEANING,
     ("tb-set-colocate-factor",)),
    ("shaping always happens on the hosts' ends of the nodes' links here",
     ("tb-use-endnodeshaping", "tb-force-endnodeshaping", "tb-set-endnodeshaping")),
    ("link multiplexing " + _NO_CONTAINER_MEANING,
     ("tb-set-multiplexed",)),
    ("link encapsulation " + _NO_CONTAINER_MEANING,
     ("tb-set-useveth", "tb-set-link-encap", "tb-set-encapsulate")),
    ("virtual link emulation " + _NO_CONTAINER_MEANING,
     ("tb-set-vlink-emulation",)),
    ("Emulab's colocation " + _NO_CONTAINER_MEANING,
     ("tb-set-allowcolocate",)),
    ("estimated bandwidths only guide Emulab's mapper: no shaping meaning",
     ("tb-set-link-est-bandwidth", "tb-set-lan-est-bandwidth", "tb-set-node-lan-est-bandwidth")),
    ("backfill bandwidth only guides Emulab's mapper: no shaping meaning",
     ("tb-set-link-backfill", "tb-set-link-simplex-backfill", "tb-set-lan-backfill", "tb-set-node-lan-backfill",
      "tb-set-lan-simplex-backfill")),
    ("LAN protocols (wireless) " + _NO_CONTAINER_MEANING_PL + ": every LAN is Ethernet",
     ("tb-set-lan-protocol",)),
    ("link protocols (wireless) " + _NO_CONTAINER_MEANING_PL + ": every link is Ethernet",
     ("tb-set-link-protocol",)),
    ("Emulab's swap-in failure policy " + _NO_CONTAINER_MEANING,
     ("tb-set-node-failure-action", "tb-set-link-failure-action")),
    ("wide-area link data " + _NO_CONTAINER_MEANING,
     ("tb-set-uselatestwadata",)),
    ("wide-area tunnels " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-usewatunnels",)),
    ("wide-area solver weights " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-wasolver-weights",)),
    ("shared physical nodes " + _NO_CONTAINER_MEANING_PL + " (containers always share hosts)",
     ("tb-set-usesharednode", "tb-set-node-usesharednode", "tb-set-node-sharingmode")),
    ("Emulab's synchronization server (emulab-sync barriers) is not carried over",
     ("tb-set-sync-server",)),
    ("the OS of Emulab's jails " + _NO_CONTAINER_MEANING,
     ("tb-set-jail-os",)),
    ("the OS of Emulab's delay nodes " + _NO_CONTAINER_MEANING,
     ("tb-set-delay-os",)),
    ("Emulab's delay node capacity " + _NO_CONTAINER_MEANING,
     ("tb-set-delay-capacity",)),
    ("Emulab's ipassign " + _NO_CONTAINER_MEANING + ": subnets are allocated by the planner",
     ("tb-use-ipassign", "tb-set-ipassign-args")),
    ("Emulab's packing hints " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-mem-usage", "tb-set-cpu-usage")),
    ("Emulab's virtual hardware types " + _NO_CONTAINER_MEANING_PL,
     ("tb-make-soft-vtype", "tb-make-hard-vtype", "tb-make-weighted-vtype")),
    ("physical interfaces " + _NO_CONTAINER_MEANING_PL,
     ("tb-fix-interface",)),
    ("link layers " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-link-layer",)),
    ("Emulab's security levels " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-security-level",)),
    ("Emulab's node services " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-node-service", "tb-add-node-service-hook")),
    ("Emulab's node ids " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-node-id",)),
    ("physical node names " + _NO_CONTAINER_MEANING_PL,
     ("tb-use-physnaming",)),
    ("Emulab's resource pinning " + _NO_CONTAINER_MEANING,
     ("tb-fix-current-resources",)),
    ("Emulab's subnodes " + _NO_CONTAINER_MEANING_PL,
     ("tb-bind-parent",)),
    ("Emulab's experiment database " + _NO_CONTAINER_MEANING,
     ("tb-set-dpdb",)),
    ("Emulab's NFS mounts " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-nonfs",)),
    ("routable control addresses " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-node-routable-ip",)),
    ("Emulab's LAN capabilities " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-lan-setting", "tb-set-node-lan-setting")),
    ("wireless access points " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-lan-accesspoint",)),
    ("switch fabrics " + _NO_CONTAINER_MEANING_PL,
     ("tb-set-switch-fabric",)),
    ("Emulab's feedback reservations " + _NO_CONTAINER_MEANING_PL,
     ("tb-feedback-vnode", "tb-feedback-vlan", "tb-feedback-vlink")),
    ("OML measurement " + _NO_CONTAINER_MEANING,
     ("tb-set-use-oml", "tb-set-oml-server", "tb-set-oml-mp", "tb-set-oml-use-control")),
    ("is not an Emulab command (Emulab refuses it): give the bandwidth to make-lan, "
     "or per member with tb-set-node-lan-bandwidth",
     ("tb-set-lan-bandwidth",)),
    ("is not an Emulab command (Emulab refuses it): give the bandwidth to duplex-link, "
     "or per direction with tb-set-link-simplex-params",
     ("tb-set-link-bandwidth",)),
)
_TB_IGNORED = dict((command, reason) for reason, commands in _TB_IGNORED_BY_REASON for command in commands)
_TB_IGNORED["tb-set-hardware"] = None
for _name in ("tb-elab-in-elab", "tb-elab-in-elab-topology", "tb-set-inner-elab-eid", "tb-set-elabinelab-cvstag",
              "tb-elabinelab-singlenet", "tb-set-elabinelab-attribute", "tb-unset-elabinelab-attribute",
              "tb-set-elabinelab-role-attribute", "tb-unset-elabinelab-role-attribute", "tb-set-node-inner-elab-role",
              "tb-set-elabinelab-fw-type"):
    _TB_IGNORED[_name] = "Emulab-in-Emulab " + _NO_CONTAINER_MEANING
for _name in ("tb-set-node-plab-role", "tb-set-node-plab-plcnet", "tb-use-modelnet", "tb-set-modelnet-physnodes"):
    _TB_IGNORED[_name] = "PlanetLab and ModelNet settings " + _NO_CONTAINER_MEANING_PL


class _Ns:
    """The experiment an NS file builds: Simulator, node, link and LAN objects (Tcl commands
    named like Emulab's) and what the tb-* commands set on them."""

    def __init__(self, notes, max_nodes):
        self.notes, self.max_nodes = notes, max_nodes
        self.it = None
        self.objects = {}
        self.order, self.nodes, self.lanlinks = [], [], []
        self.counter = self.handles = 0
        self.last_created = None
        self.link_map, self.link_count = {}, {}
        self.routing = self.routing_line = None
        self.ran = None

    # -- notes ---------------------------------------------------------------------------------

    def info(self, line, message):
        self.it.note_once("info", line, message)

    def warn(self, line, message):
        self.it.note_once("warning", line, message)

    def error(self, line, message):
        self.it.note_once("error", line, message)

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, cmds):
        it = self.it
        for k, cmd in enumerate(cmds):
            try:
                it.call(cmd)
            except _Stop:
                if k + 1 < len(cmds):
                    self.warn(cmds[k + 1].line, "commands after `$ns run` (line %d) are ignored, as Emulab ignores them"
                              % self.ran)
                return
            except _Return:
                return
            except (_Break, _Continue) as exc:
                raise TclError(it.line, 'invoked "%s" outside of a loop' % ("break" if isinstance(exc, _Break) else "continue"))
        if self.ran is None:
            self.warn(None, "no `$ns run`: Emulab refuses an NS file without it; converted anyway")

    def command(self, it, argv, cmd, words):
        name = argv[0]
        obj = self.objects.get(name)
        if obj is not None:
            return self.method(obj, argv, cmd)
        handler = _TB_COMMANDS.get(name)
        if handler is not None:
            return handler(self, argv, cmd) or ""
        if name in _TB_IGNORED:
            if name == "tb-set-hardware":
                self.warn(cmd.line, "tb-set-hardware: hardware type %r %s; ignored"
                          % (argv[2] if len(argv) > 2 else "", _NO_CONTAINER_MEANING))
            else:
                self.warn(cmd.line, "%s: %s; ignored" % (name, _TB_IGNORED[name]))
            return ""
        if name.startswith("tb-"):
            self.warn(cmd.line, "%s is not an Emulab command this importer knows: ignored" % name)
            return ""
        raise TclError(cmd.line, 'invalid command name "%s": not in the Tcl subset this importer evaluates '
                                 '(see its documentation), nor an NS or Emulab command' % _clip(name))

    def assign(self, it, name, value, cmd):
        """Tcl's set, plus Emulab's naming: an object assigned to a global variable right after
        its creation takes the variable's name (``b(3)`` -> ``b-3``)."""
        it.write(name, value)
        obj = self.last_created
        if obj is None:
            return value
        self.last_created = None
        base = _split_name(name)[0].lstrip(":")
        if value != obj.name or base not in it.globals.vars:
            return value
        new = name.lstrip(":").replace("(", "-").replace(")", "")
        other = self.objects.get(new)
        if other is not None and other is not obj:
            raise TclError(cmd.line, "set %s: Emulab names the new %s %r, but the %s created at line %s already has that "
                                     "name; use an array such as %s($i)" % (name, obj.kind, new, other.kind, other.line, base))
        if new in _BUILTINS or new in it.procs or new in _TB_COMMANDS or new in _TB_IGNORED:
            raise TclError(cmd.line, "set %s: Emulab would name the new %s %r, which is a command; use another variable"
                           % (name, obj.kind, new))
        del self.objects[obj.name]
        obj.name, obj.raw = new, name.lstrip(":")
        self.objects[new] = obj
        return it.write(name, new)

    def handle(self, obj):
        self.handles += 1
        obj.name = "_o%d" % self.handles
        self.objects[obj.name] = obj
        return obj.name

    def null(self, line, what, reason):
        self.warn(line, "%s: %s; the object and its uses are ignored" % (what, reason))
        return self.handle(_Null(None, what))

    def new(self, it, argv, cmd):
        if len(argv) < 2:
            _wrong_args(cmd, "new className ?arg ...?")
        cls = argv[1]
        if cls == "Simulator":
            return self.handle(_Simulator(None))
        if cls.startswith(("Agent", "Application")):
            return self.null(cmd.line, "new %s" % cls, _TRAFFIC)
        reason = _IGNORED_NEW.get(cls, "NS objects of class %s are not carried over" % cls)
        return self.null(cmd.line, "new %s" % cls, reason)

    # -- objects -------------------------------------------------------------------------------

    def new_node(self, line):
        if len(self.nodes) >= self.max_nodes:
            raise TclError(line, "the NS file creates more than %d nodes (option max_nodes): stopped here; "
                                 "raise max_nodes if the file is right" % self.max_nodes)
        self.counter += 1
        node = _Node("tbnode-n%d" % self.counter, line)
        self.objects[node.name] = node
        self.nodes.append(node)
        self.order.append(node)
        self.last_created = node
        return node.name

    def new_lanlink(self, kind, members, bandwidth, delay, line):
        self.counter += 1
        name = ("tblink-l%d" if kind == "link" else "tblan-lan%d") % self.counter
        ll = _LanLink(kind, name, line, members, bandwidth, delay)
        self.objects[name] = ll
        self.lanlinks.append(ll)
        self.order.append(ll)
        for node in members:
            node.ports.append(ll)
        if kind == "link":
            a, b = members
            self.link_map[(id(a), id(b))] = self.link_map[(id(b), id(a))] = ll
            pair = (min(id(a), id(b)), max(id(a), id(b)))
            self.link_count[pair] = self.link_count.get(pair, 0) + 1
        self.last_created = ll
        return name

    def find_link(self, a, b, cmd, command):
        link = self.link_map.get((id(a), id(b)))
        if link is None:
            self.error(cmd.line, "%s: no link between %s and %s" % (command, a.name, b.name))
            return None
        count = self.link_count[(min(id(a), id(b)), max(id(a), id(b)))]
        if count > 1:
            self.warn(cmd.line, "%s: %d links join %s and %s: the last one created (%s, line %d) is taken, as Emulab "
                                "does; name the link instead" % (command, count, a.name, b.name, link.name, link.line))
        return link

    def obj(self, value, cmd, command, kinds, what):
        obj = self.objects.get(value)
        if obj is None or obj.kind not in kinds:
            self.error(cmd.line, "%s: %r is not %s" % (command, _clip(value), what))
            return None
        return obj

    def node(self, value, cmd, command):
        return self.obj(value, cmd, command, ("node",), "a node")

    def parse(self, fn, value, cmd, command):
        try:
            return True, fn(value)
        except ValueError as exc:
            self.error(cmd.line, "%s: %s" % (command, exc))
            return False, None

    def queue_type(self, value, cmd, command):
        if value == "DropTail":
            return
        if value in ("RED", "GRED"):
            self.warn(cmd.line, "%s: %s queues are not carried over: the queue is drop-tail" % (command, value))
        else:
            self.warn(cmd.line, "%s: queue type %r: Emulab uses DropTail for it, as here" % (command, value))

    # -- methods -------------------------------------------------------------------------------

    def method(self, obj, argv, cmd):
        if len(argv) < 2:
            raise TclError(cmd.line, 'wrong # args: %s %s needs a method, as in "%s method ?arg ...?"'
                           % (obj.kind, obj.name, obj.name))
        if obj.kind == "simulator":
            return self.sim_method(argv[1], argv[2:], cmd)
        if obj.kind == "node":
            return self.node_method(obj, argv[1], argv[2:], cmd)
        if obj.kind in ("link", "lan"):
            if argv[1] in _LANLINK_IGNORED:
                self.warn(cmd.line, "%s %s: %s tracing and mapper settings are not carried over; ignored"
                          % (obj.kind, argv[1], obj.kind))
                return ""
            raise TclError(cmd.line, '%s %s has no method "%s" here' % (obj.kind, obj.name, argv[1]))
        if obj.kind in ("simplex", "lanlink"):
            if argv[1] != "queue" or len(argv) != 2:
                raise TclError(cmd.line, '%s has no method "%s" here (only queue)' % (obj.kind, " ".join(argv[1:])))
            ll, side = obj.lanlink, obj.side
            if side not in ll.queues:
                ll.queues[side] = self.handle(_Handle("queue", None, ll, side))
            return ll.queues[side]
        if obj.kind == "queue":
            return self.queue_method(obj, argv[1], argv[2:], cmd)
        return ""  # an ignored object: warned about when it was created

    def sim_method(self, meth, args, cmd):
        line = cmd.line
        if meth == "node":
            if args:
                self.warn(line, "$ns node: arguments %r ignored, as Emulab ignores them" % " ".join(args))
            return self.new_node(line)
        if meth == "duplex-link":
            return self.duplex_link(args, cmd)
        if meth == "make-lan":
            return self.make_lan(args, cmd)
        if meth == "rtproto":
            return self.rtproto(args, cmd)
        if meth == "run":
            self.ran = line
            raise _Stop()
        if meth == "at":
            self.warn(line, "$ns at: events are not carried over yet; the event at %s is ignored"
                      % (args[0] if args else "?"))
            return ""
        if meth == "link":
            if len(args) != 2:
                _wrong_args(cmd, "$ns link node1 node2")
            a, b = self.node(args[0], cmd, "$ns link"), self.node(args[1], cmd, "$ns link")
            link = self.find_link(a, b, cmd, "$ns link") if a is not None and b is not None else None
            if link is None:
                return ""
            return self.handle(_Handle("simplex", None, link, link.side(a)))
        if meth == "lanlink":
            if len(args) != 2:
                _wrong_args(cmd, "$ns lanlink lan node")
            lan = self.obj(args[0], cmd, "$ns lanlink", ("lan",), "a LAN")
            node = self.node(args[1], cmd, "$ns lanlink")
            if lan is None or node is None:
                return ""
            side = lan.side(node)
            if side is None:
                self.error(line, "$ns lanlink: node %s is not in LAN %s" % (node.name, lan.name))
                return ""
            return self.handle(_Handle("lanlink", None, lan, side))
        if meth in ("attach-agent", "connect", "create-connection"):
            self.warn(line, "$ns %s: %s" % (meth, _TRAFFIC))
            return ""
        if meth in ("event-sequence", "event-timeline", "event-group"):
            return self.null(line, "$ns %s" % meth, "Emulab's event system is not carried over")
        if meth in _SIM_UNSUPPORTED:
            self.error(line, "$ns %s is not supported: it builds topology this importer cannot carry over" % meth)
            return ""
        if meth == "cost":
            self.warn(line, "$ns cost: routing costs are not carried over (static routes take the fewest hops)")
            return ""
        return self.null(line, "$ns %s" % meth, "not an Emulab command (Emulab ignores it too)")

    def duplex_link(self, args, cmd):
        if len(args) < 5:
            _wrong_args(cmd, "$ns duplex-link node1 node2 bandwidth delay queue")
        a, b = self.node(args[0], cmd, "duplex-link"), self.node(args[1], cmd, "duplex-link")
        if a is None or b is None:
            return ""
        if a is b:
            self.error(cmd.line, "duplex-link: both ends are node %s" % a.name)
            return ""
        _ok, bandwidth = self.parse(_bandwidth, args[2], cmd, "duplex-link")
        ok, delay = self.parse(_delay, args[3], cmd, "duplex-link")
        self.queue_type(args[4], cmd, "duplex-link")
        if len(args) > 5:
            self.warn(cmd.line, "duplex-link: extra arguments %r ignored, as Emulab ignores them" % " ".join(args[5:]))
        return self.new_lanlink("link", [a, b], bandwidth, delay if ok else 0.0, cmd.line)

    def make_lan(self, args, cmd):
        if len(args) < 3:
            _wrong_args(cmd, '$ns make-lan "node1 node2 ..." bandwidth delay')
        members, seen = [], set()
        for value in split_list(args[0], cmd.line):
            node = self.node(value, cmd, "make-lan")
            if node is None:
                continue
            if id(node) in seen:
                self.error(cmd.line, "make-lan: node %s is listed twice" % node.name)
                continue
            seen.add(id(node))
            members.append(node)
        if not members:
            self.error(cmd.line, "make-lan: no node in the member list %r" % _clip(args[0]))
            return ""
        _ok, bandwidth = self.parse(_bandwidth, args[1], cmd, "make-lan")
        ok, delay = self.parse(_delay, args[2], cmd, "make-lan")
        if len(args) > 3:
            self.warn(cmd.line, "make-lan: extra arguments %r ignored, as Emulab ignores them" % " ".join(args[3:]))
        return self.new_lanlink("lan", members, bandwidth, delay if ok else 0.0, cmd.line)

    def set_routing(self, routing, line):
        self.routing, self.routing_line = routing, line

    def rtproto(self, args, cmd):
        if not args:
            _wrong_args(cmd, "$ns rtproto Static|Session|Manual")
        kind, line = args[0], cmd.line
        if kind in ("Static", "Static-old", "Static-ddijk"):
            self.set_routing("static", line)
        elif kind in ("Session", "ospf"):
            self.set_routing("static", line)
            self.warn(line, "$ns rtproto %s: Emulab runs OSPF, whose routes follow link failures; here routes are "
                            "static, computed once (routing: static)" % kind)
        elif kind == "Manual":
            self.set_routing("none", line)
            self.info(line, "$ns rtproto Manual: no routes are set up (routing: none); add routes in the nodes' "
                            "start commands")
        else:
            self.warn(line, "$ns rtproto %s: not a routing protocol Emulab knows (it ignores it too); ignored" % kind)
        if len(args) > 1:
            self.warn(line, "$ns rtproto: arguments %r ignored, as Emulab ignores them" % " ".join(args[1:]))
        return ""

    def node_method(self, node, meth, args, cmd):
        if meth == "add-route":
            self.error(cmd.line, "$%s add-route: manual routes are not supported; use `$ns rtproto Static` or add "
                                 "the route in the node's start command" % node.name)
            return ""
        if meth == "start-command":
            if len(args) != 1:
                _wrong_args(cmd, "$node start-command command")
            self.set_start(node, "startcmd", args[0], cmd, "start-command")
            return self.handle(_Null(None, "program"))
        if meth in _NODE_IGNORED:
            self.warn(cmd.line, "$node %s: %s" % (meth, _TRAFFIC if meth == "attach-agent" else "not carried over; ignored"))
            return ""
        raise TclError(cmd.line, 'node %s has no method "%s" here' % (node.name, meth))

    def queue_method(self, queue, meth, args, cmd):
        if meth == "trace":
            self.warn(cmd.line, "queue trace: tracing is not carried over; ignored")
            return ""
        if meth != "set" or len(args) not in (1, 2):
            raise TclError(cmd.line, 'queue has no method "%s" here (only set)' % " ".join([meth] + args))
        var = args[0]
        if len(args) == 1:
            return queue.vars.get(var, _QUEUE_DEFAULTS.get(var, ""))
        value = args[1]
        queue.vars[var] = value
        ll, side = queue.lanlink, queue.side
        if var == "limit_":
            packets = _int_value(value)
            if packets is None or packets < 1:
                self.error(cmd.line, "queue limit_ %r is not a number of packets" % value)
            else:
                ll.out[side]["queue"] = packets
                self.info(cmd.line, "queue limit_ %d: the queue of %s at %s holds %d packets (queue:)"
                          % (packets, ll.what(), ll.members[side].name, packets))
        elif var in ("queue-in-bytes_", "bytes_"):
            if _number(value) not in (0, None):
                self.warn(cmd.line, "queue %s: queues are counted in packets here, limit_ is taken as packets" % var)
        elif var in _RED_PARAMS:
            self.warn(cmd.line, "queue %s: RED parameters are not carried over (queues are drop-tail); ignored" % var)
        else:
            self.warn(cmd.line, "queue %s: not carried over; ignored" % var)
        return value

    # -- tb-* commands -------------------------------------------------------------------------

    def set_start(self, node, which, command, cmd, name):
        previous = getattr(node, which)
        if previous is not None:
            self.info(cmd.line, "%s: replaces the earlier start command of node %s" % (name, node.name))
        setattr(node, which, (command, cmd.line))

    def side_of(self, ll, node, cmd, command):
        """The side of ``node`` in the link or LAN ``ll``; None (and the error said) if it is not in it."""
        side = ll.side(node)
        if side is None:
            self.error(cmd.line, "%s: node %s is not in %s" % (command, node.name, ll.what()))
        return side

    def set_ip(self, ll, node, ip, cmd, command):
        side = self.side_of(ll, node, cmd, command)
        if side is None:
            return
        if side in ll.ips:
            self.info(cmd.line, "%s: replaces address %s (line %d) of node %s on %s"
                      % (command, ll.ips[side][0], ll.ips[side][1], node.name, ll.what()))
        ll.ips[side] = (ip, cmd.line)

    def ip_value(self, value, cmd, command):
        try:
            return str(ipaddress.IPv4Address(value.strip()))
        except ValueError:
            self.error(cmd.line, "%s: %r is not an IPv4 address" % (command, _clip(value)))
            return None

    def node_and_lan(self, argv, cmd):
        """(node, lan, side) of tb-set-node-lan-*: Emulab's order is NODE LAN; LAN NODE is read too."""
        command = argv[0]
        first, second = self.objects.get(argv[1]), self.objects.get(argv[2])
        if first is not None and second is not None and first.kind == "lan" and second.kind == "node":
            self.warn(cmd.line, "%s: arguments in the order LAN NODE; Emulab's is NODE LAN (it refuses this order): "
                                "read as node %s on LAN %s" % (command, second.name, first.name))
            first, second = second, first
            argv = [argv[0], argv[2], argv[1]] + argv[3:]
        node = self.node(argv[1], cmd, command)
        lan = self.obj(argv[2], cmd, command, ("lan",), "a LAN")
        if node is None or lan is None:
            return None, None, None
        side = self.side_of(lan, node, cmd, command)
        if side is None:
            return None, None, None
        return node, lan, side


def _arity(argv, cmd, low, high, usage):
    if not low <= len(argv) - 1 <= high:
        _wrong_args(cmd, usage)


def _tb_node_os(ns, argv, cmd):
    _arity(argv, cmd, 2, 3, "tb-set-node-os node os ?parentos?")
    node = ns.node(argv[1], cmd, argv[0])
    if node is None:
        return
    node.os, node.os_line = argv[2], cmd.line
    if len(argv) == 4 and argv[3] not in ("", "0"):
        ns.warn(cmd.line, "tb-set-node-os: the parent OS %r (Emulab's VM host) has no container meaning; ignored" % argv[3])


def _tb_start(ns, argv, cmd):
    _arity(argv, cmd, 2, 2, "%s node command" % argv[0])
    node = ns.node(argv[1], cmd, argv[0])
    if node is not None:
        ns.set_start(node, "startup" if argv[0] == "tb-set-node-startup" else "startcmd", argv[2], cmd, argv[0])


def _tb_ip(ns, argv, cmd):
    _arity(argv, cmd, 2, 2, "tb-set-ip node ip")
    node, ip = ns.node(argv[1], cmd, argv[0]), ns.ip_value(argv[2], cmd, argv[0])
    if node is None or ip is None:
        return
    if len(node.ports) != 1:
        ns.error(cmd.line, "tb-set-ip: node %s has %d connections at this point; Emulab needs exactly one "
                           "(use tb-set-ip-link, tb-set-ip-lan or tb-set-ip-interface)" % (node.name, len(node.ports)))
        return
    ns.set_ip(node.ports[0], node, ip, cmd, argv[0])


def _tb_ip_lanlink(ns, argv, cmd):
    kind = "link" if argv[0] == "tb-set-ip-link" else "lan"
    _arity(argv, cmd, 3, 3, "%s node %s ip" % (argv[0], kind))
    node = ns.node(argv[1], cmd, argv[0])
    ll = ns.obj(argv[2], cmd, argv[0], (kind,), "a link" if kind == "link" else "a LAN")
    ip = ns.ip_value(argv[3], cmd, argv[0])
    if node is not None and ll is not None and ip is not None:
        ns.set_ip(ll, node, ip, cmd, argv[0])


def _tb_ip_interface(ns, argv, cmd):
    _arity(argv, cmd, 3, 3, "tb-set-ip-interface node dst ip")
    node, dst = ns.node(argv[1], cmd, argv[0]), ns.node(argv[2], cmd, argv[0])
    ip = ns.ip_value(argv[3], cmd, argv[0])
    if node is None or dst is None or ip is None:
        return
    link = ns.find_link(node, dst, cmd, argv[0])
    if link is not None:
        ns.set_ip(link, node, ip, cmd, argv[0])


def _tb_netmask(ns, argv, cmd):
    _arity(argv, cmd, 2, 2, "tb-set-netmask link|lan netmask")
    ll = ns.obj(argv[1], cmd, argv[0], ("link", "lan"), "a link or a LAN")
    if ll is None:
        return
    try:
        prefix = ipaddress.IPv4Network("0.0.0.0/%s" % argv[2].strip()).prefixlen
    except ValueError:
        ns.error(cmd.line, "tb-set-netmask: %r is not a netmask such as 255.255.255.0" % _clip(argv[2]))
        return
    if prefix > 30:
        ns.error(cmd.line, "tb-set-netmask: %s leaves no room for two addresses; use 255.255.255.252 (/30) or shorter"
                 % argv[2])
        return
    ll.netmask, ll.netmask_line = prefix, cmd.line


def _tb_link_loss(ns, argv, cmd):
    _arity(argv, cmd, 2, 3, "tb-set-link-loss link loss | tb-set-link-loss src dst loss")
    if len(argv) == 3:
        ll = ns.obj(argv[1], cmd, argv[0], ("link", "lan"), "a link")
    else:
        a, b = ns.node(argv[1], cmd, argv[0]), ns.node(argv[2], cmd, argv[0])
        ll = ns.find_link(a, b, cmd, argv[0]) if a is not None and b is not None else None
    ok, loss = ns.parse(_loss, argv[-1], cmd, argv[0])
    if ll is not None and ok:
        _set_all_loss(ll, loss)


def _set_all_loss(ll, loss):
    side = ll.default["loss"] = _side_loss(loss)
    for s in ll.out + ll.inn:
        s["loss"] = side


def _tb_lan_loss(ns, argv, cmd):
    _arity(argv, cmd, 2, 2, "tb-set-lan-loss lan loss")
    lan = ns.obj(argv[1], cmd, argv[0], ("lan",), "a LAN")
    ok, loss = ns.parse(_loss, argv[2], cmd, argv[0])
    if lan is not None and ok:
        _set_all_loss(lan, loss)


_NODE_LAN = {"tb-set-node-lan-delay": ("delay", _delay), "tb-set-node-lan-bandwidth": ("bandwidth", _bandwidth),
             "tb-set-node-lan-loss": ("loss", _loss)}


def _tb_node_lan(ns, argv, cmd):
    key, parse = _NODE_LAN[argv[0]]
    _arity(argv, cmd, 3, 3, "%s node lan %s" % (argv[0], key))
    _node, lan, side = ns.node_and_lan(argv, cmd)
    ok, value = ns.parse(parse, argv[3], cmd, argv[0])
    if lan is not None and ok:
        lan.out[side][key] = lan.inn[side][key] = value


def _tb_node_lan_params(ns, argv, cmd):
    _arity(argv, cmd, 5, 5, "tb-set-node-lan-params node lan delay bandwidth loss")
    _node, lan, side = ns.node_and_lan(argv, cmd)
    values = [ns.parse(fn, v, cmd, argv[0]) for fn, v in zip((_delay, _bandwidth, _loss), argv[3:6])]
    if lan is None:
        return
    for key, (ok, value) in zip(("delay", "bandwidth", "loss"), values):
        if ok:
            lan.out[side][key] = lan.inn[side][key] = value


def _tb_link_simplex(ns, argv, cmd):
    _arity(argv, cmd, 5, 5, "tb-set-link-simplex-params link src delay bandwidth loss")
    link = ns.obj(argv[1], cmd, argv[0], ("link",), "a link")
    src = ns.node(argv[2], cmd, argv[0])
    values = [ns.parse(fn, v, cmd, argv[0]) for fn, v in zip((_delay, _bandwidth, _loss), argv[3:6])]
    if link is None or src is None:
        return
    side = ns.side_of(link, src, cmd, argv[0])
    if side is None:
        return
    (ok_d, delay), (ok_b, bandwidth), (ok_l, loss) = values
    out, inn = link.out[side], link.inn[1 - side]
    if ok_d:
        out["delay"] = inn["delay"] = delay / 2.0
    if ok_b:
        out["bandwidth"] = inn["bandwidth"] = bandwidth
    if ok_l:
        out["loss"] = inn["loss"] = _side_loss(loss)


def _tb_lan_simplex(ns, argv, cmd):
    _arity(argv, cmd, 8, 8, "tb-set-lan-simplex-params lan node todelay tobw toloss fromdelay frombw fromloss")
    lan = ns.obj(argv[1], cmd, argv[0], ("lan",), "a LAN")
    node = ns.node(argv[2], cmd, argv[0])
    parsers = (_delay, _bandwidth, _loss, _delay, _bandwidth, _loss)
    values = [ns.parse(fn, v, cmd, argv[0]) for fn, v in zip(parsers, argv[3:9])]
    if lan is None or node is None:
        return
    side = ns.side_of(lan, node, cmd, argv[0])
    if side is None:
        return
    # "to" is node -> LAN (Emulab's delay/bandwidth/loss of the member), "from" LAN -> node (rdelay...).
    for target, chunk in ((lan.out[side], values[:3]), (lan.inn[side], values[3:])):
        for key, (ok, value) in zip(("delay", "bandwidth", "loss"), chunk):
            if ok:
                target[key] = value


def _tb_fix_node(ns, argv, cmd):
    _arity(argv, cmd, 2, 2, "tb-fix-node node host")
    node = ns.node(argv[1], cmd, argv[0])
    if node is not None:
        node.host = argv[2]
        ns.info(cmd.line, "tb-fix-node: node %s is pinned to host %r (host:), which must be an inventory host"
                % (node.name, argv[2]))


_MEMORY_RE = re.compile(r"\s*([0-9]+)\s*(|[kKmMgG][bB]?)\s*\Z")


def _tb_memory(ns, argv, cmd):
    _arity(argv, cmd, 2, 2, "tb-set-node-memory-size node megabytes")
    node = ns.node(argv[1], cmd, argv[0])
    if node is None:
        return
    match = _MEMORY_RE.match(argv[2])
    if match is None or int(match.group(1)) == 0:
        ns.warn(cmd.line, "tb-set-node-memory-size: %r is not a memory size (megabytes); ignored" % _clip(argv[2]))
        return
    unit = (match.group(2)[:1] or "m").lower()
    node.memory = "%d%s" % (int(match.group(1)), unit)


def _tb_noshaping(ns, argv, cmd):
    _arity(argv, cmd, 2, 2, "tb-set-noshaping link|lan 0|1")
    ll = ns.obj(argv[1], cmd, argv[0], ("link", "lan"), "a link or a LAN")
    if ll is not None:
        ll.noshaping = _truth(argv[2], cmd.line)
        if ll.noshaping:
            ns.info(cmd.line, "tb-set-noshaping: the bandwidth of %s is not shaped (delay and loss still are)" % ll.what())


def _tb_ip_routing(ns, argv, cmd):
    _arity(argv, cmd, 1, 1, "tb-set-ip-routing none|ospf")
    if argv[1] == "none":
        ns.set_routing("none", cmd.line)
    elif argv[1] == "ospf":
        ns.set_routing("static", cmd.line)
        ns.warn(cmd.line, "tb-set-ip-routing ospf: Emulab runs OSPF, whose routes follow link failures; here routes are "
                          "static, computed once (routing: static)")
    else:
        ns.error(cmd.line, "tb-set-ip-routing: type %r is not one of none, ospf" % argv[1])


_TB_COMMANDS = {
    "tb-set-node-os": _tb_node_os, "tb-set-node-startcmd": _tb_start, "tb-set-node-startup": _tb_start,
    "tb-set-ip": _tb_ip, "tb-set-ip-link": _tb_ip_lanlink, "tb-set-ip-lan": _tb_ip_lanlink,
    "tb-set-ip-interface": _tb_ip_interface, "tb-set-netmask": _tb_netmask, "tb-set-link-loss": _tb_link_loss,
    "tb-set-lan-loss": _tb_lan_loss, "tb-set-node-lan-delay": _tb_node_lan, "tb-set-node-lan-bandwidth": _tb_node_lan,
    "tb-set-node-lan-loss": _tb_node_lan, "tb-set-node-lan-params": _tb_node_lan_params,
    "tb-set-link-simplex-params": _tb_link_simplex, "tb-set-lan-simplex-params": _tb_lan_simplex,
    "tb-fix-node": _tb_fix_node, "tb-set-node-memory-size": _tb_memory, "tb-set-noshaping": _tb_noshaping,
    "tb-set-ip-routing": _tb_ip_routing,
}


# ---------------------------------------------------------------------------------------------
# The document


def _direction(out, inn, noshaping):
    """Our values of one direction of a link: the sender's out side, then the receiver's in side."""
    bandwidths = [b for b in (out["bandwidth"], inn["bandwidth"]) if b]
    loss = 1.0 - (1.0 - out["loss"]) * (1.0 - inn["loss"])
    return _formatted(out["delay"] + inn["delay"], min(bandwidths) if bandwidths else None, loss, out["queue"], noshaping)


def _side(side, noshaping, queue=True):
    return _formatted(side["delay"], side["bandwidth"], side["loss"], side["queue"] if queue else None, noshaping)


_UNSHAPED = {"delay": "0ms", "loss": 0}


class _Builder:
    """Makes our document of what the evaluation built."""

    def __init__(self, ns, notes, options, path):
        self.ns, self.notes, self.options, self.path = ns, notes, options, path
        self.it = ns.it
        self.names = {}

    def info(self, line, message):
        self.it.note_once("info", line, message)

    def warn(self, line, message):
        self.it.note_once("warning", line, message)

    def document(self):
        ns, options = self.ns, self.options
        if not ns.nodes:
            self.notes.error(None, "the NS file creates no node (`$ns node`)")
            return None
        default_image = options.get("default_image") or importers.DEFAULT_IMAGE
        routing = ns.routing or "none"
        if ns.routing is None:
            self.info(None, "no `$ns rtproto`: Emulab sets up no routes, so routing: none "
                            "(`$ns rtproto Static` gives routes through the nodes)")
        self.name_objects()
        doc = {"name": importers.experiment_name(self.path, options.get("name"))}
        if options.get("project"):
            doc["project"] = options["project"]
        doc["defaults"] = {"image": default_image}
        doc["nodes"] = self.nodes(default_image, routing)
        addressing = self.addresses()
        lans, links = {}, {}
        for ll in ns.lanlinks:
            if ll.kind == "lan":
                lans[self.names[id(ll)]] = self.lan(ll)
            else:
                links[self.names[id(ll)]] = self.link(ll)
        if lans:
            doc["lans"] = lans
        if links:
            doc["links"] = links
        doc["routing"] = routing
        if addressing:
            doc["addressing"] = addressing
        return doc

    def name_objects(self):
        used = set()
        renamers = {}
        for what in ("node", "LAN", "link"):
            renamers[what] = importers.Renamer(self.notes, what)
            renamers[what].used = used  # one name space, as Emulab's objects share one
        for obj in self.ns.order:
            what = "node" if obj.kind == "node" else "LAN" if obj.kind == "lan" else "link"
            if obj.raw is None:
                self.info(obj.line, "this %s is not assigned to a global variable: it is named %r, as Emulab names it"
                          % (what, obj.name))
            self.names[id(obj)] = renamers[what](obj.raw if obj.raw is not None else obj.name, obj.line)
        self.distinct_host_names(used)

    def distinct_host_names(self, used):
        """NODE and NODE-LAN must all differ (they are /etc/hosts names); Emulab has no such rule,
        so a LAN or link whose member's NODE-LAN is taken is renamed (node a-b vs a on LAN b)."""
        owner = dict((self.names[id(n)], "node %s" % self.names[id(n)]) for n in self.ns.nodes)
        for ll in sorted(self.ns.lanlinks, key=lambda ll: ll.kind != "lan"):  # the model's order: lans, then links
            name, k = self.names[id(ll)], 1
            while True:
                aliases = ["%s-%s" % (self.names[id(m)], name) for m in ll.members]
                clash = next((a for a in aliases if a in owner), None)
                if clash is None:
                    break
                k += 1
                suffix = "-%d" % k
                name = self.names[id(ll)][:31 - len(suffix)] + suffix
                if name in used:
                    continue
                self.info(ll.line, "%s %r is named %r here: host name %r (a member on it) would collide with %s"
                          % ("LAN" if ll.kind == "lan" else "link", self.names[id(ll)], name, clash, owner[clash]))
            if name != self.names[id(ll)]:
                used.add(name)
                self.names[id(ll)] = name
            for member, alias in zip(ll.members, aliases):
                owner[alias] = "node %s on %s" % (self.names[id(member)], name)

    def nodes(self, default_image, routing):
        os_images = self.options.get("os_images") or {}
        nodes, no_os, seen_os = {}, False, set()
        for node in self.ns.nodes:
            spec = {}
            if node.os is None:
                no_os = True
            else:
                image = os_images.get(node.os)
                if node.os not in seen_os:
                    seen_os.add(node.os)
                    if image is None:
                        self.warn(node.os_line, "tb-set-node-os %s: os_images has no image for this OS; nodes with it "
                                                "run %s" % (node.os, default_image))
                    else:
                        self.info(node.os_line, "tb-set-node-os %s: nodes with this OS run %s (os_images)"
                                  % (node.os, image))
                if image is not None and image != default_image:
                    spec["image"] = image
            starts = [s[0] for s in (node.startup, node.startcmd) if s is not None]
            if len(starts) == 2:
                self.info(node.startcmd[1], "node %s has both tb-set-node-startup (line %d) and a start command: its "
                                            "start runs both, the startup one first"
                          % (node.name, node.startup[1]))
            if starts:
                spec["start"] = "\n".join(starts)
            if node.host is not None:
                spec["host"] = node.host
            if node.memory is not None:
                spec["memory"] = node.memory
            if routing == "static" and len(node.ports) >= 2:
                spec["forwarding"] = True
            nodes[self.names[id(node)]] = spec
        if no_os:
            self.info(None, "nodes without tb-set-node-os run the default image %s (defaults.image)" % default_image)
        return nodes

    # -- addresses -----------------------------------------------------------------------------

    def addresses(self):
        """Subnets and fixed addresses of every LAN/link; returns addressing: when the default pool
        is too small for the subnets the planner allocates."""
        self.subnets, self.ips = {}, {}
        fixed, wanted = [], []
        for ll in self.ns.lanlinks:
            prefix = ll.netmask or 24
            if ll.ips:
                subnet = self.fixed_subnet(ll, prefix)
                if subnet is not None:
                    fixed.append((subnet, ll))
            elif ll.netmask is not None and ll.netmask != 24:
                wanted.append(ll)
        self.check_overlaps(fixed)
        wanted_ids = set(id(ll) for ll in wanted)
        auto = [ll for ll in self.ns.lanlinks if id(ll) not in self.subnets and id(ll) not in wanted_ids]
        blocks = len(auto) + sum(2.0 ** (24 - ll.netmask) for ll in wanted)
        pool = ipaddress.IPv4Network(DEFAULT_POOL)
        while self.capacity(pool, fixed) < blocks and pool.prefixlen > 8:
            pool = pool.supernet()
        if self.capacity(pool, fixed) < blocks:
            self.notes.error(None, "%d LANs and links need more /24 subnets than 10.0.0.0/8 holds" % len(auto))
            return None
        taken = [net for net, _ll in fixed]
        for ll in wanted:
            subnet = self.choose(pool, ll.netmask, taken)
            if subnet is None:
                self.notes.error(ll.netmask_line, "tb-set-netmask: no free /%d subnet left in %s for %s"
                                 % (ll.netmask, pool, ll.what()))
                continue
            taken.append(subnet)
            self.subnets[id(ll)] = str(subnet)
            self.info(ll.netmask_line, "tb-set-netmask: %s has no fixed address: its subnet is %s" % (ll.what(), subnet))
        if pool.prefixlen != 16 or str(pool) != DEFAULT_POOL:
            self.info(None, "%d LANs and links get allocated subnets: more than %s holds, so addressing.pool is %s"
                      % (len(auto), DEFAULT_POOL, pool))
            return {"pool": str(pool), "prefixlen": 24}
        return None

    def fixed_subnet(self, ll, prefix):
        networks = {}
        for side in sorted(ll.ips):
            ip, line = ll.ips[side]
            net = ipaddress.IPv4Network("%s/%d" % (ip, prefix), strict=False)
            networks.setdefault(net, (ip, line))
        if len(networks) > 1:
            (net_a, (ip_a, line_a)), (net_b, (ip_b, line_b)) = sorted(networks.items(), key=lambda kv: kv[1][1])[:2]
            self.notes.error(line_b, "%s: addresses %s (line %d) and %s (line %d) are in different subnets (%s, %s) "
                                     "under netmask /%d" % (ll.what(), ip_a, line_a, ip_b, line_b, net_a, net_b, prefix))
            return None
        net = list(networks)[0]
        used, ips = set(), {}
        for side in sorted(ll.ips):
            ip, line = ll.ips[side]
            address = ipaddress.IPv4Address(ip)
            if address in (net.network_address, net.broadcast_address):
                self.notes.error(line, "%s: address %s is the network or broadcast address of %s" % (ll.what(), ip, net))
                return None
            if address in used:
                self.notes.error(line, "%s: address %s is given twice" % (ll.what(), ip))
                return None
            used.add(address)
            ips[side] = ip
        # Emulab's fill_ips: the members without an address get the lowest free ones from .2 up.
        given, k, size = [], 2, net.num_addresses
        for side, node in enumerate(ll.members):
            if side in ips:
                continue
            while k < size - 1 and net[k] in used:
                k += 1
            if k >= size - 1:
                self.notes.error(ll.line, "%s: no address left in %s for node %s" % (ll.what(), net, node.name))
                return None
            used.add(net[k])
            ips[side] = str(net[k])
            given.append("%s %s" % (node.name, net[k]))
        if given:
            shown = ", ".join(given[:8]) + (", ..." if len(given) > 8 else "")
            self.info(ll.line, "%s: members without tb-set-ip get addresses as Emulab gives them (from .2 up): %s"
                      % (ll.what(), shown))
        self.subnets[id(ll)] = str(net)
        self.ips[id(ll)] = ips
        return net

    def check_overlaps(self, fixed):
        ordered = sorted(fixed, key=lambda item: (int(item[0].network_address), -item[0].prefixlen))
        reach = None
        for net, ll in ordered:
            if reach is not None and int(net.network_address) <= int(reach[0].broadcast_address):
                other = reach[1]
                self.notes.error(ll.ips[min(ll.ips)][1], "%s: subnet %s overlaps %s of %s (line %d)"
                                 % (ll.what(), net, reach[0], other.what(), other.ips[min(other.ips)][1]))
            if reach is None or int(net.broadcast_address) > int(reach[0].broadcast_address):
                reach = (net, ll)

    @staticmethod
    def capacity(pool, fixed):
        total = 2 ** (24 - pool.prefixlen)
        small, big = set(), 0
        for net, _ll in fixed:
            if not net.overlaps(pool):
                continue
            if net.prefixlen >= 24:
                small.add(int(net.network_address) >> 8)
            else:
                big += 2 ** (24 - max(net.prefixlen, pool.prefixlen))
        return total - big - len(small)

    @staticmethod
    def choose(pool, prefix, taken, tries=65536):
        """The highest free /prefix of the pool (the planner allocates from the bottom)."""
        if prefix < pool.prefixlen:
            return None
        size = 2 ** (32 - prefix)
        start = int(pool.broadcast_address) + 1 - size
        for _k in range(min(tries, 2 ** (prefix - pool.prefixlen))):
            candidate = ipaddress.IPv4Network((start, prefix))
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
            start -= size
        return None

    def endpoint(self, ll, side):
        name = self.names[id(ll.members[side])]
        ip = self.ips.get(id(ll), {}).get(side)
        return {"node": name, "ip": ip} if ip is not None else name

    # -- shaping -------------------------------------------------------------------------------

    def link(self, ll):
        a, b = (self.names[id(m)] for m in ll.members)
        ab = _direction(ll.out[0], ll.inn[1], ll.noshaping)
        ba = _direction(ll.out[1], ll.inn[0], ll.noshaping)
        spec = {"endpoints": [self.endpoint(ll, 0), self.endpoint(ll, 1)]}
        if id(ll) in self.subnets:
            spec["subnet"] = self.subnets[id(ll)]
        for key in SHAPE_KEYS:
            if ab[key] is not None and ab[key] == ba[key]:
                spec[key] = ab[key]
        for (src, dst), values, other in (((a, b), ab, ba), ((b, a), ba, ab)):
            override = dict((k, values[k]) for k in SHAPE_KEYS if values[k] is not None and values[k] != other[k])
            if override:
                spec["%s_to_%s" % (src, dst)] = override
        return spec

    def lan(self, ll):
        noshaping = ll.noshaping
        outs = [_side(s, noshaping) for s in ll.out]
        inns = [_side(s, noshaping, queue=False) for s in ll.inn]
        # The LAN's own values are the LAN-wide ones (make-lan, tb-set-lan-loss); members whose
        # sides differ override them, as the file says.
        base = _formatted(ll.default["delay"], ll.default["bandwidth"], ll.default["loss"], None, noshaping)
        spec = {"members": []}
        if id(ll) in self.subnets:
            spec["subnet"] = self.subnets[id(ll)]
        for key in SHAPE_KEYS:
            if base[key] is not None:
                spec[key] = base[key]
        for side in range(len(ll.members)):
            spec["members"].append(self.member(ll, side, outs[side], inns[side], base))
        return spec

    def member(self, ll, side, out, inn, base):
        both, from_node, to_node = {}, {}, {}
        for key in SHAPE_KEYS:
            o = out[key]
            i = inn[key] if key != "queue" else base[key]
            if o == base[key] and i == base[key]:
                continue
            if o == i:
                both[key] = self.value(ll, side, key, o)
                continue
            if o != base[key]:
                from_node[key] = self.value(ll, side, key, o)
            if i != base[key]:
                to_node[key] = self.value(ll, side, key, i)
        for values in (both, from_node, to_node):
            for key in [k for k, v in values.items() if v is None]:
                del values[key]
        endpoint = self.endpoint(ll, side)
        if not (both or from_node or to_node):
            return endpoint
        member = endpoint if isinstance(endpoint, dict) else {"node": endpoint}
        member.update(both)
        if to_node:
            member["to_node"] = to_node
        if from_node:
            member["from_node"] = from_node
        return member

    def value(self, ll, side, key, value):
        if value is not None:
            return value
        if key in _UNSHAPED:
            return _UNSHAPED[key]
        self.warn(ll.line, "%s: node %s has no %s of its own, which cannot be said on a LAN whose %s is set: it keeps "
                           "the LAN's" % (ll.what(), ll.members[side].name, key, key))
        return None


# ---------------------------------------------------------------------------------------------
# Entry point


def _positive(options, key, default, notes):
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        notes.error(None, "option %s must be a positive integer, got %r" % (key, value))
        return default
    return value


def evaluate(text, path="<tcl>", max_steps=importers.DEFAULT_MAX_STEPS):
    """Evaluate Tcl ``text`` with this module's interpreter: (the last command's result, notes);
    ImportFailed on an error.  For tests and for trying what the subset understands."""
    notes = importers.Notes(path)
    ns = _Ns(notes, importers.DEFAULT_MAX_NODES)
    it = ns.it = Interp(notes, ns, max_steps)
    result = ""
    try:
        for cmd in _Parser(text, 1).script()[0]:
            result = it.call(cmd)
    except TclError as exc:
        notes.error(exc.line, exc.message)
    except (_Break, _Continue, _Return, _Stop):
        pass
    notes.gate()
    return result, notes.items


def convert(text, path, options):
    """An NS file's text -> (our experiment document, notes); ImportFailed when it has errors."""
    options = dict(options or {})
    notes = importers.Notes(path)
    max_nodes = _positive(options, "max_nodes", importers.DEFAULT_MAX_NODES, notes)
    max_steps = _positive(options, "max_steps", importers.DEFAULT_MAX_STEPS, notes)
    os_images = options.get("os_images")
    if os_images is not None and not (isinstance(os_images, dict) and
                                      all(isinstance(k, str) and isinstance(v, str) for k, v in os_images.items())):
        notes.error(None, "option os_images must map OS names (of tb-set-node-os) to image names, got %r" % (os_images,))
        options["os_images"] = {}
    notes.gate()
    ns = _Ns(notes, max_nodes)
    it = ns.it = Interp(notes, ns, max_steps)
    try:
        ns.evaluate(_Parser(text, 1).script()[0])
    except TclError as exc:
        notes.error(exc.line, exc.message)
    except RecursionError:
        notes.error(it.line, "the NS file nests too deeply to evaluate")
    notes.gate()
    doc = _Builder(ns, notes, options, path).document()
    notes.gate()
    return doc, notes.items
