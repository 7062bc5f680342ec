import numpy as np
import pytest
from scipy.stats import ortho_group

from gan_app.gan.metrics import (
    MetricError,
    fid_from_features,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    mmd2_unbiased,
    real_sqrtm,
    total_variation,
)


def closed_form_fid(mu1, eig1, mu2, eig2):
    """FID of Gaussians whose covariances share eigenvectors (so they commute)."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum(eig1 + eig2 - 2 * np.sqrt(eig1 * eig2)))


def test_it_matches_the_closed_form_for_commuting_covariances():
    rng = np.random.default_rng(0)
    d = 6
    q = ortho_group.rvs(d, random_state=1)
    eig1, eig2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)

    fid = frechet_distance(mu1, q @ np.diag(eig1) @ q.T, mu2, q @ np.diag(eig2) @ q.T)

    assert fid == pytest.approx(closed_form_fid(mu1, eig1, mu2, eig2), rel=1e-9)


def test_it_estimates_the_fid_of_two_sampled_gaussians():
    rng = np.random.default_rng(1)
    eig1, eig2 = np.array([1.0, 2.0, 0.5]), np.array([4.0, 1.0, 0.5])
    x = rng.normal(size=(40000, 3)) * np.sqrt(eig1)
    y = rng.normal(size=(40000, 3)) * np.sqrt(eig2) + 1.0

    fid = fid_from_features(x, y)

    assert fid == pytest.approx(closed_form_fid(np.zeros(3), eig1, np.ones(3), eig2), rel=0.03)


def test_it_gives_zero_for_identical_sets_and_is_symmetric():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 16)), rng.normal(size=(200, 16)) * 1.5 + 0.2

    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fid_from_features(x, y) == pytest.approx(fid_from_features(y, x), rel=1e-9)
    assert fid_from_features(x, y) > 0.5


def test_it_stays_finite_with_fewer_samples_than_dimensions():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 40)), rng.normal(size=(6, 40)) + 3.0

    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(fid_from_features(x, y))
    assert fid_from_features(x, y) > fid_from_features(x, rng.normal(size=(6, 40)))


def test_it_rejects_a_square_root_with_a_large_imaginary_part():
    with pytest.raises(MetricError, match="imaginary component of 1"):
        real_sqrtm(np.diag([-1.0, 1.0]))


def test_it_rejects_a_covariance_that_is_not_positive_semi_definite():
    with pytest.raises(MetricError, match="sigma2 is not positive semi-definite"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))


def test_it_rejects_features_of_different_widths():
    with pytest.raises(MetricError, match="feature dimensions differ: 4 and 5"):
        fid_from_features(np.zeros((10, 4)), np.zeros((10, 5)))


def test_it_estimates_mmd_without_bias_for_one_distribution():
    rng = np.random.default_rng(4)
    draws = [mmd2_unbiased(rng.normal(size=(20, 8)), rng.normal(size=(20, 8))) for _ in range(400)]
    standard_error = np.std(draws) / np.sqrt(len(draws))

    assert abs(np.mean(draws)) < 3 * standard_error
    assert min(draws) < 0 < max(draws)  # an unbiased estimate straddles zero


def test_it_gives_a_positive_kid_for_different_distributions():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.5

    same_mean, _ = kernel_inception_distance(x, rng.normal(size=(200, 8)), 50, 100)
    kid_mean, kid_std = kernel_inception_distance(x, y, num_subsets=50, subset_size=100)

    assert kid_mean > 5 * kid_std > 0
    assert kid_mean > 10 * abs(same_mean)


def test_it_draws_the_same_kid_subsets_for_the_same_seed():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(60, 4))

    assert kernel_inception_distance(x, y, 10, 20, seed=3) == kernel_inception_distance(
        x, y, 10, 20, seed=3
    )


def test_it_scores_one_for_constant_predictions_and_k_for_confident_uniform_ones():
    k = 10
    constant = np.tile(np.eye(k)[3], (100, 1))
    confident = np.eye(k)[np.arange(100) % k]  # every split holds each class equally

    assert inception_score(constant, splits=5) == pytest.approx((1.0, 0.0))
    assert inception_score(np.full((100, k), 1 / k), splits=5)[0] == pytest.approx(1.0)
    assert inception_score(confident, splits=5) == pytest.approx((float(k), 0.0))


def test_it_rejects_rows_that_are_not_probabilities():
    with pytest.raises(MetricError, match="sum to 1"):
        inception_score(np.ones((4, 3)))


def test_it_measures_total_variation_over_the_union_of_outcomes():
    assert total_variation({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0.0
    assert total_variation({"a": 1.0}, {"b": 1.0}) == 1.0
    assert total_variation({"a": 0.75, "b": 0.25}, {"a": 0.25, "c": 0.75}) == pytest.approx(0.75)
