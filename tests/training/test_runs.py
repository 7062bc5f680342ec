"""Training runs as services, tasks run inline: create, chunks, checkpoints, controls, errors."""

import pytest

from gan_app.models import Generator, TrainingRun
from gan_app.training import chunks
from gan_app.training import runs as training
from tests.training.conftest import TINY, make_sprite_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def inline_chain(eager_celery, django_capture_on_commit_callbacks):
    """``with inline_chain():`` queued chunks run as the block ends, each as a worker would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_it_trains_a_run_to_the_end_in_chunks(sprite_set, inline_chain, settings):
    settings.TRAIN_CHUNK_SECONDS = 0.001  # one epoch per chunk: the chain must carry the run

    with inline_chain():
        run = training.create_run(sprite_set, **TINY)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert (run.epoch_done, run.epochs_total, run.chunks_run) == (2, 2, 2)
    assert run.percent == 100.0 and run.eta_seconds == 0
    assert [e["epoch"] for e in run.loss_history] == [1, 2]
    assert all(e["g_loss"] == e["g_loss"] for e in run.loss_history)  # finite, not NaN
    assert run.images_per_second > 0
    assert run.sample_grid.read()[:4] == b"\x89PNG"
    assert list(run.checkpoints.values_list("epoch", flat=True)) == [1, 2]
    for checkpoint in run.checkpoints.all():
        assert checkpoint.state_file.size > 0 and checkpoint.grid.size > 0
    assert not Generator.objects.exists()


def test_it_publishes_the_final_epoch_when_asked(sprite_set, inline_chain):
    with inline_chain():
        run = training.create_run(sprite_set, auto_publish=True, **TINY)

    generator = Generator.objects.get(training_run=run)
    assert generator.is_published and generator.epoch == 2
    assert generator.checkpoint == run.checkpoints.get(epoch=2)


def test_it_resumes_exactly_where_the_last_checkpoint_left_off(sprite_set, inline_chain):
    """Two chunks (epoch 1, then 2) end with the weights of one uninterrupted run."""
    from gan_app.gan import read_checkpoint

    with inline_chain():
        straight = training.create_run(sprite_set, **TINY)
    straight.refresh_from_db()
    split = training.create_run(sprite_set, enqueue=False, **TINY)
    chunks.run_chunk(split.pk, split.task_id, chain=False, max_seconds=0.001)
    split.refresh_from_db()
    assert (split.status, split.epoch_done) == (TrainingRun.Status.PAUSED, 1)
    with inline_chain():
        training.resume_run(split)

    split.refresh_from_db()
    assert split.status == TrainingRun.Status.SUCCEEDED
    a = read_checkpoint(straight.checkpoints.get(epoch=2).state_file.read())[1]
    b = read_checkpoint(split.checkpoints.get(epoch=2).state_file.read())[1]
    for group in a:
        for x, y in zip(a[group], b[group], strict=True):
            assert (x == y).all(), group
    assert [e["g_loss"] for e in straight.loss_history] == [e["g_loss"] for e in split.loss_history]


def test_it_does_nothing_for_an_outdated_task(sprite_set):
    run = training.create_run(sprite_set, enqueue=False, **TINY)

    outcome = chunks.run_chunk(run.pk, "some-older-task")

    run.refresh_from_db()
    assert outcome.status == "skipped"
    assert (run.status, run.chunks_run) == (TrainingRun.Status.QUEUED, 0)


def test_it_waits_while_another_delivery_holds_a_fresh_lease(sprite_set):
    from django.utils import timezone

    run = training.create_run(sprite_set, enqueue=False, **TINY)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.RUNNING, heartbeat_at=timezone.now()
    )

    with pytest.raises(chunks.LeaseBusy):
        chunks.run_chunk(run.pk, run.task_id)
    assert not run.checkpoints.exists()


def test_it_takes_over_a_run_whose_lease_went_stale(sprite_set, settings):
    from datetime import timedelta

    from django.utils import timezone

    run = training.create_run(sprite_set, enqueue=False, **TINY)
    stale = timezone.now() - timedelta(seconds=settings.TRAIN_LEASE_SECONDS + 1)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.RUNNING, heartbeat_at=stale, chunks_run=1
    )

    outcome = chunks.run_chunk(run.pk, run.task_id, chain=False)

    run.refresh_from_db()
    assert outcome.status == TrainingRun.Status.SUCCEEDED
    assert (run.epoch_done, run.chunks_run) == (2, 2)


def test_it_pauses_and_cancels_a_queued_run_at_once(sprite_set):
    run = training.create_run(sprite_set, enqueue=False, **TINY)

    training.pause_run(run)
    assert (run.status, run.task_id) == (TrainingRun.Status.PAUSED, "")
    training.cancel_run(run)
    assert run.status == TrainingRun.Status.CANCELLED and run.finished_at


def test_it_stops_a_training_run_at_the_next_epoch(sprite_set):
    run = training.create_run(sprite_set, enqueue=False, **{**TINY, "epochs": 5})

    def pause_after_first_epoch(progress):
        TrainingRun.objects.filter(pk=run.pk).update(control=TrainingRun.Control.PAUSE)

    chunks.run_chunk(run.pk, run.task_id, on_epoch=pause_after_first_epoch)

    run.refresh_from_db()
    assert (run.status, run.control, run.epoch_done) == (TrainingRun.Status.PAUSED, "", 1)
    assert list(run.checkpoints.values_list("epoch", flat=True)) == [1]


def test_it_cancels_a_training_run_and_resumes_it_later(sprite_set, inline_chain):
    run = training.create_run(sprite_set, enqueue=False, **{**TINY, "epochs": 3})

    def cancel(progress):
        TrainingRun.objects.filter(pk=run.pk).update(control=TrainingRun.Control.CANCEL)

    chunks.run_chunk(run.pk, run.task_id, on_epoch=cancel)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED
    with inline_chain():
        training.resume_run(run)

    run.refresh_from_db()
    assert (run.status, run.epoch_done) == (TrainingRun.Status.SUCCEEDED, 3)
    assert list(run.checkpoints.values_list("epoch", flat=True)) == [1, 2, 3]


def test_it_refuses_to_resume_a_finished_run(sprite_set, inline_chain):
    with inline_chain():
        run = training.create_run(sprite_set, **TINY)

    with pytest.raises(training.TrainingSetupError, match="finished; nothing to resume"):
        training.resume_run(run)


def test_it_fails_with_a_message_when_training_diverges(sprite_set):
    run = training.create_run(sprite_set, enqueue=False, **{**TINY, "g_learning_rate": 1e30})

    chunks.run_chunk(run.pk, run.task_id)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "diverged" in run.error


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: make_sprite_set("empty", count=0), "has no images"),
        (lambda: make_sprite_set("few", count=3), "3 image(s), fewer than the batch size 8"),
    ],
)
def test_it_refuses_a_bad_training_set_before_any_work(db, make, message):
    with pytest.raises(training.TrainingSetupError) as error:
        training.create_run(make(), **TINY)

    assert message in str(error.value)
    assert not TrainingRun.objects.exists()


def test_it_refuses_mixed_image_sizes(db):
    training_set = make_sprite_set("mixed", count=10, sizes=[16] * 6 + [24] * 4)
    training_set.tokens.filter(token_id__in=["6", "7", "8", "9"]).update(
        image_width=24, image_height=24
    )
    training_set.tokens.exclude(token_id__in=["6", "7", "8", "9"]).update(
        image_width=16, image_height=16
    )

    with pytest.raises(training.TrainingSetupError, match=r"mixes image sizes \(16x16: 6, 24x24"):
        training.create_run(training_set, **TINY)


def test_it_fails_a_run_whose_images_turn_out_mixed(db):
    """Sizes unknown from the rows: the chunk finds them while loading and says which."""
    training_set = make_sprite_set("mixed", count=10, sizes=[16] * 6 + [24] * 4)
    run = training.create_run(training_set, enqueue=False, **TINY)

    chunks.run_chunk(run.pk, run.task_id)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "mixes image sizes" in run.error and "16x16: 6" in run.error


def test_it_refuses_bad_hyperparameters(sprite_set):
    with pytest.raises(training.TrainingSetupError, match="resolution must be one of"):
        training.create_run(sprite_set, **{**TINY, "resolution": 48})
    with pytest.raises(training.TrainingSetupError, match="unknown hyperparameter"):
        training.create_run(sprite_set, learning_rate=1)


def test_it_replaces_a_killed_chunks_checkpoint_instead_of_duplicating_it(sprite_set):
    """A chunk killed after writing epoch 2's row but before the run moved on: the rerun of
    epoch 2 replaces that row (one row per epoch, newest files)."""
    run = training.create_run(sprite_set, enqueue=False, **TINY)
    chunks.run_chunk(run.pk, run.task_id, chain=False)
    first = run.checkpoints.get(epoch=2)
    old_name = first.state_file.name
    first_data = first.state_file.read()
    run.refresh_from_db()
    run.checkpoints.filter(epoch=2).update(epoch=2)  # keep the row, but resume from epoch 1:
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.PAUSED)
    from gan_app.gan import CheckpointData

    data = CheckpointData(
        epoch=2,
        reason="finished",
        data=first_data,
        grid_png=first.grid.read(),
        losses={},
        history=[],
    )
    chunks.save_checkpoint(run, data)

    assert run.checkpoints.filter(epoch=2).count() == 1
    replaced = run.checkpoints.get(epoch=2)
    assert replaced.pk == first.pk and replaced.state_file.name != old_name
    assert not replaced.state_file.storage.exists(old_name)


def test_it_loads_a_runs_images_once_then_from_the_cache(sprite_set, settings, tmp_path):
    """The next chunk finds the decoded images by the tokens' checksums: no storage reads."""
    from gan_app.gan import GANConfig

    settings.TRAIN_CACHE_DIR = str(tmp_path / "cache")
    config = GANConfig(**TINY)
    first = chunks.load_images(sprite_set, config)
    for token in sprite_set.tokens.all():
        token.image.storage.delete(token.image.name)

    again = chunks.load_images(sprite_set, config)

    assert not first.from_cache and again.from_cache
    assert again.fingerprint == first.fingerprint and (again.images == first.images).all()
    with pytest.raises(FileNotFoundError):  # another resolution is not in the cache
        chunks.load_images(sprite_set, config.replace(resolution=64))


def test_it_stops_writing_once_another_task_took_the_run_over(sprite_set):
    """A worker presumed dead (but alive) stops at the next epoch and writes no checkpoint."""
    run = training.create_run(sprite_set, enqueue=False, **{**TINY, "epochs": 5})

    def taken_over(progress):
        TrainingRun.objects.filter(pk=run.pk).update(task_id="the-new-holder")

    outcome = chunks.run_chunk(run.pk, run.task_id, on_epoch=taken_over)

    run.refresh_from_db()
    assert outcome.status == "skipped"
    assert (run.task_id, run.status) == ("the-new-holder", TrainingRun.Status.RUNNING)
    assert not run.checkpoints.exists()
