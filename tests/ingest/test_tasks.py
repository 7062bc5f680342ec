"""The ingest tasks through a real worker over Redis, and the API key's whereabouts."""

import json
import time

import pytest
from celery.signals import before_task_publish
from django.contrib.auth import get_user_model
from django.urls import reverse

from collections_app.models import Collection, IngestJob, Token
from nftsite.celery import app
from tests.fake_opensea import FakeCollection, FakeOpenSea
from tests.workers import WorkerProcess, routed

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

KEY = "worker-only-key-5b8e0c7a1f"
QUEUE = "ingest-key-test"


@pytest.fixture(scope="module")
def keyed_worker(django_db_setup, django_db_blocker):
    """A worker of our own whose settings hold the key; ingest tasks are routed to it only."""
    worker = WorkerProcess(
        "ingest-key",
        queues=(QUEUE,),
        env={
            "OPENSEA_API_KEY": KEY,
            "OPENSEA_RATE_LIMIT": "500",
            "OPENSEA_BACKOFF_SECONDS": "0.02",
        },
    ).start()
    with routed(app, {"collections_app.tasks.*": {"queue": QUEUE}}):
        yield worker
    worker.stop()


@pytest.fixture
def published():
    messages = []

    def capture(sender=None, body=None, headers=None, **kwargs):
        messages.append({"task": sender, "body": body, "headers": headers})

    before_task_publish.connect(capture, weak=False)
    yield messages
    before_task_publish.disconnect(capture)


def wait_for(job, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if not job.is_active:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job.pk} still {job.status}: {job.message}")


def test_it_ingests_on_a_worker_that_alone_knows_the_key(keyed_worker, published, client):
    admin = get_user_model().objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(admin)
    collection = FakeCollection.from_demo(size=30, seed=9, slug="worker-fakes")
    with FakeOpenSea(collection, api_key=KEY, error_rate=0.05) as api:
        response = client.post(
            reverse("admin:collections_app_collection_ingest_opensea"),
            {"slug": "worker-fakes", "api_url": api.url, "sales": "on"},
        )
        assert response.status_code == 302
        job = wait_for(IngestJob.objects.get(kind=IngestJob.Kind.OPENSEA))

    assert job.status == IngestJob.Status.SUCCEEDED, job.message
    assert Token.objects.filter(collection__slug="worker-fakes").count() == 30
    assert set(api.keys_seen) == {KEY}  # the key did reach OpenSea...
    (message,) = published
    assert message["task"] == "collections_app.tasks.ingest_opensea"
    assert list(message["body"][0]) == [job.pk] and message["body"][1] == {}
    page = client.get(reverse("admin:collections_app_ingestjob_change", args=[job.pk]))
    assert page.status_code == 200
    # ...and appears nowhere else: task message, job row, worker log, admin page.
    for text in (
        json.dumps(message, default=str),
        json.dumps([job.params, job.message, job.errors, job.cursor, job.task_id]),
        keyed_worker.log(),
        page.content.decode(),
    ):
        assert KEY not in text


def test_it_leaves_a_finished_job_alone_when_the_task_comes_twice(keyed_worker):
    from collections_app import tasks

    collection = FakeCollection.from_demo(size=5, seed=9, slug="worker-fakes")
    with FakeOpenSea(collection) as api:
        job = IngestJob.objects.create(
            kind=IngestJob.Kind.OPENSEA,
            collection=Collection.objects.create(slug="worker-fakes", name="w"),
            params={"api_url": api.url, "sales": False},
        )
        tasks.ingest_opensea.apply_async(args=[job.pk])
        wait_for(job)
        requests_after_first = api.stats["api_requests"]
        second = tasks.ingest_opensea.apply_async(args=[job.pk])
        keyed_worker.wait_for_log(f"[{second.id}] succeeded", timeout=30)

    job.refresh_from_db()
    assert job.status == IngestJob.Status.SUCCEEDED and job.attempts == 1
    assert api.stats["api_requests"] == requests_after_first
