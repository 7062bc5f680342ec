"""Our OpenRarity ranks equal the open-rarity package's on the same input.

The package models one value per trait type; both sides get multi-valued types through the
same mapping (`rarity.open_rarity_attributes`: one attribute per value, ``type[value]``).
"""

import random

import pytest
from open_rarity import Collection as ORCollection
from open_rarity import RarityRanker
from open_rarity import Token as ORToken

from collections_app.analytics import compute as analytics
from collections_app.analytics import rarity
from collections_app.models import Token

from .factory import make_collection, punks_like


def package_ranks(pairs):
    attributes = rarity.open_rarity_attributes(pairs)
    tokens = [
        ORToken.from_erc721("0x" + "ab" * 20, int(token), attributes[token])
        for token in pairs.tokens
    ]
    ranked = RarityRanker.rank_collection(ORCollection(tokens))
    return {r.token.token_identifier.token_id: (r.rank, r.score) for r in ranked}


def random_records(seed):
    """Missing types, explicit "None", case variants, repeats, empty tokens, identical twins."""
    rng = random.Random(seed)
    n = rng.randint(2, 120)
    kinds = {
        "Hat": ["Cap", "cap ", "None", "Beanie", "Crown"],
        "eyes": ["Blue", "Green", ""],
        "accessory": ["a", "b", "c", "d", "e"],
        "background": ["x", "y"],
    }
    records = []
    for token in range(n):
        if rng.random() < 0.05:
            continue
        if token and rng.random() < 0.1:
            records += [(token, t, v) for o, t, v in records if o == token - 1]
            continue
        for trait_type, values in kinds.items():
            if rng.random() < 0.3:
                continue
            if trait_type == "accessory":
                records += [(token, trait_type, v) for v in rng.sample(values, rng.randint(0, 3))]
            else:
                shown = trait_type if rng.random() < 0.8 else f" {trait_type.upper()}"
                records.append((token, shown, rng.choice(values)))
    return list(range(n)), records


@pytest.mark.parametrize("seed", range(25))
def test_it_ranks_like_the_open_rarity_package(seed):
    tokens, records = random_records(seed)
    pairs = rarity.TraitPairs.from_records(tokens, records)
    ours = rarity.score_collection(pairs)
    theirs = package_ranks(pairs)

    assert {t: int(ours.loc[t, "ic_rank"]) for t in tokens} == {t: theirs[t][0] for t in tokens}
    for token in tokens:
        assert ours.loc[token, "ic_score"] == pytest.approx(theirs[token][1], rel=1e-12, abs=1e-12)


@pytest.mark.django_db
def test_it_writes_the_package_ranks_to_token_rows():
    collection = punks_like(n=60)
    analytics.compute(collection)

    tokens = list(collection.tokens.order_by("token_number"))
    records = [
        (t.token_number, trait.trait_type, trait.value) for t in tokens for trait in t.traits.all()
    ]
    pairs = rarity.TraitPairs.from_records([t.token_number for t in tokens], records)
    theirs = package_ranks(pairs)

    assert {t.token_number: t.ic_rank for t in tokens} == {k: v[0] for k, v in theirs.items()}
    assert "accessory" in collection.analytics["rarity"]["multi_valued_types"]


@pytest.mark.django_db
def test_it_matches_the_package_when_every_token_is_identical():
    collection = make_collection("clones", [{"traits": [("hat", "cap")]} for _ in range(5)])
    analytics.compute(collection)

    assert set(Token.objects.values_list("ic_rank", flat=True)) == {1}
    assert set(Token.objects.values_list("rarity_rank", flat=True)) == {1}
