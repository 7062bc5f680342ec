"""Training on real Celery workers over Redis and PostgreSQL: chains, a SIGKILLed worker, and
pause/resume/cancel from the outside."""

import pytest

from gan_app.models import TrainingRun
from gan_app.training import runs as training
from nftsite.celery import app
from tests.training.conftest import TINY, make_sprite_set, wait_until
from tests.workers import WorkerProcess, routed

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUEUE = "train-test"
# Short leases and visibility timeout so a killed worker's chunk comes back within seconds.
WORKER_ENV = {
    "TRAIN_LEASE_SECONDS": "3",
    "CELERY_VISIBILITY_TIMEOUT": "4",
    "TRAIN_CHUNK_SECONDS": "600",
}


@pytest.fixture
def train_route():
    with routed(app, {"gan_app.tasks.train_*": {"queue": QUEUE}}):
        yield


def start_worker(name, **env):
    return WorkerProcess(name, queues=(QUEUE,), env={**WORKER_ENV, **env}).start()


def test_it_trains_to_the_end_across_chunks_on_a_worker(train_route):
    worker = start_worker("train-chain", TRAIN_CHUNK_SECONDS="1")
    try:
        run = training.create_run(make_sprite_set(), auto_publish=True, **{**TINY, "epochs": 3})
        wait_until(run, lambda r: not r.is_active, what="the end")
    finally:
        worker.stop()

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.chunks_run >= 2  # one epoch (and more) per 1 s chunk: it took a chain
    assert list(run.checkpoints.values_list("epoch", flat=True)) == [1, 2, 3]
    assert run.generators.get().is_published


def test_it_resumes_from_the_last_checkpoint_after_the_worker_is_killed(train_route):
    first = start_worker("train-doomed")
    run = training.create_run(make_sprite_set(), **{**TINY, "epochs": 6})
    try:
        wait_until(run, lambda r: r.checkpoints.filter(epoch__gte=2).exists(), what="epoch 2")
    finally:
        first.kill()
    killed_at = max(run.checkpoints.values_list("epoch", flat=True))
    assert killed_at < 6 and run.status == TrainingRun.Status.RUNNING

    second = start_worker("train-heir")
    try:
        wait_until(run, lambda r: not r.is_active, what="the end")
    finally:
        second.stop()

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.epoch_done == 6 and [e["epoch"] for e in run.loss_history] == [1, 2, 3, 4, 5, 6]
    assert list(run.checkpoints.values_list("epoch", flat=True)) == [1, 2, 3, 4, 5, 6]
    assert run.chunks_run == 2  # the killed chunk, then the redelivered one that took over
    assert run.task_id in second.log()  # the same task, delivered again


def test_it_pauses_resumes_and_cancels_through_the_worker(train_route):
    worker = start_worker("train-controls")
    run = training.create_run(make_sprite_set(), **{**TINY, "epochs": 200})
    try:
        wait_until(run, lambda r: r.epoch_done >= 1, what="epoch 1")
        training.pause_run(run)
        wait_until(run, lambda r: r.status == TrainingRun.Status.PAUSED, what="paused")
        paused_at = run.epoch_done
        assert list(run.checkpoints.values_list("epoch", flat=True))[-1] == paused_at

        training.resume_run(run)
        wait_until(run, lambda r: r.epoch_done > paused_at, what="training again")
        training.cancel_run(run)
        wait_until(run, lambda r: r.status == TrainingRun.Status.CANCELLED, what="cancelled")
    finally:
        worker.stop()

    assert run.epoch_done < 200 and run.finished_at
    assert run.checkpoints.count() == run.epoch_done  # one row per epoch, no duplicates
