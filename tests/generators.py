"""Tiny published generators for tests: one dense layer, exported as a real artifact.

A low ``latent_dim`` makes near-duplicates common, as in a real run; ``stddev=0`` draws the same
image for every seed; a ``vocabulary`` makes it trait-conditioned (latent and traits
concatenated).
"""

import io

PIXELS = 32 * 32 * 3


def one_layer_artifact(latent_dim=2, stddev=0.6, vocabulary=None, seed=0) -> bytes:
    """The generator artifact (zip bytes) of a one-layer 32 px generator."""
    import keras

    from gan_app.gan.sampling import export_generator

    keras.utils.set_random_seed(seed)
    latent = keras.Input((latent_dim,))
    inputs, x = [latent], latent
    if vocabulary is not None:
        traits = keras.Input((vocabulary.size,))
        inputs, x = [latent, traits], keras.layers.Concatenate()([latent, traits])
    init = keras.initializers.RandomNormal(stddev=stddev, seed=seed)
    x = keras.layers.Dense(PIXELS, activation="tanh", kernel_initializer=init)(x)
    model = keras.Model(inputs if vocabulary else latent, keras.layers.Reshape((32, 32, 3))(x))
    buffer = io.BytesIO()
    export_generator(
        model,
        buffer,
        config={"resolution": 32, "latent_dim": latent_dim},
        epoch=1,
        conditions=None if vocabulary is None else vocabulary.to_json(),
    )
    return buffer.getvalue()
