"""A generation request whose worker died (claimed, lease run out, still "running") is sent
again by the stale-job watchdog (celery beat) and rendered by a live worker."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from gan_app.models import GeneratedImage, GenerationRequest
from tests.workers import BeatProcess, WorkerProcess

from .conftest import make_generator

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WATCHDOG_QUEUE = "watchdog-generate-test"
ENV = {"GENERATION_LEASE_SECONDS": "2", "WATCHDOG_SECONDS": "1", "WATCHDOG_QUEUE": WATCHDOG_QUEUE}


def test_it_sends_a_dead_workers_request_again(generate_worker, collection, tiny_artifact):
    generator = make_generator(collection, tiny_artifact, slug="orphan-v1")
    long_ago = timezone.now() - timedelta(seconds=30)
    # What a worker SIGKILLed mid-render leaves: its task is gone, its claim stays.
    orphan = GenerationRequest.objects.create(
        generator=generator,
        seeds=[4242],
        status=GenerationRequest.Status.RUNNING,
        task_id="task-of-a-dead-worker",
        started_at=long_ago,
        heartbeat_at=long_ago,
    )
    watchdog = WorkerProcess("watchdog-generate", queues=(WATCHDOG_QUEUE,), env=ENV).start()
    beat = BeatProcess("watchdog-generate", env=ENV).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            orphan.refresh_from_db()
            if orphan.status not in GenerationRequest.ACTIVE:
                break
            time.sleep(0.2)
    finally:
        beat.stop()
        watchdog.stop()

    assert orphan.status == GenerationRequest.Status.DONE, orphan.error
    assert orphan.task_id != "task-of-a-dead-worker"
    assert GeneratedImage.objects.get(generator=generator, seed=4242).request_id == orphan.pk
    assert "lease ran out" in watchdog.log()
