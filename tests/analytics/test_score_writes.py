"""How analytics write what they computed: only the scores that changed, exactly, all or none.

The suite runs these on PostgreSQL (binary COPY + one UPDATE) and, without the services, on
SQLite (bulk_update): both paths must store the same numbers.
"""

import math

import pytest

from collections_app.analytics import compute as analytics
from collections_app.analytics import rarity
from collections_app.analytics.load import load
from collections_app.analytics.store import changed_scores
from collections_app.models import Collection, Token, TokenTrait, Trait

from .factory import make_collection, punks_like

pytestmark = pytest.mark.django_db

SCORES = ["rarity_score", "rarity_rank", "ic_score", "ic_rank"]


def computed_scores(collection):
    return rarity.score_collection(analytics.trait_pairs(load(collection)))[SCORES]


def stored_scores(collection):
    return {
        pk: tuple(row)
        for pk, *row in Token.objects.filter(collection=collection).values_list("pk", *SCORES)
    }


def expected(scores):
    return {
        int(pk): (float(r.rarity_score), int(r.rarity_rank), float(r.ic_score), int(r.ic_rank))
        for pk, r in zip(scores.index, scores.itertuples(index=False), strict=True)
    }


def test_it_stores_every_score_bit_for_bit():
    collection = punks_like(n=60)
    analytics.compute(collection)

    assert stored_scores(collection) == expected(computed_scores(collection))


def test_it_rewrites_exactly_the_scores_that_changed():
    collection = punks_like(n=60)
    analytics.compute(collection)
    tokens = list(Token.objects.filter(collection=collection).order_by("pk"))
    drifted = {
        tokens[0].pk: {"rarity_rank": None},
        tokens[1].pk: {"rarity_score": math.nextafter(tokens[1].rarity_score, math.inf)},
        tokens[2].pk: {"ic_rank": tokens[2].ic_rank + 1, "ic_score": None},
    }
    for pk, fields in drifted.items():
        Token.objects.filter(pk=pk).update(**fields)

    changed = changed_scores(computed_scores(collection), load(collection).tokens)
    assert sorted(changed.index) == sorted(drifted)

    analytics.compute(collection)
    assert stored_scores(collection) == expected(computed_scores(collection))


def test_it_rewrites_every_rank_when_every_rank_changed():
    collection = punks_like(n=60)
    analytics.compute(collection)
    Token.objects.filter(collection=collection).update(
        rarity_score=None, rarity_rank=None, ic_score=None, ic_rank=None
    )

    analytics.compute(collection)

    stored = stored_scores(collection)
    assert stored == expected(computed_scores(collection))
    assert all(None not in row for row in stored.values())


def test_it_writes_nothing_when_the_statistics_fail(monkeypatch):
    collection = punks_like(n=20)

    def broken(*args):
        raise RuntimeError("statistics failed")

    monkeypatch.setattr(analytics, "build", broken)
    with pytest.raises(RuntimeError, match="statistics failed"):
        analytics.compute(collection)

    collection.refresh_from_db()
    assert collection.analytics_version is None
    assert set(stored_scores(collection).values()) == {(None, None, None, None)}


def test_it_ignores_pairs_that_cross_collections():
    collection = make_collection(
        "mine", [{"traits": [("hat", "cap")]}, {"traits": [("hat", "crown")]}]
    )
    other = make_collection("other", [{"traits": [("hat", "cap")]}])
    # A token of the other collection linked to a trait of this one, and the reverse.
    TokenTrait.objects.create(
        token=Token.objects.get(collection=other),
        trait=Trait.objects.get(collection=collection, value="crown"),
    )
    TokenTrait.objects.create(
        token=Token.objects.filter(collection=collection).first(),
        trait=Trait.objects.get(collection=other, value="cap"),
    )

    result = analytics.compute(collection)

    assert result["traits"]["rarest"][0]["count"] == 1
    assert {t.value: t.count for t in Trait.objects.filter(collection=collection)} == {
        "cap": 1,
        "crown": 1,
    }
    assert Collection.objects.get(pk=collection.pk).analytics["summary"]["trait_values"] == 2
