"""Fuzz the OpenSea v1 record parser: any JSON gives a record or an ItemError, nothing else."""

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from collections_app.ingest.records import ItemError, record_from_v1_asset

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**80), max_value=10**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(alphabet="0123456789\u00b2\u0661\uff13.-e", max_size=30),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
sale = st.fixed_dictionaries(
    {},
    optional={
        "total_price": values,
        "payment_token": st.fixed_dictionaries(
            {}, optional={"symbol": values, "decimals": values, "usd_price": values}
        ),
        "event_timestamp": values,
        "quantity": values,
        "transaction": values,
    },
)
asset = st.fixed_dictionaries(
    {"token_id": st.one_of(values, st.integers(min_value=0, max_value=2**256 - 1))},
    optional={
        "name": values,
        "traits": st.one_of(
            values,
            st.lists(
                st.fixed_dictionaries(
                    {}, optional={"trait_type": values, "value": values, "display_type": values}
                ),
                max_size=4,
            ),
        ),
        "last_sale": st.one_of(values, sale),
        "owner": values,
        "asset_contract": values,
        "image_url": values,
    },
)


def finite(tree):
    if isinstance(tree, float):
        return math.isfinite(tree)
    if isinstance(tree, dict):
        return all(finite(v) for v in tree.values())
    if isinstance(tree, list):
        return all(finite(v) for v in tree)
    return True


@given(data=asset)
def test_the_parser_gives_a_record_or_an_item_error(data):
    try:
        record = record_from_v1_asset(data)
    except ItemError as exc:
        assert str(exc)
        return
    assert record.token_id.isascii() and record.token_id.isdigit()
    json.dumps(record.metadata, allow_nan=False)  # storable in jsonb
    assert finite(record.metadata)
    for one in record.sales:
        assert one.amount is not None
        json.dumps(one.v1, allow_nan=False)
