"""Training runs, the web and admin side: create a run, pause, resume, cancel it, show its
status. The worker side that trains it a leased chunk at a time is ``chunks``."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from collections_app.models import Collection, TrainingSet
from nftsite.jobs import dispatch_after_commit

from ..models import TrainingRun

log = logging.getLogger(__name__)
Status = TrainingRun.Status
Control = TrainingRun.Control
MAX_LISTED = 5


class TrainingSetupError(ValueError):
    """A run cannot be created or started (bad hyperparameters or training set)."""


# --- Creating runs ---------------------------------------------------------------------------


def create_run(
    training_set: TrainingSet,
    *,
    name: str = "",
    auto_publish: bool = False,
    enqueue: bool = True,
    task_id: str | None = None,
    **hyperparameters,
) -> TrainingRun:
    """Validate hyperparameters (``GANConfig``) and the training set, then create the run and,
    with ``enqueue``, queue its first chunk once the transaction commits.

    Raises ``TrainingSetupError`` with a one-line reason before any work is queued.
    """
    config = make_config(hyperparameters)
    if config.conditional and "conditional" not in hyperparameters:
        # The recipe conditions on traits when there are some: a set listing none trains
        # unconditioned instead of being refused (asking for conditioning still is).
        config = config.replace(conditional=lists_traits(training_set))
    check_training_set(training_set, config)
    run = TrainingRun.objects.create(
        training_set=training_set,
        name=name.strip()[:200],
        config=config.to_dict(),
        resolution=config.resolution,
        seed=config.seed,
        epochs_total=config.epochs,
        conditional=config.conditional,
        auto_publish=auto_publish,
        task_id=task_id or new_task_id(),
    )
    if enqueue:
        _enqueue(run.pk, run.task_id)
    return run


def make_config(hyperparameters: dict):
    """A new run's ``GANConfig``: the named ``preset`` (default ``TRAIN_DEFAULT_PRESET``) with
    the given hyperparameters on top."""
    from gan_app.gan import ConfigError

    values = {k: v for k, v in hyperparameters.items() if v is not None}
    preset = values.pop("preset", None) or settings.TRAIN_DEFAULT_PRESET
    try:
        return config_from_json(values, preset=preset)
    except ConfigError as exc:
        raise TrainingSetupError(f"bad hyperparameters: {exc}") from None


def config_from_json(data: dict, preset: str | None = None):
    """``GANConfig`` from stored JSON (or, with ``preset``, that recipe with ``data`` on top).
    PostgreSQL's jsonb gives ``1e30`` back as an integer, and Keras wants floats for rates:
    float fields are made floats again."""
    import dataclasses

    from gan_app.gan import GANConfig

    floats = {f.name for f in dataclasses.fields(GANConfig) if f.type == "float"}
    fixed = {
        k: float(v) if k in floats and isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in data.items()
    }
    return GANConfig.from_preset(preset, **fixed) if preset else GANConfig.from_dict(fixed)


# Below this many images GANs overfit the discriminator fast: DiffAugment is suggested.
SMALL_SET_IMAGES = 2000
DEFAULT_BATCH_SIZE = 64


def suggested_defaults(training_set: TrainingSet) -> dict:
    """Start-form defaults that fit the set: a batch no larger than the set (a power of two, as
    the recipes are tuned on), augmentation for small sets, and trait conditioning when the
    default recipe conditions and the set lists traits."""
    return _defaults_for(_tokens(training_set).count(), lists_traits(training_set))


def suggested_defaults_by_set(training_sets) -> dict[int, dict]:
    """``suggested_defaults`` of many sets in one query, by primary key (the start form hands
    them to the page, which applies them when the admin picks another set)."""
    from collections_app.models import TokenTrait

    with_traits = TokenTrait.objects.filter(token__training_sets=OuterRef("pk"))
    counted = training_sets.annotate(
        images=Count("tokens", filter=~Q(tokens__image="")), traits=Exists(with_traits)
    ).values_list("pk", "images", "traits")
    return {pk: _defaults_for(images, traits) for pk, images, traits in counted}


def lists_traits(training_set: TrainingSet) -> bool:
    return _tokens(training_set).filter(traits__isnull=False).exists()


def _defaults_for(count: int, traits: bool) -> dict:
    batch = DEFAULT_BATCH_SIZE
    while batch > 1 and batch > count:
        batch //= 2
    return {
        "batch_size": batch,
        "augment": count < SMALL_SET_IMAGES,
        "conditional": traits and make_config({}).conditional,
        "image_count": count,
    }


def check_training_set(training_set: TrainingSet, config) -> None:
    """Refuse a set with no images, fewer images than a batch, or mixed image sizes, from the
    token rows alone (the images are checked again, fully, when a chunk loads them)."""
    tokens = _tokens(training_set)
    count = tokens.count()
    label = f"training set {training_set}"
    if count == 0:
        missing = training_set.tokens.count()
        detail = f" ({missing} token(s), none with an image)" if missing else ""
        raise TrainingSetupError(f"{label} has no images{detail}")
    if count < config.batch_size:
        raise TrainingSetupError(
            f"{label} has {count} image(s), fewer than the batch size {config.batch_size}; "
            f"add images or lower the batch size to {count} or less"
        )
    if config.conditional and not lists_traits(training_set):
        raise TrainingSetupError(
            f"{label} lists no traits, so a trait-conditioned run has nothing to learn them from"
        )
    sizes = list(
        tokens.exclude(image_width=None)
        .values("image_width", "image_height")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    if len(sizes) > 1:
        parts = ", ".join(f"{s['image_width']}x{s['image_height']}: {s['n']}" for s in sizes)
        raise TrainingSetupError(
            f"{label} mixes image sizes ({parts}); train on one size (a subset) at a time"
        )


def training_set_for(name: str) -> TrainingSet:
    """``ID``, ``COLLECTION/SET`` or a collection slug (its set "all", made of every token with
    an image when it does not exist yet)."""
    name = name.strip()
    if name.isdigit():
        found = TrainingSet.objects.filter(pk=int(name)).first()
        if found is None:
            raise TrainingSetupError(f"no training set with id {name}")
        return found
    if "/" in name:
        slug, set_name = name.split("/", 1)
        found = TrainingSet.objects.filter(collection__slug=slug, name=set_name).first()
        if found is None:
            raise TrainingSetupError(f"no training set {set_name!r} in collection {slug!r}")
        return found
    collection = Collection.objects.filter(slug=name).first()
    if collection is None:
        raise TrainingSetupError(f"no collection or training set named {name!r}")
    return whole_collection_set(collection)


def whole_collection_set(collection: Collection) -> TrainingSet:
    with transaction.atomic():
        training_set, created = TrainingSet.objects.get_or_create(
            collection=collection,
            name="all",
            defaults={"data_version": collection.data_version, "filter_spec": {}},
        )
        if created:
            tokens = list(collection.tokens.exclude(image="").values_list("pk", flat=True))
            through = TrainingSet.tokens.through
            through.objects.bulk_create(
                [through(trainingset=training_set, token_id=pk) for pk in tokens], batch_size=5000
            )
            training_set.token_count = len(tokens)
            training_set.save(update_fields=["token_count"])
    return training_set


def new_task_id() -> str:
    return str(uuid.uuid4())


def _tokens(training_set):
    # A fixed order: the image array's checksum is part of every checkpoint.
    return training_set.tokens.exclude(image="").order_by("token_number", "token_id", "pk")


# --- Controls ------------------------------------------------------------------------------


def pause_run(run: TrainingRun) -> TrainingRun:
    """A queued run that no worker holds pauses now; a training one at the next epoch."""
    return _control(run, Control.PAUSE, Status.PAUSED)


def cancel_run(run: TrainingRun) -> TrainingRun:
    """Like pause, but the run ends (it can still be resumed from its last checkpoint)."""
    return _control(run, Control.CANCEL, Status.CANCELLED)


def _control(run, control, idle_status):
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.status == Status.RUNNING and _lease_fresh(locked):
            locked.control = control
            locked.save(update_fields=["control"])
        elif locked.status in (Status.QUEUED, Status.RUNNING) or (
            control == Control.CANCEL and locked.status == Status.PAUSED
        ):
            # Nobody trains it: change it now, and retire the queued task's ticket.
            locked.status = idle_status
            locked.control = ""
            locked.task_id = ""
            locked.heartbeat_at = None
            if idle_status == Status.CANCELLED:
                locked.finished_at = timezone.now()
            locked.save(
                update_fields=["status", "control", "task_id", "heartbeat_at", "finished_at"]
            )
    run.refresh_from_db()
    return run


def resume_run(run: TrainingRun, *, enqueue: bool = True, task_id: str | None = None):
    """Continue a paused, failed or cancelled run from its last checkpoint (also: retry)."""
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        stopped = locked.status in (Status.PAUSED, Status.FAILED, Status.CANCELLED)
        # An active run with a stale lease lost its worker and its task: restart it too.
        stuck = locked.status in TrainingRun.ACTIVE and not _lease_fresh(locked)
        if not (stopped or stuck):
            raise TrainingSetupError(
                f"run {run.pk} is {locked.get_status_display().lower()}; nothing to resume"
            )
        locked.status = Status.QUEUED
        locked.control = ""
        locked.error = ""
        locked.task_id = task_id or new_task_id()
        locked.heartbeat_at = None
        locked.finished_at = None
        locked.save(
            update_fields=["status", "control", "error", "task_id", "heartbeat_at", "finished_at"]
        )
    if enqueue:
        _enqueue(locked.pk, locked.task_id)
    run.refresh_from_db()
    return run


retry_run = resume_run


def _enqueue(run_id: int, task_id: str, queue: str | None = None, from_worker=False) -> None:
    """Queue a chunk once the transaction commits; ``queue``: where the previous chunk came
    from (a run stays on the queue, e.g. the GPU pool, it was started on), else the route;
    ``from_worker``: sent by the previous chunk, which may wait out a broker restart."""
    dispatch_after_commit(
        TrainingRun.task_name, [run_id], queue=queue, task_id=task_id, from_worker=from_worker
    )


def _lease_seconds() -> float:
    return float(settings.TRAIN_LEASE_SECONDS)


def _lease_fresh(run) -> bool:
    return bool(
        run.heartbeat_at and run.heartbeat_at > timezone.now() - timedelta(seconds=_lease_seconds())
    )


# --- Training a chunk --------------------------------------------------------------------------


# --- What the run page shows ------------------------------------------------------------------


def run_status(run: TrainingRun) -> dict:
    """The run page's live figures (also its JSON status endpoint)."""
    latest = run.latest_checkpoint()
    grid = run.sample_grid or (latest.grid if latest else None)
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "control": run.control,
        "is_active": run.is_active,
        # Active but nobody's heartbeat: queued behind other work, or its worker was lost.
        "unattended": run.is_active and not _lease_fresh(run),
        # Really lost: what the page offers to send to the workers again.
        "stale": is_stale(run),
        "percent": round(run.percent, 1),
        "epoch_done": run.epoch_done,
        "epochs_total": run.epochs_total,
        "images_per_second": run.images_per_second,
        "eta_seconds": run.eta_seconds,
        "eta": _eta_words(run.eta_seconds) if run.is_active else "",
        "error": run.error,
        "grid_url": live_grid_url(run) if grid else "",
        "checkpoints": run.checkpoints.count(),
        "latest_checkpoint_epoch": latest.epoch if latest else None,
        "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "figure": loss_figure(run),
    }


def latest_grid(run: TrainingRun):
    """The newest sample grid file (the run's live grid, else its latest checkpoint's)."""
    if run.sample_grid:
        return run.sample_grid
    latest = run.latest_checkpoint()
    return latest.grid if latest and latest.grid else None


def live_grid_url(run: TrainingRun) -> str:
    """A stable address that serves the newest grid: the grid file is renamed every epoch, so
    its own URL 404s once replaced; ``v`` only tells browsers a newer one exists."""
    url = reverse("admin:gan_app_trainingrun_live_grid", args=[run.pk])
    return f"{url}?v={run.epoch_done}"


def is_stale(run: TrainingRun) -> bool:
    """Lost by its workers, by the job kernel's lease: running with a heartbeat older than the
    lease, or queued and never claimed for longer than a lease since it was created. A run
    queued behind other work for less than that is waiting, not lost."""
    if run.status == Status.RUNNING:
        return run.is_stale()
    if run.status == Status.QUEUED and run.heartbeat_at is None and run.started_at is None:
        return timezone.now() - run.created_at > run.lease()
    return False


def _eta_words(seconds) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def loss_figure(run) -> dict | None:
    """A plotly figure dict of the per-epoch losses (drawn by static/js/charts.js)."""
    history = [e for e in (run.loss_history if run else []) if isinstance(e, dict)]
    if len(history) < 2:
        return None
    epochs = list(range(1, len(history) + 1))
    series = [("g_loss", "Generator", "#6a4cff"), ("d_loss", "Discriminator", "#e0569f")]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": name,
            "x": epochs,
            "y": [e.get(key) for e in history],
            "line": {"color": colour, "width": 2},
            "hovertemplate": f"epoch %{{x}}<br>{name} loss %{{y:.3f}}<extra></extra>",
        }
        for key, name, colour in series
    ]
    layout = {
        "margin": {"l": 48, "r": 12, "t": 8, "b": 40},
        "height": 260,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"title": {"text": "Epoch"}},
        "yaxis": {"title": {"text": "Loss"}},
        "legend": {"orientation": "h", "y": 1.12},
    }
    return {"data": data, "layout": layout}
