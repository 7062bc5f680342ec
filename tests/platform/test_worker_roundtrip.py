import time

import pytest

from nftsite.models import QueueProbe, WorkerHeartbeat
from nftsite.tasks import QUEUES, send_probes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, timeout=30, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_it_answers_a_probe_on_every_queue_through_redis(celery_worker):
    probes = send_probes()

    assert wait_until(lambda: not QueueProbe.objects.filter(answered_at=None).exists())
    answered = {p.queue: p for p in QueueProbe.objects.all()}
    assert set(answered) == set(QUEUES)
    assert all(p.answered_by.startswith("session@") for p in answered.values())
    assert len(probes) == len(QUEUES)


def test_it_writes_a_heartbeat_row_naming_its_queues(celery_worker):
    assert wait_until(WorkerHeartbeat.objects.exists, timeout=20)
    beat = WorkerHeartbeat.objects.get()
    assert set(beat.queues) == set(QUEUES)
