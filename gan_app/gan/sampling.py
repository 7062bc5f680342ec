"""Latent vectors from seeds, PNG encoding, sample grids, and the published generator artifact.

A published generator is ONE zip file::

    manifest.json     {"format": "nff-generator", "version": 1, "resolution", "latent_dim",
                       "epoch", "config", "training_set", "model_file", "model_sha256",
                       "conditional", "conditions" (the trait vocabulary, or null),
                       "trait_colours" (conditional pixel art: ``pixelart.TraitColours``), ...}
    generator.keras   the generator as a plain Keras model (built-in layers only, float32)

A conditional generator's model takes ``[latent, traits multi-hot]``; ``generate(seeds,
traits={type: value})`` resolves the request with the vocabulary in the manifest (see
``conditioning``), so generator + traits + seed give the same image in any process.

``load_generator`` needs neither the training classes nor this package's model builders, and a
seed always maps to the same latent vector (NumPy PCG64), so the same generator and seed give
the same image, and the same PNG bytes, in any process: every process runs the forward pass
with the same graph rewrites (``runtime.pin_numerics``) and at one batch shape, padded
(``runtime.fixed_shape_batches``), whatever it ran before and however many seeds came together.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from .conditioning import ConditionError, ConditionVocabulary
from .fileio import Dest, Source, read_bytes, write_bytes
from .pixelart import PixelArtProfile, TraitColours
from .runtime import fixed_shape_batches, rowwise_dense

ARTIFACT_FORMAT = "nff-generator"
ARTIFACT_VERSION = 1
MODEL_FILE = "generator.keras"
MANIFEST_FILE = "manifest.json"
# The widest seed a latent vector can be drawn from (a signed 64-bit column): fabrication
# derives candidate seeds over this range. The seeds visitors may ask for are a narrower
# public range, defined once in gan_app.generation.requests.MAX_SEED (exact in JavaScript).
LATENT_SEED_LIMIT = 2**63 - 1
GRID_SEEDS = tuple(range(16))  # the fixed seeds of every 4x4 sample grid
# Rows per forward pass, always (padded), by resolution: the shape is a function of the model
# alone, so every process draws a seed's bytes with the same kernels. Measured on 2 cores
# (``bench/generate.py --raw``): at 32 px a pass costs mostly its call overhead, so 16 rows
# keep batches fast (8 rows would halve their throughput) for ~3 ms a lone seed; at 64 px and
# above the convolutions dominate, so 8 rows make a lone seed, what Generate draws, 1.7x faster
# (64 px: 9 -> 5.4 ms; 128 px: 13.6 -> 8.2 ms) for 5-25% of the batch throughput.
INFERENCE_BATCH = 16
INFERENCE_BATCH_LARGE = 8


def inference_rows(resolution: int) -> int:
    """Rows of every forward pass of a generator of this resolution (see ``INFERENCE_BATCH``)."""
    return INFERENCE_BATCH if resolution <= 32 else INFERENCE_BATCH_LARGE


class GeneratorArtifactError(ValueError):
    """A generator file is not a valid artifact (wrong format, corrupt, checksum mismatch)."""


def latent_vectors(seeds: Iterable[int], latent_dim: int) -> np.ndarray:
    """float32 (N, latent_dim): one standard-normal vector per seed, identical on every machine."""
    seeds = [_check_seed(seed) for seed in seeds]
    vectors = np.empty((len(seeds), latent_dim), dtype=np.float32)
    for row, seed in enumerate(seeds):
        vectors[row] = np.random.Generator(np.random.PCG64(seed)).standard_normal(latent_dim)
    return vectors


def slerp(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points from ``start`` to ``end`` along the great circle (spherical interpolation).

    Gaussian latents concentrate near a sphere; a straight line would pass through its
    low-norm interior and wash the images out midway.
    """
    if steps < 2:
        raise ValueError(f"a walk needs at least 2 steps, got {steps}")
    start64, end64 = start.astype(np.float64), end.astype(np.float64)
    cos = np.dot(start64, end64) / (np.linalg.norm(start64) * np.linalg.norm(end64))
    omega = math.acos(float(np.clip(cos, -1.0, 1.0)))
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if omega < 1e-6:
        return ((1 - t) * start64 + t * end64).astype(np.float32)
    return (
        (np.sin((1 - t) * omega) * start64 + np.sin(t * omega) * end64) / math.sin(omega)
    ).astype(np.float32)


def to_uint8(images) -> np.ndarray:
    """Generator output in [-1, 1] -> uint8 pixels."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_png(image: np.ndarray) -> bytes:
    """uint8 (H, W, 3) -> PNG bytes; no timestamps or metadata, so equal pixels give equal bytes."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"to_png wants uint8 (H, W, 3), got {image.dtype} {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def make_grid(
    images: np.ndarray, columns: int = 4, scale: int = 1, gutter: int = 2, fill: int = 255
) -> np.ndarray:
    """uint8 (N, H, W, 3) -> one uint8 image, ``columns`` wide, tiles enlarged ``scale`` times."""
    images = np.asarray(images)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    count, height, width = images.shape[:3]
    rows = math.ceil(count / columns)
    grid = np.full(
        (rows * height + (rows + 1) * gutter, columns * width + (columns + 1) * gutter, 3),
        fill,
        dtype=np.uint8,
    )
    for i, image in enumerate(images):
        top = gutter + (i // columns) * (height + gutter)
        left = gutter + (i % columns) * (width + gutter)
        grid[top : top + height, left : left + width] = image
    return grid


def grid_scale(resolution: int) -> int:
    """Enlarge small tiles so a grid of 32 px sprites is still legible."""
    return max(1, 128 // resolution)


def sample_grid_png(
    generator: keras.Model,
    latent_dim: int,
    seeds=GRID_SEEDS,
    vocabulary: ConditionVocabulary | None = None,
    columns: int = 4,
    pixel_art: PixelArtProfile | None = None,
    trait_colours: TraitColours | None = None,
) -> bytes:
    """PNG of the generator's images for ``seeds`` (default: the fixed 4x4 grid seeds).

    Conditional generators: each row is one fixed trait combination
    (``vocabulary.grid_conditions``) drawn with the first ``columns`` seeds, so a row shows
    what the traits hold constant and a column what the latent does.
    """
    traits = None
    if vocabulary is None:
        images = to_uint8(generator(latent_vectors(seeds, latent_dim), training=False))
    else:
        rows = max(1, len(seeds) // columns)
        latent = np.tile(latent_vectors(seeds[:columns], latent_dim), (rows, 1))
        traits = np.repeat(vocabulary.grid_conditions(rows).labels, columns, axis=0)
        images = to_uint8(generator([latent, traits], training=False))
    if pixel_art is not None:
        # The grid shows tokens as they will be published.
        images = pixel_art.render(images, traits, trait_colours)
    return to_png(make_grid(images, columns, scale=grid_scale(images.shape[1])))


class LoadedGenerator:
    """A published generator, ready to serve: ``generate(seeds)`` -> uint8 (N, H, W, 3).

    ``vocabulary`` is the trait vocabulary of a conditional generator (``None`` otherwise);
    its ``generate``, ``walk`` and ``grid`` take ``traits={type: value}`` ("any" or left out:
    drawn per seed from the training set's joint distribution).
    """

    def __init__(self, model: keras.Model, manifest: dict, sha256: str):
        self.model = model
        self.manifest = manifest
        self.sha256 = sha256  # of the whole artifact file
        self.resolution = int(manifest["resolution"])
        self.latent_dim = int(manifest["latent_dim"])
        self.epoch = manifest.get("epoch")
        conditions = manifest.get("conditions")
        self.vocabulary = ConditionVocabulary.from_json(conditions) if conditions else None
        # Pixel-art generators render every image onto the collection's grid and palette;
        # trait-conditioned ones also onto the colours of each image's traits.
        self.pixel_art = pixel_art_profile(manifest)
        self.trait_colours = trait_colours_of(manifest)
        # A seed's pixels must not depend on where in a pass it sits (``rowwise_dense``).
        rowwise_dense(self.model)
        # Every pass has the same rows (``generate_latents``), so one graph serves every
        # request size, with the rows known to it.
        rows = inference_rows(self.resolution)
        signature = [tf.TensorSpec([rows, self.latent_dim], tf.float32)]
        if self.vocabulary is not None:
            signature.append(tf.TensorSpec([rows, self.vocabulary.size], tf.float32))
        self._forward = tf.function(self._pixels, input_signature=signature, reduce_retracing=True)

    @property
    def conditional(self) -> bool:
        return self.vocabulary is not None

    def _pixels(self, latent, traits=None):
        inputs = latent if traits is None else [latent, traits]
        images = self.model(inputs, training=False)
        return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255), tf.uint8)

    def generate_latents(self, latent: np.ndarray, traits: np.ndarray | None = None) -> np.ndarray:
        """Images for latents; a conditional generator also needs ``traits`` multi-hot rows
        (one per latent, e.g. ``resolve_traits(...).labels``)."""
        latent = np.asarray(latent, dtype=np.float32)
        if latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise ValueError(f"latents must be (N, {self.latent_dim}), got {latent.shape}")
        if self.conditional:
            if traits is None:
                raise ConditionError("this generator is trait-conditioned: pass trait rows")
            traits = np.asarray(traits, dtype=np.float32)
            if traits.shape != (len(latent), self.vocabulary.size):
                raise ValueError(
                    f"trait rows must be ({len(latent)}, {self.vocabulary.size}), "
                    f"got {traits.shape}"
                )
        elif traits is not None:
            raise ConditionError("this generator is not trait-conditioned: it takes no traits")
        if not len(latent):
            return self.render(np.zeros((0, self.resolution, self.resolution, 3), np.uint8))
        # Every forward pass has the same rows (padded), so a seed's pixels do not depend on
        # the batch it came in, even with many threads (``fixed_shape_batches``).
        arrays = [latent] if traits is None else [latent, traits]
        rows = inference_rows(self.resolution)
        return self.render(fixed_shape_batches(self._run, arrays, rows), traits)

    def _run(self, *arrays):
        return self._forward(*(tf.constant(a) for a in arrays)).numpy()

    def render(self, model_images: np.ndarray, traits: np.ndarray | None = None) -> np.ndarray:
        """Model pixels -> the token as published: pixel-art generators crop the native grid,
        snap to the palette (with ``traits``, the images' trait rows, to the colours of their
        traits when the generator has them) and clean the background (``pixelart``); others
        are unchanged."""
        if self.pixel_art is None:
            return model_images
        return self.pixel_art.render(model_images, traits, self.trait_colours)

    def resolve_traits(self, seeds: Sequence[int], traits: dict | None = None):
        """The ``ResolvedConditions`` (multi-hot rows and trait dicts) behind each seed's image;
        ``ConditionError`` for unknown types/values (the message lists the valid ones)."""
        if not self.conditional:
            if traits:
                raise ConditionError("this generator is not trait-conditioned: it takes no traits")
            return None
        return self.vocabulary.resolve(traits, [_check_seed(seed) for seed in seeds])

    def condition_key(self, traits: dict | None = None) -> str:
        """The canonical request text stored with each image ("" for unconditional ones)."""
        if not self.conditional:
            self.resolve_traits([], traits)  # refuses traits
            return ""
        return self.vocabulary.condition_key(traits)

    def generate(self, seeds: int | Sequence[int], traits: dict | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3), one image per seed, in order."""
        seeds = [seeds] if isinstance(seeds, int) else list(seeds)
        resolved = self.resolve_traits(seeds, traits)
        return self.generate_latents(
            latent_vectors(seeds, self.latent_dim), None if resolved is None else resolved.labels
        )

    def walk(
        self, start_seed: int, end_seed: int, steps: int = 8, traits: dict | None = None
    ) -> np.ndarray:
        """uint8 (steps, H, W, 3): a latent walk (slerp) from one seed's image to another's.

        Conditional: the traits stay those resolved for ``start_seed`` along the whole walk.
        """
        start, end = latent_vectors([start_seed, end_seed], self.latent_dim)
        resolved = self.resolve_traits([start_seed], traits)
        rows = None if resolved is None else np.repeat(resolved.labels, steps, axis=0)
        return self.generate_latents(slerp(start, end, steps), rows)

    def grid(
        self, seeds: Sequence[int] = GRID_SEEDS, columns: int = 4, traits: dict | None = None
    ) -> np.ndarray:
        images = self.generate(seeds, traits)
        return make_grid(images, columns, scale=grid_scale(images.shape[1]))

    to_png = staticmethod(to_png)


def pixel_art_profile(manifest: dict) -> PixelArtProfile | None:
    """The pixel-art profile a generator (or checkpoint) manifest records for its data, if any."""
    data = manifest.get("training_set") or manifest.get("data") or {}
    stored = (data.get("source") or {}).get("pixel_art")
    return PixelArtProfile.from_dict(stored) if stored else None


def trait_colours_of(manifest: dict) -> TraitColours | None:
    """The trait colours a conditional pixel-art generator (or checkpoint) manifest records;
    None for other generators, and for those published before they existed."""
    text = manifest.get("trait_colours")
    return TraitColours.from_text(text) if text else None


def export_generator(
    generator: keras.Model,
    dest: Dest,
    *,
    config: dict,
    epoch: int | None,
    training_set: dict | None = None,
    extra: dict | None = None,
    conditions: dict | None = None,
    trait_colours: TraitColours | None = None,
) -> str:
    """Write the generator artifact (one zip) to a path or binary file; return its sha256.

    ``config`` is the run's hyperparameters (``GANConfig.to_dict()``), ``training_set`` whatever
    the caller wants to remember about the data (slug, filters, image count, fingerprint),
    ``conditions`` a conditional generator's trait vocabulary (``ConditionVocabulary.to_json``),
    ``trait_colours`` a conditional pixel-art generator's colours per trait unit.
    """
    conditional = isinstance(generator.input_shape, list)
    if conditional != (conditions is not None):
        raise ValueError(
            "a conditional generator needs its trait vocabulary (conditions) and only it"
        )
    generator = _float32_copy(generator)
    with tempfile.TemporaryDirectory() as tmp:
        # Keras only saves to a path ending in .keras (a zip of config + weights).
        generator.save(Path(tmp) / MODEL_FILE)
        model_bytes = (Path(tmp) / MODEL_FILE).read_bytes()
    _, height, width, channels = generator.output_shape
    manifest = {
        "format": ARTIFACT_FORMAT,
        "version": ARTIFACT_VERSION,
        "resolution": height,
        "latent_dim": _input_shapes(generator)[0][-1],
        "channels": channels,
        "epoch": epoch,
        "latent": "numpy Generator(PCG64(seed)).standard_normal(latent_dim) as float32",
        "output": "tanh in [-1, 1]; pixel = clip(round((x + 1) * 127.5), 0, 255)",
        "config": config,
        "training_set": training_set or {},
        "extra": extra or {},
        "conditional": conditional,
        "conditions": conditions,
        "model_file": MODEL_FILE,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
    }
    if trait_colours is not None:
        manifest["trait_colours"] = trait_colours.to_text()
    if height != width:
        raise ValueError(f"generator output must be square, got {height}x{width}")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True))
        # The .keras file is already a zip: storing it uncompressed saves time, not space.
        zf.writestr(zipfile.ZipInfo(MODEL_FILE, (1980, 1, 1, 0, 0, 0)), model_bytes)
    data = archive.getvalue()
    write_bytes(dest, data)
    return hashlib.sha256(data).hexdigest()


def load_generator(source: Source) -> LoadedGenerator:
    """Load an artifact written by ``export_generator`` from a path, bytes or a binary file."""
    data = read_bytes(source)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if MANIFEST_FILE not in names:
                raise GeneratorArtifactError(f"not a generator file: no {MANIFEST_FILE} inside")
            manifest = json.loads(zf.read(MANIFEST_FILE))
            _check_manifest(manifest, names)
            model_bytes = zf.read(manifest["model_file"])
    except zipfile.BadZipFile as exc:
        raise GeneratorArtifactError(f"not a generator file: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise GeneratorArtifactError(f"generator manifest is not valid JSON: {exc}") from exc
    if hashlib.sha256(model_bytes).hexdigest() != manifest["model_sha256"]:
        raise GeneratorArtifactError("generator model checksum mismatch: the file is corrupt")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / MODEL_FILE).write_bytes(model_bytes)
        model = keras.saving.load_model(Path(tmp) / MODEL_FILE, compile=False, safe_mode=True)
    expected_inputs = [(manifest["latent_dim"],)]
    if manifest.get("conditions"):
        try:
            vocabulary = ConditionVocabulary.from_json(manifest["conditions"])
        except (ConditionError, KeyError, TypeError) as exc:
            raise GeneratorArtifactError(f"trait vocabulary is unreadable: {exc}") from exc
        expected_inputs.append((vocabulary.size,))
    inputs = [tuple(shape[1:]) for shape in _input_shapes(model)]
    if inputs != expected_inputs or tuple(model.output_shape[1:]) != (
        manifest["resolution"],
        manifest["resolution"],
        3,
    ):
        raise GeneratorArtifactError(
            f"model shapes {model.input_shape} -> {model.output_shape} do not match the manifest"
        )
    return LoadedGenerator(model, manifest, hashlib.sha256(data).hexdigest())


def _input_shapes(model: keras.Model) -> list[tuple]:
    shape = model.input_shape
    return list(shape) if isinstance(shape, list) else [shape]


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"a seed must be an integer, got {seed!r}")
    if not 0 <= seed <= LATENT_SEED_LIMIT:
        raise ValueError(f"a seed must be between 0 and {LATENT_SEED_LIMIT}, got {seed}")
    return int(seed)


def _check_manifest(manifest: dict, names: set[str]) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != ARTIFACT_FORMAT:
        raise GeneratorArtifactError(f"not a generator file: format is not {ARTIFACT_FORMAT!r}")
    if manifest.get("version") != ARTIFACT_VERSION:
        raise GeneratorArtifactError(
            f"generator file version {manifest.get('version')!r} is not supported "
            f"(this code reads version {ARTIFACT_VERSION})"
        )
    missing = [
        k for k in ("resolution", "latent_dim", "model_file", "model_sha256") if k not in manifest
    ]
    if missing:
        raise GeneratorArtifactError(f"generator manifest lacks {', '.join(missing)}")
    if manifest["model_file"] not in names:
        raise GeneratorArtifactError(f"generator file lacks {manifest['model_file']}")


def _float32_copy(model: keras.Model) -> keras.Model:
    """Mixed-precision training leaves float16/bfloat16 layer policies; serving wants float32."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def as_float32(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=as_float32)
    copy.set_weights(model.get_weights())
    return copy
