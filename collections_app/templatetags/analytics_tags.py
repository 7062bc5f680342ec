"""Formatting for prices, frequencies and cached analytics in templates."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from django import template

register = template.Library()


def _decimal(value):
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@register.filter
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


@register.filter
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


@register.filter
def pct(value):
    """A frequency (0..1) as a percentage with sensible precision."""
    if value is None:
        return "—"
    share = float(value) * 100
    if share == 0:
        return "0%"
    if share < 0.1:
        return f"{share:.3f}%"
    if share < 10:
        return f"{share:.2f}%"
    return f"{share:.1f}%"


@register.filter
def share(count, total):
    """count out of total as a percentage."""
    return pct(count / total) if total else "—"


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)


@register.filter
def rho(value):
    return "—" if value is None else f"{float(value):+.2f}"
