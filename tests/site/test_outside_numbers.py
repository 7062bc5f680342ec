"""Seeds, token ids and query numbers from visitors: ASCII digits only, never a 500 (issue 18)."""

import pytest

from collections_app import analytics
from gan_app.models import GenerationRequest
from tests.analytics.factory import punks_like

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seed", ["²", "①", "¹²", "\uff11\uff12", "\u0661\u0662\u0663", "12²"])
def test_it_refuses_seeds_that_are_not_ascii_digits(client, generator, seed):
    response = client.post(
        "/generate/", {"generator": generator.slug, "seed": seed}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    assert "digits 0-9" in response.json()["error"]
    assert not GenerationRequest.objects.exists()


@pytest.mark.parametrize("field", ["count", "steps"])
def test_it_refuses_counts_that_are_not_ascii_digits(client, generator, field):
    response = client.post(
        "/generate/",
        {"generator": generator.slug, "seed": "1", field: "²", "kind": "walk", "seed_end": "2"},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 400


def test_it_still_takes_a_seed_with_separators(client, generator):
    response = client.post(
        "/generate/", {"generator": generator.slug, "seed": "1_234"}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code in (200, 202)
    assert GenerationRequest.objects.get().seeds == [1234]


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/g/tiny-v1/042/", "/g/tiny-v1/42/"),
        ("/g/tiny-v1/0042.png?scale=2", "/g/tiny-v1/42.png?scale=2"),
        ("/g/tiny-v1/00.json", "/g/tiny-v1/0.json"),
    ],
)
def test_it_redirects_seed_permalinks_with_leading_zeros(client, generator, path, canonical):
    response = client.get(path)

    assert response.status_code == 301
    assert response["Location"] == canonical


@pytest.fixture
def punks(db):
    collection = punks_like(n=12)
    analytics.compute(collection)
    return collection


@pytest.mark.parametrize(
    "query",
    [
        "min_usd=1e999999",
        "max_usd=1e999999",
        "max_rank=99999999999999999999999",
        "max_rank=%C2%B2",
        "trait=%C2%B2",
        "trait=99999999999999999999999",
    ],
)
def test_it_ignores_impossible_filters_on_a_collection_page(client, punks, query):
    response = client.get(f"/c/{punks.slug}/?{query}")

    assert response.status_code == 200


def test_it_reads_full_width_rank_as_no_filter(client, punks):
    response = client.get(f"/c/{punks.slug}/?max_rank=%EF%BC%91")  # fullwidth 1

    assert response.status_code == 200
    assert len(response.context["page"].object_list) > 1


@pytest.mark.parametrize("token_id", ["%00", "%C2%B2", "%D9%A1", "1%00", "-1", "1.0"])
def test_it_answers_404_for_token_ids_that_are_not_numbers(client, punks, token_id):
    response = client.get(f"/c/{punks.slug}/t/{token_id}/")

    assert response.status_code == 404


def test_it_redirects_a_token_id_with_leading_zeros(client, punks):
    token = punks.tokens.order_by("token_number").last()

    response = client.get(f"/c/{punks.slug}/t/00{token.token_id}/")

    assert response.status_code == 301
    assert response["Location"] == f"/c/{punks.slug}/t/{token.token_id}/"
