"""Training images: decode, composite, resize, validate, cache; then batches for each epoch.

``prepare_images`` turns a list of image files or bytes into one uint8 array (N, R, R, 3) and
checks the set before any decoding: an empty set, fewer images than a batch, unreadable files
and mixed image sizes raise a ``TrainingDataError`` that names the offending items.

The decoded array is cached as ``<cache_dir>/<fingerprint>.npy``; the fingerprint covers every
image's bytes and the preprocessing settings, so a re-run (the next training chunk) skips the
decoding and a changed set or setting can never hit a stale cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from .config import RESOLUTIONS, GANConfig
from .pixelart import (
    MAX_NATIVE_SIDE,
    MAX_PALETTE,
    detect_pixel_art,
    native_block,
    pad_to_model,
)

PREPROCESSING_VERSION = 2  # 2: "native" pixel-art grids (auto picks them)
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
    resize: str  # the mode actually used: "nearest", "area" or "native"
    from_cache: bool
    # Pixel-art sets ("native"): grid, palette and background, as PixelArtProfile.to_dict().
    pixel_art: dict | None = None

    def __len__(self):
        return len(self.images)

    def describe(self) -> dict:
        """JSON-able facts for manifests and checkpoints."""
        return {
            "count": len(self.images),
            "fingerprint": self.fingerprint,
            "source_size": list(self.source_size),
            "resize": self.resize,
            "pixel_art": self.pixel_art,
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
    fingerprint = _fingerprint(named, config, config.resize)

    cache_file = Path(cache_dir) / f"{fingerprint}.npy" if cache_dir else None
    facts_file = cache_file.with_suffix(".json") if cache_file else None
    if cache_file and cache_file.exists() and facts_file.exists():
        facts = json.loads(facts_file.read_text())
        images = np.load(cache_file)
        return ImageSet(images, fingerprint, size, facts["resize"], True, facts["pixel_art"])

    native = _native_grid(named, size, config) if config.resize in ("auto", "native") else None
    if native is not None:
        profile, cells = native
        resize, pixel_art = "native", profile.to_dict()
        background = profile.background or config.background_rgb
        images = pad_to_model(cells, config.resolution, background)
    elif config.resize == "native":
        raise TrainingDataError(
            "resize 'native' needs pixel art: images made of equal cells, in at most "
            f"{MAX_PALETTE} colours, on a grid that fits the {config.resolution} px model"
        )
    else:
        resize, pixel_art = resolve_resize(config.resize, size, config.resolution), None
        images = np.stack([_preprocess(data, config, resize) for _, data in named])
    if cache_file:
        _save_atomically(cache_file, images)
        _write_atomically(facts_file, json.dumps({"resize": resize, "pixel_art": pixel_art}))
    return ImageSet(images, fingerprint, size, resize, False, pixel_art)


def detect_set_pixel_art(sources: Iterable[ImageSource], background: str = "#ffffff"):
    """A set's ``PixelArtProfile`` exactly as ``prepare_images(resize="auto")`` finds it for
    the largest model (so any grid up to ``MAX_NATIVE_SIDE``), or None when the images are
    not pixel art. Raises ``TrainingDataError`` for unreadable images or mixed sizes."""
    named = [_name_and_bytes(i, source) for i, source in enumerate(sources)]
    if not named:
        raise EmptyTrainingSet("the set has no images")
    config = GANConfig(resolution=max(RESOLUTIONS), background=background, batch_size=1)
    native = _native_grid(named, _common_size(named), config)
    return native[0] if native is not None else None


def resolve_resize(mode: str, source_size: tuple[int, int], resolution: int) -> str:
    """ "auto" for sets that are not pixel art (``prepare_images`` tries "native" first):
    nearest when enlarging (keeps edges sharp), area when shrinking."""
    if mode != "auto":
        return mode
    return "nearest" if max(source_size) <= resolution else "area"


def _native_grid(named, size: tuple[int, int], config: GANConfig):
    """``(PixelArtProfile, uint8 cells (N, h, w, 3))`` if the set is pixel art that fits the
    model cell for cell, else None.

    The cell size is the greatest common cell of every image (a plain one-colour image is made
    of any cells, so no single image decides); the palette is counted on the whole set.
    """
    block = 0
    for _, data in named:
        block = math.gcd(block, native_block(_square_rgb(data, config)))
        if max(size) // block > MAX_NATIVE_SIDE:
            return None  # the grid is already too large to be pixel art: stop decoding
    cells = np.stack([_square_rgb(data, config)[::block, ::block] for _, data in named])
    profile = detect_pixel_art(cells, block=1)
    if profile is None or not profile.fits(config.resolution):
        return None
    return dataclasses.replace(profile, block=block), cells


def _square_rgb(data: bytes, config: GANConfig) -> np.ndarray:
    """Composited on the background and padded square, at the file's own size."""
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        return np.asarray(_composite_square(image, config))


def preprocess_image(image: Image.Image, config: GANConfig, resize: str) -> np.ndarray:
    """Any PIL image -> uint8 (R, R, 3): alpha composited on the background, padded square,
    resized with ``resize`` ("nearest" or "area"; "native" sets go through ``pad_to_model``)."""
    rgb = _composite_square(image, config)
    if rgb.width != config.resolution:
        method = Image.Resampling.NEAREST if resize == "nearest" else Image.Resampling.BOX
        rgb = rgb.resize((config.resolution, config.resolution), method)
    return np.asarray(rgb, dtype=np.uint8)


def _composite_square(image: Image.Image, config: GANConfig) -> Image.Image:
    background = config.background_rgb
    rgba = image.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, (*background, 255))
    rgb = Image.alpha_composite(flat, rgba).convert("RGB")
    if rgb.width != rgb.height:
        side = max(rgb.size)
        square = Image.new("RGB", (side, side), background)
        square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
        rgb = square
    return rgb


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
        self._images = np.array(images)  # a copy: what trains stays what was hashed
        self._labels = None if labels is None else np.asarray(labels, np.float32)
        self._tensors = None

    def order(self, epoch: int) -> np.ndarray:
        """int64 (steps, batch_size): the rows of each of the epoch's batches."""
        # The last partial batch is dropped: batch statistics of a handful of images are noise.
        used = self.steps_per_epoch * self.batch_size
        return epoch_order(self.count, self.seed, epoch)[:used].reshape(self.steps_per_epoch, -1)

    def tensors(self) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(images, labels or None) as tensors in host memory, made once, for a compiled epoch
        to gather its batches from (``DCGAN.train_epoch``)."""
        if self._tensors is None:
            with tf.device("/cpu:0"):
                labels = None if self._labels is None else tf.constant(self._labels)
                self._tensors = (tf.constant(self._images), labels)
        return self._tensors

    def epoch(self, epoch: int) -> Iterator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
        """The epoch's batches as NumPy arrays, each gathered when it is asked for."""
        for indices in self.order(epoch):
            images = self._images[indices]
            yield images if self._labels is None else (images, self._labels[indices])


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


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
