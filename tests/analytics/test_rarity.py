"""rarity.py on hand-computed examples (pure: no database)."""

import math

import numpy as np
import pandas as pd
import pytest

from collections_app.analytics import rarity


def pairs_of(tokens, records):
    return rarity.TraitPairs.from_records(tokens, records)


# Four tokens, two trait types, one token without traits:
#   t1 hat=cap eyes=blue | t2 hat=cap eyes=green | t3 hat=crown | t4 (nothing)
SMALL = [
    ("t1", "hat", "cap"),
    ("t1", "eyes", "blue"),
    ("t2", "hat", "cap"),
    ("t2", "eyes", "green"),
    ("t3", "hat", "crown"),
]
SMALL_TOKENS = ["t1", "t2", "t3", "t4"]


def test_it_scores_rarity_tools_with_missing_types_and_trait_count():
    scores = rarity.score_collection(pairs_of(SMALL_TOKENS, SMALL))

    # N / count per trait, per missing type and for the trait count (2, 2, 1, 0 traits).
    assert scores.loc["t1", "rarity_score"] == pytest.approx(4 / 2 + 4 / 1 + 4 / 2)
    assert scores.loc["t2", "rarity_score"] == pytest.approx(4 / 2 + 4 / 1 + 4 / 2)
    assert scores.loc["t3", "rarity_score"] == pytest.approx(4 / 1 + 4 / 2 + 4 / 1)
    assert scores.loc["t4", "rarity_score"] == pytest.approx(4 / 1 + 4 / 2 + 4 / 1)
    assert scores["rarity_rank"].to_dict() == {"t1": 3, "t2": 3, "t3": 1, "t4": 1}
    assert scores["trait_count"].to_dict() == {"t1": 2, "t2": 2, "t3": 1, "t4": 0}


def test_it_scores_information_content_normalised_by_collection_entropy():
    scores = rarity.score_collection(pairs_of(SMALL_TOKENS, SMALL))

    # Each type (hat, eyes, trait count) has probabilities 1/2, 1/4, 1/4: 1.5 bits each.
    entropy = 3 * 1.5
    assert scores.loc["t1", "ic_score"] == pytest.approx((1 + 2 + 1) / entropy)
    assert scores.loc["t3", "ic_score"] == pytest.approx((2 + 1 + 2) / entropy)
    assert scores.loc["t4", "ic_score"] == pytest.approx((2 + 1 + 2) / entropy)
    # Unique attributes sort first: t3 has two (crown, trait count 1), the others one each.
    # t4 comes next with t3's very score, so it shares t3's rank (the package does the same).
    assert scores["unique_traits"].to_dict() == {"t1": 1, "t2": 1, "t3": 2, "t4": 1}
    assert scores["ic_rank"].to_dict() == {"t3": 1, "t4": 1, "t1": 3, "t2": 3}


def test_it_sums_every_value_of_a_multi_valued_type():
    records = [("a", "acc", "earring"), ("a", "acc", "hat"), ("b", "acc", "earring")]
    pairs = pairs_of(["a", "b", "c"], records)
    scores = rarity.score_collection(pairs)

    assert pairs.multi_valued_types() == {"acc"}
    # rarity.tools: each held value, or the missing category, plus the trait count.
    assert scores.loc["a", "rarity_score"] == pytest.approx(3 / 2 + 3 / 1 + 3 / 1)
    assert scores.loc["b", "rarity_score"] == pytest.approx(3 / 2 + 3 / 1)
    assert scores.loc["c", "rarity_score"] == pytest.approx(3 / 1 + 3 / 1)
    # OpenRarity: one binary attribute per value (acc[earring], acc[hat]), Null where absent.
    h = (
        -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3)) * 2  # two binary attributes
        + math.log2(3)  # trait counts 2, 1, 0: one token each
    )
    log = math.log2
    assert scores.loc["a", "ic_score"] == pytest.approx((log(3 / 2) + log(3) + log(3)) / h)
    assert scores.loc["b", "ic_score"] == pytest.approx((log(3 / 2) + log(3 / 2) + log(3)) / h)
    assert scores.loc["c", "ic_score"] == pytest.approx((log(3) + log(3 / 2) + log(3)) / h)


def test_it_maps_multi_valued_types_to_one_attribute_per_value_for_open_rarity():
    records = [("a", "Type", "Male"), ("a", "acc", "Earring"), ("a", "acc", "Hat")]
    records.append(("b", "type", "Female"))
    attributes = rarity.open_rarity_attributes(pairs_of(["a", "b"], records))

    assert attributes == {
        "a": {"type": "male", "acc[earring]": "earring", "acc[hat]": "hat"},
        "b": {"type": "female"},
    }


def test_it_compares_types_and_values_case_and_space_insensitively_and_counts_repeats_once():
    records = [("x", "Hat", "Cap "), ("x", "hat", "cap"), ("y", " HAT", "CAP"), ("z", "hat", "top")]
    pairs = pairs_of(["x", "y", "z"], records)
    frequencies = rarity.TraitFrequencies.from_pairs(pairs)

    assert frequencies.count("hat", "cap") == 2
    assert frequencies.missing == {"hat": 0}
    assert pairs.multi_valued_types() == frozenset()


def test_it_keeps_an_explicit_none_value_apart_from_a_missing_type_and_out_of_the_trait_count():
    records = [("a", "hat", "None"), ("b", "hat", "cap")]
    scores = rarity.score_collection(pairs_of(["a", "b", "c"], records))

    assert scores["trait_count"].to_dict() == {"a": 0, "b": 1, "c": 0}
    # a: hat=none (1 of 3) + trait count 0 (2 of 3); c: hat missing (1 of 3) + the same count.
    assert scores.loc["a", "rarity_score"] == pytest.approx(3 / 1 + 3 / 2)
    assert scores.loc["c", "rarity_score"] == pytest.approx(3 / 1 + 3 / 2)


def test_it_ranks_ties_alike_whatever_order_the_tokens_come_in():
    scores = np.array([5.0, 7.0, 5.0 + 1e-12, 7.0, 1.0])
    ranks = rarity.rank_scores(scores)
    shuffled = [4, 2, 0, 3, 1]

    assert ranks.tolist() == [3, 1, 3, 1, 5]
    assert rarity.rank_scores(scores[shuffled]).tolist() == ranks[shuffled].tolist()


def test_it_ranks_by_unique_attributes_before_score_for_open_rarity():
    ranks = rarity.rank_scores([9.0, 2.0, 3.0], unique_counts=[0, 1, 1])

    assert ranks.tolist() == [3, 2, 1]


def test_it_gives_a_single_token_score_zero_information_and_rank_one():
    scores = rarity.score_collection(pairs_of(["only"], [("only", "hat", "cap")]))

    assert scores.loc["only", "ic_score"] == 0
    assert scores.loc["only", "ic_rank"] == 1
    assert scores.loc["only", "rarity_rank"] == 1


def test_it_handles_an_empty_collection():
    scores = rarity.score_collection(pairs_of([], []))

    assert scores.empty
    assert list(scores.columns) == [
        "trait_count",
        "unique_traits",
        "rarity_score",
        "rarity_rank",
        "ic_score",
        "ic_rank",
    ]


def test_it_scores_new_tokens_against_reference_frequencies():
    reference = rarity.TraitFrequencies.from_pairs(pairs_of(SMALL_TOKENS, SMALL))
    generated = pairs_of(["g1", "g2"], [("g1", "hat", "cap"), ("g1", "eyes", "blue")])
    generated_scores = reference.score(generated)
    own = rarity.score_collection(pairs_of(SMALL_TOKENS, SMALL))

    # g1 has t1's traits: same scores. g2 has nothing, like t4.
    assert generated_scores.loc["g1", "rarity_score"] == pytest.approx(
        own.loc["t1", "rarity_score"]
    )
    assert generated_scores.loc["g1", "ic_score"] == pytest.approx(own.loc["t1", "ic_score"])
    assert generated_scores.loc["g2", "ic_score"] == pytest.approx(own.loc["t4", "ic_score"])


def test_it_counts_a_value_the_reference_never_saw_as_seen_once():
    reference = rarity.TraitFrequencies.from_pairs(pairs_of(SMALL_TOKENS, SMALL))
    scores = reference.score(pairs_of(["g"], [("g", "hat", "laser"), ("g", "eyes", "blue")]))

    assert scores.loc["g", "rarity_score"] == pytest.approx(4 / 1 + 4 / 1 + 4 / 2)
    assert scores.loc["g", "unique_traits"] == 2


def test_it_round_trips_frequencies_through_json_safe_dicts():
    import json

    reference = rarity.TraitFrequencies.from_pairs(pairs_of(SMALL_TOKENS, SMALL))
    restored = rarity.TraitFrequencies.from_dict(json.loads(json.dumps(reference.to_dict())))
    probe = pairs_of(["g"], [("g", "hat", "crown")])

    assert restored.score(probe).equals(reference.score(probe))
    assert restored.entropy() == pytest.approx(4.5)


def test_it_builds_the_same_pairs_from_database_codes_as_from_strings():
    frame = pd.DataFrame(SMALL, columns=["token", "trait_type", "value"])
    from_frame = rarity.TraitPairs.from_frame(SMALL_TOKENS, frame)
    trait_ids = [10, 11, 12, 13]
    table = {("hat", "cap"): 10, ("eyes", "blue"): 11, ("eyes", "green"): 12, ("hat", "crown"): 13}
    from_codes = rarity.TraitPairs.from_codes(
        SMALL_TOKENS,
        np.array([t for t, _, _ in SMALL], dtype=object),
        np.array([table[(k, v)] for _, k, v in SMALL]),
        trait_ids,
        ["hat", "eyes", "eyes", "hat"],
        ["cap", "blue", "green", "crown"],
    )

    assert rarity.score_collection(from_codes).equals(rarity.score_collection(from_frame))


def test_it_builds_the_same_pairs_from_records_as_from_a_frame():
    # Case and space variants, repeats, values that are not strings, an empty value, tokens
    # out of order and one without traits: every way two spellings can meet.
    records = [
        (3, "Hat", " Cap"),
        (1, "eyes", "Blue"),
        (3, "hat", "cap"),
        (1, "Eyes ", "green"),
        (2, "level", 7),
        (2, "hat", "none"),
        (1, "mouth", ""),
        (3, "eyes", "blue"),
        (2, "level", "7"),
    ]
    tokens = [1, 2, 3, 4]
    frame = pd.DataFrame(records, columns=["token", "trait_type", "value"])
    expected = rarity.TraitPairs.from_frame(tokens, frame)

    got = rarity.TraitPairs.from_records(tokens, records)

    assert got.pos.tolist() == expected.pos.tolist()
    assert got.code.tolist() == expected.code.tolist()
    assert got.trait_type.tolist() == expected.trait_type.tolist()
    assert got.value.tolist() == expected.value.tolist()
    assert rarity.score_collection(got).equals(rarity.score_collection(expected))
    empty = rarity.TraitPairs.from_records(tokens, [])
    assert empty.token_count == 4 and not len(empty.pos) and not len(empty.trait_type)


def test_a_value_of_none_from_records_reads_as_the_value_none():
    # A DataFrame turned None into NaN, whose code decoded as another type's last value.
    with_none = rarity.TraitPairs.from_records([1, 2], [(1, "hat", None), (2, "eyes", "blue")])
    spelled = rarity.TraitPairs.from_records([1, 2], [(1, "hat", "none"), (2, "eyes", "blue")])

    assert list(zip(with_none.trait_type, with_none.value, strict=True)) == [
        ("eyes", "blue"),
        ("hat", "none"),
    ]
    assert rarity.score_collection(with_none).equals(rarity.score_collection(spelled))


def test_it_refuses_pairs_for_unknown_tokens():
    with pytest.raises(ValueError, match="not in the collection"):
        pairs_of(["a"], [("b", "hat", "cap")])
