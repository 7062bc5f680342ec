import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from gan_app.gan.features import (
    INCEPTION_WEIGHTS_FILENAME,
    INCEPTION_WEIGHTS_MD5,
    INCEPTION_WEIGHTS_URL,
    InceptionFeatures,
    InceptionWeightsError,
    resize_images,
)


def test_it_says_which_weights_file_is_needed_and_how_to_provide_it():
    with pytest.raises(InceptionWeightsError) as unset:
        InceptionFeatures.from_weights_file("")
    with pytest.raises(InceptionWeightsError) as missing:
        InceptionFeatures.from_weights_file("/nowhere/inception.h5")

    message = str(unset.value)
    assert "INCEPTION_WEIGHTS is not set" in message
    assert INCEPTION_WEIGHTS_FILENAME in message and INCEPTION_WEIGHTS_URL in message
    assert INCEPTION_WEIGHTS_MD5 in message
    assert f"INCEPTION_WEIGHTS=/path/to/{INCEPTION_WEIGHTS_FILENAME}" in message
    assert "'/nowhere/inception.h5' does not exist" in str(missing.value)


def test_it_refuses_a_file_that_is_not_inception_weights(tmp_path):
    path = tmp_path / INCEPTION_WEIGHTS_FILENAME
    path.write_bytes(b"not an hdf5 file")

    with pytest.raises(InceptionWeightsError, match="could not be loaded as Inception-v3 weights"):
        InceptionFeatures.from_weights_file(str(path))


def test_it_gives_pool_features_and_class_probabilities_per_image():
    extractor = InceptionFeatures.untrained(input_size=75, batch_size=2)
    images = np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)

    pool, probabilities = extractor.pool_and_probabilities(images)

    assert pool.shape == (3, 2048) and pool.dtype == np.float64
    assert probabilities.shape == (3, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(extractor.pool_features(images[2:]), pool[2:], rtol=1e-4, atol=1e-7)


def test_it_resizes_a_batch_to_the_network_input():
    images = np.zeros((2, 24, 24, 3), np.uint8)
    images[:, :, 12:] = 255

    resized = resize_images(images, 48)

    assert resized.shape == (2, 48, 48, 3) and resized.dtype == np.float32
    assert resized[:, :, :20].max() == 0 and resized[:, :, 28:].min() == 255


def test_it_enlarges_pixel_art_by_whole_factors_pixel_for_pixel():
    images = np.random.default_rng(2).integers(0, 256, (2, 12, 12, 3), dtype=np.uint8)

    doubled = resize_images(images, 24, "nearest")

    np.testing.assert_array_equal(doubled, images.repeat(2, axis=1).repeat(2, axis=2))
    assert set(np.unique(resize_images(images, 30, "nearest"))) - set(np.unique(images))
    np.testing.assert_array_equal(resize_images(images, 6, "nearest"), resize_images(images, 6))
    with pytest.raises(ValueError, match="'bicubic'"):
        resize_images(images, 24, "bicubic")


@pytest.mark.slow
def test_it_loads_a_keras_application_weights_file_at_299_pixels(tmp_path):
    # The published file is Keras's HDF5 weights format; write one (random values) the same way.
    path = tmp_path / INCEPTION_WEIGHTS_FILENAME
    keras.utils.set_random_seed(1)
    reference = keras.applications.InceptionV3(weights=None)
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, reference)
    images = np.random.default_rng(1).integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)

    extractor = InceptionFeatures.from_weights_file(str(path), batch_size=2)
    pool, probabilities = extractor.pool_and_probabilities(images)

    assert extractor.input_size == 299
    expected = reference(resize_images(images, 299) / 127.5 - 1.0, training=False)
    np.testing.assert_allclose(probabilities, keras.ops.convert_to_numpy(expected), atol=1e-5)
    assert pool.shape == (2, 2048)
