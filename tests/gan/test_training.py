import io
import json
import math
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan_app.gan import (
    CheckpointError,
    Trainer,
    TrainingDiverged,
    TrainingSetTooSmall,
    read_checkpoint,
)
from tests.gan.conftest import run_python


def test_it_trains_two_epochs_into_a_checkpoint_with_a_grid(tiny_config, sprite_images):
    progress, checkpoints = [], []
    trainer = Trainer(tiny_config, sprite_images)

    result = trainer.run(max_epochs=2, on_epoch=progress.append, on_checkpoint=checkpoints.append)

    assert (result.epoch, result.epochs_run, result.stop_reason) == (2, 2, "epoch_budget")
    assert [p.epoch for p in progress] == [1, 2]
    assert all(math.isfinite(p.losses[k]) for p in progress for k in ("g_loss", "d_loss"))
    assert all(0 <= p.losses[k] <= 1 for p in progress for k in ("d_real", "d_fake"))
    assert progress[-1].images_per_second > 0 and progress[-1].eta_seconds > 0
    assert [(c.epoch, c.reason) for c in checkpoints] == [(2, "interval")]
    grid = Image.open(io.BytesIO(checkpoints[0].grid_png))
    assert grid.size == (4 * 128 + 5 * 2, 4 * 128 + 5 * 2)  # 4x4 tiles of 32 px shown 4x
    manifest, arrays = read_checkpoint(checkpoints[0].data)
    assert manifest["epoch"] == 2 and len(manifest["history"]) == 2
    assert int(arrays["g_optimizer"][0]) == 2 * 3  # iterations: 2 epochs of 12 // 4 steps
    with zipfile.ZipFile(io.BytesIO(checkpoints[0].data)) as zf:
        assert zf.read("grid.png") == checkpoints[0].grid_png


def test_it_checkpoints_at_the_interval_and_at_the_end(tiny_config, sprite_images):
    checkpoints = []
    config = tiny_config.replace(epochs=5, checkpoint_every=2, augment=True)
    result = Trainer(config, sprite_images).run(on_checkpoint=checkpoints.append)
    assert result.finished
    assert all(math.isfinite(h[k]) for h in result.history for k in ("g_loss", "d_loss"))
    assert [(c.epoch, c.reason) for c in checkpoints] == [
        (2, "interval"),
        (4, "interval"),
        (5, "finished"),
    ]


def test_it_stops_between_epochs_when_asked(tiny_config, sprite_images):
    checkpoints, asked = [], []

    def should_stop():
        asked.append(1)
        return len(asked) > 1

    config = tiny_config.replace(checkpoint_every=10)
    result = Trainer(config, sprite_images).run(
        should_stop=should_stop, on_checkpoint=checkpoints.append
    )

    assert (result.epoch, result.stop_reason) == (1, "stopped")
    assert [(c.epoch, c.reason) for c in checkpoints] == [(1, "chunk_end")]


def test_it_stops_before_the_time_budget_runs_out(tiny_config, sprite_images):
    trainer = Trainer(tiny_config.replace(epochs=50), sprite_images)
    result = trainer.run(max_seconds=0.001)
    assert (result.epochs_run, result.stop_reason) == (1, "time_budget")


def test_it_stops_on_nan_losses_and_keeps_the_last_good_checkpoint(tiny_config, sprite_images):
    good = Trainer(tiny_config, sprite_images)
    good.run(max_epochs=2)
    # Resumed with absurd learning rates, the weights blow up within the next epoch.
    trainer = Trainer.resume(
        good.checkpoint().data, sprite_images, g_learning_rate=1e30, d_learning_rate=1e30
    )
    checkpoints = []

    with pytest.raises(TrainingDiverged, match=r"diverged in epoch 3 .*nan.*checkpoint is epoch 2"):
        trainer.run(on_checkpoint=checkpoints.append)

    assert checkpoints == []
    assert trainer.epoch == 2 and len(trainer.history) == 2


def test_it_trains_an_epoch_exactly_as_fit_would(tiny_config, sprite_images):
    # train_epoch skips fit's per-call setup; the steps and the reported means must not change.
    config = tiny_config.replace(augment=True)
    trainer, reference = Trainer(config, sprite_images), Trainer(config, sprite_images)
    for epoch in range(2):
        batches = tf.data.Dataset.from_tensor_slices(np.stack(list(trainer.batches.epoch(epoch))))
        logs = reference.model.fit(batches, epochs=1, verbose=0, shuffle=False).history
        losses = trainer.train_epoch()
        names = ("g_loss", "d_loss", "d_real", "d_fake")
        assert [losses[k] for k in names] == [float(logs[k][-1]) for k in names]
    for ours, theirs in zip(
        trainer.model.state_variables().values(),
        reference.model.state_variables().values(),
        strict=True,
    ):
        assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(ours, theirs, strict=True))


def test_it_refuses_a_set_smaller_than_a_batch(tiny_config, sprite_images):
    with pytest.raises(TrainingSetTooSmall, match="3 image"):
        Trainer(tiny_config, sprite_images[:3])


def test_it_refuses_a_checkpoint_from_other_images(tiny_config, sprite_images):
    data = Trainer(tiny_config, sprite_images).checkpoint().data
    with pytest.raises(CheckpointError, match="trained on other images"):
        Trainer.resume(data, sprite_images[::-1].copy())
    with pytest.raises(CheckpointError, match="cannot change resolution"):
        Trainer.resume(data, sprite_images, resolution=64)
    with pytest.raises(CheckpointError, match="not a readable training checkpoint"):
        Trainer.resume(b"junk", sprite_images)


RESUME = """
import json, sys
import numpy as np
from gan_app.gan import Trainer
images = np.load(sys.argv[1])
trainer = Trainer.resume(sys.argv[2], images)
restored = {"epoch": trainer.epoch, "iterations": int(trainer.model.g_optimizer.iterations)}
trainer.run()
np.savez(sys.argv[3], *[v.numpy() for vs in trainer.model.state_variables().values() for v in vs])
print(json.dumps({"restored": restored, "history": trainer.history}))
"""


def test_it_resumes_in_a_new_process_exactly_where_it_stopped(tmp_path, tiny_config, sprite_images):
    np.save(tmp_path / "images.npy", sprite_images)
    trainer = Trainer(tiny_config, sprite_images)
    trainer.run(max_epochs=2, on_checkpoint=lambda c: c.write(tmp_path / "epoch2.zip"))

    out = run_python(RESUME, tmp_path / "images.npy", tmp_path / "epoch2.zip", tmp_path / "w.npz")
    trainer.run()  # the same run, never interrupted: 4 epochs straight

    resumed = json.loads(out)
    assert resumed["restored"] == {"epoch": 2, "iterations": 2 * 3}
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4]
    assert [h["g_loss"] for h in resumed["history"]] == [h["g_loss"] for h in trainer.history]
    saved = np.load(tmp_path / "w.npz")
    straight = [v.numpy() for vs in trainer.model.state_variables().values() for v in vs]
    assert len(saved.files) == len(straight)
    for i, value in enumerate(straight):
        assert np.array_equal(saved[f"arr_{i}"], value), f"variable {i} differs"
