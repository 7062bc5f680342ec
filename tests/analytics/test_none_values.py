"""What "this token lacks the trait" means: one definition for the catalog (collections_app.
traits), one vocabulary token for the ML package, mapped where the catalog's pairs leave it."""

import pytest

from collections_app.analytics import rarity
from collections_app.models import Token, TokenTrait
from collections_app.traits import NO_TRAIT, is_no_trait
from gan_app.gan.trait_classifier import NONE, TraitDataError, normalize_traits
from gan_app.generation import conditions
from tests.analytics.factory import make_collection


@pytest.mark.parametrize("value", [None, "none", "None", " NONE ", "null", "Null", "", "  "])
def test_it_reads_every_spelling_of_no_trait_alike(value):
    assert is_no_trait(value)


@pytest.mark.parametrize("value", ["Nonexistent", "0", "Cap", "nul"])
def test_it_keeps_real_values(value):
    assert not is_no_trait(value)


def test_it_keeps_null_and_blank_values_out_of_the_trait_count():
    records = [("a", "hat", "null"), ("b", "hat", ""), ("c", "hat", "cap")]
    scores = rarity.score_collection(rarity.TraitPairs.from_records(["a", "b", "c"], records))

    assert scores["trait_count"].to_dict() == {"a": 0, "b": 0, "c": 1}


@pytest.mark.django_db
def test_it_hands_the_ml_package_only_real_traits():
    make_collection(
        slug="nones",
        tokens=[
            {"traits": [("hat", "None"), ("eyes", "blue")]},
            {"traits": [("hat", "null"), ("eyes", "")]},
            {"traits": [("hat", "cap")]},
        ],
    )
    pks = list(Token.objects.filter(collection__slug="nones").order_by("pk").values_list("pk"))

    pairs = TokenTrait.pairs_for([pk for (pk,) in pks])

    assert pairs == [[("eyes", "blue")], [], [("hat", "cap")]]
    assert [normalize_traits(p) for p in pairs] == [
        {"eyes": frozenset({"blue"})},
        {},
        {"hat": frozenset({"cap"})},
    ]


def test_the_ml_package_reads_its_none_token_and_refuses_blank_values():
    assert normalize_traits({"hat": None, "eyes": "None", "mouth": "smile"}) == {
        "mouth": frozenset({"smile"})
    }
    with pytest.raises(TraitDataError, match="'hat' has a blank value"):
        normalize_traits({"hat": " "}, 3)


def test_the_web_side_trait_requests_use_the_vocabularys_none_token():
    # Pages check requests without TensorFlow; their "none" must be the worker's.
    assert conditions.NONE == NONE == NO_TRAIT
