"""Training runs: create, train a bounded chunk at a time, pause, resume, cancel.

A run trains as a chain of chunks (Celery task ``train_chunk`` or ``manage.py train`` in-process).
Each chunk

1. claims the run: ``task_id`` names the one task allowed to train it next, and ``heartbeat_at``
   is a lease renewed every epoch. A second delivery of that task while the lease is fresh waits
   (``LeaseBusy``); after the lease went stale (the worker was killed) it takes the run over.
   An outdated task (another id) does nothing;
2. resumes from the run's newest ``Checkpoint`` (state file in Django storage, so S3 works);
3. trains for ``TRAIN_CHUNK_SECONDS``, writing progress every epoch and a Checkpoint row + grid at
   every checkpoint, and stops early when an admin asked to pause or cancel;
4. releases the lease and queues the next chunk under a fresh task id, until the run is done.

TensorFlow is imported inside the functions that train, never at module level.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from collections_app.models import Collection, TrainingSet
from nftsite.jobs import dispatch_after_commit

from ..models import Checkpoint, TrainingRun

log = logging.getLogger(__name__)
Status = TrainingRun.Status
Control = TrainingRun.Control
LIVE_GRID_EVERY_SECONDS = 5.0  # the run page's "latest grid" is at most this old
MAX_LISTED = 5


class TrainingSetupError(ValueError):
    """A run cannot be created or started (bad hyperparameters or training set)."""


class LeaseBusy(Exception):
    """Another worker holds a fresh lease on the run; try again after ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"the run is being trained elsewhere; retry in {seconds:.0f} s")


@dataclass
class ChunkOutcome:
    status: str  # the run's status after the chunk, or "skipped"
    epoch: int = 0
    epochs_run: int = 0
    next_task_id: str = ""


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
    from gan_app.gan import ConfigError

    values = {k: v for k, v in hyperparameters.items() if v is not None}
    try:
        return config_from_json(values)
    except ConfigError as exc:
        raise TrainingSetupError(f"bad hyperparameters: {exc}") from None


def config_from_json(data: dict):
    """``GANConfig`` from stored JSON. PostgreSQL's jsonb gives ``1e30`` back as an integer, and
    Keras wants floats for rates: float fields are made floats again."""
    import dataclasses

    from gan_app.gan import GANConfig

    floats = {f.name for f in dataclasses.fields(GANConfig) if f.type == "float"}
    fixed = {
        k: float(v) if k in floats and isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in data.items()
    }
    return GANConfig.from_dict(fixed)


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
            "add images or lower the batch size"
        )
    if config.conditional and not tokens.filter(traits__isnull=False).exists():
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


def _enqueue(run_id: int, task_id: str, queue: str | None = None) -> None:
    """Queue a chunk once the transaction commits; ``queue``: where the previous chunk came
    from (a run stays on the queue, e.g. the GPU pool, it was started on), else the route."""
    dispatch_after_commit(TrainingRun.task_name, [run_id], queue=queue, task_id=task_id)


def _lease_seconds() -> float:
    return float(settings.TRAIN_LEASE_SECONDS)


def _lease_fresh(run) -> bool:
    return bool(
        run.heartbeat_at and run.heartbeat_at > timezone.now() - timedelta(seconds=_lease_seconds())
    )


# --- Training a chunk --------------------------------------------------------------------------


def claim_run(run_id: int, task_id: str, queue: str | None = None) -> TrainingRun | None:
    """The run, leased to ``task_id``; None when there is nothing for this task to do.

    Raises ``LeaseBusy`` when this task is the run's current one but a fresh lease says another
    delivery of it is training right now (a duplicate; or the holder died moments ago).
    """
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status not in TrainingRun.ACTIVE or run.task_id != task_id:
            return None
        if _lease_fresh(run):
            age = (timezone.now() - run.heartbeat_at).total_seconds()
            raise LeaseBusy(max(1.0, _lease_seconds() - age + 1))
        now = timezone.now()
        run.status = Status.RUNNING
        run.heartbeat_at = now
        run.started_at = run.started_at or now
        run.chunks_run += 1
        run.queue = queue or run.queue  # where the watchdog sends it again
        run.save(update_fields=["status", "heartbeat_at", "started_at", "chunks_run", "queue"])
    return run


def run_chunk(
    run_id: int,
    task_id: str,
    *,
    max_seconds: float | None = -1,
    chain: bool = True,
    on_epoch=None,
    queue: str | None = None,
) -> ChunkOutcome:
    """Claim the run and train one chunk (``max_seconds``: default ``TRAIN_CHUNK_SECONDS``,
    None for no limit); with ``chain``, queue the next chunk unless the run ended or stopped.
    """
    run = claim_run(run_id, task_id, queue=queue)
    if run is None:
        return ChunkOutcome(status="skipped")
    seconds = settings.TRAIN_CHUNK_SECONDS if max_seconds == -1 else max_seconds
    session = _ChunkSession(run, task_id, on_epoch)
    try:
        result = session.train(seconds)
    except SoftTimeLimitExceeded:
        # Cut off mid-epoch: the checkpoints so far are safe; the next chunk goes on from them.
        _requeue(run, task_id, queue)
        return ChunkOutcome(status=Status.QUEUED, epoch=session.epoch)
    except Exception as exc:
        _fail(run, task_id, _describe(exc))
        if not _expected(exc):
            log.exception("training run %s failed", run_id)
        return ChunkOutcome(status=Status.FAILED, epoch=session.epoch)
    return _after_chunk(run, task_id, result, chain, queue)


class _ChunkSession:
    """The callbacks of one chunk: progress, heartbeat, checkpoints, grids, stop requests."""

    def __init__(self, run: TrainingRun, task_id: str, on_epoch=None):
        self.run = run
        self.task_id = task_id
        self.on_epoch_hook = on_epoch
        self.lost_lease = False
        self.epoch = run.epoch_done
        self._grid_at = 0.0

    def train(self, seconds):
        from gan_app.gan import Trainer

        config = config_from_json(self.run.config)
        images = load_images(self.run.training_set, config)
        # Conditional runs: the tokens' traits, in the images' order (see load_traits).
        traits = load_traits(self.run.training_set) if config.conditional else None
        latest = self.run.latest_checkpoint()
        if latest is not None:
            with latest.state_file.open("rb") as fh:
                trainer = Trainer.resume(fh.read(), images, traits=traits, epochs=config.epochs)
        else:
            trainer = Trainer(config, images, traits=traits)
        self.epoch = trainer.epoch
        # Epochs after the last checkpoint (a killed chunk's) are trained again: forget them.
        self._save(epoch_done=trainer.epoch, loss_history=list(trainer.history))
        return trainer.run(
            max_seconds=seconds,
            should_stop=self.should_stop,
            on_epoch=self.on_epoch,
            on_checkpoint=self.on_checkpoint,
        )

    def should_stop(self) -> bool:
        row = TrainingRun.objects.filter(pk=self.run.pk).values("control", "task_id").first()
        if row is None or row["task_id"] != self.task_id:
            self.lost_lease = True  # taken over (we were presumed dead) or deleted
            return True
        return bool(row["control"])

    def on_epoch(self, progress) -> None:
        self.epoch = progress.epoch
        fields = {
            "epoch_done": progress.epoch,
            "images_per_second": progress.images_per_second,
            "eta_seconds": progress.eta_seconds,
            "loss_history": list(progress.history),
        }
        now = time.monotonic()
        if now - self._grid_at >= LIVE_GRID_EVERY_SECONDS or progress.epoch == 1:
            self._grid_at = now
            self._save_live_grid(progress.sample_grid_png())
        self._save(**fields)
        if self.on_epoch_hook is not None:
            self.on_epoch_hook(progress)

    def on_checkpoint(self, data) -> None:
        if not TrainingRun.objects.filter(pk=self.run.pk, task_id=self.task_id).exists():
            self.lost_lease = True  # presumed dead and taken over: the new holder writes these
            return
        save_checkpoint(self.run, data)
        self._save_live_grid(data.grid_png)
        self._save()

    def _save(self, **fields):
        """Progress + heartbeat, only while this task still holds the run."""
        updated = TrainingRun.objects.filter(pk=self.run.pk, task_id=self.task_id).update(
            heartbeat_at=timezone.now(), **fields
        )
        if not updated:
            self.lost_lease = True

    def _save_live_grid(self, png: bytes) -> None:
        run = self.run
        old = run.sample_grid.name if run.sample_grid else ""
        run.sample_grid.save(f"run-{run.pk}.png", ContentFile(png), save=False)
        TrainingRun.objects.filter(pk=run.pk).update(sample_grid=run.sample_grid.name)
        if old and old != run.sample_grid.name:
            run.sample_grid.storage.delete(old)


def save_checkpoint(run: TrainingRun, data) -> Checkpoint:
    """Store a ``CheckpointData`` as the run's row for that epoch (replacing a killed chunk's)."""
    existing = Checkpoint.objects.filter(run=run, epoch=data.epoch).first()
    checkpoint = existing or Checkpoint(run=run, epoch=data.epoch)
    old_files = [f.name for f in (checkpoint.state_file, checkpoint.grid) if f]
    stem = f"run-{run.pk}/epoch-{data.epoch:05d}"
    checkpoint.state_file.save(f"{stem}.zip", ContentFile(data.data), save=False)
    checkpoint.grid.save(f"{stem}.png", ContentFile(data.grid_png), save=False)
    checkpoint.losses = {**data.losses, "reason": data.reason}
    checkpoint.save()
    storage = checkpoint.state_file.storage
    for name in old_files:
        if name not in (checkpoint.state_file.name, checkpoint.grid.name):
            storage.delete(name)
    return checkpoint


def load_images(training_set: TrainingSet, config):
    """The set's images through ``prepare_images``, cached under ``TRAIN_CACHE_DIR``.

    When every token row knows its image's sha256, a small index keyed by those checksums
    (and the preprocessing settings) finds the decoded array without reading a single image
    from storage: the next chunk of a run on S3 starts training at once.
    """
    import numpy as np

    from gan_app.gan import ImageSet, prepare_images

    cache = Path(settings.TRAIN_CACHE_DIR)
    tokens = list(_tokens(training_set).only("token_id", "image", "image_sha256"))
    index = _index_path(cache, tokens, config)
    if index is not None and index.exists():
        facts = json.loads(index.read_text())
        array = cache / f"{facts['fingerprint']}.npy"
        if array.exists():
            return ImageSet(
                np.load(array),
                facts["fingerprint"],
                tuple(facts["source_size"]),
                facts["resize"],
                from_cache=True,
            )
    sources = []
    for token in tokens:
        with token.image.open("rb") as fh:
            sources.append((f"token {token.token_id}", fh.read()))
    images = prepare_images(sources, config, cache_dir=cache)
    if index is not None:
        facts = {
            "fingerprint": images.fingerprint,
            "source_size": list(images.source_size),
            "resize": images.resize,
        }
        tmp = index.with_name(f".{index.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(facts))
        os.replace(tmp, index)
    return images


def _index_path(cache: Path, tokens, config) -> Path | None:
    if not tokens or any(not t.image_sha256 for t in tokens):
        return None
    digest = hashlib.sha256(f"{config.resolution}|{config.background}|{config.resize}".encode())
    for token in tokens:
        digest.update(f"{token.image_sha256}:{token.image.name}\n".encode())
    return cache / f"set-{digest.hexdigest()}.json"


def load_traits(training_set: TrainingSet) -> list[list[tuple[str, str]]]:
    """Each token's (trait_type, value) pairs, in ``load_images``' token order: the rows of a
    conditional run's multi-hot trait labels (the vocabulary is frozen in its checkpoints)."""
    from collections_app.models import TokenTrait

    return TokenTrait.pairs_for(list(_tokens(training_set).values_list("pk", flat=True)))


def _after_chunk(run, task_id, result, chain, queue=None) -> ChunkOutcome:
    outcome = ChunkOutcome(status="", epoch=result.epoch, epochs_run=result.epochs_run)
    if result.finished and run.auto_publish:
        # Before the run shows as finished, so "finished" means "and published".
        _auto_publish(run)
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.task_id != task_id:
            outcome.status = "skipped"  # another worker took over; it owns the run now
            return outcome
        locked.heartbeat_at = None
        if result.finished:
            locked.status = Status.SUCCEEDED
            locked.finished_at = timezone.now()
            locked.eta_seconds = 0
            locked.control = ""
        elif locked.control == Control.CANCEL:
            locked.status, locked.control = Status.CANCELLED, ""
            locked.finished_at = timezone.now()
        elif locked.control == Control.PAUSE or not chain:
            locked.status, locked.control = Status.PAUSED, ""
        else:
            locked.status = Status.QUEUED
            locked.task_id = new_task_id()
            outcome.next_task_id = locked.task_id
        locked.save()
        if outcome.next_task_id:
            _enqueue(locked.pk, locked.task_id, queue)
    outcome.status = locked.status
    return outcome


def _requeue(run, task_id, queue=None) -> None:
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.task_id == task_id:
            locked.status, locked.heartbeat_at = Status.QUEUED, None
            locked.task_id = new_task_id()
            locked.save(update_fields=["status", "heartbeat_at", "task_id"])
            _enqueue(locked.pk, locked.task_id, queue)


# Publishing sits above training (it reads runs and checkpoints), so it hands training its
# publish function (``gan_app.apps``) instead of training importing it: (checkpoint) -> None.
AUTO_PUBLISH = []


def _auto_publish(run: TrainingRun) -> None:
    checkpoint = run.latest_checkpoint()
    try:
        for publish in AUTO_PUBLISH:
            publish(checkpoint)
    except Exception as exc:
        log.exception("auto-publish of run %s failed", run.pk)
        TrainingRun.objects.filter(pk=run.pk).update(error=f"auto-publish failed: {exc}"[:5000])


def _fail(run, task_id, message) -> None:
    TrainingRun.objects.filter(pk=run.pk, task_id=task_id).update(
        status=Status.FAILED,
        error=message[:5000],
        heartbeat_at=None,
        control="",
        finished_at=timezone.now(),
    )


def _expected(exc) -> bool:
    from gan_app.gan import CheckpointError, ConfigError, TrainingDataError, TrainingError

    return isinstance(exc, TrainingError | TrainingDataError | ConfigError | CheckpointError)


def _describe(exc) -> str:
    if _expected(exc):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"


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
        "percent": round(run.percent, 1),
        "epoch_done": run.epoch_done,
        "epochs_total": run.epochs_total,
        "images_per_second": run.images_per_second,
        "eta_seconds": run.eta_seconds,
        "eta": _eta_words(run.eta_seconds) if run.is_active else "",
        "error": run.error,
        "grid_url": grid.url if grid else "",
        "checkpoints": run.checkpoints.count(),
        "latest_checkpoint_epoch": latest.epoch if latest else None,
        "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "figure": loss_figure(run),
    }


def _eta_words(seconds) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def release_interrupted(run: TrainingRun, task_id: str) -> None:
    """An in-process run stopped by Ctrl-C: paused, resumable from its last checkpoint."""
    TrainingRun.objects.filter(pk=run.pk, task_id=task_id).update(
        status=Status.PAUSED, control="", heartbeat_at=None
    )


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
