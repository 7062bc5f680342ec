import io

import numpy as np
import pytest

from gan_app.gan.memorisation import (
    DEFAULT_THRESHOLD_FRACTION,
    NearCopyIndex,
    NearestNeighbours,
    nearest_feature_distances,
)
from tests.gan.trait_images import draw_collection


@pytest.fixture(scope="module")
def training():
    images, _ = draw_collection(300, size=16, seed=3)
    return images


@pytest.fixture(scope="module")
def index(training):
    return NearCopyIndex.fit(training)


def noised(images, scale, seed=0):
    noise = np.random.default_rng(seed).normal(0, scale, images.shape)
    return np.clip(images + noise, 0, 255).astype(np.uint8)


def test_it_flags_an_exact_copy_and_a_slightly_noised_one_but_not_a_new_image(training, index):
    new_images, _ = draw_collection(20, size=16, seed=99)
    queries = np.concatenate([training[[7]], noised(training[[42]], 2.0), new_images])

    distances, flagged = index.check(queries)

    assert distances[0] == 0.0 and flagged[0]
    assert 0 < distances[1] < index.threshold and flagged[1]
    assert not flagged[2:].any()
    assert index.threshold == pytest.approx(DEFAULT_THRESHOLD_FRACTION * index.real_nn_median)


def test_with_a_reader_a_close_image_with_other_traits_is_a_new_token_not_a_copy(training, index):
    """Layered collections hold distinct tokens a few cells apart: a close image is a copy
    only when it reads as the same traits as its nearest training image."""

    def read(images):  # one drawn detail: a lit top-left cell
        return [
            {"lit": frozenset({"yes"}) if image[0, 0].min() > 150 else frozenset()}
            for image in images
        ]

    one_cell_more = training[[0]].copy()  # a plain grey token: its corner is about 128
    one_cell_more[:, 0, 0] = 152
    queries = np.concatenate([one_cell_more, noised(training[[42]], 2.0), training[[9]]])
    assert read(training[[0, 42, 9]]) == [{"lit": frozenset()}] * 3

    distances, by_distance = index.check(queries)
    same_distances, by_reading = index.check(queries, read)

    assert by_distance.all()  # all three are within the threshold
    assert (same_distances == distances).all()
    assert by_reading.tolist() == [False, True, True]


def test_it_finds_the_same_neighbour_as_brute_force():
    rng = np.random.default_rng(4)
    # Clusters of near-duplicates are the hard case for pruning: many rows look alike.
    centres = rng.normal(size=(20, 300))
    vectors = (centres[rng.integers(0, 20, 2000)] + rng.normal(0, 0.1, (2000, 300))).astype(
        np.float32
    )
    queries = np.concatenate(
        [vectors[:5] + 0.01, centres[:5] + rng.normal(0, 0.1, (5, 300)), rng.normal(size=(50, 300))]
    ).astype(np.float32)

    squared, indices = NearestNeighbours(vectors, components=16).query(queries)

    brute = ((queries[:, None, :] - vectors[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(indices, brute.argmin(axis=1))
    np.testing.assert_allclose(squared, brute.min(axis=1), rtol=1e-5)


def test_it_skips_the_query_itself_when_asked():
    vectors = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])

    squared, indices = NearestNeighbours(vectors).query(vectors, exclude=[0, 1, 2])

    np.testing.assert_array_equal(indices, [1, 0, 1])
    np.testing.assert_allclose(squared, [1.0, 1.0, 16.0])
    assert nearest_feature_distances(vectors[[2]], vectors) == pytest.approx([0.0])


def test_it_compares_generated_images_of_another_size_at_the_training_size(training, index):
    upscaled = np.repeat(np.repeat(training[[5]], 2, axis=1), 2, axis=2)  # 32 px, same picture

    distances, flagged = index.check(upscaled)

    assert flagged[0] and distances[0] < index.threshold
    assert index.nearest(upscaled)[1][0] == 5


def test_it_takes_an_absolute_threshold_and_survives_a_save_and_load(training):
    index = NearCopyIndex.fit(training, threshold=0.001)
    queries = np.concatenate([training[[3]], noised(training[[3]], 2.0)])

    loaded = NearCopyIndex.load(io.BytesIO(index.to_bytes()))

    assert loaded.threshold == 0.001
    assert list(loaded.check(queries)[1]) == [True, False]
    np.testing.assert_allclose(loaded.check(queries)[0], index.check(queries)[0])


def test_it_refuses_images_that_are_not_uint8_rgb(index):
    with pytest.raises(ValueError, match="must have shape \\(N, H, W, 3\\)"):
        index.check(np.zeros((1, 16, 16, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        index.check(np.zeros((1, 16, 16, 3), np.float32))
