"""Pause, resume and a SIGKILLed worker: the run continues from its stored state and the
export comes out byte for byte as an uninterrupted run's."""

import time

import pytest
from django.core.files.storage import default_storage

from gan_app.fabrication import runs, worker
from gan_app.models import FabricationJob
from nftsite.celery import app
from nftsite.jobs import resend_stale
from tests.fabrication.test_jobs import export_bytes, fabricate
from tests.workers import WorkerProcess, routed

QUEUE = "fabricate-test"
WORKER_ENV = {
    "FABRICATION_LEASE_SECONDS": "3",
    "CELERY_VISIBILITY_TIMEOUT": "4",
    # A checkpoint per token: the doomed worker writes its state often, and goes slowly enough
    # that the test sees it part way (with one per 3 tokens it once made all 50 between two
    # polls of a loaded machine, and the kill found a finished run).
    "FABRICATE_CHECKPOINT_EVERY": "1",
}


@pytest.mark.django_db(transaction=True)
def test_it_pauses_at_a_checkpoint_and_resumes_to_the_same_export(spread, settings):
    settings.FABRICATE_CHECKPOINT_EVERY = 4
    job = runs.create_job(spread, 16, 5, send=False)

    def pause_at_six(token, state):
        if state.accepted == 6:
            runs.pause(FabricationJob.objects.get(pk=job.pk))

    assert worker.process(job.pk, on_token=pause_at_six) == "paused"
    job.refresh_from_db()
    assert job.made == 8 and job.collection is None  # stopped at the checkpoint after the pause
    assert default_storage.exists(job.state_file.name)

    # The test is the worker: a sent task would also reach the session's real worker (alive
    # once a worker test has run), and two processes on one job failed it or deadlocked.
    assert runs.resume(job, send=False) is True
    assert worker.process(job.pk) == "succeeded"
    job.refresh_from_db()
    assert job.made == 16
    assert export_bytes(job) == export_bytes(fabricate(spread, count=16, seed=5))


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_job_stops_and_makes_no_collection(spread):
    job = runs.create_job(spread, 16, 5, send=False)

    def cancel_at_two(token, state):
        if state.accepted == 2:
            runs.cancel(FabricationJob.objects.get(pk=job.pk))

    assert worker.process(job.pk, on_token=cancel_at_two) == "cancelled"
    job.refresh_from_db()
    assert job.collection is None and not job.export_file


def wait_for(job, check, timeout=180, what="condition", watchdog=False, every=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if check(job):
            return job
        if watchdog:
            resend_stale()  # what celery beat runs every WATCHDOG_SECONDS
        time.sleep(every)
    raise AssertionError(f"job {job.pk} never reached {what}: {job.status} {job.made} {job.error}")


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_resumes_after_its_worker_is_killed(spread, settings):
    settings.JOB_LEASE_SECONDS = {**settings.JOB_LEASE_SECONDS, "fabrication": 3}
    with routed(app, {"gan_app.tasks.fabricate_*": {"queue": QUEUE}}):
        first = WorkerProcess("fabricate-doomed", queues=(QUEUE,), env=WORKER_ENV).start()
        try:
            job = runs.create_job(spread, 50, 9)
            wait_for(job, lambda j: j.made >= 3, what="3 tokens", every=0.02)
        finally:
            first.kill()
        job.refresh_from_db()
        killed_at = job.made
        assert job.status == "running" and killed_at < 50

        second = WorkerProcess("fabricate-heir", queues=(QUEUE,), env=WORKER_ENV).start()
        try:
            wait_for(job, lambda j: not j.is_active, what="the end", watchdog=True)
        finally:
            second.stop()
    assert job.status == "succeeded", job.error
    assert job.made == 50 and job.collection.tokens.count() == 50
    # Made in two fresh worker processes, compared with a run in this one: the images, the
    # metadata and the provenance hash, byte for byte.
    assert export_bytes(job) == export_bytes(fabricate(spread, count=50, seed=9))
