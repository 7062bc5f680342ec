import json

import keras
import numpy as np
import pytest

from gan_app.gan.evaluation import evaluate_generator, select_best_checkpoint
from gan_app.gan.features import INCEPTION_WEIGHTS_FILENAME, InceptionFeatures
from gan_app.gan.trait_classifier import TraitClassifier
from tests.gan.trait_images import draw_collection

FAST = {"kid_subsets": 10, "kid_subset_size": 50, "is_splits": 2}


@pytest.fixture(scope="module")
def collection():
    return draw_collection(120, seed=5)


@pytest.fixture(scope="module")
def untrained_classifier(collection):
    images, traits = collection
    # epochs=0: randomly initialised features; the pipeline must not depend on training.
    return TraitClassifier.fit(images, traits, image_size=16, epochs=0, width=8, feature_dim=32)


@pytest.fixture(scope="module")
def tiny_extractor():
    """Stands in for Inception-v3 (pool features + class probabilities) at a size CPUs like."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    pool = keras.layers.GlobalAveragePooling2D()(x)
    probabilities = keras.layers.Dense(5, activation="softmax")(pool)
    return InceptionFeatures(keras.Model(inputs, [pool, probabilities]), input_size=16)


def test_it_reports_every_figure_beside_its_real_baseline(
    collection, untrained_classifier, tiny_extractor
):
    images, traits = collection
    generated, _ = draw_collection(60, size=24, seed=6)

    report = evaluate_generator(
        images, traits, generated, untrained_classifier, inception=tiny_extractor, **FAST
    )

    assert json.loads(json.dumps(report)) == report
    assert report["counts"] == {"real": 120, "generated": 60, "reference": 60, "compared": 60}
    for side in (report, report["baseline"]):
        assert set(side["inception"]) == {
            "fid", "kid_mean", "kid_std", "is_mean", "is_std", "input_size",
            "precision", "recall", "density", "coverage",
        }  # fmt: skip
        assert side["domain"]["fid"] >= 0 and "kid_std" in side["domain"]
        assert 0 <= side["domain"]["precision"] <= 1 and 0 <= side["domain"]["coverage"] <= 1
        assert 0 <= side["quality"]["valid_token_rate"] <= 1
        assert set(side["traits"]["tv_per_type"]) == {"colour", "mark"}
        assert 0 <= side["traits"]["tv_mean"] <= 1
        assert set(side["memorisation"]) == {"pixel", "domain"}
    assert 1 <= report["inception"]["is_mean"] <= 5
    assert report["memorisation"]["pixel"]["near_copy_share"] == 0.0
    assert report["baseline"]["memorisation"]["pixel"]["nn_median_relative"] == 1.0
    assert report["classifier"]["heldout_count"] == 24
    assert set(report["traits"]["generated_distribution"]["colour"]) <= {
        "red", "green", "blue", "none"
    }  # fmt: skip


def test_it_orders_noise_copies_and_new_images_sensibly(collection, untrained_classifier):
    images, traits = collection
    new, _ = draw_collection(60, seed=7)
    noise = np.random.default_rng(0).integers(0, 256, (60, 16, 16, 3), dtype=np.uint8)

    reports = {
        name: evaluate_generator(images, traits, generated, untrained_classifier, **FAST)
        for name, generated in (("new", new), ("noise", noise), ("copies", images[:60]))
    }

    baseline_fid = reports["new"]["baseline"]["domain"]["fid"]
    assert reports["noise"]["domain"]["fid"] > 5 * max(
        reports["new"]["domain"]["fid"], baseline_fid
    )
    assert reports["noise"]["domain"]["kid_mean"] > reports["new"]["domain"]["kid_mean"]
    assert reports["copies"]["memorisation"]["pixel"]["near_copy_share"] == 1.0
    assert reports["copies"]["memorisation"]["domain"]["near_copy_share"] == 1.0
    assert reports["new"]["memorisation"]["pixel"]["near_copy_share"] == 0.0


def test_it_explains_why_inception_figures_are_missing(collection, untrained_classifier):
    images, traits = collection

    report = evaluate_generator(
        images, traits, images[:10], untrained_classifier, inception_weights="/no/such.h5", **FAST
    )

    assert "'/no/such.h5' does not exist" in report["inception"]["unavailable"]
    assert INCEPTION_WEIGHTS_FILENAME in report["baseline"]["inception"]["unavailable"]
    assert report["domain"]["fid"] >= 0


def test_it_warns_when_the_classifier_was_trained_on_other_images(untrained_classifier):
    other, traits = draw_collection(20, seed=8)

    report = evaluate_generator(other, traits, other[:10], untrained_classifier, **FAST)

    assert any("different set of real images" in w for w in report["warnings"])


def test_it_refuses_mismatched_inputs(collection, untrained_classifier):
    images, traits = collection

    with pytest.raises(ValueError, match="120 real images but 119 trait sets"):
        evaluate_generator(images, traits[:-1], images[:4], untrained_classifier)
    with pytest.raises(ValueError, match="generated images must be uint8"):
        evaluate_generator(images, traits, images[:4] / 255, untrained_classifier)


def report(fid, tv=0.1, near_copies=0.0):
    return {
        "domain": {"fid": fid},
        "traits": {"tv_mean": tv},
        "memorisation": {"pixel": {"near_copy_share": near_copies}},
    }


def test_it_recommends_the_lowest_domain_fid():
    best = select_best_checkpoint([(1, report(9.0)), (2, report(3.0)), (3, report(5.0))])

    assert best["epoch"] == 2 and best["ranking"] == [2, 3, 1]
    assert "lowest domain FID (3" in best["reason"]


def test_it_breaks_near_ties_by_trait_distance_then_later_epoch():
    reports = [(1, report(3.00, tv=0.3)), (2, report(3.05, tv=0.1)), (3, report(3.05, tv=0.1))]

    assert select_best_checkpoint(reports)["epoch"] == 3


def test_it_passes_over_checkpoints_that_copy_training_images():
    reports = [(1, report(2.0, near_copies=0.5)), (2, report(4.0))]

    best = select_best_checkpoint(reports)

    assert best["epoch"] == 2 and "1 checkpoint(s) left out for near-copies" in best["reason"]
    assert select_best_checkpoint([(1, report(2.0, near_copies=0.5))])["epoch"] == 1
    assert select_best_checkpoint([(1, {"domain": {}})]) is None


def test_it_reports_palette_conformity_for_pixel_art(collection, untrained_classifier):
    images, traits = collection
    palette = np.unique(images.reshape(-1, 3), axis=0)
    noise = np.random.default_rng(1).integers(0, 256, (60, 16, 16, 3), dtype=np.uint8)

    report = evaluate_generator(
        images, traits, noise, untrained_classifier, palette=palette, **FAST
    )

    assert report["baseline"]["quality"]["palette_conformity"] == 1.0
    assert report["quality"]["palette_conformity"] < 0.1
