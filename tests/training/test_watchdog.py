"""The stale-job watchdog (celery beat + nftsite.tasks.resend_stale_jobs) on real processes: a
SIGKILLed train worker's run resumes within twice its lease, with no admin and no broker
redelivery (the visibility timeout stays an hour)."""

import time

import pytest

from gan_app.models import TrainingRun
from gan_app.training import runs as training
from nftsite.celery import app
from tests.training.conftest import TINY, make_sprite_set, wait_until
from tests.workers import BeatProcess, WorkerProcess, routed

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUEUE = "train-watchdog"
WATCHDOG_QUEUE = "watchdog-test"
LEASE = 4
ENV = {
    "TRAIN_LEASE_SECONDS": str(LEASE),
    "TRAIN_CHUNK_SECONDS": "600",
    "CELERY_VISIBILITY_TIMEOUT": "3600",  # the broker would give the chunk back in an hour
    "WATCHDOG_SECONDS": "1",
    "WATCHDOG_QUEUE": WATCHDOG_QUEUE,
}


@pytest.fixture
def train_route():
    with routed(app, {"gan_app.tasks.train_*": {"queue": QUEUE}}):
        yield


def test_it_resumes_a_killed_workers_run_within_twice_its_lease(train_route):
    doomed = WorkerProcess("train-watchdog-doomed", queues=(QUEUE,), env=ENV).start()
    heir = beat = None
    run = training.create_run(make_sprite_set(), **{**TINY, "epochs": 500})
    try:
        wait_until(run, lambda r: r.epoch_done >= 1, what="epoch 1")
        # The heir and the watchdog are up before the kill, so the clock below measures the
        # watchdog, not how long a worker takes to start.
        heir = WorkerProcess("train-watchdog-heir", queues=(QUEUE, WATCHDOG_QUEUE), env=ENV).start()
        beat = BeatProcess("watchdog", env=ENV).start()
        run.refresh_from_db()
        doomed.kill()
        killed_at = time.monotonic()
        assert run.status == TrainingRun.Status.RUNNING and run.chunks_run == 1

        wait_until(run, lambda r: r.chunks_run == 2, timeout=4 * LEASE, what="a second chunk")
        resumed_after = time.monotonic() - killed_at
        resumed_at = run.epoch_done
        wait_until(run, lambda r: r.epoch_done > resumed_at, what="training again")
        training.cancel_run(run)
        wait_until(run, lambda r: not r.is_active, what="cancelled")
    finally:
        for process in (doomed, heir, beat):
            if process is not None:
                process.stop()

    assert resumed_after <= 2 * LEASE, resumed_after
    assert run.status == TrainingRun.Status.CANCELLED, run.error
    epochs = list(run.checkpoints.values_list("epoch", flat=True))
    assert epochs == list(range(1, run.epoch_done + 1))  # resumed from its last checkpoint
    assert "lease ran out" in heir.log()
