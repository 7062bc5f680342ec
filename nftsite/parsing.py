"""One strict integer parser for every number that comes from outside.

``str.isdigit()`` and ``int()`` accept far more than ASCII digits: ``"²".isdigit()`` is true
and then ``int("²")`` raises, while ``int()`` quietly reads fullwidth and Arabic-Indic
digits. Archive member names, seeds, token ids and query strings therefore all go through
:func:`parse_ascii_int`, which accepts ``[0-9]+`` and nothing else. This module is on the
ground floor: it imports nothing from the apps, so any layer may use it.
"""

import re

_ASCII_DIGITS = re.compile(r"[0-9]+")
MAX_DIGITS = 78  # a uint256 has at most 78 decimal digits; longer text is never a number we use


class IntegerParseError(ValueError):
    """Outside text is not an acceptable whole number; the message says why, in one line."""


def is_ascii_int(text):
    """True for non-empty text made of ASCII digits only (what :func:`parse_ascii_int` takes)."""
    return isinstance(text, str) and _ASCII_DIGITS.fullmatch(text) is not None


def parse_ascii_int(text, *, minimum=None, maximum=None, name="value", canonical=False):
    """``text`` (ASCII digits only) as an int within [minimum, maximum].

    With ``canonical=True`` leading zeros are refused too ("007"), for values that appear in
    URLs where one number must have one spelling. Raises :class:`IntegerParseError`.
    """
    shown = repr(text[:24]) if isinstance(text, str) else repr(text)
    if not is_ascii_int(text):
        raise IntegerParseError(f"{name} {shown} is not a whole number written with digits 0-9")
    if len(text) > MAX_DIGITS:
        raise IntegerParseError(f"{name} {shown}... has more than {MAX_DIGITS} digits")
    if canonical and len(text) > 1 and text[0] == "0":
        raise IntegerParseError(f"{name} {shown} has leading zeros")
    number = int(text)
    if minimum is not None and number < minimum:
        raise IntegerParseError(f"{name} {number} is below the minimum {minimum:,}")
    if maximum is not None and number > maximum:
        raise IntegerParseError(f"{name} {shown} is above the maximum {maximum:,}")
    return number
