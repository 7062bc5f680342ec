"""Numbers typed or linked by strangers: ASCII digits only; oddities get 400/404/301, no 500."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.mark.parametrize("seed", ["²", "①", "¹²", "\uff11\uff12", "\u0661\u0662\u0663", "4\u00b2"])
def test_it_refuses_seeds_that_are_not_ascii_digits(client, generator, seed):
    response = client.post(
        reverse("gan:generate"), {"generator": generator.slug, "seed": seed}, **JSON
    )

    assert response.status_code == 400
    assert "whole number" in str(response.json())


@pytest.mark.parametrize("value", ["1e999999", "-1e999999", "NaN", "Infinity", "1e-999999"])
def test_it_ignores_a_price_filter_it_cannot_use(client, collection, value):
    response = client.get(f"/c/{collection.slug}/", {"min_usd": value, "max_usd": value})

    assert response.status_code == 200


@pytest.mark.parametrize("token_id", ["%00", "%C2%B2", "%EF%BC%91", "1%00"])
def test_it_answers_404_for_token_ids_that_are_not_numbers(client, collection, token_id):
    assert client.get(f"/c/{collection.slug}/t/{token_id}/").status_code == 404


def test_it_redirects_a_seed_with_leading_zeros_to_its_canonical_url(client, made):
    response = client.get("/g/tiny-v1/0042.png?download=1")

    assert response.status_code == 301
    assert response["Location"] == "/g/tiny-v1/42.png?download=1"


def test_it_answers_a_trait_search_for_a_nul_character(client, collection):
    response = client.get(f"/c/{collection.slug}/", {"trait_q": "a\x00b"})

    assert response.status_code == 200
