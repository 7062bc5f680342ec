"""The same generator and seed give the same image bytes in any process (issue 16).

Each run is a fresh Python process: one that has only loaded the generator, one that trained a
GAN and ran other TensorFlow work of other shapes first, and ones with other intra-op thread
counts (so TensorFlow splits its kernels as other machines would). Within each, a seed drawn
alone must give the same pixels as in a batch.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from gan_app.gan import GANConfig, build_generator, export_generator
from tests.generators import one_layer_artifact
from tests.testenv import ROOT

SEEDS = 2048  # a last-bit change shows in a pixel of about one image in 200 (one-layer)
ALONE = 64  # seeds drawn one at a time as well

SCRIPT = """
import hashlib, json, sys
import tensorflow as tf
history, threads, seeds, single = sys.argv[1], *map(int, sys.argv[2:5])
paths = sys.argv[5:]
if threads:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
import numpy as np
from gan_app.gan import load_generator
if history == "trained":
    import keras
    from gan_app.gan import GANConfig
    from gan_app.gan.training import Trainer
    from tests.gan.conftest import TINY
    images = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
    Trainer(GANConfig(**TINY), images).train_epoch()
    for rows in (1, 3, 17, 100):
        x = tf.random.normal((rows, 9, 9, 5))
        keras.layers.Conv2DTranspose(7, 4, strides=2, padding="same")(x)
        tf.matmul(tf.random.normal((rows, 333)), tf.random.normal((333, 129)))
digests = {}
for path in paths:
    generator = load_generator(path)
    batch = generator.generate(list(range(seeds)))
    alone = np.concatenate([generator.generate([seed]) for seed in range(single)])
    digests[path] = {
        "batch": hashlib.sha256(batch.tobytes()).hexdigest(),
        "alone": hashlib.sha256(alone.tobytes()).hexdigest(),
        "batch_head": hashlib.sha256(batch[:single].tobytes()).hexdigest(),
    }
print(json.dumps(digests))
"""


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A one-layer generator (dense + bias + tanh: what grappler fuses) and 32 and 64 px DCGANs
    of the default widths (its last transposed convolution is what oneDNN splits by threads),
    initialised wide enough that its pixels spread over [-1, 1] like a trained one's."""
    folder = tmp_path_factory.mktemp("generators")
    one_layer = folder / "one-layer.zip"
    one_layer.write_bytes(one_layer_artifact())
    paths = [str(one_layer)]
    # 32 px passes are 16 rows, 64 px ones 8 (``sampling.inference_rows``): both shapes.
    for resolution in (32, 64):
        dcgan = folder / f"dcgan-{resolution}.zip"
        config = GANConfig(resolution=resolution, init_stddev=0.1)
        export_generator(build_generator(config), dcgan, config=config.to_dict(), epoch=0)
        paths.append(str(dcgan))
    return paths


def digests(artifacts, history="fresh", threads=0):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, history, *map(str, (threads, SEEDS, ALONE)), *artifacts],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_it_draws_the_same_bytes_in_a_fresh_process_and_after_training(artifacts):
    assert digests(artifacts, "trained") == digests(artifacts, "fresh")


@pytest.mark.slow
@pytest.mark.parametrize("threads", [3, 32])
def test_it_draws_a_seed_alone_as_in_a_batch_whatever_the_thread_count(artifacts, threads):
    """3 threads on this CPU, 32 on a large server: oneDNN splits a small batch's sums there."""
    fresh = digests(artifacts, "fresh")
    other = digests(artifacts, "fresh", threads=threads)
    for path in artifacts:
        assert fresh[path]["alone"] == fresh[path]["batch_head"], path
        assert other[path]["alone"] == other[path]["batch_head"], path


def test_it_pads_the_last_chunk_to_the_one_shape():
    from gan_app.gan import runtime

    seen = []
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)

    out = runtime.fixed_shape_batches(
        lambda chunk: seen.append(chunk.shape) or chunk * 2, [rows], 4
    )

    assert seen == [(4, 2)]
    assert np.array_equal(out, rows * 2)


def test_it_multiplies_each_row_of_a_dense_layer_on_its_own():
    """rowwise_dense computes what Dense computes, each row as a 1-row product: the result of
    a row is exactly its result alone, in any position, with any neighbours."""
    import keras
    import tensorflow as tf

    from gan_app.gan.runtime import rowwise_dense

    inputs = keras.Input((37,))
    model = keras.Model(inputs, keras.layers.Dense(300, activation="tanh")(inputs))
    rows = np.random.default_rng(3).normal(size=(8, 37)).astype(np.float32)
    before = model(rows).numpy()

    rowwise_dense(model)
    forward = tf.function(model, input_signature=[tf.TensorSpec([8, 37], tf.float32)])
    after = forward(rows).numpy()

    np.testing.assert_allclose(after, before, atol=1e-6)
    for position in range(8):
        alone = np.zeros_like(rows)
        alone[position] = rows[6]
        assert np.array_equal(forward(alone).numpy()[position], after[6])
