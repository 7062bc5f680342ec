"""Fuzz the public endpoints' parameters: whatever a visitor sends, never a 500."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collections_app import analytics
from gan_app.models import GenerationRequest
from tests.analytics.factory import punks_like

pytestmark = pytest.mark.django_db

# Digits of every script, signs, separators, exponents, NUL and the odd long number.
numberish = st.one_of(
    st.text(min_size=0, max_size=12),
    st.text(alphabet="0123456789\u00b2\u2460\u00b9\u0661\u0662\uff13-+_., e\x00", max_size=24),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["1e999999", "NaN", "inf", "-0", "0" * 40, "9" * 80]),
)
FILTERS = ("min_usd", "max_usd", "max_rank", "trait", "sort", "sold", "page", "trait_q")


@pytest.fixture(scope="module")
def punks(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        collection = punks_like(n=12, slug="fuzz-punks")
        analytics.compute(collection)
        yield collection
        collection.delete()


@given(params=st.dictionaries(st.sampled_from(FILTERS), numberish, max_size=4))
def test_collection_filters_never_fail(client, punks, params):
    response = client.get(f"/c/{punks.slug}/", params)

    assert response.status_code == 200


@given(token_id=numberish)
def test_token_ids_never_fail(client, punks, token_id):
    from urllib.parse import quote

    response = client.get(f"/c/{punks.slug}/t/{quote(token_id, safe='')}/")

    assert response.status_code in (200, 301, 404)


@given(
    data=st.fixed_dictionaries(
        {},
        optional={
            "seed": numberish,
            "count": numberish,
            "seed_end": numberish,
            "steps": numberish,
            "kind": st.sampled_from(["single", "batch", "walk", "x", ""]),
        },
    )
)
def test_generate_parameters_never_fail(client, generator, data):
    before = GenerationRequest.objects.count()

    response = client.post(
        "/generate/", {"generator": generator.slug, **data}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code in (200, 202, 400, 429)
    if response.status_code == 400:
        assert response.json()["error"]
        assert GenerationRequest.objects.count() == before


@given(seed=numberish, scale=numberish, traits=st.text(max_size=10))
def test_permalink_parameters_never_fail(client, generator, seed, scale, traits):
    from urllib.parse import quote

    response = client.get(
        f"/g/{generator.slug}/{quote(seed, safe='')}.png", {"scale": scale, "traits": traits}
    )

    assert response.status_code in (301, 400, 404, 410)
