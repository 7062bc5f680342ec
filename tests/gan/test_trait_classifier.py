import io
import json
import zipfile

import numpy as np
import pytest

from gan_app.gan.features import resize_images
from gan_app.gan.trait_classifier import (
    NONE,
    TraitClassifier,
    TraitDataError,
    TraitVocabulary,
    input_size,
    normalize_traits,
    to_attributes,
    trait_distributions,
    traits_fingerprint,
)
from tests.gan.trait_images import draw_collection

SMALL = {
    "image_size": 16,
    "epochs": 12,
    "width": 8,
    "feature_dim": 32,
    "learning_rate": 3e-3,
    "seed": 0,
}


@pytest.fixture(scope="module")
def collection():
    return draw_collection(240, seed=1)


@pytest.fixture(scope="module")
def classifier(collection):
    images, traits = collection
    return TraitClassifier.fit(images, traits, **SMALL)


def test_it_learns_traits_drawn_on_the_images(classifier):
    metrics = classifier.metrics

    assert metrics["train_count"] == 192 and metrics["heldout_count"] == 48
    assert metrics["per_type_accuracy"]["colour"] >= 0.9
    assert metrics["per_type_accuracy"]["mark"] >= 0.9
    assert metrics["majority_per_type_accuracy"]["mark"] < 0.5
    assert metrics["per_trait"]["mark"]["dot"]["recall"] >= 0.9
    assert metrics["per_trait"]["colour"][NONE]["support"] > 0


def test_it_labels_new_images_with_values_and_confidences(classifier):
    images, traits = draw_collection(40, seed=9)

    predictions = classifier.predict_traits(images)

    assert set(predictions[0]) == {"colour", "mark"}
    assert all(len(p["colour"]) <= 1 for p in predictions)
    assert all(0.5 <= v["confidence"] <= 1 for p in predictions for v in p["mark"])
    right = [
        {v["value"] for v in p["mark"]} == {value for kind, value in truth if kind == "mark"}
        for p, truth in zip(predictions, traits, strict=True)
    ]
    assert np.mean(right) >= 0.9
    attributes = to_attributes(predictions[0])
    assert {a["trait_type"] for a in attributes} <= {"colour", "mark"}
    assert len(attributes) == len(predictions[0]["colour"]) + len(predictions[0]["mark"])
    assert to_attributes({"colour": [{"value": "red", "confidence": 0.91}], "mark": []}) == [
        {"trait_type": "colour", "value": "red", "confidence": 0.91}
    ]


def test_it_trains_the_same_network_twice_with_one_seed():
    images, traits = draw_collection(60, seed=2)

    first, second = (
        TraitClassifier.fit(images, traits, **{**SMALL, "epochs": 2}) for _ in range(2)
    )

    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.metrics == second.metrics


def test_it_saves_and_loads_one_file(tmp_path, collection, classifier):
    images, traits = collection
    path = tmp_path / "punks.classifier.zip"

    classifier.save(path)
    loaded = TraitClassifier.load(path)

    np.testing.assert_allclose(loaded.features(images[:8]), classifier.features(images[:8]))
    assert loaded.predict_traits(images[:8]) == classifier.predict_traits(images[:8])
    assert loaded.metrics == json.loads(json.dumps(classifier.metrics))
    assert loaded.fingerprint == traits_fingerprint(traits)
    assert TraitClassifier.load(io.BytesIO(classifier.to_bytes())).image_size == 16
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["classifier.json", "model.weights.h5"]


def test_one_image_is_labelled_without_paying_for_a_padded_batch(collection, classifier):
    images, _ = collection
    shapes, forward = [], classifier.model.predict_on_batch
    classifier.model.predict_on_batch = lambda batch: shapes.append(batch.shape) or forward(batch)
    try:
        alone = [classifier.probabilities(images[i : i + 1]) for i in range(3)]
        together = classifier.probabilities(images[:3])
    finally:
        del classifier.model.predict_on_batch

    # The generate worker labels one image per request: it ran 16 rows (15 of them padding).
    assert shapes == [(1, 16, 16, 3)] * 6
    np.testing.assert_array_equal(np.concatenate(alone), together)


def test_pixel_art_is_read_pixel_for_pixel_at_a_whole_multiple_of_its_grid():
    images, traits = draw_collection(30, size=24, seed=4, noise=0)

    classifier = TraitClassifier.fit(images, traits, **{**SMALL, "image_size": None, "epochs": 1})

    # 24 px punks were enlarged bilinearly to 32 px, blurring one-cell traits (an earring).
    assert classifier.image_size == 48 and classifier.config["enlarge"] == "nearest"
    assert [input_size(side) for side in (12, 16, 24, 32, 64, 128)] == [36, 32, 48, 32, 32, 32]
    loaded = TraitClassifier.load(io.BytesIO(classifier.to_bytes()))
    np.testing.assert_array_equal(loaded.probabilities(images), classifier.probabilities(images))


def test_a_classifier_saved_before_whole_factor_enlarging_reads_as_it_did():
    images, traits = draw_collection(30, size=24, seed=4, noise=0)
    classifier = TraitClassifier.fit(images, traits, **{**SMALL, "image_size": 48, "epochs": 1})
    old = TraitClassifier(
        classifier.vocabulary,
        classifier.model,
        {k: v for k, v in classifier.config.items() if k != "enlarge"},
    )

    blurred = resize_images(images, 48)
    sharp = resize_images(images, 48, "nearest")

    # Sharp: each cell a 2x2 block of its own colour, never a blend of two cells.
    np.testing.assert_array_equal(sharp[:, ::2, ::2], images)
    assert not np.array_equal(blurred, sharp)
    np.testing.assert_allclose(
        old.probabilities(images), classifier.model.predict_on_batch(blurred)[1], atol=1e-5
    )
    np.testing.assert_allclose(
        classifier.probabilities(images), classifier.model.predict_on_batch(sharp)[1], atol=1e-5
    )


def test_it_refuses_a_file_that_is_not_a_classifier(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")

    with pytest.raises(TraitDataError, match="not a trait classifier file"):
        TraitClassifier.load(path)


def test_it_reads_every_trait_format_and_treats_none_as_absent():
    forms = [
        {"type": "Male", "accessory": ["Cap", "Earring"]},
        [("type", "Male"), ("accessory", "Cap"), ("accessory", "Earring")],
        [
            {"trait_type": "type", "value": "Male"},
            {"trait_type": "accessory", "value": "Cap"},
            {"trait_type": "accessory", "value": " Earring "},
            {"trait_type": "hat", "value": "None"},
        ],
    ]

    parsed = [normalize_traits(form) for form in forms]

    assert parsed[0] == parsed[1] == parsed[2]
    assert parsed[0] == {"type": frozenset({"Male"}), "accessory": frozenset({"Cap", "Earring"})}


def test_it_builds_a_vocabulary_with_none_only_for_single_valued_types():
    vocabulary = TraitVocabulary.from_traits(
        [
            {"type": "Male", "hat": "Cap", "accessory": ["Earring", "Pipe"]},
            {"type": "Female"},
        ]
    )

    by_name = vocabulary.by_name
    assert by_name["type"].values == ("Female", "Male") and not by_name["type"].multi
    assert by_name["hat"].values == ("Cap", NONE)
    assert by_name["accessory"].multi and NONE not in by_name["accessory"].values
    targets = vocabulary.encode([{"type": "Female"}])
    assert {vocabulary.labels[i] for i in np.flatnonzero(targets[0])} == {
        ("type", "Female"),
        ("hat", NONE),
    }


def test_it_names_the_image_with_bad_or_unknown_traits():
    vocabulary = TraitVocabulary.from_traits([{"type": "Male"}, {"type": "Female"}])

    with pytest.raises(TraitDataError, match="image 1: unknown value 'Alien'"):
        vocabulary.encode([{"type": "Male"}, {"type": "Alien"}])
    with pytest.raises(TraitDataError, match="image 0: a trait must be"):
        normalize_traits(["Male"], 0)
    with pytest.raises(TraitDataError, match="3 images but 2 trait sets"):
        TraitClassifier.fit(np.zeros((3, 8, 8, 3), np.uint8), [{"type": "Male"}] * 2)


def test_it_spreads_multi_valued_traits_over_their_occurrences():
    vocabulary = TraitVocabulary.from_traits([{"a": ["x", "y"]}, {"a": "x"}, {}])

    distribution = trait_distributions(vocabulary, vocabulary.value_sets([{"a": ["x", "y"]}, {}]))

    assert distribution == {"a": {"x": 1 / 3, "y": 1 / 3, NONE: 1 / 3}}


def test_it_normalises_its_convolutions_and_loads_files_saved_before_that(tmp_path):
    images, traits = draw_collection(60, seed=3)
    normalised = TraitClassifier.fit(images, traits, **{**SMALL, "epochs": 2})
    plain = TraitClassifier.fit(images, traits, **{**SMALL, "epochs": 2, "batch_norm": False})
    path = tmp_path / "older.classifier.zip"
    plain.save(path)
    # A file written before batch normalisation existed: its config does not name it.
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("classifier.json"))
        weights = archive.read("model.weights.h5")
    del manifest["config"]["batch_norm"]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("classifier.json", json.dumps(manifest))
        archive.writestr("model.weights.h5", weights)

    older = TraitClassifier.load(path)

    def normalisations(classifier):
        layers = classifier.model.layers
        return sum(type(layer).__name__ == "BatchNormalization" for layer in layers)

    assert normalised.config["batch_norm"] is True and normalisations(normalised) == 6
    assert normalisations(older) == 0
    np.testing.assert_array_equal(older.probabilities(images[:8]), plain.probabilities(images[:8]))
    loaded = TraitClassifier.load(io.BytesIO(normalised.to_bytes()))
    np.testing.assert_array_equal(
        loaded.probabilities(images[:8]), normalised.probabilities(images[:8])
    )
