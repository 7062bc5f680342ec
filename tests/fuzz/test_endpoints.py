"""Public endpoints' parameters from strangers: any text may come back 4xx, never a 500."""

from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from collections_app.models import Collection

pytestmark = pytest.mark.django_db

odd_numbers = st.sampled_from(
    ["²", "①", "¹²", "\uff11\uff12", "\u0661\u0662\u0663", "007", "1e999999", "-1e999999", "NaN",
     "Infinity", "1e-999999", "9" * 80, "\x00", "%00", "-0", "0x10", " 3 ", ""]
)  # fmt: skip
texts = odd_numbers | st.text(max_size=30)


@pytest.fixture
def collection(db):
    return Collection.objects.create(slug="fuzz-fakes", name="Fuzz Fakes")


def visitor():
    return Client(raise_request_exception=False)


@given(
    params=st.dictionaries(
        st.sampled_from(
            ["min_usd", "max_usd", "max_rank", "sold", "sort", "page", "trait", "trait_q"]
        ),
        texts,
        max_size=4,
    )
)
def test_collection_page_filters(collection, params):
    response = visitor().get(f"/c/{collection.slug}/", params)

    assert response.status_code in (200, 400, 404), params


@given(token_id=texts)
def test_token_ids(collection, token_id):
    path = f"/c/{collection.slug}/t/{quote(token_id, safe='')}/"

    assert visitor().get(path).status_code in (301, 404), token_id


@given(seed=texts, count=texts, kind=texts, seed_end=texts)
def test_generate_form(collection, seed, count, kind, seed_end):
    data = {
        "generator": "no-such",
        "seed": seed,
        "count": count,
        "kind": kind,
        "seed_end": seed_end,
    }

    response = visitor().post("/generate/", data, HTTP_ACCEPT="application/json")

    assert response.status_code in (400, 404), data


@given(seed=texts, suffix=st.sampled_from([".png", ".json", "/", ".png?download=1"]))
def test_seed_permalinks(seed, suffix):
    response = visitor().get(f"/g/tiny/{quote(seed, safe='')}{suffix}")

    assert response.status_code in (301, 404), seed


@given(pk=texts, since=texts, wait=texts)
def test_request_status(pk, since, wait):
    response = visitor().get(
        f"/generate/r/{quote(pk, safe='')}.json", {"since": since, "wait": wait}
    )

    assert response.status_code in (400, 404), (pk, since, wait)
