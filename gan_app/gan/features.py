"""Image feature extractors for evaluation: Inception-v3 from a local weights file.

Images everywhere in the evaluation API are uint8 arrays of shape ``(N, H, W, 3)`` (RGB; the
caller composites any alpha channel onto its background first). Nothing is ever downloaded:
the Inception-v3 weights come from a file the operator provides (``INCEPTION_WEIGHTS``).
"""

import functools
import hashlib
import os

import h5py
import keras
import numpy as np

# The Keras application weights (ImageNet, with the classification top, TF dim ordering), as
# named, hosted and hashed in keras/src/applications/inception_v3.py.
INCEPTION_WEIGHTS_FILENAME = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    + INCEPTION_WEIGHTS_FILENAME
)
INCEPTION_WEIGHTS_MD5 = "9a0d58056eeedaa3f26cb7ebd46da564"
# Same source, without the classifier top: enough for FID/KID but not for Inception Score.
INCEPTION_NOTOP_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
INCEPTION_INPUT_SIZE = 299
POOL_FEATURES = 2048


class InceptionWeightsError(Exception):
    """The Inception-v3 weights file is missing or not the expected one; the message says what
    file is needed and how to provide it."""


def missing_weights_message(weights_path):
    where = f"{weights_path!r} does not exist" if weights_path else "INCEPTION_WEIGHTS is not set"
    return (
        f"Inception-v3 weights are needed for FID/KID/IS and {where}. "
        f"Provide the Keras ImageNet weights file {INCEPTION_WEIGHTS_FILENAME} "
        f"(about 96 MB, md5 {INCEPTION_WEIGHTS_MD5}) from {INCEPTION_WEIGHTS_URL} "
        "(download it on a machine with internet access and copy it over), "
        f"then set INCEPTION_WEIGHTS=/path/to/{INCEPTION_WEIGHTS_FILENAME}. "
        "Nothing is downloaded at run time."
    )


def file_md5(path, chunk_size=1 << 20):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def check_images(images, name="images"):
    """Return ``images`` as a uint8 ``(N, H, W, 3)`` array or raise ValueError saying why not."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB arrays, got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, H, W, 3), got {images.shape}")
    if len(images) == 0:
        raise ValueError(f"{name} is empty")
    return images


def resize_images(images, size, enlarge="bilinear"):
    """uint8 ``(N, H, W, 3)`` → float32 ``(N, size, size, 3)`` in [0, 255].

    Shrinking averages the pixels each output pixel covers ("area"), so an image upscaled by an
    integer factor shrinks back exactly; enlarging (pixel art to Inception's 299) is bilinear,
    as in the reference FID code. ``enlarge="nearest"`` repeats each pixel instead when ``size``
    is a whole multiple of the image (pixel art stays sharp: a one-cell earring stays one
    colour); other sizes are still enlarged bilinearly.
    """
    if enlarge not in ("bilinear", "nearest"):
        raise ValueError(f"enlarge must be 'bilinear' or 'nearest', got {enlarge!r}")
    images = np.asarray(images)
    height, width = images.shape[1:3]
    if (height, width) == (size, size):
        return images.astype(np.float32)
    if enlarge == "nearest" and size > max(height, width) and not size % height + size % width:
        return (
            images.repeat(size // height, axis=1).repeat(size // width, axis=2).astype(np.float32)
        )
    shrinking = height >= size and width >= size
    resized = keras.ops.image.resize(
        images.astype(np.float32), (size, size), interpolation="area" if shrinking else "bilinear"
    )
    return np.clip(keras.ops.convert_to_numpy(resized), 0.0, 255.0)


class InceptionFeatures:
    """Inception-v3 pool features (2048-d, for FID/KID) and class probabilities (for IS).

    Use ``from_weights_file(path)`` in production (299x299 input, ImageNet weights from disk).
    ``untrained(input_size, seed)`` builds the same network with random weights and a smaller
    input for tests: its numbers exercise the pipeline but are not FID in any published sense.
    """

    def __init__(self, model, input_size, batch_size=32, weights_path=None):
        self.model = model
        self.input_size = input_size
        self.batch_size = batch_size
        self.weights_path = weights_path

    @classmethod
    def from_weights_file(cls, weights_path, batch_size=32):
        """Build Inception-v3 (weights=None) and load ``weights_path``; never downloads."""
        if not weights_path or not os.path.isfile(weights_path):
            raise InceptionWeightsError(missing_weights_message(weights_path))
        model = _load_inception(os.path.abspath(weights_path))
        return cls(model, INCEPTION_INPUT_SIZE, batch_size, weights_path=weights_path)

    @classmethod
    def untrained(cls, input_size=75, seed=0, batch_size=32):
        """Randomly initialised Inception-v3 (input at least 75 px): for tests only."""
        keras.utils.set_random_seed(seed)
        return cls(_inception_with_pool_output(input_size), input_size, batch_size)

    def pool_and_probabilities(self, images):
        """``(pool (N, 2048) float64, probabilities (N, 1000) float64)`` for uint8 images."""
        images = check_images(images)
        pools, probs = [], []
        for start in range(0, len(images), self.batch_size):
            batch = resize_images(images[start : start + self.batch_size], self.input_size)
            # keras.applications.inception_v3.preprocess_input ("tf" mode): scale to [-1, 1].
            pool, prob = self.model.predict_on_batch(batch / 127.5 - 1.0)
            pools.append(pool)
            probs.append(prob)
        return (
            np.concatenate(pools).astype(np.float64),
            np.concatenate(probs).astype(np.float64),
        )

    def pool_features(self, images):
        return self.pool_and_probabilities(images)[0]


def _inception_with_pool_output(input_size, weights_path=None):
    base = keras.applications.InceptionV3(
        include_top=True, weights=None, input_shape=(input_size, input_size, 3)
    )
    if weights_path is not None:
        base.load_weights(weights_path)
    return keras.Model(
        base.input, [base.get_layer("avg_pool").output, base.output], name="inception_features"
    )


@functools.lru_cache(maxsize=2)
def _load_inception(weights_path):
    """One model per weights file per process: building and loading takes seconds."""
    digest = file_md5(weights_path)
    if digest == INCEPTION_NOTOP_MD5:
        raise InceptionWeightsError(
            f"{weights_path} is the no-top Inception-v3 file; the Inception Score needs the "
            f"classifier top: provide {INCEPTION_WEIGHTS_FILENAME} (md5 {INCEPTION_WEIGHTS_MD5}) "
            f"from {INCEPTION_WEIGHTS_URL} and set INCEPTION_WEIGHTS to its path."
        )
    try:
        if not h5py.is_hdf5(weights_path):
            raise ValueError("it is not an HDF5 file")
        return _inception_with_pool_output(INCEPTION_INPUT_SIZE, weights_path)
    except (ValueError, OSError) as error:
        raise InceptionWeightsError(
            f"{weights_path} could not be loaded as Inception-v3 weights (md5 {digest}, "
            f"expected {INCEPTION_WEIGHTS_MD5}): {error}. Expected file: "
            f"{INCEPTION_WEIGHTS_FILENAME} from {INCEPTION_WEIGHTS_URL}."
        ) from error
