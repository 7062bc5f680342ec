"""How every app's admin shows money and JSON (ground floor: imports no app).

Prices are stored as exact decimals (native amounts keep 18 places for wei), so the admin's raw
values read "0.509400000000000000"; JSON fields render as one unreadable line. These helpers give
the admin one readable form for both."""

from decimal import Decimal, InvalidOperation

from django.utils.html import format_html, format_html_join

EMPTY = "—"


def _decimal(value):
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def usd(value):
    """``$466,768.00``: dollars and cents with thousands separators."""
    number = _decimal(value)
    if number is None:
        return EMPTY
    return f"${number:,.2f}"


def native(value, symbol=""):
    """``0.5094 ETH``: a native amount with thousands separators and no trailing zeros (up to
    six significant decimals; wei dust reads as "<0.000001")."""
    number = _decimal(value)
    if number is None:
        return EMPTY
    if 0 < number < Decimal("0.000001"):
        text = "<0.000001"
    else:
        text = f"{number:,.6f}".rstrip("0").rstrip(".")
    return f"{text} {symbol}".strip()


def json_table(data):
    """A JSON value as nested read-only tables: objects as key/value rows, lists of scalars
    joined, other lists as numbered rows."""
    if data in (None, {}, []):
        return EMPTY
    return _render(data)


def _render(value):
    if isinstance(value, dict):
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", _pairs(value.items()))
        return format_html('<table class="json-table">{}</table>', rows)
    if isinstance(value, list):
        if all(not isinstance(item, dict | list) for item in value):
            return ", ".join(_scalar(item) for item in value) or EMPTY
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", _pairs(enumerate(value)))
        return format_html('<table class="json-table">{}</table>', rows)
    return _scalar(value)


def _pairs(items):
    return ((key, _render(item)) for key, item in items)


def _scalar(value):
    if value is None:
        return EMPTY
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
