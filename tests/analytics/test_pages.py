"""Collection, token, compare and home pages: render from the cache, bounded queries."""

import json

import pytest
from django.urls import reverse

from collections_app.analytics import compute as analytics
from collections_app.models import Collection, Token

from .factory import make_collection, punks_like

pytestmark = pytest.mark.django_db


@pytest.fixture
def punks():
    collection = punks_like(n=60)
    analytics.compute(collection)
    return collection


def embedded_json(html, element_id):
    start = html.index(f'<script id="{element_id}" type="application/json">')
    return json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])


def detail_url(collection, **params):
    from urllib.parse import urlencode

    url = reverse("collections:detail", args=[collection.slug])
    return f"{url}?{urlencode(params, doseq=True)}" if params else url


def test_it_renders_the_collection_page_with_charts_and_stats(client, punks):
    response = client.get(detail_url(punks))
    html = response.content.decode()

    assert response.status_code == 200
    assert "Punks Like" in html
    for chart in ("price-histogram", "rarity-vs-price", "sales-over-time", "rare-traits"):
        assert f'id="{chart}-data"' in html
    assert "/static/vendor/plotly-cartesian.min." in html  # our own copy, hashed by the manifest
    assert "cdn" not in html.lower()
    figure = embedded_json(html, "rarity-vs-price-data")
    assert figure["data"][0]["type"] == "scatter"
    assert 'data-token-url="/c/punks/t/__id__/"' in html


def test_it_renders_the_collection_page_in_a_bounded_number_of_queries(
    client, punks, django_assert_max_num_queries
):
    # collection, traits, selected traits, token count, token page, generators.
    with django_assert_max_num_queries(6):
        client.get(detail_url(punks))
    trait = punks.traits.order_by("pk").first()
    with django_assert_max_num_queries(6):
        client.get(detail_url(punks, trait=trait.pk, min_usd=10, sort="price_desc", page=2))


def test_it_does_not_recompute_on_request(client, punks, django_assert_max_num_queries):
    Collection.objects.filter(pk=punks.pk).update(data_version=punks.data_version + 1)
    with django_assert_max_num_queries(6):
        response = client.get(detail_url(punks))

    assert "has changed since these analytics were computed" in response.content.decode()
    punks.refresh_from_db()
    assert punks.analytics_version == punks.data_version - 1


def test_it_filters_tokens_by_trait_price_and_rank(client, punks):
    alien = punks.traits.filter(trait_type="type").order_by("count").first()
    response = client.get(detail_url(punks, trait=alien.pk))
    shown = {t.token_id for t in response.context["page"].object_list}

    assert shown == set(Token.objects.filter(traits=alien).values_list("token_id", flat=True))
    # A rare trait takes the filter-first plan; the order must be the same rank order.
    ranks = [t.rarity_rank for t in response.context["page"].object_list]
    assert ranks == sorted(ranks)

    response = client.get(detail_url(punks, min_usd=1000, max_usd=5000, sold="on"))
    prices = [t.last_sale_usd for t in response.context["page"].object_list]
    assert prices and all(1000 <= p <= 5000 for p in prices)

    response = client.get(detail_url(punks, max_rank=5))
    assert all(t.rarity_rank <= 5 for t in response.context["page"].object_list)


def test_it_sorts_by_price_listing_priced_tokens(client, punks):
    response = client.get(detail_url(punks, sort="price_desc"))
    page = response.context["page"]
    prices = [t.last_sale_usd for t in page.object_list]

    assert None not in prices
    assert prices == sorted(prices, reverse=True)
    assert page.paginator.count == punks.tokens.filter(last_sale_usd__isnull=False).count()
    cheapest = client.get(detail_url(punks, sort="price_asc")).context["page"].object_list
    lowest = punks.tokens.filter(last_sale_usd__isnull=False).order_by("last_sale_usd").first()
    assert cheapest[0].last_sale_usd == lowest.last_sale_usd


def test_it_seeks_deep_rank_pages_to_the_same_tokens_as_offset_paging(client, monkeypatch):
    from collections_app import browse

    # Ties included: many tokens share values, so ranks repeat (1, 1, 3, ...).
    tokens = [{"traits": [("a", str(i % 4)), ("b", str(i % 7))]} for i in range(130)]
    collection = make_collection("deep", tokens)
    analytics.compute(collection)
    expected = list(
        Token.objects.filter(collection=collection)
        .order_by("rarity_rank", "token_number", "token_id")
        .values_list("token_id", flat=True)
    )
    monkeypatch.setattr(browse.TokenPaginator, "SEEK_FROM", 1)
    monkeypatch.setattr(browse, "TOKENS_PER_PAGE", 12)
    for number in range(1, 12):
        shown = client.get(detail_url(collection, page=number)).context["page"].object_list
        start = (number - 1) * 12
        assert [t.token_id for t in shown] == expected[start : start + 12], number


def test_it_counts_one_trait_filter_from_the_cache(client, punks, django_assert_max_num_queries):
    alien = punks.traits.filter(trait_type="type").order_by("count").first()
    with django_assert_max_num_queries(5):  # no COUNT(*): the trait's count is exact
        response = client.get(detail_url(punks, trait=alien.pk))

    assert response.context["page"].paginator.count == alien.count


def test_it_counts_two_values_of_a_multi_valued_type_by_querying(client, punks):
    earring, pipe = (punks.traits.get(value=v) for v in ("Earring", "Pipe"))
    response = client.get(detail_url(punks, trait=[earring.pk, pipe.pk]))
    either = Token.objects.filter(traits__in=[earring, pipe]).distinct().count()

    assert response.context["page"].paginator.count == either


def test_it_paginates_the_token_grid(client):
    collection = make_collection("many", [{"traits": [("n", str(i % 3))]} for i in range(60)])
    analytics.compute(collection)
    first = client.get(detail_url(collection))
    second = client.get(detail_url(collection, page=2))

    assert first.context["page"].paginator.num_pages == 2
    assert len(second.context["page"].object_list) == 12
    assert "page=2" in first.content.decode()


def test_it_ignores_an_invalid_filter_but_applies_the_others(client, punks):
    response = client.get(detail_url(punks, min_usd="lots", sold="on"))

    assert response.status_code == 200
    assert "Min price (USD) “lots”: Enter a number. This filter is not applied." in (
        response.content.decode()
    )
    assert all(t.last_sale_amount is not None for t in response.context["page"].object_list)


def test_it_searches_the_trait_table(client, punks):
    response = client.get(detail_url(punks, trait_q="earr"))

    assert [t["value"] for t in response.context["traits"]] == ["Earring"]


def test_it_says_what_is_missing_for_a_collection_without_sales_or_traits(client):
    collection = make_collection("bare", [{}, {}])
    analytics.compute(collection)
    html = client.get(detail_url(collection)).content.decode()

    assert "No token has a recorded sale" in html
    assert "No token has traits" in html
    assert "No sale with a positive price yet." in html
    assert "This collection has no traits recorded." in html


def test_it_renders_before_analytics_exist(client):
    collection = make_collection("fresh", [{"traits": [("hat", "cap")], "usd": 5}])
    html = client.get(detail_url(collection)).content.decode()

    assert "have not been computed yet" in html
    assert "plotly" not in html


def test_it_renders_absurd_prices(client):
    collection = make_collection(
        "absurd", [{"usd": "1" + "0" * 30, "native": "1" + "0" * 40}, {"usd": "0", "native": "0"}]
    )
    analytics.compute(collection)
    response = client.get(detail_url(collection))

    assert response.status_code == 200
    assert "$1,000,000,000,000,000,000,000,000,000,000.00" in response.content.decode()


def test_it_hides_private_collections(client):
    collection = make_collection("secret", [{}], is_public=False)

    assert client.get(detail_url(collection)).status_code == 404
    assert client.get(reverse("collections:token", args=["secret", "0"])).status_code == 404


def test_it_renders_a_token_with_traits_frequencies_ranks_and_sales(client, punks):
    token = Token.objects.filter(collection=punks, last_sale_usd__isnull=False).first()
    response = client.get(reverse("collections:token", args=[punks.slug, token.token_id]))
    html = response.content.decode()

    assert response.status_code == 200
    assert f"#{token.rarity_rank}" in html
    assert f"#{token.ic_rank}" in html
    frequencies = {t.value: f for t, f in response.context["traits"]}
    for trait in token.traits.all():
        assert frequencies[trait.value] == pytest.approx(trait.count / 60)
    assert len(response.context["sales"]) == 1
    same = sum(
        1 for t in Token.objects.filter(collection=punks) if t.traits.count() == len(frequencies)
    )
    assert response.context["trait_count"] == len(frequencies)
    assert response.context["trait_count_tokens"] == same
    assert "<td>trait count</td>" in html


def test_it_shows_missing_trait_types_on_a_token(client):
    collection = make_collection(
        "gaps", [{"traits": [("hat", "cap"), ("eyes", "blue")]}, {"traits": [("hat", "cap")]}]
    )
    analytics.compute(collection)
    response = client.get(reverse("collections:token", args=["gaps", "1"]))

    assert [m["trait_type"] for m in response.context["missing_types"]] == ["eyes"]
    assert "No sales recorded for this token." in response.content.decode()


def test_it_returns_404_for_an_unknown_token(client, punks):
    assert client.get(reverse("collections:token", args=[punks.slug, "999999"])).status_code == 404


def test_it_compares_collections_in_a_strip_plot(client, punks, django_assert_max_num_queries):
    other = make_collection("cheap", [{"usd": 1 + i} for i in range(5)], name="Cheap Ones")
    analytics.compute(other)
    make_collection("pending", [{}], name="Pending")
    # Collections, then one query each for published generators, active training runs and
    # recent images (gan_app.showcase), however many collections there are.
    with django_assert_max_num_queries(4):
        response = client.get(reverse("collections:compare"))
    html = response.content.decode()
    figure = embedded_json(html, "compare-data")

    assert response.status_code == 200
    assert [trace["name"] for trace in figure["data"]] == ["Cheap Ones", "Punks Like"]
    assert all(trace["boxpoints"] == "all" for trace in figure["data"])
    assert "Analytics not computed yet" in html


def test_it_shows_key_stats_on_home_cards(client, punks, django_assert_max_num_queries):
    make_collection("pending", [{}], name="Pending")
    # Collections, then one query each for published generators, active training runs and
    # recent images (gan_app.showcase), however many collections there are.
    with django_assert_max_num_queries(4):
        response = client.get(reverse("collections:home"))
    html = response.content.decode()

    assert "Median sale" in html
    assert "Analytics pending" in html
    assert 'href="/compare/"' in html


def test_it_shows_the_generate_panel_only_with_a_published_generator(client, punks):
    from gan_app.models import Generator

    assert 'id="generate"' not in client.get(detail_url(punks)).content.decode()
    Generator.objects.create(
        slug="punks-v1",
        name="Punks v1",
        collection=punks,
        resolution=32,
        latent_dim=64,
        model_file="generators/punks.keras",
        is_published=True,
        is_listed=True,
    )
    assert 'id="generate"' in client.get(detail_url(punks)).content.decode()


def test_it_says_which_filters_in_the_address_it_could_not_use(client, punks):
    response = client.get(
        detail_url(punks, min_usd="abc", max_rank="-5", page="999", trait="987654")
    )
    html, last = response.content.decode(), response.context["page"].paginator.num_pages

    problems = html[html.index('class="notice notice-bad filter-problems"') :].split("</div>")[0]
    assert "Min price (USD) “abc”: Enter a number. This filter is not applied." in problems
    assert "Rarity rank up to “-5”: Ensure this value is greater than or equal to 1." in problems
    assert "Trait 987654: no such trait in this collection" in problems
    assert f"There is no page “999”: showing page {last} of {last}." in problems


def test_it_shows_active_filters_as_chips_that_each_remove_one(client, punks):
    earring = punks.traits.get(value="Earring")
    response = client.get(detail_url(punks, trait=earring.pk, sold="on", min_usd="10"))

    chips = {c["label"]: c["href"] for c in response.context["active_filters"]}
    assert set(chips) == {"accessory: Earring", "Sold only", "From $10.00"}
    assert "trait=" not in chips["accessory: Earring"] and "sold=on" in chips["accessory: Earring"]
    assert f"trait={earring.pk}" in chips["Sold only"] and "sold" not in chips["Sold only"]


def test_it_lists_trait_values_as_checkboxes_with_counts(client, punks):
    earring = punks.traits.get(value="Earring")
    html = client.get(detail_url(punks, trait=earring.pk)).content.decode()

    assert f'<input type="checkbox" name="trait" value="{earring.pk}" checked>' in html
    assert f'<span class="trait-count">{earring.count:,}</span>' in html
    assert '<select name="trait"' not in html
