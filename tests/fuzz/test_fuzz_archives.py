"""Fuzz archive imports: odd member names and metadata values never abort an import, and the
valid items still land."""

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collections_app.ingest.archives import import_archive
from collections_app.models import Token
from tests.ingest.conftest import asset, png_bytes, write_zip

pytestmark = pytest.mark.django_db
PNG = png_bytes()

member_names = st.one_of(
    st.text(min_size=1, max_size=12).map(lambda s: s + ".png"),
    st.text(alphabet="0123456789\u00b2\u2460\u0661\uff11./\\ _-", min_size=1, max_size=10).map(
        lambda s: s + ".png"
    ),
)
odd_values = st.one_of(
    st.none(),
    st.integers(min_value=-(10**80), max_value=10**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)


def bare(value):
    """JSON as a careless exporter writes it: NaN and Infinity as bare literals."""
    return json.dumps(value, allow_nan=True)


@given(
    names=st.lists(member_names, max_size=4, unique=True),
    price=odd_values,
    rate=odd_values,
    decimals=odd_values,
)
def test_odd_members_and_values_never_abort_an_import(
    tmp_path_factory, names, price, rate, decimals
):
    tmp = tmp_path_factory.mktemp("fuzz")
    slug = f"fuzz-{uuid.uuid4().hex[:10]}"
    images = {"0.png": PNG, "1.png": PNG, **{n: PNG for n in names if n not in ("0.png", "1.png")}}
    odd = asset(1).rstrip("}") + (
        f', "last_sale": {{"total_price": {bare(price)}, "event_timestamp": "2021-01-01",'
        f' "payment_token": {{"symbol": "ETH", "decimals": {bare(decimals)},'
        f' "usd_price": {bare(rate)}}}}}}}'
    )
    metadata = {"0.json": asset(0), "1.json": odd}

    summary = import_archive(
        write_zip(tmp / f"{slug}_archive.zip", images),
        write_zip(tmp / f"{slug}_metadata_archive.zip", metadata),
        slug=slug,
    )

    landed = set(Token.objects.filter(collection__slug=slug).values_list("token_id", flat=True))
    assert {"0", "1"} <= landed
    assert summary.written >= 2
