"""Bounded, resumable DCGAN training: a ``Trainer`` runs epochs until a budget, a stop request,
or the end of the run, reporting every epoch and handing out checkpoints as bytes.

The caller decides where things go: ``on_epoch(EpochProgress)`` receives progress and can render
the current sample grid, ``on_checkpoint(CheckpointData)`` receives the checkpoint file's bytes
and its sample grid. ``Trainer.resume`` continues from such a file in any process; epoch order,
latent noise, dropout masks and augmentation are all replayed exactly (on CPU, bit for bit).

Checkpoint file: ONE zip (stored, not deflated: weights barely compress)::

    checkpoint.json        {"format": "nff-gan-checkpoint", "version": 1, "epoch", "config",
                            "history", "data": {"count", "sha256", "labels_sha256"},
                            "conditions" (conditional runs: the frozen trait vocabulary),
                            "variables": {group:
                            [[path, shape, dtype], ...]}, "rng": {...}, "runtime", versions}
    state/<group>/<i>.npy  every variable of: generator, discriminator, seed_generator,
                           g_optimizer, d_optimizer (iterations included), in build order
    grid.png               the fixed-seed 4x4 sample grid at this epoch (conditional runs:
                           one row per fixed trait combination)

Conditional runs (``config.conditional``) take one trait set per image (``traits=``); the
vocabulary is built from them once (``trait_min_count``, ``rare_traits``) and from then on read
from the checkpoint, so a resumed run encodes its traits exactly as the first chunk did.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .conditioning import ConditionVocabulary
from .config import GANConfig
from .data import EpochBatches, ImageSet, TrainingSetTooSmall
from .fileio import Dest, Source, read_bytes, write_bytes
from .gan import DCGAN, build_dcgan
from .models import build_conditional_generator, build_generator
from .pixelart import TraitColours, crop_from_model
from .runtime import Runtime, resolve_runtime
from .sampling import export_generator, pixel_art_profile, sample_grid_png, trait_colours_of

CHECKPOINT_FORMAT = "nff-gan-checkpoint"
CHECKPOINT_VERSION = 1
METRICS = ("g_loss", "d_loss", "d_real", "d_fake")
# Overridable when resuming: they change how long/how fast the run goes, not what it is.
RESUME_OVERRIDES = ("epochs", "checkpoint_every", "g_learning_rate", "d_learning_rate")


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why."""


class TrainingDiverged(TrainingError):
    """A loss became NaN or infinite. No checkpoint was written for the bad epoch."""

    def __init__(self, epoch: int, losses: dict, last_checkpoint_epoch: int | None):
        self.epoch = epoch
        self.losses = losses
        self.last_checkpoint_epoch = last_checkpoint_epoch
        bad = ", ".join(f"{k}={losses[k]}" for k in METRICS if not math.isfinite(losses[k]))
        kept = (
            f"the last good checkpoint is epoch {last_checkpoint_epoch}"
            if last_checkpoint_epoch is not None
            else "no checkpoint was written by this chunk"
        )
        super().__init__(
            f"training diverged in epoch {epoch} ({bad}); stopped, {kept}. "
            "Lower the learning rates or resume from an earlier checkpoint."
        )


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or does not fit the model/data it is restored into."""


@dataclass
class EpochProgress:
    """Handed to ``on_epoch`` after every epoch."""

    epoch: int  # epochs completed in the whole run
    epochs_total: int
    losses: dict  # this epoch: g_loss, d_loss, d_real, d_fake, seconds, images_per_second
    images_per_second: float
    eta_seconds: float
    history: list[dict]
    _trainer: Trainer = field(repr=False)

    def sample_grid_png(self) -> bytes:
        """The fixed-seed 4x4 grid of the generator as it is now (rendered on demand)."""
        return self._trainer.sample_grid_png()


@dataclass
class CheckpointData:
    """Handed to ``on_checkpoint``: the checkpoint file, its grid and the losses so far."""

    epoch: int
    reason: str  # "interval" (every checkpoint_every epochs), "chunk_end" or "finished"
    data: bytes  # the checkpoint file; Trainer.resume(data, images) continues from it
    grid_png: bytes
    losses: dict  # the last epoch's history entry
    history: list[dict]

    def write(self, dest: Dest) -> None:
        write_bytes(dest, self.data)


@dataclass
class ChunkResult:
    epoch: int  # epochs completed in the whole run
    epochs_total: int
    epochs_run: int  # in this chunk
    stop_reason: str  # "finished", "epoch_budget", "time_budget" or "stopped"
    history: list[dict]
    seconds: float

    @property
    def finished(self) -> bool:
        return self.stop_reason == "finished"


class Trainer:
    """Trains a DCGAN on preprocessed images, a bounded chunk at a time.

    ``images``: an ``ImageSet`` from ``prepare_images`` or a uint8 array (N, R, R, 3).
    ``traits`` (conditional runs only): one trait set per image, in the same order, in any form
    ``trait_classifier.normalize_traits`` takes; ``vocabulary`` fixes the trait vocabulary
    instead of building it from ``traits`` (``resume`` passes the checkpoint's).
    """

    def __init__(
        self,
        config: GANConfig,
        images: ImageSet | np.ndarray,
        *,
        traits=None,
        vocabulary: ConditionVocabulary | None = None,
        runtime: Runtime | None = None,
    ):
        array = np.ascontiguousarray(images.images if isinstance(images, ImageSet) else images)
        expected = (config.resolution, config.resolution, 3)
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1:] != expected:
            raise ValueError(
                f"images must be uint8 (N, {', '.join(map(str, expected))}), "
                f"got {array.dtype} {array.shape}"
            )
        if len(array) < config.batch_size:
            raise TrainingSetTooSmall(
                f"the training set has {len(array)} image(s), fewer than the batch size "
                f"{config.batch_size}; add images or lower batch_size"
            )
        self.config = config
        self.runtime = runtime or resolve_runtime(config)
        self.vocabulary, labels = _conditions(config, len(array), traits, vocabulary)
        self.batches = EpochBatches(array, config.batch_size, config.seed, labels=labels)
        self.model: DCGAN = build_dcgan(
            config,
            self.runtime,
            num_labels=self.vocabulary.size if self.vocabulary else None,
            trait_types=len(self.vocabulary.types) if self.vocabulary else 1,
            steps_per_epoch=self.batches.steps_per_epoch,
        )
        self.data_info = {"count": len(array), "sha256": hashlib.sha256(array.data).hexdigest()}
        if labels is not None:
            self.data_info["labels_sha256"] = hashlib.sha256(labels.data).hexdigest()
        if isinstance(images, ImageSet):
            self.data_info["source"] = images.describe()
        self.trait_colours = _trait_colours(array, labels, self.data_info, self.vocabulary)
        self.epoch = 0
        self.history: list[dict] = []
        self.last_checkpoint_epoch: int | None = None

    @property
    def generator(self) -> keras.Model:
        return self.model.sampling_generator

    @classmethod
    def resume(
        cls,
        checkpoint: Source,
        images: ImageSet | np.ndarray,
        *,
        traits=None,
        runtime: Runtime | None = None,
        **overrides,
    ) -> Trainer:
        """Continue a run from a checkpoint file (path, bytes or binary file).

        ``overrides`` may change ``RESUME_OVERRIDES`` (e.g. ``epochs=500`` to train longer).
        Conditional runs need the same ``traits`` again; they are encoded with the
        checkpoint's vocabulary.
        """
        manifest, arrays = read_checkpoint(checkpoint)
        bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if bad:
            raise CheckpointError(
                f"cannot change {', '.join(bad)} when resuming; only {', '.join(RESUME_OVERRIDES)}"
            )
        config = GANConfig.from_dict({**manifest["config"], **overrides})
        vocabulary = (
            ConditionVocabulary.from_json(manifest["conditions"])
            if manifest.get("conditions")
            else None
        )
        trainer = cls(config, images, traits=traits, vocabulary=vocabulary, runtime=runtime)
        if trainer.data_info.get("labels_sha256") != manifest["data"].get("labels_sha256"):
            raise CheckpointError(
                "the checkpoint was trained on other trait labels than these: "
                "resume with the same tokens' traits in the same order"
            )
        if trainer.data_info["sha256"] != manifest["data"]["sha256"]:
            raise CheckpointError(
                f"the checkpoint was trained on other images ({manifest['data']['count']} images, "
                f"sha256 {manifest['data']['sha256'][:12]}), not these "
                f"({trainer.data_info['count']} images, sha256 {trainer.data_info['sha256'][:12]})"
            )
        trainer._restore(manifest, arrays)
        return trainer

    def run(
        self,
        *,
        max_epochs: int | None = None,
        max_seconds: float | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_epoch: Callable[[EpochProgress], None] | None = None,
        on_checkpoint: Callable[[CheckpointData], None] | None = None,
    ) -> ChunkResult:
        """Train until the run is done, ``max_epochs`` ran, ``max_seconds`` would be exceeded
        by another epoch, or ``should_stop()`` (asked before every epoch) returns true.

        Checkpoints go to ``on_checkpoint`` every ``checkpoint_every`` epochs and at the end of
        the chunk, so a resumed run loses nothing. Raises ``TrainingDiverged`` on NaN/inf.
        """
        started = time.monotonic()
        ran = 0
        epoch_seconds: list[float] = []
        stop_reason = "finished"
        while self.epoch < self.config.epochs:
            if should_stop is not None and should_stop():
                stop_reason = "stopped"
                break
            if max_epochs is not None and ran >= max_epochs:
                stop_reason = "epoch_budget"
                break
            if (
                max_seconds is not None
                and ran
                and (time.monotonic() - started + epoch_seconds[-1] > max_seconds)
            ):
                stop_reason = "time_budget"
                break
            losses = self.train_epoch()
            ran += 1
            epoch_seconds.append(losses["seconds"])
            if on_epoch is not None:
                on_epoch(self._progress(losses, epoch_seconds))
            if self.epoch % self.config.checkpoint_every == 0 or self.epoch == self.config.epochs:
                reason = "finished" if self.epoch == self.config.epochs else "interval"
                self._emit_checkpoint(reason, on_checkpoint)
        if ran and self.last_checkpoint_epoch != self.epoch:
            self._emit_checkpoint("chunk_end", on_checkpoint)
        return ChunkResult(
            epoch=self.epoch,
            epochs_total=self.config.epochs,
            epochs_run=ran,
            stop_reason=stop_reason,
            history=self.history,
            seconds=time.monotonic() - started,
        )

    def train_epoch(self) -> dict:
        """One pass over the data; returns (and appends to ``history``) the epoch's figures."""
        started = time.monotonic()
        logs = self.model.train_epoch(self.batches, self.epoch)
        seconds = time.monotonic() - started
        losses = {name: logs[name] for name in self.metric_names}
        if not all(math.isfinite(v) for v in losses.values()):
            raise TrainingDiverged(self.epoch + 1, losses, self.last_checkpoint_epoch)
        self.epoch += 1
        images = self.batches.steps_per_epoch * self.batches.batch_size
        losses.update(
            epoch=self.epoch,
            seconds=round(seconds, 4),
            images_per_second=round(images / seconds, 2),
        )
        self.history.append(losses)
        return losses

    @property
    def metric_names(self) -> tuple[str, ...]:
        return (*METRICS, "aux_loss") if self.vocabulary is not None else METRICS

    def sample_grid_png(self) -> bytes:
        return sample_grid_png(
            self.model.sampling_generator,
            self.config.latent_dim,
            vocabulary=self.vocabulary,
            pixel_art=pixel_art_profile({"data": self.data_info}),
            trait_colours=self.trait_colours,
        )

    def checkpoint(self, reason: str = "manual") -> CheckpointData:
        """The current state as a checkpoint (also what ``on_checkpoint`` receives)."""
        grid = self.sample_grid_png()
        return CheckpointData(
            epoch=self.epoch,
            reason=reason,
            data=self._checkpoint_bytes(grid),
            grid_png=grid,
            losses=self.history[-1] if self.history else {},
            history=list(self.history),
        )

    def export_generator(
        self,
        dest: Dest,
        *,
        training_set: dict | None = None,
        extra: dict | None = None,
    ) -> str:
        """Write the generator artifact (see ``sampling``) for the current epoch; return sha256."""
        return export_generator(
            self.model.sampling_generator,
            dest,
            config=self.config.to_dict(),
            epoch=self.epoch,
            training_set={**self.data_info, **(training_set or {})},
            extra=extra,
            conditions=self.vocabulary.to_json() if self.vocabulary else None,
            trait_colours=self.trait_colours,
        )

    def _emit_checkpoint(self, reason: str, on_checkpoint) -> None:
        if on_checkpoint is not None:
            on_checkpoint(self.checkpoint(reason))
        self.last_checkpoint_epoch = self.epoch

    def _progress(self, losses: dict, epoch_seconds: list[float]) -> EpochProgress:
        recent = epoch_seconds[-5:]
        remaining = self.config.epochs - self.epoch
        return EpochProgress(
            epoch=self.epoch,
            epochs_total=self.config.epochs,
            losses=losses,
            images_per_second=losses["images_per_second"],
            eta_seconds=round(remaining * sum(recent) / len(recent), 1),
            history=self.history,
            _trainer=self,
        )

    def _checkpoint_bytes(self, grid_png: bytes) -> bytes:
        groups = self.model.state_variables()
        manifest = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "epoch": self.epoch,
            "config": self.config.to_dict(),
            "history": self.history,
            "data": self.data_info,
            "conditions": self.vocabulary.to_json() if self.vocabulary else None,
            "variables": {
                group: [[v.path, list(v.shape), str(v.dtype)] for v in variables]
                for group, variables in groups.items()
            },
            # Everything random is either a variable above or keyed by (seed, epoch).
            "rng": {
                "seed": self.config.seed,
                "epoch_order": "numpy PCG64([seed, epoch]).permutation(count)",
                "seed_generator_state": self.model.seed_generator.state.numpy().tolist(),
                "optimizer_iterations": int(self.model.g_optimizer.iterations.numpy()),
            },
            "runtime": self.runtime.describe(),
            "keras_version": keras.__version__,
            "tensorflow_version": tf.__version__,
        }
        if self.trait_colours is not None:
            manifest["trait_colours"] = self.trait_colours.to_text()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("checkpoint.json", json.dumps(manifest, indent=1))
            for group, variables in groups.items():
                for i, variable in enumerate(variables):
                    array = io.BytesIO()
                    np.save(array, keras.ops.convert_to_numpy(variable.value))
                    zf.writestr(f"state/{group}/{i:04d}.npy", array.getvalue())
            zf.writestr("grid.png", grid_png)
        return buffer.getvalue()

    def _restore(self, manifest: dict, arrays: dict[str, list[np.ndarray]]) -> None:
        for group, variables in self.model.state_variables().items():
            _assign(group, variables, arrays.get(group, []))
        # Learning rates may have been overridden on resume; the saved ones are superseded.
        # A schedule was built from this (possibly overridden) config and reads the restored
        # iteration count, so only constant rates need setting.
        if self.config.lr_schedule == "constant":
            self.model.g_optimizer.learning_rate.assign(self.config.g_learning_rate)
            self.model.d_optimizer.learning_rate.assign(self.config.d_learning_rate)
        self.epoch = int(manifest["epoch"])
        self.history = list(manifest["history"])
        self.last_checkpoint_epoch = self.epoch


def read_checkpoint(source: Source) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """(manifest, {group: [arrays]}) of a checkpoint file; ``CheckpointError`` if it is not one."""
    data = read_bytes(source)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            manifest = json.loads(zf.read("checkpoint.json"))
            if manifest.get("format") != CHECKPOINT_FORMAT:
                raise CheckpointError("not a training checkpoint (unknown format)")
            if manifest.get("version") != CHECKPOINT_VERSION:
                raise CheckpointError(
                    f"checkpoint version {manifest.get('version')!r} is not supported"
                )
            arrays = {
                group: [
                    np.load(io.BytesIO(zf.read(f"state/{group}/{i:04d}.npy")))
                    for i in range(len(entries))
                ]
                for group, entries in manifest["variables"].items()
            }
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"not a readable training checkpoint: {exc}") from exc
    return manifest, arrays


def generator_from_checkpoint(source: Source) -> tuple[keras.Model, dict]:
    """(float32 generator, checkpoint manifest) from a checkpoint file, without training data."""
    manifest, arrays = read_checkpoint(source)
    config = GANConfig.from_dict(manifest["config"])
    if manifest.get("conditions"):
        vocabulary = ConditionVocabulary.from_json(manifest["conditions"])
        generator = build_conditional_generator(config, vocabulary.size)
    else:
        generator = build_generator(config)
    # A run with EMA publishes the average, as its grids show.
    group = "ema_generator" if "ema_generator" in arrays else "generator"
    _assign(group, generator.variables, arrays.get(group, []))
    return generator, manifest


def export_checkpoint_generator(
    source: Source, dest: Dest, *, training_set: dict | None = None, extra: dict | None = None
) -> str:
    """Publish the generator of a checkpoint ("publish epoch E") as an artifact; return sha256."""
    generator, manifest = generator_from_checkpoint(source)
    return export_generator(
        generator,
        dest,
        config=manifest["config"],
        epoch=manifest["epoch"],
        training_set={**manifest["data"], **(training_set or {})},
        extra=extra,
        conditions=manifest.get("conditions"),
        trait_colours=trait_colours_of(manifest),
    )


def checkpoint_grid(source: Source) -> bytes:
    """The sample grid PNG stored inside a checkpoint file."""
    with zipfile.ZipFile(io.BytesIO(read_bytes(source))) as zf:
        return zf.read("grid.png")


def _trait_colours(images, labels, data_info, vocabulary) -> TraitColours | None:
    """A trait-conditioned pixel-art run's colours per trait unit (``pixelart.TraitColours``),
    from its training tokens at their native grid; None for other runs."""
    profile = pixel_art_profile({"data": data_info})
    if vocabulary is None or labels is None or profile is None or profile.local is None:
        return None
    if not TraitColours.fits(vocabulary.size, profile.grid, profile.colours):
        return None  # renders as an unconditioned generator's (``TraitColours.MAX_BITS``)
    return TraitColours.fit(crop_from_model(images, profile.grid), labels, profile.palette)


def _conditions(config: GANConfig, count: int, traits, vocabulary):
    """(vocabulary, float32 multi-hot labels) of a conditional run; (None, None) otherwise."""
    if not config.conditional:
        if traits is not None or vocabulary is not None:
            raise ValueError("traits are for conditional runs; set conditional=True")
        return None, None
    if traits is None:
        raise ValueError("a conditional run needs one trait set per image (traits=...)")
    traits = list(traits)
    if len(traits) != count:
        raise ValueError(f"{count} images but {len(traits)} trait sets")
    if vocabulary is None:
        vocabulary = ConditionVocabulary.from_traits(
            traits, min_count=config.trait_min_count, rare=config.rare_traits
        )
    return vocabulary, vocabulary.encode(traits)


def _assign(group: str, variables: list, saved: list[np.ndarray]) -> None:
    if len(saved) != len(variables):
        raise CheckpointError(
            f"checkpoint has {len(saved)} {group} variables, the model has {len(variables)}: "
            "it was written by a different architecture"
        )
    for variable, value in zip(variables, saved, strict=True):
        if tuple(variable.shape) != value.shape:
            raise CheckpointError(
                f"{group} variable {variable.path} has shape {tuple(variable.shape)}, "
                f"the checkpoint {value.shape}"
            )
        variable.assign(value)


class DirectorySink:
    """Callbacks that keep a run's files in one directory (command line, scripts, benchmarks).

    ``checkpoint-epochNNNN.zip`` + ``grid-epochNNNN.png`` per checkpoint, ``history.json``.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def on_checkpoint(self, checkpoint: CheckpointData) -> None:
        checkpoint.write(self.directory / f"checkpoint-epoch{checkpoint.epoch:04d}.zip")
        write_bytes(self.directory / f"grid-epoch{checkpoint.epoch:04d}.png", checkpoint.grid_png)
        write_bytes(self.directory / "history.json", json.dumps(checkpoint.history).encode())

    def latest_checkpoint(self) -> Path | None:
        found = sorted(self.directory.glob("checkpoint-epoch*.zip"))
        return found[-1] if found else None
