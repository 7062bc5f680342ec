"""How money and JSON read, in the admin and on the pages (ground floor: imports no app).

Prices are stored as exact decimals (native amounts keep 18 places for wei), so the admin's raw
values read "0.509400000000000000"; JSON fields render as one unreadable line. These helpers give
the admin one readable form for both."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

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
    """'1234.5' -> '$1,234.50'; exact to the cent, thousands separated."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    with localcontext() as ctx:
        ctx.prec = 120  # absurd prices exceed the default 28 digits
        cents = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        if amount and not cents:
            return "< $0.01"
        return f"${cents:,.2f}"


def native(value, symbol=""):
    """A payment-token amount: 4 decimals from 1 up, 6 significant digits below, no padding."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    with localcontext() as ctx:
        ctx.prec = 120
        text = _native_text(amount)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {symbol}".strip()


def _native_text(amount):
    if abs(amount) >= 1:
        shown = amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        text = f"{shown:,f}"
    elif amount == 0:
        text = "0"
    else:
        places = max(0, 5 - amount.adjusted())
        text = f"{amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
    return text


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
