import os
import subprocess
import sys
import time
from io import StringIO

import pytest

from nftsite.models import QueueProbe, WorkerHeartbeat
from nftsite.tasks import QUEUES, send_probes
from tests.testenv import ROOT
from tests.workers import database_url

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


def test_it_pings_every_queue_from_the_command_line(celery_worker):

    from django.core.management import call_command

    out = StringIO()
    call_command("ping_workers", "--timeout", "30", stdout=out)

    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == sorted(QUEUES)
    assert all(" ok " in line for line in lines)


def test_it_fails_the_ping_when_a_queue_has_no_worker(transactional_db):
    # A key prefix no worker listens on: the probe is sent but never answered.
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_KEY_PREFIX": "nobody:"}
    result = subprocess.run(
        [sys.executable, "manage.py", "ping_workers", "--queue", "train", "--timeout", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "train     NO ANSWER within 1 s" in result.stdout
    assert result.stderr.strip().endswith("1 queue(s) without a worker answering")
