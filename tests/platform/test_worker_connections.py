"""A worker keeps its database connection from task to task, and replaces a broken one.

Celery's Django fix-up closed every connection after every task, so each task opened a new
PostgreSQL connection (a quarter of a generate task's time). The worker now reuses it, checked
before each task as Django checks one before a web request (nftsite/worker.py).
"""

import threading
import time

import pytest
from django.db import connection

from nftsite.models import QueueProbe
from nftsite.tasks import QUEUES, send_probes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

OTHERS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s"
TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> %s"
)


def backends() -> set[int]:
    """Server processes of other connections to the test database."""
    with connection.cursor() as cursor:
        cursor.execute(OTHERS, [connection.connection.info.backend_pid])
        return {pid for (pid,) in cursor.fetchall()}


def answer_rounds(rounds: int, timeout: float = 60) -> None:
    for _ in range(rounds):
        send_probes()
        deadline = time.monotonic() + timeout
        while QueueProbe.objects.filter(answered_at=None).exists():
            assert time.monotonic() < deadline, "a probe was not answered"
            time.sleep(0.01)


def test_it_reuses_its_connection_from_task_to_task(celery_worker):
    answer_rounds(1)  # every worker process has connected once
    before = backends()  # theirs, and whatever else the session left connected
    seen, done = set(), threading.Event()

    def watch():
        from django.db import connections

        while not done.is_set():
            seen.update(backends())
            time.sleep(0.002)
        connections.close_all()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        answer_rounds(15)
    finally:
        done.set()
        watcher.join()

    # 60 tasks; a new connection each would show dozens of new server processes. A few may
    # appear: this test's watcher, and a connection replaced once it is CONN_MAX_AGE old.
    assert QueueProbe.objects.count() == 16 * len(QUEUES)
    new = seen - before
    assert len(new) <= 4, f"{len(new)} new server processes served 60 tasks"


def test_it_replaces_a_connection_the_server_closed(celery_worker):
    answer_rounds(1)
    with connection.cursor() as cursor:
        cursor.execute(TERMINATE, [connection.connection.info.backend_pid])

    answer_rounds(2, timeout=30)

    assert not QueueProbe.objects.filter(answered_at=None).exists()
