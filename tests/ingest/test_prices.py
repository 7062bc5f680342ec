from decimal import Decimal

import pytest

from collections_app.prices import (
    PriceError,
    convert_payment,
    native_amount,
    parse_rate,
    smallest_units,
    usd_value,
)

ETH = {"symbol": "ETH", "decimals": 18, "usd_price": "112.880000"}


def test_it_converts_wei_to_eth_exactly():
    assert native_amount("25000000000000000000", 18) == Decimal("25")
    assert native_amount("1", 18) == Decimal("0.000000000000000001")
    assert native_amount(1234567, 6) == Decimal("1.234567")


def test_it_keeps_every_wei_where_a_float_would_not():
    wei = "123456789012345678901"
    amount = native_amount(wei, 18)
    assert amount == Decimal("123.456789012345678901")
    assert float(amount) != amount  # the float version has already lost digits
    assert smallest_units(amount, 18) == wei


def test_it_multiplies_by_the_usd_price_in_decimal():
    price = convert_payment("25000000000000000000", ETH)
    assert price.amount == Decimal("25")
    assert price.usd == Decimal("2822.000000")
    assert price.usd_rate == Decimal("112.88")
    assert price.symbol == "ETH"
    assert isinstance(price.usd, Decimal)


def test_it_uses_a_stored_rate_when_the_token_has_no_usd_price():
    payment = {"symbol": "weth", "decimals": 18}
    price = convert_payment("500000000000000000", payment, fallback_rates={"WETH": Decimal("3000")})
    assert price.symbol == "WETH"
    assert price.usd == Decimal("1500.000000")


def test_it_leaves_usd_empty_without_any_rate():
    price = convert_payment("1000000", {"symbol": "USDC", "decimals": 6})
    assert price.amount == Decimal("1")
    assert price.usd is None and price.usd_rate is None


@pytest.mark.parametrize(
    ("total_price", "message"),
    [
        ("-5", "negative"),
        (-5, "negative"),
        ("12abc", "not an integer"),
        ("", "not an integer"),
        (2.5e19, "float"),
        (None, "missing"),
        (True, "missing"),
        ("9" * 79, "not an integer"),
        ("1" + "0" * 60, "implausibly large"),
    ],
)
def test_it_rejects_bad_amounts_with_a_message_naming_the_field(total_price, message):
    with pytest.raises(PriceError, match=message) as info:
        convert_payment(total_price, ETH)
    assert "total_price" in str(info.value)


@pytest.mark.parametrize(
    ("payment", "message"),
    [
        ({"symbol": "ETH", "decimals": -1}, "outside"),
        ({"symbol": "ETH", "decimals": 99}, "outside"),
        ({"symbol": "ETH", "decimals": "x"}, "integer"),
        ({"symbol": "", "decimals": 18}, "symbol"),
        ({"symbol": "ETH", "decimals": 18, "usd_price": "NaN"}, "finite"),
        ({"symbol": "ETH", "decimals": 18, "usd_price": "-3"}, "negative"),
        ({"symbol": "ETH", "decimals": 18, "usd_price": "lots"}, "not a number"),
        ({"symbol": "ETH", "decimals": 18, "usd_price": "1e12"}, "implausibly"),
        ("ETH", "object"),
    ],
)
def test_it_rejects_bad_payment_tokens(payment, message):
    with pytest.raises(PriceError, match=message):
        convert_payment("1000000000000000000", payment)


def test_it_rejects_an_absurd_usd_value():
    with pytest.raises(PriceError, match="USD value"):
        usd_value(Decimal("10000000"), Decimal("4000"))


def test_it_reads_float_rates_by_their_shortest_text():
    assert parse_rate(3000.1) == Decimal("3000.1")
    assert parse_rate("") is None and parse_rate(None) is None
