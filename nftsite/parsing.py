"""One parser for every whole number that comes from outside: ASCII digits only.

``str.isdigit()`` and ``int()`` accept far more than ``0-9``: ``"²".isdigit()`` is true and
``int("²")`` raises, ``int("١٢٣")`` is 123, and so is a fullwidth ``int("123")``. Archive member
names, seeds, token ids and query strings all go through :func:`parse_ascii_int`, so a stranger's
text either is the canonical number or is refused with one clear message. This module sits on
the ground floor: it imports nothing from the apps, so any of them may use it.
"""

import re

from django import forms

_ASCII_DIGITS = re.compile(r"[0-9]+")
MAX_DIGITS = 78  # 2^256 - 1 (an ERC-721 token id) has 78 digits


class NotAnInteger(ValueError):
    """The text is not a whole number in ASCII digits, or is outside the allowed range."""


def parse_ascii_int(text, *, minimum=None, maximum=None, name="value", canonical=False):
    """``text`` as an int when it is ASCII digits only (no sign, space or other script).

    ``canonical`` also refuses leading zeros (``"007"``), for ids that must have one spelling.
    Raises :class:`NotAnInteger` with a message naming ``name``.
    """
    if not isinstance(text, str) or not _ASCII_DIGITS.fullmatch(text):
        shown = repr(text)[:40]
        raise NotAnInteger(f"{name} must be a whole number in digits 0-9, not {shown}")
    if len(text) > MAX_DIGITS:
        raise NotAnInteger(f"{name} has {len(text)} digits (at most {MAX_DIGITS})")
    if canonical and len(text) > 1 and text[0] == "0":
        raise NotAnInteger(f"{name} {text[:40]} has leading zeros")
    value = int(text)
    if minimum is not None and value < minimum:
        raise NotAnInteger(f"{name} must be at least {minimum:,}, not {value:,}")
    if maximum is not None and value > maximum:
        raise NotAnInteger(f"{name} must be at most {maximum:,}, not {text[:24]}")
    return value


def is_canonical_int(text):
    """Whether ``text`` is the one spelling of a non-negative integer (``"0"``, ``"12"``)."""
    try:
        parse_ascii_int(text, canonical=True)
    except NotAnInteger:
        return False
    return True


class AsciiIntegerField(forms.Field):
    """A form field for a whole number typed by a visitor, parsed by :func:`parse_ascii_int`."""

    widget = forms.NumberInput

    def __init__(self, *, min_value=None, max_value=None, **kwargs):
        self.min_value, self.max_value = min_value, max_value
        super().__init__(**kwargs)

    def to_python(self, value):
        text = str(value if value is not None else "").strip()
        if not text:
            return None
        try:
            number = parse_ascii_int(text.removeprefix("-"), name="This")
        except NotAnInteger as exc:
            raise forms.ValidationError(str(exc)) from None
        number = -number if text.startswith("-") else number
        # Django's own wording for out-of-range numbers, unless the form gives its own.
        if self.min_value is not None and number < self.min_value:
            default = f"Ensure this value is greater than or equal to {self.min_value}."
            raise forms.ValidationError(self.error_messages.get("min_value", default))
        if self.max_value is not None and number > self.max_value:
            default = f"Ensure this value is less than or equal to {self.max_value}."
            raise forms.ValidationError(self.error_messages.get("max_value", default))
        return number
