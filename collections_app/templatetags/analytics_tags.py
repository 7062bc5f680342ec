"""Formatting for prices, frequencies and cached analytics in templates."""

from django import template

from nftsite.admin_display import native, usd

register = template.Library()


# Prices read the same here and in the admin (one implementation, on the ground floor).
register.filter("usd", usd)
register.filter("native", native)


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
