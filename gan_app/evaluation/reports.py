"""Evaluation services: the Django side of ``gan_app.gan.evaluation``.

What lives where:

- **Trait classifier** (``classifier_for``): one per collection *data version*, trained on the
  collection's real token images and their listed traits only, stored in Django storage as
  ``evaluation/<collection>/trait-classifier-d<data_version>-n.zip`` (the zip carries its held-out
  accuracy per trait type and per trait) and kept loaded in the process. Any new ingest bumps
  the data version, so a stale classifier is never used; an old file is simply left behind.
- **Near-copy index** (``near_copy_index_for``): the training images a generator saw, at its
  resolution, as a ``NearCopyIndex`` stored as ``evaluation/<collection>/near-copy-<key>.npz``.
- **Reports** (``evaluate_generator``, ``evaluate_checkpoint``, ``evaluate_run``): the report of
  ``gan_app.gan.evaluation.evaluate_generator`` plus ``subject``, ``evaluated_at`` and
  ``evaluation_key`` (what it was computed with), written to ``Generator.metrics`` or
  ``Checkpoint.metrics``. An evaluation whose key is unchanged is not redone (tasks may be
  delivered twice); ``force=True`` redoes it.
- **Labelling generated images**: in ``labelling``, which reads the classifier and the
  near-copy index kept here.

TensorFlow is imported inside functions only: web processes import this module.
"""

import hashlib
import io
import logging
import threading
from collections import OrderedDict

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from collections_app.models import TokenTrait
from nftsite.storage import private_storage

from ..models import Checkpoint, Generator, TrainingRun
from . import gate
from .figures import recommended_checkpoint

log = logging.getLogger(__name__)

# Generated images for an evaluation come from these seeds (fixed, so two evaluations of the
# same generator look at the same images; far from the 0-15 of the sample grid).
EVALUATION_SEED_BASE = 1_000_000
# The classifier's real set: pixel art stays on its native grid (the classifier enlarges it by
# whole factors), anything larger comes at 32 px.
CLASSIFIER_SIZE = 32
MIN_REAL_IMAGES = 8


class EvaluationError(ValueError):
    """An evaluation cannot run (no images, no traits, no checkpoint file); says why."""


# --- Real images -------------------------------------------------------------------------------


class RealSet:
    """Real images at one resolution with their listed traits, read on first use.

    ``key`` names the token list and preprocessing (cache and storage key) and comes from the
    database alone: a stored near-copy index is found without reading a single image.
    ``images``: uint8 (N, R, R, 3), or (N, h, w, 3) on the native grid for pixel art (what
    the generator's tokens are rendered to; ``pixel_art`` then holds the profile);
    ``traits``: one list of (type, value) pairs per image.
    """

    def __init__(self, rows, resolution, background, key, description):
        self.rows = rows  # (token pk, storage name)
        self.resolution = resolution
        self.background = background
        self.key = key
        self.description = description
        self._images = None
        self._pixel_art = None
        self._traits = None
        self._lock = threading.Lock()

    def __len__(self):
        return len(self.rows)

    @property
    def images(self):
        with self._lock:
            if self._images is None:
                named = [(f"token {pk}", _read(name)) for pk, name in self.rows]
                self._images, self._pixel_art = _decode(named, self.resolution, self.background)
            return self._images

    @property
    def pixel_art(self):
        """The set's ``PixelArtProfile`` (None unless pixel art trained cell for cell)."""
        self.images  # noqa: B018 (decodes on first use)
        return self._pixel_art

    @property
    def traits(self):
        with self._lock:
            if self._traits is None:
                self._traits = TokenTrait.pairs_for([pk for pk, _ in self.rows])
            return self._traits


def _tokens_with_images(collection, training_set=None):
    tokens = training_set.tokens.all() if training_set is not None else collection.tokens.all()
    return list(
        tokens.exclude(image="").order_by("token_number", "token_id").values_list("pk", "image")
    )


def _read(name):
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def _decode(named, resolution, background):
    """Token images → (uint8 array, pixel-art profile or None) via the training pipeline's own
    preprocessing; pixel art comes back on its native grid, as generated tokens are rendered."""
    from gan_app.gan import GANConfig, prepare_images
    from gan_app.gan.pixelart import PixelArtProfile, crop_from_model

    config = GANConfig(resolution=resolution, background=background, batch_size=1)
    cache = settings.VAR_DIR / "cache" / "evaluation"
    cache.mkdir(parents=True, exist_ok=True)
    prepared = prepare_images(named, config, cache_dir=cache, min_count=1)
    if not prepared.pixel_art:
        return prepared.images, None
    profile = PixelArtProfile.from_dict(prepared.pixel_art)
    return crop_from_model(prepared.images, profile.grid), profile


def load_real_set(collection, *, training_set=None, resolution=32, background="#ffffff"):
    """The collection's (or training set's) token images with traits at ``resolution``."""
    rows = _tokens_with_images(collection, training_set)
    if len(rows) < MIN_REAL_IMAGES:
        where = f"training set {training_set}" if training_set else f"collection {collection.slug}"
        raise EvaluationError(
            f"{where} has {len(rows)} token image(s); evaluation needs at least {MIN_REAL_IMAGES}"
        )
    pks = [pk for pk, _ in rows]
    scope = f"ts{training_set.pk}" if training_set is not None else f"d{collection.data_version}"
    digest = hashlib.sha256(",".join(map(str, pks)).encode()).hexdigest()[:10]
    # "-n": pixel art is kept on its native grid (sets stored before that are not reused).
    key = f"{scope}-r{resolution}-{background.lstrip('#').lower()}-{digest}-n"
    description = (
        f"training set {training_set.name}" if training_set else f"all of {collection.name}"
    )
    return RealSet(rows, resolution, background, key, f"{len(pks)} tokens ({description})")


# --- Per-process caches ------------------------------------------------------------------------


class _Cache:
    """A small LRU of loaded artifacts (classifiers, indexes, real sets) for this process."""

    def __init__(self, size):
        self.size = size
        self.items = OrderedDict()
        self.lock = threading.RLock()

    def get(self, key, make):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            value = make()
            if value is not None:
                self.items[key] = value
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
            return value

    def clear(self):
        with self.lock:
            self.items.clear()


_classifiers = _Cache(4)
_indexes = _Cache(4)
_real_sets = _Cache(2)
_frequencies = _Cache(8)


def clear_caches():
    for cache in (_classifiers, _indexes, _real_sets, _frequencies):
        cache.clear()


def _save_once(name, data):
    """Write ``data`` under ``name`` in the private storage unless present (two workers may
    race; same content). Classifiers and indexes are trained models: never public media."""
    if not private_storage().exists(name):
        saved = private_storage().save(name, ContentFile(data))
        if saved != name:
            private_storage().delete(saved)
    return name


# --- Trait classifier --------------------------------------------------------------------------


def classifier_name(collection):
    # "-n": pixel art read pixel for pixel (``input_size``); files from before are retrained.
    return f"evaluation/{collection.slug}/trait-classifier-d{collection.data_version}-n.zip"


def classifier_for(collection, *, train=True, **fit_options):
    """The collection's trait classifier for its current data version.

    Loaded from storage when trained before; otherwise trained on the collection's own token
    images (``train=True``) and stored, or None (``train=False``: the generate worker, which
    must not spend minutes training). ``fit_options`` go to ``TraitClassifier.fit`` (tests use
    few epochs and a narrow network).
    """
    name = classifier_name(collection)

    def make():
        from gan_app.gan.trait_classifier import TraitClassifier

        if private_storage().exists(name):
            with private_storage().open(name, "rb") as handle:
                return TraitClassifier.load(io.BytesIO(handle.read()))
        if not train:
            return None
        real = load_real_set(collection, resolution=CLASSIFIER_SIZE)
        if not any(real.traits):
            raise EvaluationError(f"collection {collection.slug} lists no traits to learn")
        log.info("training the trait classifier of %s on %s", collection.slug, real.description)
        classifier = TraitClassifier.fit(real.images, real.traits, **fit_options)
        _save_once(name, classifier.to_bytes())
        return classifier

    return _classifiers.get(name, make)


def classifier_summary(collection):
    """Held-out accuracy of the stored classifier, or None when none is trained yet."""
    classifier = classifier_for(collection, train=False)
    if classifier is None:
        return None
    metrics = classifier.metrics
    return {
        "file": classifier_name(collection),
        "train_count": metrics.get("train_count"),
        "heldout_count": metrics.get("heldout_count"),
        "per_type_accuracy": metrics.get("per_type_accuracy", {}),
        "majority_per_type_accuracy": metrics.get("majority_per_type_accuracy", {}),
        "exact_match": metrics.get("exact_match"),
    }


# --- Near-copy index ---------------------------------------------------------------------------


def _real_set_for(collection, training_set, resolution, background):
    key = (collection.pk, collection.data_version, getattr(training_set, "pk", None))
    key += (resolution, background)
    return _real_sets.get(
        key,
        lambda: load_real_set(
            collection, training_set=training_set, resolution=resolution, background=background
        ),
    )


def near_copy_index_for(real, collection):
    """The ``NearCopyIndex`` of a real set (stored once, then loaded)."""
    name = f"evaluation/{collection.slug}/near-copy-{real.key}.npz"

    def make():
        from gan_app.gan.memorisation import NearCopyIndex

        if private_storage().exists(name):
            with private_storage().open(name, "rb") as handle:
                return NearCopyIndex.load(io.BytesIO(handle.read()))
        index = NearCopyIndex.fit(real.images)
        _save_once(name, index.to_bytes())
        return index

    return name, _indexes.get(name, make)


# --- What a generator or run was trained on ----------------------------------------------------


def _background(config):
    return (config or {}).get("background") or "#ffffff"


def generator_real_set(generator):
    """The images the generator learnt from: its run's training set, else its collection."""
    run = generator.training_run
    config = (generator.manifest or {}).get("config") or (run.config if run else {})
    return _real_set_for(
        generator.collection,
        run.training_set if run else None,
        generator.resolution,
        _background(config),
    )


def run_real_set(run):
    return _real_set_for(
        run.training_set.collection, run.training_set, run.resolution, _background(run.config)
    )


# --- Reports -----------------------------------------------------------------------------------


def _sample_count(real):
    """As many generated images as the held-out real half (what the baseline compares)."""
    return max(2, min(settings.EVALUATION_MAX_SAMPLES, len(real) // 2))


def _evaluation_key(collection, real, count):
    from gan_app.gan.evaluation import REPORT_VERSION

    return ":".join(
        [
            f"v{REPORT_VERSION}",
            classifier_name(collection),
            real.key,
            str(count),
            settings.INCEPTION_WEIGHTS or "-",
        ]
    )


def _report(collection, real, pixels, key, subject, **fit_options):
    from gan_app.gan.evaluation import evaluate_generator as evaluate

    classifier = classifier_for(collection, **fit_options)
    _, index = near_copy_index_for(real, collection)
    report = evaluate(
        real.images,
        real.traits,
        pixels,
        classifier,
        inception_weights=settings.INCEPTION_WEIGHTS or None,
        near_copy_index=index,
        kid_subsets=settings.EVALUATION_KID_SUBSETS,
        palette=real.pixel_art.palette if real.pixel_art is not None else None,
    )
    report["subject"] = subject
    report["real_set"] = real.description
    report["evaluation_key"] = key
    report["evaluated_at"] = timezone.now().isoformat()
    return report


def generator_pixels(loaded, count):
    return loaded.generate(range(EVALUATION_SEED_BASE, EVALUATION_SEED_BASE + count))


def evaluate_generator(generator, *, force=False, **fit_options):
    """Evaluate a published (or publishable) generator; returns its report (also saved)."""
    from gan_app.gan import load_generator

    real = generator_real_set(generator)
    count = _sample_count(real)
    key = _evaluation_key(generator.collection, real, count)
    if not force and (generator.metrics or {}).get("evaluation_key") == key:
        gate.apply(generator, generator.metrics)  # the thresholds may have changed since
        return generator.metrics
    with generator.model_file.open("rb") as handle:
        loaded = load_generator(handle.read())
    subject = {"kind": "generator", "slug": generator.slug, "epoch": generator.epoch}
    report = _report(
        generator.collection,
        real,
        generator_pixels(loaded, count),
        key,
        subject,
        **fit_options,
    )
    Generator.objects.filter(pk=generator.pk).update(metrics=report)
    generator.metrics = report
    gate.apply(generator, report)
    return report


def checkpoint_pixels(checkpoint, count):
    """uint8 images from a checkpoint's generator at the evaluation seeds, drawn exactly as the
    generator published from it would draw them: exported to an artifact in memory and loaded
    (``load_generator``), so pixel art is rendered and a trait-conditioned generator draws
    each seed's traits as the site does."""
    from gan_app.gan import export_checkpoint_generator, load_generator

    artifact = io.BytesIO()
    with checkpoint.state_file.open("rb") as handle:
        export_checkpoint_generator(handle.read(), artifact)
    loaded = load_generator(artifact.getvalue())
    # The artifact's training_set is the checkpoint's data facts: no second read of its arrays.
    return generator_pixels(loaded, count), {"data": loaded.manifest["training_set"]}


def evaluate_checkpoint(checkpoint, *, force=False, **fit_options):
    """Evaluate one checkpoint of a run; returns its report (saved on the checkpoint and on
    any generator published from it)."""
    run = checkpoint.run
    if not checkpoint.state_file:
        raise EvaluationError(f"checkpoint {checkpoint} has no state file")
    real = run_real_set(run)
    count = _sample_count(real)
    key = _evaluation_key(run.collection, real, count)
    if not force and (checkpoint.metrics or {}).get("evaluation_key") == key:
        return checkpoint.metrics
    pixels, manifest = checkpoint_pixels(checkpoint, count)
    subject = {"kind": "checkpoint", "run": run.pk, "epoch": checkpoint.epoch}
    report = _report(run.collection, real, pixels, key, subject, **fit_options)
    trained_on = (manifest.get("data") or {}).get("sha256")
    if trained_on and trained_on != hashlib.sha256(real.images.data).hexdigest():
        # Same tokens but another order or preprocessing gives other bytes: worth a note,
        # not a refusal (the figures compare distributions, which order does not change).
        report["warnings"].append(
            "the checkpoint's training images differ byte for byte from the real set "
            "evaluated against (another order or preprocessing)"
        )
    Checkpoint.objects.filter(pk=checkpoint.pk).update(metrics=report)
    # Generators published from this checkpoint draw the very same images: same report.
    Generator.objects.filter(checkpoint=checkpoint).update(metrics=report)
    for generator in Generator.objects.filter(checkpoint=checkpoint):
        gate.apply(generator, report)
    checkpoint.metrics = report
    return report


def evaluate_run(run, *, force=False, progress=None, **fit_options):
    """Evaluate every checkpoint of ``run`` (oldest first); returns the recommendation."""
    for checkpoint in run.checkpoints.order_by("epoch"):
        if progress:
            progress(checkpoint)
        evaluate_checkpoint(checkpoint, force=force, **fit_options)
    return recommended_checkpoint(run)


def resolve_target(target):
    """``manage.py evaluate`` argument: a generator slug, or a training run id (``12`` or
    ``run:12``). Returns ("generator", Generator) or ("run", TrainingRun)."""
    text = str(target).strip()
    generator = Generator.objects.select_related("collection").filter(slug=text).first()
    if generator is not None:
        return "generator", generator
    number = text.removeprefix("run:")
    if number.isdigit():
        run = TrainingRun.objects.select_related("training_set__collection").filter(pk=number)
        if run.exists():
            return "run", run.get()
    raise EvaluationError(f"no generator with slug {text!r} and no training run with id {text!r}")
