"""Training images: decode, composite, resize, validate, cache; then batches through tf.data.

``prepare_images`` turns a list of image files or bytes into one uint8 array (N, R, R, 3) and
checks the set before any decoding: an empty set, fewer images than a batch, unreadable files
and mixed image sizes raise a ``TrainingDataError`` that names the offending items.

The decoded array is cached as ``<cache_dir>/<fingerprint>.npy``; the fingerprint covers every
image's bytes and the preprocessing settings, so a re-run (the next training chunk) skips the
decoding and a changed set or setting can never hit a stale cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from .config import GANConfig

PREPROCESSING_VERSION = 1
MAX_LISTED = 5

# bytes, a path, or (name, bytes-or-path) so errors can name the token.
ImageSource = bytes | str | os.PathLike | tuple[str, bytes | str | os.PathLike]


class TrainingDataError(ValueError):
    """The training images cannot be used; the message says which and why."""


class EmptyTrainingSet(TrainingDataError):
    pass


class TrainingSetTooSmall(TrainingDataError):
    pass


class MixedImageSizes(TrainingDataError):
    pass


class UnreadableImages(TrainingDataError):
    pass


@dataclass(frozen=True)
class ImageSet:
    """Preprocessed training images: uint8 (N, R, R, 3) RGB."""

    images: np.ndarray
    fingerprint: str
    source_size: tuple[int, int]
    resize: str  # the mode actually used: "nearest" or "area"
    from_cache: bool

    def __len__(self):
        return len(self.images)

    def describe(self) -> dict:
        """JSON-able facts for manifests and checkpoints."""
        return {
            "count": len(self.images),
            "fingerprint": self.fingerprint,
            "source_size": list(self.source_size),
            "resize": self.resize,
        }


def prepare_images(
    sources: Iterable[ImageSource],
    config: GANConfig,
    *,
    cache_dir: str | os.PathLike | None = None,
    min_count: int | None = None,
) -> ImageSet:
    """Validate, decode (or load from cache) and preprocess training images.

    ``min_count`` defaults to the batch size: a set that cannot fill one batch cannot train.
    """
    named = [_name_and_bytes(i, source) for i, source in enumerate(sources)]
    need = config.batch_size if min_count is None else min_count
    if not named:
        raise EmptyTrainingSet("the training set has no images")
    if len(named) < need:
        raise TrainingSetTooSmall(
            f"the training set has {len(named)} image(s), fewer than the batch size {need}; "
            "add images or lower batch_size"
        )
    size = _common_size(named)
    resize = resolve_resize(config.resize, size, config.resolution)
    fingerprint = _fingerprint(named, config, resize)

    cache_file = Path(cache_dir) / f"{fingerprint}.npy" if cache_dir else None
    if cache_file and cache_file.exists():
        images = np.load(cache_file)
        return ImageSet(images, fingerprint, size, resize, from_cache=True)

    images = np.stack([_preprocess(data, config, resize) for _, data in named])
    if cache_file:
        _save_atomically(cache_file, images)
    return ImageSet(images, fingerprint, size, resize, from_cache=False)


def resolve_resize(mode: str, source_size: tuple[int, int], resolution: int) -> str:
    """ "auto": nearest when enlarging (keeps pixel-art edges sharp), area when shrinking."""
    if mode != "auto":
        return mode
    return "nearest" if max(source_size) <= resolution else "area"


def preprocess_image(image: Image.Image, config: GANConfig, resize: str) -> np.ndarray:
    """Any PIL image -> uint8 (R, R, 3): alpha composited on the background, padded square."""
    background = config.background_rgb
    rgba = image.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, (*background, 255))
    rgb = Image.alpha_composite(flat, rgba).convert("RGB")
    if rgb.width != rgb.height:
        side = max(rgb.size)
        square = Image.new("RGB", (side, side), background)
        square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
        rgb = square
    if rgb.width != config.resolution:
        method = Image.Resampling.NEAREST if resize == "nearest" else Image.Resampling.BOX
        rgb = rgb.resize((config.resolution, config.resolution), method)
    return np.asarray(rgb, dtype=np.uint8)


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled image order of one epoch, a pure function of (seed, epoch).

    Keyed rather than stateful so that a run resumed in another process replays exactly the
    order it would have seen, independent of TensorFlow's global seed state.
    """
    return np.random.Generator(np.random.PCG64([seed, epoch])).permutation(count)


class EpochBatches:
    """Batches of uint8 images for one epoch at a time, shuffled by ``epoch_order``.

    With ``labels`` (one row per image, e.g. multi-hot traits) every batch is an
    ``(images, labels)`` pair, both gathered by the same order.
    """

    def __init__(
        self, images: np.ndarray, batch_size: int, seed: int, labels: np.ndarray | None = None
    ):
        if len(images) < batch_size:
            raise TrainingSetTooSmall(
                f"{len(images)} image(s) cannot fill one batch of {batch_size}"
            )
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} label rows")
        self.count = len(images)
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = self.count // batch_size
        with tf.device("/cpu:0"):
            self._images = tf.constant(images)
            self._labels = None if labels is None else tf.constant(labels, tf.float32)

    def dataset(self, epoch: int) -> tf.data.Dataset:
        # The last partial batch is dropped: batch statistics of a handful of images are noise.
        used = self.steps_per_epoch * self.batch_size
        order = epoch_order(self.count, self.seed, epoch)[:used]
        images, labels = self._images, self._labels
        if labels is None:
            gather = lambda idx: tf.gather(images, idx)  # noqa: E731
        else:
            gather = lambda idx: (tf.gather(images, idx), tf.gather(labels, idx))  # noqa: E731
        return (
            tf.data.Dataset.from_tensor_slices(order.reshape(self.steps_per_epoch, -1))
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
        )


def diff_augment(images, seed_generator, translation_ratio: float = 0.125):
    """DiffAugment (Zhao et al. 2020) colour + translation on images in [-1, 1].

    Applied to real and fake batches alike inside the train step, so gradients flow through it
    and the generator is not taught to produce augmented images.
    """
    n = tf.shape(images)[0]
    uniform = keras.random.uniform
    brightness = uniform((n, 1, 1, 1), -0.5, 0.5, seed=seed_generator)
    images = images + tf.cast(brightness, images.dtype)
    mean = tf.reduce_mean(images, axis=3, keepdims=True)
    saturation = uniform((n, 1, 1, 1), 0.0, 2.0, seed=seed_generator)
    images = (images - mean) * tf.cast(saturation, images.dtype) + mean
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    contrast = uniform((n, 1, 1, 1), 0.5, 1.5, seed=seed_generator)
    images = (images - mean) * tf.cast(contrast, images.dtype) + mean

    height, width = images.shape[1], images.shape[2]
    shift_y, shift_x = int(height * translation_ratio + 0.5), int(width * translation_ratio + 0.5)
    dy = keras.random.randint((n, 1), -shift_y, shift_y + 1, seed=seed_generator)
    dx = keras.random.randint((n, 1), -shift_x, shift_x + 1, seed=seed_generator)
    # Index into a 1-pixel zero border: shifted-in pixels come from the border.
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = tf.clip_by_value(tf.range(height)[None, :] + tf.cast(dy, tf.int32) + 1, 0, height + 1)
    cols = tf.clip_by_value(tf.range(width)[None, :] + tf.cast(dx, tf.int32) + 1, 0, width + 1)
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def _name_and_bytes(index: int, source: ImageSource) -> tuple[str, bytes]:
    if isinstance(source, tuple):
        name, source = source
    else:
        name = str(source) if isinstance(source, str | os.PathLike) else f"image #{index}"
    if isinstance(source, bytes | bytearray | memoryview):
        return name, bytes(source)
    try:
        return name, Path(source).read_bytes()
    except OSError as exc:
        raise UnreadableImages(f"cannot read {name}: {exc.strerror or exc}") from exc


def _common_size(named: Sequence[tuple[str, bytes]]) -> tuple[int, int]:
    """Read every header (cheap) so bad files and mixed sizes fail before any decoding."""
    sizes: dict[tuple[int, int], list[str]] = {}
    bad = []
    for name, data in named:
        try:
            with Image.open(io.BytesIO(data)) as image:
                sizes.setdefault(image.size, []).append(name)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            bad.append(f"{name} ({exc.__class__.__name__}: {exc})")
    if bad:
        listed = "; ".join(bad[:MAX_LISTED]) + (
            f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        )
        raise UnreadableImages(f"{len(bad)} image(s) cannot be decoded: {listed}")
    if len(sizes) > 1:
        counts = Counter({size: len(names) for size, names in sizes.items()})
        parts = [
            f"{w}x{h}: {n} (e.g. {', '.join(sizes[(w, h)][:2])})"
            for (w, h), n in counts.most_common()
        ]
        raise MixedImageSizes(
            "the training set mixes image sizes, so it cannot be one collection's art; "
            + "; ".join(parts)
        )
    return next(iter(sizes))


def _fingerprint(named, config: GANConfig, resize: str) -> str:
    digest = hashlib.sha256()
    settings = f"v{PREPROCESSING_VERSION}|{config.resolution}|{config.background}|{resize}"
    digest.update(settings.encode())
    for _, data in named:
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def _preprocess(data: bytes, config: GANConfig, resize: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)  # animated GIF/WebP: the first frame
        return preprocess_image(image, config, resize)


def _save_atomically(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
