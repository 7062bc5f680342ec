"""DCGAN generator and discriminator builders for 32, 64 and 128 px.

Every practice of the original project: strided (transposed) convolutions instead of pooling,
N(0, stddev) initialisation of every layer, batch normalisation, LeakyReLU 0.2, dropout in the
discriminator, tanh output so images live in [-1, 1].

The networks are plain ``keras.Sequential`` stacks of built-in layers so that a saved generator
loads anywhere without this package. A conditioned variant can reuse ``generator_blocks`` /
``discriminator_blocks`` behind its own input layers (e.g. latent concatenated with a trait
embedding, or a projection head on the discriminator features).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from .config import GANConfig

KERNEL = 4  # 4x4 kernels with stride 2 tile evenly (no checkerboard from uneven overlap)
BASE = 4  # the generator starts from, and the discriminator ends at, a 4x4 feature map
MAX_WIDTH_MULTIPLIER = 8


class _Seeds:
    """Distinct, reproducible initializer/dropout seeds derived from the run seed."""

    def __init__(self, seed: int, salt: int):
        self._sequence = np.random.SeedSequence([seed, salt])
        self._count = 0

    def next(self) -> int:
        self._count += 1
        child = np.random.SeedSequence(self._sequence.entropy, spawn_key=(self._count,))
        return int(child.generate_state(1)[0] % 2**31)


def _init(stddev, seeds, mean=0.0):
    return keras.initializers.RandomNormal(mean=mean, stddev=stddev, seed=seeds.next())


def _batch_norm(config, seeds, dtype):
    return layers.BatchNormalization(
        momentum=0.9,
        gamma_initializer=_init(config.init_stddev, seeds, mean=1.0),
        dtype=dtype,
    )


def upsampling_steps(resolution: int) -> int:
    return int(math.log2(resolution // BASE))


def generator_channels(config: GANConfig) -> list[int]:
    """Channels of the hidden feature maps at 4x4, 8x8, ..., resolution/2."""
    steps = upsampling_steps(config.resolution)
    cap = config.g_width * MAX_WIDTH_MULTIPLIER
    return [min(config.g_width * 2 ** (steps - 1 - i), cap) for i in range(steps)]


def discriminator_channels(config: GANConfig) -> list[int]:
    """Channels of the feature maps at resolution/2, ..., 4x4."""
    steps = upsampling_steps(config.resolution)
    cap = config.d_width * MAX_WIDTH_MULTIPLIER
    return [min(config.d_width * 2**i, cap) for i in range(steps)]


def generator_blocks(config: GANConfig, dtype=None) -> list[layers.Layer]:
    """Layers from a flat projection of the latent vector to the RGB image in [-1, 1]."""
    seeds = _Seeds(config.seed, salt=1)
    channels = generator_channels(config)
    blocks = [
        layers.Dense(
            BASE * BASE * channels[0],
            use_bias=False,
            kernel_initializer=_init(config.init_stddev, seeds),
            dtype=dtype,
        ),
        _batch_norm(config, seeds, dtype),
        layers.LeakyReLU(negative_slope=0.2, dtype=dtype),
        layers.Reshape((BASE, BASE, channels[0]), dtype=dtype),
    ]
    for filters in channels[1:]:
        blocks += [
            layers.Conv2DTranspose(
                filters,
                KERNEL,
                strides=2,
                padding="same",
                use_bias=False,
                kernel_initializer=_init(config.init_stddev, seeds),
                dtype=dtype,
            ),
            _batch_norm(config, seeds, dtype),
            layers.LeakyReLU(negative_slope=0.2, dtype=dtype),
        ]
    blocks += [
        layers.Conv2DTranspose(
            3,
            KERNEL,
            strides=2,
            padding="same",
            kernel_initializer=_init(config.init_stddev, seeds),
            dtype=dtype,
        ),
        # float32 even under mixed precision: images are compared and saved at full precision.
        layers.Activation("tanh", dtype="float32"),
    ]
    return blocks


def discriminator_blocks(config: GANConfig, dtype=None) -> list[layers.Layer]:
    """Layers from an image in [-1, 1] to a flat feature vector (before the logit head)."""
    seeds = _Seeds(config.seed, salt=2)
    blocks = []
    for i, filters in enumerate(discriminator_channels(config)):
        blocks.append(
            layers.Conv2D(
                filters,
                KERNEL,
                strides=2,
                padding="same",
                kernel_initializer=_init(config.init_stddev, seeds),
                dtype=dtype,
            )
        )
        # No batch norm on the first layer (DCGAN): it would normalise away the input colours.
        if i > 0:
            blocks.append(_batch_norm(config, seeds, dtype))
        blocks += [
            layers.LeakyReLU(negative_slope=0.2, dtype=dtype),
            layers.Dropout(config.dropout, seed=seeds.next(), dtype=dtype),
        ]
    blocks.append(layers.Flatten(dtype=dtype))
    return blocks


def build_generator(config: GANConfig, dtype=None) -> keras.Sequential:
    """latent (N, latent_dim) -> image (N, R, R, 3) in [-1, 1]."""
    return keras.Sequential(
        [keras.Input(shape=(config.latent_dim,)), *generator_blocks(config, dtype)],
        name="generator",
    )


def build_discriminator(config: GANConfig, dtype=None) -> keras.Sequential:
    """image (N, R, R, 3) in [-1, 1] -> one logit per image (N, 1)."""
    seeds = _Seeds(config.seed, salt=3)
    head = layers.Dense(1, kernel_initializer=_init(config.init_stddev, seeds), dtype="float32")
    return keras.Sequential(
        [
            keras.Input(shape=(config.resolution, config.resolution, 3)),
            *discriminator_blocks(config, dtype),
            head,
        ],
        name="discriminator",
    )


# --- Trait-conditioned variants (``GANConfig.conditional``) ----------------------------------
def build_conditional_generator(config: GANConfig, num_labels: int, dtype=None) -> keras.Model:
    """[latent (N, latent_dim), traits (N, num_labels) multi-hot] -> image (N, R, R, 3).

    The multi-hot vector goes through a linear embedding (the sum of one learned vector per
    trait) that is concatenated with the latent before the usual generator blocks. Built-in
    layers only, so the published generator still loads without this package.
    """
    seeds = _Seeds(config.seed, salt=5)
    latent = keras.Input(shape=(config.latent_dim,), name="latent")
    traits = keras.Input(shape=(num_labels,), name="traits")
    # Unit-scale embeddings: at N(0, 0.02) the traits would start as noise beside the latent.
    embedded = layers.Dense(
        config.condition_dim,
        kernel_initializer=_init(0.5, seeds),
        name="trait_embedding",
        dtype=dtype,
    )(traits)
    x = layers.Concatenate(name="latent_and_traits", dtype=dtype)([latent, embedded])
    for block in generator_blocks(config, dtype):
        x = block(x)
    return keras.Model([latent, traits], x, name="generator")


def build_conditional_discriminator(config: GANConfig, num_labels: int, dtype=None) -> keras.Model:
    """[image, traits multi-hot] -> [logit (N, 1), trait logits (N, num_labels)].

    Projection discriminator (Miyato & Koyama 2018): logit = w·h + (V y)·h, so the traits
    shift the real/fake decision through the same features. With ``aux_weight > 0`` an
    auxiliary head also predicts the traits from h (AC-GAN), which pushes the generator to
    draw them recognisably; without it the model has the logit output only.
    """
    seeds = _Seeds(config.seed, salt=6)
    image = keras.Input(shape=(config.resolution, config.resolution, 3), name="image")
    traits = keras.Input(shape=(num_labels,), name="traits")
    h = image
    for block in discriminator_blocks(config, dtype):
        h = block(h)
    h = layers.Activation("linear", dtype="float32", name="features")(h)
    logit = layers.Dense(1, kernel_initializer=_init(config.init_stddev, seeds), dtype="float32")(h)
    projected = layers.Dense(
        h.shape[-1],
        use_bias=False,
        kernel_initializer=_init(config.init_stddev, seeds),
        name="trait_projection",
        dtype="float32",
    )(traits)
    projection = layers.Dot(axes=1, dtype="float32")([projected, h])
    logit = layers.Add(dtype="float32")([logit, projection])
    outputs = [logit]
    if config.aux_weight > 0:
        outputs.append(
            layers.Dense(
                num_labels,
                kernel_initializer=_init(config.init_stddev, seeds),
                name="trait_logits",
                dtype="float32",
            )(h)
        )
    return keras.Model([image, traits], outputs, name="discriminator")
