"""The OpenSea v1 record parser on arbitrary JSON: a TokenRecord or an ItemError, nothing else."""

import json

from hypothesis import given
from hypothesis import strategies as st

from collections_app.ingest.records import ItemError, record_from_v1_asset

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: json reads bare NaN and 1e400
    | st.text(max_size=20)
    | st.sampled_from(["²", "١٢٣", "\uff11\uff12", "007", "1e400", "NaN", "-1", " 5 "])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
last_sales = st.fixed_dictionaries(
    {},
    optional={
        "total_price": scalars,
        "quantity": scalars,
        "event_timestamp": scalars,
        "payment_token": st.fixed_dictionaries(
            {}, optional={"symbol": scalars, "decimals": scalars, "usd_price": scalars}
        )
        | scalars,
        "transaction": json_values,
    },
)
assets = st.fixed_dictionaries(
    {"token_id": scalars},
    optional={
        "name": scalars,
        "traits": json_values,
        "last_sale": last_sales | scalars,
        "owner": json_values,
        "asset_contract": json_values,
    },
)


@given(asset=assets)
def test_it_returns_a_record_or_refuses_the_item(asset):
    try:
        record = record_from_v1_asset(asset)
    except ItemError as exc:
        assert exc.reason
        return
    assert record.token_id.isascii() and record.token_id.isdigit()
    json.dumps(record.metadata, allow_nan=False)  # what PostgreSQL jsonb will accept
    for sale in record.sales:
        assert sale.amount.is_finite()
