"""What the public pages show about generators, prepared in Python (no TensorFlow here)."""

import math

from django.conf import settings
from django.db.models import Prefetch

from collections_app.models import Trait

from .evaluation.labelling import excluded_read
from .models import GeneratedImage, Generator, TrainingRun
from .training.runs import loss_figure  # noqa: F401  (the run pages draw it)


def home_context(collections) -> dict:
    """What the home page shows about generators (registered in ``collections_app.hooks``):
    each collection's public generators, recent images, the hero grid, where to try one."""
    collections = attach_generators(collections)
    try_in = next((c for c in collections if c.public_generators), None)
    recent = list(public_images()[:9])
    return {
        "collections": collections,
        "recent": recent,
        "mosaic_slice": ":9" if len(recent) >= 9 else ":4",
        "showcase_grid": next(
            (g for c in collections for g in c.public_generators if g.sample_grid), None
        ),
        "try_url": f"{try_in.get_absolute_url()}#generate" if try_in else "",
    }


def public_images():
    """Generated images anyone may see: not hidden, from a published and listed generator of a
    public collection, newest first; near-copies of training images left out while
    ``REFUSE_NEAR_COPIES`` is on."""
    images = GeneratedImage.objects.filter(
        is_hidden=False,
        generator__is_published=True,
        generator__is_listed=True,
        generator__collection__is_public=True,
    )
    if settings.REFUSE_NEAR_COPIES:
        images = images.exclude(is_near_copy=True)
    images = images.filter(excluded_traits=[])  # content safeguard: always withheld
    # A page of images must not decode its collection's analytics once per image.
    return Generator.served(images, "generator").order_by("-created_at", "-pk")


# Serving a stored image re-reads the collection's excluded trait values at most this often per
# process: an admin's exclusion withholds the images everywhere within these seconds (at once
# in the process that made it), and the PNG's own cache lifetime is longer.
EXCLUSIONS_MAX_AGE = 5.0

NEAR_COPY_MESSAGE = (
    "This image was withheld: it is a near-copy of one of the collection's own images, "
    "so it is not released as a new one."
)


def withheld(image) -> bool:
    """True when the site must not serve this image (a flagged near-copy, refusal on; or the
    labelling read a trait value an admin excluded)."""
    return bool(withheld_reason(image))


def withheld_reason(image) -> str:
    """Why the image is withheld, in words for visitors ("" when it is not)."""
    excluded = list(image.excluded_traits or [])
    if not excluded and image.traits:
        # Values excluded after the image was labelled count too.
        excluded = excluded_read(
            image.traits, Trait.excluded_pairs(image.generator.collection_id, EXCLUSIONS_MAX_AGE)
        )
    if excluded:
        return (
            "This image was withheld: it shows a trait this site does not publish ("
            + ", ".join(excluded)
            + ")."
        )
    if settings.REFUSE_NEAR_COPIES and image.is_near_copy:
        return NEAR_COPY_MESSAGE
    return ""


def public_generators():
    """Published generators the quality gate (or an admin) listed, in public collections."""
    return Generator.objects.filter(is_published=True, is_listed=True, collection__is_public=True)


def attach_generators(collections) -> list:
    """Give each collection ``public_generators`` (newest version first) and ``training_run``
    (its newest queued or running TrainingRun, or None)."""
    collections = list(collections)
    ids = [c.pk for c in collections]
    generators = {}
    for generator in public_generators().filter(collection_id__in=ids).order_by("-version"):
        generators.setdefault(generator.collection_id, []).append(generator)
    runs = {}
    active = (
        TrainingRun.objects.filter(
            status__in=TrainingRun.ACTIVE, training_set__collection_id__in=ids
        )
        .select_related("training_set")
        .order_by("-created_at")
    )
    for run in active:
        runs.setdefault(run.training_set.collection_id, run)
    for collection in collections:
        collection.public_generators = generators.get(collection.pk, [])
        collection.training_run = runs.get(collection.pk)
    return collections


def generator_for_page(slug):
    generators = Generator.objects.select_related("training_run__training_set")
    return (
        Generator.served(generators, keep=("metrics",))  # the page shows the report
        .prefetch_related(Prefetch("collection__generators", queryset=public_generators()))
        .filter(slug=slug)
        .first()
    )


def trained_on(generator) -> dict:
    """The training set: name, token count, filters in words, subset vs collection prices."""
    manifest_set = (generator.manifest or {}).get("training_set") or {}
    training_set = generator.training_run.training_set if generator.training_run else None
    if training_set is not None:
        stats = training_set.stats or {}
        return {
            "name": training_set.name,
            "token_count": training_set.token_count,
            "filters": describe_filters(training_set.filter_spec),
            "subset": stats.get("subset") or {},
            "collection": stats.get("collection") or {},
            "warnings": stats.get("warnings") or [],
        }
    return {
        "name": manifest_set.get("name") or manifest_set.get("slug") or "",
        "token_count": manifest_set.get("count") or manifest_set.get("token_count"),
        "filters": describe_filters(manifest_set.get("filter_spec") or manifest_set.get("filters")),
        "subset": {},
        "collection": {},
        "warnings": [],
    }


def describe_filters(spec) -> str:
    """A training set's filter spec in words (``SubsetSpec.describe``), "all tokens" if none."""
    if not spec:
        return "all tokens"
    if isinstance(spec, str):
        return spec
    from collections_app.analytics.subsets import SubsetError, SubsetSpec, parse_trait

    try:
        data = dict(spec)
        for key in ("include_traits", "exclude_traits"):
            data[key] = [
                parse_trait(t) if isinstance(t, str) else tuple(t) for t in data.get(key) or []
            ]
        return SubsetSpec(**data).describe()
    except (TypeError, ValueError, SubsetError):
        return ", ".join(f"{k}: {v}" for k, v in spec.items() if v not in (None, [], "", False))


def training_facts(generator) -> list[tuple[str, str]]:
    """(label, value) pairs: epochs, resolution, speed, latent size, network widths."""
    run = generator.training_run
    config = (generator.manifest or {}).get("config") or (run.config if run else {}) or {}
    facts = []
    epoch = (
        generator.epoch if generator.epoch is not None else (generator.manifest or {}).get("epoch")
    )
    if epoch is not None:
        total = f" of {run.epochs_total}" if run and run.epochs_total else ""
        facts.append(("Epochs trained", f"{epoch}{total}"))
    facts.append(("Resolution", f"{generator.resolution} x {generator.resolution} px"))
    if run and run.images_per_second:
        facts.append(("Training speed", f"{run.images_per_second:,.0f} images/s"))
    seconds = sum(
        e.get("seconds") or 0 for e in (run.loss_history if run else []) if isinstance(e, dict)
    )
    if seconds:
        facts.append(("Training time", _duration(seconds)))
    facts.append(("Latent size", f"{generator.latent_dim} numbers"))
    if config.get("generator_width"):
        facts.append(("Generator width", f"{config['generator_width']} channels"))
    if config.get("batch_size"):
        facts.append(("Batch size", str(config["batch_size"])))
    if config.get("augment"):
        facts.append(("Augmentation", "on"))
    return facts


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


# (label, path in the evaluation report, baseline path, how to show it, hint)
METRICS = [
    (
        "FID (Inception)",
        "inception.fid",
        "baseline.inception.fid",
        "num",
        "lower is closer to real images",
    ),
    (
        "KID (Inception)",
        "inception.kid_mean",
        "baseline.inception.kid_mean",
        "num",
        "lower is better",
    ),
    (
        "Inception score",
        "inception.is_mean",
        "baseline.inception.is_mean",
        "num",
        "higher is more varied",
    ),
    ("FID (trait features)", "domain.fid", "baseline.domain.fid", "num", "lower is better"),
    (
        "Trait distribution gap",
        "traits.tv_mean",
        "baseline.traits.tv_mean",
        "num",
        "total variation, 0 = same",
    ),
    (
        "Near-copies of training images",
        "memorisation.pixel.near_copy_share",
        "baseline.memorisation.pixel.near_copy_share",
        "pct",
        "share of generated images",
    ),
]


def _path(data, path):
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data if isinstance(data, int | float) and not isinstance(data, bool) else None


def _show(value, how):
    if value is None:
        return "—"
    return (
        f"{value * 100:.1f}%"
        if how == "pct"
        else f"{value:,.3g}"
        if abs(value) < 1000
        else f"{value:,.0f}"
    )


def metric_rows(metrics: dict) -> list[dict]:
    """Rows for the evaluation table: generated vs real-vs-real baseline, where known.

    Reads the evaluation report (``gan_app.gan.evaluation``); a flat {name: number} dict is
    shown as it is.
    """
    if not isinstance(metrics, dict) or not metrics:
        return []
    rows = []
    for label, path, baseline, how, hint in METRICS:
        value = _path(metrics, path)
        if value is not None:
            rows.append(
                {
                    "label": label,
                    "value": _show(value, how),
                    "baseline": _show(_path(metrics, baseline), how),
                    "hint": hint,
                }
            )
    if rows:
        return rows
    for key, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows.append(
                {
                    "label": key.replace("_", " ").capitalize(),
                    "value": _show(value, "num"),
                    "baseline": "—",
                    "hint": "",
                }
            )
    return rows


# Plain-language quality levels: (most times the real-vs-real distance, level, label, sentence).
QUALITY_LEVELS = [
    (2.0, "good", "Close to the real thing", "Its images are hard to tell from the collection's."),
    (6.0, "fair", "Recognisable", "Its images look like the collection's, with visible flaws."),
    (math.inf, "rough", "Rough sketches", "Its images only loosely resemble the collection's."),
]


def quality_badge(metrics) -> dict | None:
    """A visitor's summary of the evaluation: how far generated images are from real ones,
    in multiples of the distance between two halves of the real images (1 = as close as real
    images are to each other). The figures themselves go in an "about these numbers" fold.
    """
    for path in ("domain.fid", "inception.fid"):
        value, baseline = _path(metrics, path), _path(metrics, f"baseline.{path}")
        if value is not None and baseline:
            ratio = value / baseline
            _, level, label, sentence = next(q for q in QUALITY_LEVELS if ratio <= q[0])
            return {"level": level, "label": label, "sentence": sentence, "ratio": ratio}
    return None
