"""Training, the worker side: train one leased chunk of a run and chain the next.

Each chunk (Celery task ``train_chunk`` or ``manage.py train`` in-process)

1. claims the run: ``task_id`` names the one task allowed to train it next, and ``heartbeat_at``
   is a lease renewed every epoch. A second delivery of that task while the lease is fresh waits
   (``LeaseBusy``); after the lease went stale (the worker was killed) it takes the run over.
   An outdated task (another id) does nothing; the job kernel's watchdog re-sends a run whose
   lease ran out;
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
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from collections_app.models import TrainingSet

from ..models import Checkpoint, TrainingRun
from .runs import (
    Control,
    Status,
    _enqueue,
    _lease_fresh,
    _lease_seconds,
    _tokens,
    config_from_json,
    new_task_id,
)

log = logging.getLogger(__name__)


LIVE_GRID_EVERY_SECONDS = 5.0  # the run page's "latest grid" is at most this old


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
    old_files = [(f, f.name) for f in (checkpoint.state_file, checkpoint.grid) if f]
    stem = f"run-{run.pk}/epoch-{data.epoch:05d}"
    checkpoint.state_file.save(f"{stem}.zip", ContentFile(data.data), save=False)
    checkpoint.grid.save(f"{stem}.png", ContentFile(data.grid_png), save=False)
    checkpoint.losses = {**data.losses, "reason": data.reason}
    checkpoint.save()
    for field, name in old_files:
        if name != field.name:
            field.storage.delete(name)
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
                # The pixel-art profile travels into checkpoints and the published generator.
                pixel_art=facts["pixel_art"],
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
            "pixel_art": images.pixel_art,
        }
        tmp = index.with_name(f".{index.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(facts))
        os.replace(tmp, index)
    return images


def _index_path(cache: Path, tokens, config) -> Path | None:
    if not tokens or any(not t.image_sha256 for t in tokens):
        return None
    from gan_app.gan.data import PREPROCESSING_VERSION

    settings_key = (
        f"v{PREPROCESSING_VERSION}|{config.resolution}|{config.background}|{config.resize}"
    )
    digest = hashlib.sha256(settings_key.encode())
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
            _enqueue(locked.pk, locked.task_id, queue, from_worker=True)
    outcome.status = locked.status
    return outcome


def _requeue(run, task_id, queue=None) -> None:
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.task_id == task_id:
            locked.status, locked.heartbeat_at = Status.QUEUED, None
            locked.task_id = new_task_id()
            locked.save(update_fields=["status", "heartbeat_at", "task_id"])
            _enqueue(locked.pk, locked.task_id, queue, from_worker=True)


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


def release_interrupted(run: TrainingRun, task_id: str) -> None:
    """An in-process run stopped by Ctrl-C: paused, resumable from its last checkpoint."""
    TrainingRun.objects.filter(pk=run.pk, task_id=task_id).update(
        status=Status.PAUSED, control="", heartbeat_at=None
    )
