import keras
import numpy as np
import pytest

from gan_app.gan import GANConfig, build_discriminator, build_generator


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_it_builds_networks_for_each_resolution(resolution):
    config = GANConfig(
        resolution=resolution, latent_dim=8, generator_width=2, discriminator_width=2
    )
    generator, discriminator = build_generator(config), build_discriminator(config)

    images = generator(np.zeros((3, 8), np.float32), training=False)
    logits = discriminator(images, training=False)

    assert tuple(images.shape) == (3, resolution, resolution, 3)
    assert tuple(logits.shape) == (3, 1)
    assert np.all(np.abs(keras.ops.convert_to_numpy(images)) <= 1.0)


def test_it_uses_strided_convolutions_and_no_pooling():
    config = GANConfig(resolution=64, latent_dim=8, generator_width=2, discriminator_width=2)
    layers = build_generator(config).layers + build_discriminator(config).layers
    kinds = {layer.__class__.__name__ for layer in layers}

    assert not any("Pooling" in kind for kind in kinds)
    assert {"Conv2DTranspose", "Conv2D", "BatchNormalization", "LeakyReLU", "Dropout"} <= kinds
    assert all(layer.strides == (2, 2) for layer in layers if "Conv" in type(layer).__name__)
    assert build_generator(config).layers[-1].get_config()["activation"] == "tanh"


def test_it_initialises_weights_from_n_0_002():
    config = GANConfig(resolution=32, latent_dim=100, generator_width=64)
    kernel = build_generator(config).layers[0].kernel.numpy()
    assert abs(kernel.std() - 0.02) < 0.002
    assert abs(kernel.mean()) < 0.002


def test_it_builds_the_same_weights_from_the_same_seed():
    config = GANConfig(resolution=32, latent_dim=8, generator_width=2, seed=5)
    first, second = build_generator(config), build_generator(config)
    other = build_generator(config.replace(seed=6))
    for a, b, c in zip(first.get_weights(), second.get_weights(), other.get_weights(), strict=True):
        assert np.array_equal(a, b)
        assert a.std() == 0 or not np.array_equal(a, c)  # random, not constant, weights
