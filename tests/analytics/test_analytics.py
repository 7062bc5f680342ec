"""analytics.compute on small collections, including the awkward ones."""

import json
from decimal import Decimal

import pytest

from collections_app.analytics import compute as analytics
from collections_app.models import Collection, Token, Trait

from .factory import make_collection, punks_like

pytestmark = pytest.mark.django_db


def codes(result):
    return {w["code"] for w in result["warnings"]}


def test_it_summarises_prices_exactly_in_decimal():
    collection = make_collection(
        "prices",
        [
            {"native": "0.1", "usd": "100.10", "traits": [("hat", "cap")]},
            {"native": "0.2", "usd": "200.20", "traits": [("hat", "cap")]},
            {"native": "0.4", "usd": "0.01", "traits": [("hat", "crown")]},
            {"traits": [("hat", "crown")]},
        ],
    )
    result = analytics.compute(collection)
    summary = result["summary"]

    assert summary["tokens"] == 4
    assert summary["sold_tokens"] == 3
    assert summary["price_usd"] == {
        "count": 3,
        "mean": "100.103333",
        "median": "100.1",
        "min": "0.01",
        "max": "200.2",
        "sum": "300.31",
    }
    # 0.1 + 0.2 in floats is 0.30000000000000004; in Decimal it is exact.
    assert summary["price_native"]["ETH"]["sum"] == "0.7"
    assert summary["price_native"]["ETH"]["median"] == "0.2"
    assert summary["primary_symbol"] == "ETH"
    assert summary["sales"] == 3
    assert summary["sales_volume_usd"] == "300.31"


def test_it_stores_the_cache_with_the_data_version_it_read():
    collection = punks_like(n=30)
    collection.bump_data_version()
    analytics.compute(collection)
    collection.refresh_from_db()

    assert collection.analytics_version == collection.data_version
    assert collection.analytics_fresh
    assert collection.analytics["schema"] == analytics.SCHEMA
    assert collection.analytics_computed_at is not None
    assert not Token.objects.filter(collection=collection, rarity_rank=None).exists()
    assert not Token.objects.filter(collection=collection, ic_score=None).exists()
    json.dumps(collection.analytics)  # plain JSON all the way down


def test_it_reports_rarity_vs_price_spearman_from_scipy():
    # Price rises with rarity: the rarer the hat, the pricier the token.
    tokens = [{"traits": [("hat", "common")], "usd": 10 + i} for i in range(8)]
    tokens += [{"traits": [("hat", "uncommon")], "usd": 100 + i} for i in range(3)]
    tokens += [{"traits": [("hat", "unique")], "usd": 5000}]
    result = analytics.compute(make_collection("spearman", tokens))
    rho = result["summary"]["spearman"]["rarity_score"]

    assert rho["n"] == 12
    assert rho["rho"] > 0.8
    assert rho["p_value"] < 0.01


def test_it_computes_trait_statistics_and_top_lists():
    collection = punks_like(n=50)
    result = analytics.compute(collection)
    traits = result["traits"]
    rarest, common = traits["rarest"], traits["most_common"]

    assert [t["count"] for t in rarest] == sorted(t["count"] for t in rarest)
    assert [t["count"] for t in common] == sorted((t["count"] for t in common), reverse=True)
    assert common[0]["frequency"] == pytest.approx(common[0]["count"] / 50)
    by_type = {t["trait_type"]: t for t in traits["types"]}
    assert by_type["type"]["tokens_missing"] == 0
    assert by_type["accessory"]["multi_valued"] is True
    assert by_type["type"]["multi_valued"] is False
    # Trait.count is brought in line with the token-trait rows.
    for trait in Trait.objects.filter(collection=collection):
        assert trait.count == trait.tokens.count()


def test_it_repairs_a_stale_trait_count():
    collection = make_collection("counts", [{"traits": [("hat", "cap")]} for _ in range(3)])
    Trait.objects.filter(collection=collection).update(count=99)
    analytics.compute(collection)

    assert Trait.objects.get(collection=collection).count == 3


def test_it_says_so_when_nothing_was_sold():
    collection = make_collection("unsold", [{"traits": [("hat", "cap")]}, {"traits": []}])
    result = analytics.compute(collection)

    assert {"no_sales", "no_sale_history", "tokens_without_traits"} <= codes(result)
    assert result["summary"]["price_usd"] is None
    assert result["summary"]["spearman"]["rarity_score"]["rho"] is None
    assert result["figures"]["price_histogram"] is None
    assert result["figures"]["rarity_vs_price"] is None
    assert result["figures"]["sales_over_time"] is None
    assert result["figures"]["rare_traits"] is not None


def test_it_handles_a_single_token():
    result = analytics.compute(
        make_collection("one", [{"traits": [("hat", "cap")], "usd": "5", "native": "0.002"}])
    )

    assert "single_token" in codes(result)
    assert result["summary"]["spearman"]["ic_score"]["reason"] == "needs 3 or more priced sales"
    assert Token.objects.get().rarity_rank == 1


def test_it_handles_a_collection_without_tokens():
    result = analytics.compute(make_collection("empty", []))

    assert "no_tokens" in codes(result)
    assert result["summary"]["tokens"] == 0
    assert result["traits"]["rarest"] == []


def test_it_handles_tokens_without_any_traits():
    tokens = [{"usd": 10 * (i + 1)} for i in range(4)]
    result = analytics.compute(make_collection("bare", tokens))

    assert "no_traits" in codes(result)
    assert set(Token.objects.values_list("rarity_rank", flat=True)) == {1}
    assert result["summary"]["spearman"]["rarity_score"]["reason"] == (
        "prices or scores are all equal"
    )


def test_it_keeps_native_prices_per_payment_token():
    tokens = [
        {"native": "1.5", "usd": "3000", "symbol": "ETH"},
        {"native": "2.5", "usd": "5000", "symbol": "ETH"},
        {"native": "1200", "usd": "1200", "symbol": "USDC"},
        {"native": "50", "usd": None, "symbol": "APE"},
    ]
    result = analytics.compute(make_collection("mixed", tokens))
    summary = result["summary"]

    assert summary["price_native"]["ETH"]["mean"] == "2"
    assert summary["price_native"]["USDC"]["max"] == "1200"
    assert summary["payment_symbols"] == {"ETH": 2, "USDC": 1, "APE": 1}
    assert summary["price_usd"]["count"] == 3
    assert {"mixed_payment_tokens", "missing_usd"} <= codes(result)


def test_it_falls_back_to_the_payment_token_when_no_sale_has_a_usd_price():
    tokens = [{"native": str(10 + i), "usd": None, "symbol": "APE"} for i in range(5)]
    result = analytics.compute(make_collection("apecoin", tokens))

    assert "non_eth_payment_token" in codes(result)
    assert result["prices"]["currency"] == "APE"
    assert result["figures"]["price_histogram"] is not None


def test_it_keeps_absurd_and_zero_prices_out_of_the_way():
    tokens = [{"usd": str(100 + i), "traits": [("hat", "cap")]} for i in range(10)]
    tokens.append({"usd": "1" + "0" * 30, "native": "1" + "0" * 40})
    tokens.append({"usd": "0", "native": "0"})
    result = analytics.compute(make_collection("absurd", tokens))

    assert {"extreme_prices", "zero_prices"} <= codes(result)
    assert result["prices"]["zero_prices"] == 1
    assert result["summary"]["price_usd"]["max"] == "1" + "0" * 30
    assert result["summary"]["price_native"]["ETH"]["max"] == "1" + "0" * 40
    assert sum(result["prices"]["histogram"]["counts"]) == 11


def test_it_buckets_sales_over_time():
    collection = make_collection("history", [{"usd": 10 * (i + 1), "days": i} for i in range(6)])
    result = analytics.compute(collection)
    history = result["sales_over_time"]

    assert history["period"] == "day"
    assert [r["sales"] for r in history["rows"]] == [1] * 6
    assert history["rows"][0] == {
        "period": "2021-04-01",
        "sales": 1,
        "median_usd": 10.0,
        "volume_usd": 10.0,
    }


def test_it_downsamples_the_scatter_but_keeps_the_extremes(monkeypatch):
    monkeypatch.setattr(analytics, "SCATTER_MAX_POINTS", 20)
    monkeypatch.setattr(analytics, "SCATTER_KEEP_EXTREMES", 3)
    collection = punks_like(n=120)
    result = analytics.compute(collection)
    points = result["figures"]["rarity_vs_price"]["data"][0]

    sold = Token.objects.filter(collection=collection, last_sale_usd__gt=0)
    priciest = sold.order_by("-last_sale_usd").first()
    assert result["scatter"]["shown"] == 20
    assert result["scatter"]["total"] == sold.count()
    assert priciest.token_id in [c[0] for c in points["customdata"]]


def test_it_does_not_overwrite_newer_analytics():
    collection = punks_like(n=10)
    analytics.compute(collection)
    Collection.objects.filter(pk=collection.pk).update(analytics_version=10**6)

    assert analytics.compute(collection) is None
    collection.refresh_from_db()
    assert collection.analytics_version == 10**6


def test_it_puts_the_computed_ranks_into_exported_metadata():
    from collections_app.ingest.archives import export_metadata
    from collections_app.ingest.records import RARITY_KEY

    collection = punks_like(n=10)
    analytics.compute(collection)
    token = Token.objects.filter(collection=collection).order_by("rarity_rank").first()

    assert export_metadata(token)[RARITY_KEY] == {
        "rarity_score": token.rarity_score,
        "rarity_rank": 1,
        "ic_score": token.ic_score,
        "ic_rank": token.ic_rank,
    }


def test_it_builds_plotly_figures_for_every_chart():
    result = analytics.compute(punks_like(n=40))
    figures = result["figures"]

    assert set(figures) == {
        "price_histogram",
        "rare_traits",
        "common_traits",
        "rarity_vs_price",
        "sales_over_time",
    }
    assert all(f and f["data"] for f in figures.values())
    assert figures["rare_traits"]["data"][0]["orientation"] == "h"
    assert len(figures["rare_traits"]["data"][0]["y"]) == min(
        20, Trait.objects.filter(count__gt=0).count()
    )


def test_it_keeps_money_exact_with_decimal_quantisation():
    stats = analytics.decimal_stats([Decimal("1"), Decimal("2"), Decimal("2")], 6)

    assert stats["mean"] == "1.666667"
    assert stats["median"] == "2"


def test_it_rewrites_scores_that_drifted_and_follows_trait_changes():
    collection = punks_like(n=30)
    analytics.compute(collection)
    rarest = Token.objects.get(collection=collection, rarity_rank=1)
    Token.objects.filter(pk=rarest.pk).update(rarity_rank=999, ic_score=None)
    analytics.compute(collection)
    rarest.refresh_from_db()

    assert rarest.rarity_rank == 1
    assert rarest.ic_score is not None

    # Give the most common token a trait nobody else has: it becomes the rarest.
    common = Token.objects.filter(collection=collection).order_by("-rarity_rank").first()
    unique = Trait.objects.create(collection=collection, trait_type="hat", value="Crown")
    common.traits.add(unique)
    collection.bump_data_version()
    analytics.compute(collection)
    common.refresh_from_db()

    assert common.rarity_rank == 1
