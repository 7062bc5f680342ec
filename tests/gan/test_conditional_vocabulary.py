import json

import numpy as np
import pytest

from collections_app.demo.build import demo_tokens
from gan_app.gan.conditioning import (
    NONE,
    OTHER,
    ConditionError,
    ConditionVocabulary,
)

# 8 tokens: "type" single-valued on every token; "hat" single-valued, missing on two tokens,
# "Crown" on one only; "accessory" multi-valued, "Pipe" on one only.
TOKENS = [
    {"type": "Male", "hat": "Cap", "accessory": ["Earring", "Chain"]},
    {"type": "Male", "hat": "Cap", "accessory": ["Earring"]},
    {"type": "Female", "hat": "Beanie"},
    {"type": "Female", "hat": "Beanie", "accessory": ["Chain"]},
    {"type": "Female", "hat": "Crown", "accessory": ["Pipe", "Earring"]},
    {"type": "Male", "accessory": ["Earring"]},
    {"type": "Female", "hat": "Cap"},
    [("type", "Male"), ("hat", "None")],  # "None" means absent, as in NFT metadata
]


def test_it_builds_types_with_missing_values_and_groups_rare_ones():
    vocabulary = ConditionVocabulary.from_traits(TOKENS, min_count=2)

    assert vocabulary.choices() == {
        "accessory": ["Chain", "Earring", OTHER, NONE],
        "hat": ["Beanie", "Cap", OTHER, NONE],
        "type": ["Female", "Male"],
    }
    assert vocabulary.by_name["accessory"].multi and not vocabulary.by_name["hat"].multi
    assert vocabulary.by_name["hat"].rare == ("Crown",)
    rows = vocabulary.encode(TOKENS)
    assert vocabulary.describe(rows[4]) == {
        "accessory": ["Earring", OTHER],
        "hat": OTHER,
        "type": "Female",
    }
    assert vocabulary.describe(rows[7]) == {"accessory": [NONE], "hat": NONE, "type": "Male"}
    assert rows.sum(axis=1).tolist() == [4, 3, 3, 3, 4, 3, 3, 3]


def test_it_can_leave_rare_values_out_instead():
    vocabulary = ConditionVocabulary.from_traits(TOKENS, min_count=2, rare="exclude")

    assert vocabulary.choices()["hat"] == ["Beanie", "Cap", NONE]
    row = vocabulary.encode([TOKENS[4]])[0]
    # The crown is unspecified: no unit of "hat" is on (not even "none").
    assert vocabulary.describe(row) == {"accessory": ["Earring"], "type": "Female"}
    with pytest.raises(ConditionError, match=r"'Crown' is too rare .*left out"):
        vocabulary.check({"hat": "Crown"})


def test_it_round_trips_through_json_with_the_joint_distribution():
    vocabulary = ConditionVocabulary.from_traits(TOKENS, min_count=2)

    copy = ConditionVocabulary.from_json(json.loads(json.dumps(vocabulary.to_json())))

    assert copy == vocabulary
    assert sum(count for count, _ in copy.joint) == len(TOKENS)
    assert np.array_equal(copy.encode(TOKENS), vocabulary.encode(TOKENS))


def test_it_explains_unknown_types_and_values():
    vocabulary = ConditionVocabulary.from_traits(TOKENS, min_count=2)

    with pytest.raises(ConditionError, match=r"unknown trait type 'eyes'.*'accessory', 'hat'"):
        vocabulary.check({"eyes": "Laser"})
    with pytest.raises(ConditionError, match=r"unknown value 'Fedora'.*'Beanie', 'Cap'"):
        vocabulary.check({"hat": "Fedora"})
    with pytest.raises(ConditionError, match=r"'Crown' is too rare.*grouped as 'other'"):
        vocabulary.check({"hat": "Crown"})
    with pytest.raises(ConditionError, match="'type' takes one value"):
        vocabulary.check({"type": ["Male", "Female"]})
    with pytest.raises(ConditionError, match="'none' cannot go with other values"):
        vocabulary.check({"accessory": ["none", "Chain"]})


def test_it_reads_requests_loosely_but_canonically():
    vocabulary = ConditionVocabulary.from_traits(TOKENS, min_count=2)

    request = {"Hat": " cap ", "accessory": ["Earring", "Chain"], "type": "any"}

    assert vocabulary.check(request) == {"hat": ("Cap",), "accessory": ("Chain", "Earring")}
    assert vocabulary.condition_key(request) == "accessory=Chain+Earring;hat=Cap"
    assert vocabulary.condition_key({"type": "any"}) == ""
    assert vocabulary.condition_key(None) == ""


def test_it_fills_free_types_with_new_combinations_of_real_values_deterministically():
    traits = [t.metadata["traits"] for t in demo_tokens(size=300)]
    vocabulary = ConditionVocabulary.from_traits(traits, min_count=3)
    real = vocabulary.encode(traits).astype(bool)
    real_rows = {row.tobytes() for row in real}

    free = vocabulary.resolve({}, list(range(50)))
    asked = vocabulary.resolve({"headwear": "Cap"}, list(range(50)))

    # A training token's own combination would ask the generator for a copy of that token.
    assert not any(row.astype(bool).tobytes() in real_rows for row in free.labels)
    assert not any(row.astype(bool).tobytes() in real_rows for row in asked.labels)
    # ...but every type's values are ones a real token has.
    for row in np.concatenate([free.labels, asked.labels]).astype(bool):
        for t in vocabulary.types:
            part = vocabulary.slices[t.name]
            assert (real[:, part] == row[part]).all(axis=1).any(), t.name
    assert len({row.tobytes() for row in free.labels}) == 50
    assert all(t["headwear"] == "Cap" for t in asked.traits)
    assert np.array_equal(asked.labels, vocabulary.resolve({"headwear": "Cap"}, range(50)).labels)
    assert asked.traits[7] != vocabulary.resolve({"headwear": "Cap"}, [8]).traits[0]


def test_it_keeps_the_values_that_belong_together_when_drawing_new_combinations():
    """Hair goes with the wearer's type; background and eyes with anything. A new combination
    mixes backgrounds and eyes, never another type's hair (drawn each on its own, half would)."""
    hair = {"Male": ["Short", "Cap"], "Female": ["Long", "Bun"]}
    backgrounds, eyes = ["red", "blue", "green"], ["round", "narrow", "laser"]
    tokens = [
        {"type": kind, "hair": hair[kind][h], "background": backgrounds[b], "eyes": eyes[e]}
        for kind in ("Male", "Female")
        for h in range(2)
        for b in range(3)
        for e in range(3)
        if (h + b + e) % 2 == 0  # half the combinations: room for new ones
    ]
    vocabulary = ConditionVocabulary.from_traits(tokens)
    real = {vocabulary.encode([t])[0].astype(bool).tobytes() for t in tokens}

    drawn = vocabulary.resolve({}, list(range(200)))
    asked = vocabulary.resolve({"background": "red"}, list(range(50)))

    assert vocabulary.anchor in ("type", "hair")  # they tell each other everything
    assert all(t["hair"] in hair[t["type"]] for t in drawn.traits + asked.traits)
    assert all(t["background"] == "red" for t in asked.traits)
    new = [row.astype(bool).tobytes() not in real for row in drawn.labels]
    assert sum(new) > 150
    assert ConditionVocabulary.from_json(vocabulary.to_json()).anchor == vocabulary.anchor


def test_a_version_1_vocabulary_keeps_drawing_whole_real_tokens():
    """Generators published before version 2 draw what they always drew for a seed."""
    traits = [t.metadata["traits"] for t in demo_tokens(size=300)]
    built = ConditionVocabulary.from_traits(traits, min_count=3)
    stored = {k: v for k, v in built.to_json().items() if k != "draw"}
    old = ConditionVocabulary.from_json({**stored, "version": 1})
    real_rows = {row.tobytes() for row in built.encode(traits)}

    drawn = old.resolve({"headwear": "Cap"}, list(range(50)))

    assert built.to_json()["version"] == 2 and built.draw == "novel"
    assert old.draw == "joint" and old.to_json()["version"] == 1
    assert ConditionVocabulary.from_json(old.to_json()) == old
    # Caps occur on real tokens, so each draw is a whole real token with a cap.
    assert all(row.tobytes() in real_rows for row in drawn.labels)
    assert drawn.traits[7] == old.resolve({"headwear": "Cap"}, [7]).traits[0]
    with pytest.raises(ConditionError, match="version 1 to 2"):
        ConditionVocabulary.from_json({**stored, "version": 3})


def test_it_falls_back_to_each_types_own_distribution_for_unseen_combinations():
    vocabulary = ConditionVocabulary.from_traits(TOKENS, min_count=2)

    # No token is a Female with a cap and no accessory... and no token is Male with a Beanie.
    resolved = vocabulary.resolve({"type": "Male", "hat": "Beanie"}, list(range(20)))

    assert {t["type"] for t in resolved.traits} == {"Male"}
    assert {t["hat"] for t in resolved.traits} == {"Beanie"}
    assert len({tuple(t["accessory"]) for t in resolved.traits}) > 1


def test_it_picks_distinct_rows_for_the_sample_grid():
    vocabulary = ConditionVocabulary.from_traits(TOKENS, min_count=2)

    grid = vocabulary.grid_conditions(4)

    assert len({row.tobytes() for row in grid.labels}) == 4
    assert np.array_equal(grid.labels, vocabulary.grid_conditions(4).labels)


def test_it_refuses_traits_it_cannot_build_a_vocabulary_from():
    with pytest.raises(ConditionError, match="no traits"):
        ConditionVocabulary.from_traits([{}, {}])
    with pytest.raises(ConditionError, match="no tokens"):
        ConditionVocabulary.from_traits([])
    with pytest.raises(ConditionError, match="rare must be"):
        ConditionVocabulary.from_traits(TOKENS, rare="drop")
