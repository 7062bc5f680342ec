"""Precision/recall/density/coverage, valid-token rate, palette conformity and diversity."""

import numpy as np
import pytest

from gan_app.gan.metrics import (
    MetricError,
    collection_palette,
    diversity_ratio,
    mean_pairwise_distance,
    palette_conformity,
    precision_recall_density_coverage,
    valid_token_rate,
)


def cloud(seed, n=200, d=8, shift=0.0):
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def test_it_scores_a_sample_of_the_same_distribution_near_one():
    figures = precision_recall_density_coverage(cloud(0), cloud(1), k=5)
    assert figures["precision"] > 0.85
    assert figures["recall"] > 0.85
    assert figures["coverage"] > 0.85
    assert 0.7 < figures["density"] < 1.3


def test_it_scores_identical_sets_perfectly():
    real = cloud(0)
    figures = precision_recall_density_coverage(real, real.copy(), k=3)
    assert figures["precision"] == figures["recall"] == figures["coverage"] == 1.0


def test_it_scores_disjoint_sets_zero():
    figures = precision_recall_density_coverage(cloud(0), cloud(1, shift=100.0), k=5)
    assert figures == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_it_separates_fidelity_from_diversity_on_a_collapsed_sample():
    real = cloud(0)
    collapsed = np.repeat(real[:1], 50, axis=0) + 1e-3 * cloud(2, n=50)
    figures = precision_recall_density_coverage(real, collapsed, k=5)
    assert figures["precision"] == 1.0  # every fake looks like a real sample...
    assert figures["recall"] < 0.1  # ...but almost none of the variety is there
    assert figures["coverage"] < 0.1


def test_it_computes_in_chunks_the_same_as_at_once(monkeypatch):
    real, fake = cloud(0, n=300), cloud(1, n=250, shift=0.5)
    whole = precision_recall_density_coverage(real, fake, k=4)
    monkeypatch.setattr("gan_app.gan.metrics._DISTANCE_CHUNK", 7)
    assert precision_recall_density_coverage(real, fake, k=4) == pytest.approx(whole)


def test_it_refuses_sets_smaller_than_k():
    with pytest.raises(MetricError, match="more than 5 rows"):
        precision_recall_density_coverage(cloud(0, n=5), cloud(1), k=5)


def test_it_counts_a_token_valid_only_when_every_trait_type_is_confident():
    probabilities = {
        "type": np.array([[0.95, 0.05], [0.5, 0.5], [0.99, 0.01], [0.2, 0.8]]),
        "eyes": np.array([[0.1, 0.9], [0.97, 0.03], [0.6, 0.4], [0.05, 0.95]]),
    }
    # Row 0: both sure; row 1: type unsure; row 2: eyes unsure; row 3: type 0.8 < 0.9.
    assert valid_token_rate(probabilities, threshold=0.9) == 0.25
    assert valid_token_rate(probabilities, threshold=0.8) == 0.5


def test_it_refuses_a_bad_threshold():
    with pytest.raises(MetricError, match="threshold"):
        valid_token_rate({"type": np.array([[1.0]])}, threshold=1.5)


def test_it_finds_a_collections_palette_most_used_first():
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[:, :2] = (255, 0, 0)
    images[0, 3, 3] = (0, 0, 255)
    palette = collection_palette(images)
    assert palette.tolist() == [[255, 0, 0], [0, 0, 0], [0, 0, 255]]  # 16, 15, 1 pixels
    assert collection_palette(images, max_colours=2).tolist() == [[255, 0, 0], [0, 0, 0]]


def test_it_measures_the_share_of_pixels_in_the_palette():
    images = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    images[0, 0, 0] = (10, 20, 30)
    assert palette_conformity(images, [[0, 0, 0]]) == 0.75
    assert palette_conformity(images, [[0, 0, 0], [10, 20, 30]]) == 1.0


def test_it_ignores_the_colour_of_transparent_pixels():
    images = np.zeros((1, 1, 2, 4), dtype=np.uint8)
    images[0, 0, 0] = (200, 100, 50, 0)  # invisible: colour does not matter
    images[0, 0, 1] = (0, 0, 0, 255)
    assert palette_conformity(images, [[0, 0, 0]]) == 1.0


def test_it_rates_diversity_under_fixed_traits_against_free_sampling():
    free = cloud(0, n=100)
    same_image = [np.zeros((10, 8)) + i for i in range(3)]
    assert diversity_ratio(same_image, free) == 0.0
    assert diversity_ratio([cloud(1, n=100)], free) == pytest.approx(1.0, abs=0.1)
    assert mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0]])) == 5.0


def test_it_takes_per_type_confidences_as_well():
    confidences = {"type": np.array([0.95, 0.99]), "eyes": np.array([0.92, 0.5])}
    assert valid_token_rate(confidences) == 0.5
