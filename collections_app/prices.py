"""Exact money arithmetic for sale prices: smallest-unit integers to native amounts to USD.

Marketplaces report a price as an integer string in the payment token's smallest unit (wei for
ETH) plus the token's ``decimals``; the USD value is the native amount times the token's
``usd_price``. Everything here is ``Decimal``: a float cannot hold 25 ETH in wei exactly, and a
price that is off in the 17th digit is a wrong price. Bad values raise :class:`PriceError` with a
message naming the field, so callers can report it against the one token it belongs to.
"""

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext

from nftsite.parsing import IntegerParseError, parse_ascii_int

# Token.last_sale_amount / Sale.amount: 60 digits, 18 after the point.
NATIVE_PLACES = 18
MAX_NATIVE_AMOUNT = Decimal(10) ** (60 - NATIVE_PLACES)
# Token.last_sale_usd / Sale.usd: 6 places.
USD_PLACES = 6
# No single NFT has sold for anything near this; a larger figure is a unit mistake or a wash
# trade in a worthless token, and would swamp every statistic computed from it.
MAX_USD = Decimal(10) ** 10
# Sale.usd_rate: 30 digits, 10 after the point. Nothing trades above a billion dollars a unit.
RATE_PLACES = 10
MAX_RATE = Decimal(10) ** 9
# ERC-20 tokens use 0..18 decimals in practice; uint8 allows more but 36 is already absurd.
MAX_DECIMALS = 36
# uint256 has at most 78 decimal digits.
_INTEGER = re.compile(r"^\s*([0-9]{1,78})(?:\.0*)?\s*$")  # ASCII digits only


class PriceError(ValueError):
    """A price that cannot be trusted; the message names the field and what is wrong with it."""


@dataclass(frozen=True)
class Price:
    """One converted payment: what was paid in the payment token and what that was in USD."""

    amount: Decimal
    symbol: str
    decimals: int
    usd_rate: Decimal | None
    usd: Decimal | None


def parse_decimals(value, field="decimals"):
    """The payment token's number of decimals as an int in 0..MAX_DECIMALS."""
    if isinstance(value, bool) or value is None:
        raise PriceError(f"{field} is missing or not an integer: {value!r}")
    if isinstance(value, str):
        try:
            value = parse_ascii_int(value.strip(), name=field)
        except IntegerParseError:
            raise PriceError(f"{field} must be an integer in digits 0-9, got {value!r}") from None
    if not isinstance(value, int):
        raise PriceError(f"{field} must be an integer, got {value!r}")
    if not 0 <= value <= MAX_DECIMALS:
        raise PriceError(f"{field}={value} is outside 0..{MAX_DECIMALS}")
    return value


def parse_smallest_units(value, field="total_price"):
    """An integer count of the token's smallest unit, from an int or an integer string."""
    if isinstance(value, bool) or value is None:
        raise PriceError(f"{field} is missing: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise PriceError(f"{field}={value} is negative")
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise PriceError(f"{field}={value!r} is not a finite number")
    if isinstance(value, float):
        raise PriceError(
            f"{field}={value!r} is a float; it must be an integer string in the smallest unit"
        )
    if not isinstance(value, str):
        raise PriceError(f"{field} must be an integer string, got {type(value).__name__}")
    match = _INTEGER.match(value)
    if match:
        return int(match.group(1))
    stripped = value.strip()
    if stripped.startswith("-") and _INTEGER.match(stripped[1:]):
        raise PriceError(f"{field}={value!r} is negative")
    raise PriceError(f"{field}={value!r} is not an integer amount in the smallest unit")


def native_amount(total_price, decimals, field="total_price"):
    """``total_price`` smallest units as a native amount: ("25000000000000000000", 18) -> 25."""
    units = parse_smallest_units(total_price, field)
    decimals = parse_decimals(decimals)
    with localcontext() as ctx:
        ctx.prec = 120  # wide enough for any uint256 at any scale: the division is exact
        amount = Decimal(units).scaleb(-decimals)
        amount = amount.quantize(Decimal(1).scaleb(-NATIVE_PLACES), rounding=ROUND_HALF_EVEN)
    if amount >= MAX_NATIVE_AMOUNT:
        raise PriceError(f"{field}={total_price} with {decimals} decimals is implausibly large")
    return amount


def smallest_units(amount, decimals):
    """The inverse of :func:`native_amount`: 25 ETH with 18 decimals -> "25000000000000000000"."""
    decimals = parse_decimals(decimals)
    with localcontext() as ctx:
        ctx.prec = 120
        units = Decimal(amount).scaleb(decimals)
    if units != units.to_integral_value():
        raise PriceError(f"{amount} has more than {decimals} decimal places")
    return str(int(units))


def parse_rate(value, field="usd_price"):
    """A USD-per-unit rate as a Decimal, or None when the source gave none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise PriceError(f"{field}={value!r} is not a number")
    try:
        # str() first so a float rate (APIs send 3000.5) becomes its shortest decimal text,
        # not its binary expansion.
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise PriceError(f"{field}={value!r} is not a number") from None
    if not rate.is_finite():
        raise PriceError(f"{field}={value!r} is not a finite number")
    if rate < 0:
        raise PriceError(f"{field}={value!r} is negative")
    if rate >= MAX_RATE:
        raise PriceError(f"{field}={value!r} is implausibly large")
    return rate.quantize(Decimal(1).scaleb(-RATE_PLACES), rounding=ROUND_HALF_EVEN)


def usd_value(amount, rate):
    """``amount`` native units at ``rate`` USD each, to the cent-millionth; None without a rate."""
    if rate is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 120
        usd = (Decimal(amount) * Decimal(rate)).quantize(
            Decimal(1).scaleb(-USD_PLACES), rounding=ROUND_HALF_EVEN
        )
    if usd >= MAX_USD:
        raise PriceError(f"USD value {usd} is implausibly large (over {MAX_USD:,.0f})")
    return usd


def convert_payment(total_price, payment_token, *, fallback_rates=None):
    """Convert one sale: smallest units + payment token info -> :class:`Price`.

    ``payment_token`` is OpenSea's object (``symbol``, ``decimals``, optionally ``usd_price``).
    When it carries no ``usd_price`` (API v2 events do not), the rate comes from
    ``fallback_rates`` (symbol -> Decimal, e.g. the collection's payment tokens as stored), and
    the USD value stays None if there is none there either.
    """
    if not isinstance(payment_token, dict):
        raise PriceError(f"payment_token must be an object, got {payment_token!r}")
    symbol = str(payment_token.get("symbol") or "").strip().upper()[:16]
    if not symbol:
        raise PriceError("payment_token.symbol is missing")
    decimals = parse_decimals(payment_token.get("decimals"), "payment_token.decimals")
    amount = native_amount(total_price, decimals)
    rate = parse_rate(payment_token.get("usd_price"), "payment_token.usd_price")
    if rate is None and fallback_rates:
        rate = fallback_rates.get(symbol)
    return Price(
        amount=amount, symbol=symbol, decimals=decimals, usd_rate=rate, usd=usd_value(amount, rate)
    )
