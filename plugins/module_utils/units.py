# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rates, times and loss probabilities written the way tc(8) users write them.

tc's conventions, kept so that an operator's ``tc`` habits carry over:

* rates: ``bit kbit mbit gbit tbit`` are bits per second in powers of 1000, ``kibit mibit
  gibit tibit`` in powers of 1024, and ``bps kbps mbps gbps tbps`` (``kibps``...) are *bytes*
  per second, exactly as in tc (so ``2mbps`` is 16 Mbit/s, a classic trap). A trailing
  ``/s`` is accepted on the bit forms (``10Mbit/s``, ``500bit/s``). A bare number, string or
  integer, is bits per second. Units are case-insensitive.
* times: ``us usec usecs``, ``ms msec msecs``, ``s sec secs``. tc reads a bare number as
  microseconds, which is a trap in an experiment file (``delay: 5`` meant as 5 ms), so a
  number other than 0 must carry its unit.
* loss: a probability in 0..1 (``0.01``) or a percentage (``'1%'``).

Values are returned as integers in the smallest unit the kernel keeps (bit/s, microseconds),
so comparisons with what the kernel reports are exact.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re
from decimal import Decimal, InvalidOperation

RATE_UNITS = {
    "bit": 1,
    "kbit": 10 ** 3,
    "mbit": 10 ** 6,
    "gbit": 10 ** 9,
    "tbit": 10 ** 12,
    "kibit": 2 ** 10,
    "mibit": 2 ** 20,
    "gibit": 2 ** 30,
    "tibit": 2 ** 40,
    "bps": 8,
    "kbps": 8 * 10 ** 3,
    "mbps": 8 * 10 ** 6,
    "gbps": 8 * 10 ** 9,
    "tbps": 8 * 10 ** 12,
    "kibps": 8 * 2 ** 10,
    "mibps": 8 * 2 ** 20,
    "gibps": 8 * 2 ** 30,
    "tibps": 8 * 2 ** 40,
}
TIME_UNITS = {
    "us": 1, "usec": 1, "usecs": 1,
    "ms": 1000, "msec": 1000, "msecs": 1000,
    "s": 10 ** 6, "sec": 10 ** 6, "secs": 10 ** 6,
}

RATE_FORMS = ("a rate such as 10mbit, 100kbit, 1gbit, 500bit, 10Mbit/s or 2mbps (bytes/s, as in tc); "
              "units bit, kbit, mbit, gbit, tbit (powers of 1000), kibit..tibit (powers of 1024), "
              "bps, kbps, mbps, gbps (bytes per second); a bare number is bit/s")
TIME_FORMS = "a time such as 100us, 5ms, 2.5ms or 1s (units us/usec, ms/msec, s/sec); 0 means none"
LOSS_FORMS = "a loss probability between 0 and 1 (0.01) or a percentage ('1%')"

_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z/]*)\s*$")


def _split(value):
    """(Decimal number, lower-case unit) of a string like '2.5ms', or None."""
    match = _NUMBER_UNIT.match(value)
    if match is None:
        return None
    try:
        return Decimal(match.group(1)), match.group(2).lower()
    except InvalidOperation:  # pragma: no cover - the regex only lets numbers through
        return None


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_rate(value):
    """A rate in bit/s (int > 0) from '10mbit', '10Mbit/s', '2mbps' (bytes/s), 10000000, ..."""
    if _is_number(value):
        number, unit = Decimal(str(value)), "bit"
    elif isinstance(value, str):
        parts = _split(value)
        if parts is None:
            raise ValueError("invalid rate %r: expected %s" % (value, RATE_FORMS))
        number, unit = parts
        if unit.endswith("/s") and unit[:-2].endswith("bit"):
            unit = unit[:-2]
        unit = unit or "bit"
        if unit not in RATE_UNITS:
            raise ValueError("invalid rate %r: unknown unit %r; expected %s" % (value, unit, RATE_FORMS))
    else:
        raise ValueError("invalid rate %r: expected %s" % (value, RATE_FORMS))
    bits = int((number * RATE_UNITS[unit]).to_integral_value())
    if bits <= 0:
        raise ValueError("invalid rate %r: must be more than 0 bit/s; expected %s" % (value, RATE_FORMS))
    return bits


def parse_time(value):
    """A duration in microseconds (int >= 0) from '5ms', '100us', '1s', '2.5ms' or 0."""
    if _is_number(value) and value == 0:
        return 0
    if not isinstance(value, str):
        raise ValueError("invalid time %r: a number needs a unit; expected %s" % (value, TIME_FORMS))
    parts = _split(value)
    if parts is None:
        raise ValueError("invalid time %r: expected %s" % (value, TIME_FORMS))
    number, unit = parts
    if not unit:
        if number == 0:
            return 0
        raise ValueError("invalid time %r: a number needs a unit (tc would read microseconds); "
                         "expected %s" % (value, TIME_FORMS))
    if unit not in TIME_UNITS:
        raise ValueError("invalid time %r: unknown unit %r; expected %s" % (value, unit, TIME_FORMS))
    micros = number * TIME_UNITS[unit]
    if micros != micros.to_integral_value():
        raise ValueError("invalid time %r: finer than a microsecond; expected %s" % (value, TIME_FORMS))
    return int(micros)


def parse_loss(value):
    """A loss probability (float in 0..1) from 0.01, '0.01' or '1%'."""
    if _is_number(value):
        probability = float(value)
    elif isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        try:
            number = float(text[:-1] if percent else text)
        except ValueError:
            raise ValueError("invalid loss %r: expected %s" % (value, LOSS_FORMS)) from None
        probability = number / 100.0 if percent else number
    else:
        raise ValueError("invalid loss %r: expected %s" % (value, LOSS_FORMS))
    if not 0.0 <= probability <= 1.0 or math.isnan(probability):
        raise ValueError("invalid loss %r: out of range; expected %s" % (value, LOSS_FORMS))
    return probability


def format_rate(bits_per_second):
    """The shortest exact tc spelling of a rate in bit/s: 10000000 -> '10mbit', 1500000 -> '1500kbit'."""
    bits = int(bits_per_second)
    for unit in ("tbit", "gbit", "mbit", "kbit"):
        if bits and bits % RATE_UNITS[unit] == 0:
            return "%d%s" % (bits // RATE_UNITS[unit], unit)
    return "%dbit" % bits


def format_time(microseconds):
    """The shortest exact tc spelling of a duration: 5000 -> '5ms', 2500 -> '2500us'."""
    micros = int(microseconds)
    for unit in ("s", "ms"):
        if micros and micros % TIME_UNITS[unit] == 0:
            return "%d%s" % (micros // TIME_UNITS[unit], unit)
    return "%dus" % micros


def format_loss(probability):
    """A probability as a percentage, the way tc prints it: 0.01 -> '1%'."""
    return "%s%%" % ("%.6f" % (probability * 100)).rstrip("0").rstrip(".")
