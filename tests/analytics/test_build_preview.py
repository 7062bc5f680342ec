"""The build-training-set form previews its count and thumbnails, and picks traits from a list."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from collections_app.analytics.subsets import SubsetSpec, preview, trait_groups
from collections_app.models import Token, TrainingSet, Trait

from .factory import punks_like

pytestmark = pytest.mark.django_db

BUILD = "admin:collections_app_trainingset_build"
PREVIEW = "admin:collections_app_trainingset_preview"
TRAITS = "admin:collections_app_trainingset_traits"


def holding(collection, value):
    return Token.objects.filter(collection=collection, traits__value=value).count()


def test_it_previews_the_count_funnel_and_a_spread_of_thumbnails():
    collection = punks_like(n=60)

    result = preview(collection, SubsetSpec(include_traits=[("type", "Male")]), thumbnails=5)
    every = preview(collection, SubsetSpec(), thumbnails=24)

    assert result.count == holding(collection, "Male") > 5
    assert result.total == 60
    assert [step["step"] for step in result.funnel] == ["all tokens", "with type=Male"]
    assert len(result.thumbnails) == 5
    assert all(t.traits.filter(value="Male").exists() for t in result.thumbnails)
    numbers = [t.token_number for t in every.thumbnails]
    assert len(numbers) == 24 and numbers == sorted(numbers)
    assert numbers[0] == 0 and numbers[-1] > 50  # spread over the set, not its first 24
    assert any("tend to collapse" in w for w in result.warnings)
    assert not TrainingSet.objects.exists()


def test_it_lists_trait_values_by_type_most_held_first_with_counts():
    collection = punks_like(n=40)
    Trait.exclude_values(collection.traits.filter(value="Pipe"), "offensive")

    groups, left_out = trait_groups(collection)
    capped, capped_out = trait_groups(collection, limit=3)

    assert [g["trait_type"] for g in groups] == ["accessory", "type"]
    types = {v["value"]: v for v in groups[1]["values"]}
    assert types["Male"]["count"] == holding(collection, "Male")
    counts = [v["count"] for v in groups[0]["values"]]
    assert counts == sorted(counts, reverse=True)
    assert {v["value"] for v in groups[0]["values"] if v["excluded"]} == {"Pipe"}
    assert left_out == 0
    assert sum(len(g["values"]) for g in capped) == 3
    assert capped_out == collection.traits.count() - 3


def test_it_previews_from_the_form_page_before_building(admin_client):
    collection = punks_like(n=40)
    form = {
        "collection": collection.pk,
        "rarity_metric": "rarity",
        "include_traits": ["type=Male", "type=Female"],
        "exclude_traits": ["accessory=Earring"],
        "_preview": "Preview",
    }

    page = admin_client.post(reverse(BUILD), form).content.decode()

    expected = (
        Token.objects.filter(collection=collection, traits__value__in=["Male", "Female"])
        .exclude(traits__value="Earring")
        .count()
    )
    assert f"<strong>{expected}</strong> of 40 tokens selected" in page
    assert page.count('class="preview-strip"') == 1
    assert 'value="type=Male" checked' in page and 'value="accessory=Earring" checked' in page
    assert not TrainingSet.objects.exists()  # a preview needs no name and builds nothing


def test_it_answers_the_preview_as_json_with_thumbnails(admin_client):
    collection = punks_like(n=40)
    form = {"collection": collection.pk, "rarity_metric": "rarity", "include_traits": "type=Female"}

    answer = admin_client.post(reverse(PREVIEW), form).json()

    assert answer["ok"] is True and answer["errors"] == []
    assert answer["count"] == holding(collection, "Female")
    assert answer["total"] == 40
    assert len(answer["thumbnails"]) == min(24, answer["count"])
    assert {"token_id", "name", "url"} <= set(answer["thumbnails"][0])
    assert f"<strong>{answer['count']}</strong> of 40" in answer["html"]


def test_it_explains_invalid_filters_in_sentences(admin_client):
    collection = punks_like(n=20)
    url = reverse(PREVIEW)

    bad_numbers = admin_client.post(
        url,
        {
            "collection": collection.pk,
            "rarity_metric": "rarity",
            "top_price_pct": "150",
            "min_rarity_rank": "9",
            "max_rarity_rank": "3",
        },
    )
    unknown = admin_client.post(
        url, {"collection": collection.pk, "rarity_metric": "rarity", "include_traits": "hat=cap"}
    ).json()
    no_collection = admin_client.post(url, {"rarity_metric": "rarity"}).json()
    page = admin_client.post(
        reverse(BUILD),
        {
            "collection": collection.pk,
            "rarity_metric": "rarity",
            "include_traits": "hat=cap",
            "_preview": "1",
        },
    )

    assert bad_numbers.status_code == 200
    assert bad_numbers.json()["ok"] is False
    assert bad_numbers.json()["errors"] == [
        "Minimum rarity rank 9 is above the maximum 3.",
        "Top % by price: Ensure this value is less than or equal to 100.",
    ]
    assert unknown["ok"] is False
    assert unknown["errors"][0].startswith("Collection punks has no trait hat=cap (trait types:")
    assert unknown["errors"][0].endswith(".")
    assert no_collection["errors"] == ["Collection: This field is required."]
    assert page.status_code == 200
    assert "Collection punks has no trait hat=cap" in page.content.decode()
    # The refused pair stays ticked, so posting again keeps (and refuses) it.
    assert 'name="include_traits" value="hat=cap" checked' in page.content.decode()


def test_it_refuses_an_empty_rank_range_in_a_sentence(admin_client):
    collection = punks_like(n=20)
    form = {"collection": collection.pk, "min_rarity_rank": "9", "max_rarity_rank": "3"}

    answer = admin_client.post(reverse(PREVIEW), {**form, "rarity_metric": "rarity"}).json()

    assert answer["errors"] == ["Minimum rarity rank 9 is above the maximum 3."]


def test_it_serves_the_trait_picker_of_the_chosen_collection(admin_client):
    collection = punks_like(n=30)
    punks_like(n=5, slug="other")

    answer = admin_client.get(reverse(TRAITS), {"collection": collection.pk}).json()
    none = admin_client.get(reverse(TRAITS), {"collection": "nope"}).json()

    assert answer["collection"] == collection.pk
    assert [g["trait_type"] for g in answer["groups"]] == ["accessory", "type"]
    male = next(v for v in answer["groups"][1]["values"] if v["value"] == "Male")
    assert male["pair"] == "type=Male"
    assert male["count"] == holding(collection, "Male")
    assert 'name="include_traits" value="type=Male"' in answer["html"]
    assert 'name="exclude_traits" value="type=Male"' in answer["html"]
    assert none["groups"] == [] and "Choose a collection" in none["html"]


def test_it_builds_from_ticked_traits_and_still_reads_typed_lines(admin_client):
    collection = punks_like(n=40)
    url = reverse(BUILD)
    base = {"collection": collection.pk, "rarity_metric": "rarity"}

    admin_client.post(
        url, {**base, "name": "ticked", "include_traits": ["type=Male", "type=Female"]}
    )
    admin_client.post(url, {**base, "name": "typed", "include_traits": "type=Male\ntype=Female\n"})

    expected = holding(collection, "Male") + holding(collection, "Female")
    assert TrainingSet.objects.get(name="ticked").token_count == expected
    assert TrainingSet.objects.get(name="typed").token_count == expected
    assert TrainingSet.objects.get(name="ticked").filter_spec["include_traits"] == [
        "type=Male",
        "type=Female",
    ]


def test_it_lists_the_picker_on_the_page_for_the_collection_in_the_address(admin_client):
    collection = punks_like(n=20)

    page = admin_client.get(reverse(BUILD), {"collection": collection.pk}).content.decode()
    blank = admin_client.get(reverse(BUILD)).content.decode()

    assert '<details class="trait-group">' in page
    assert 'value="accessory=Earring"' in page
    assert 'name="_preview"' in page
    assert "Choose a collection to list its trait values." in blank


def test_it_keeps_the_preview_and_picker_to_staff_who_may_build(client):
    collection = punks_like(n=10)
    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(staff)

    refused = [
        client.post(reverse(PREVIEW), {"collection": collection.pk}).status_code,
        client.get(reverse(TRAITS), {"collection": collection.pk}).status_code,
    ]
    client.logout()
    anonymous = client.get(reverse(TRAITS), {"collection": collection.pk})

    assert refused == [403, 403]
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_it_answers_the_preview_only_to_a_post(admin_client):
    assert admin_client.get(reverse(PREVIEW)).status_code == 405
