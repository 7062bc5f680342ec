"""Faults: a worker killed (SIGKILL) mid-task, Redis restarted mid-run.

Tasks are ``acks_late``: a killed worker never acknowledged its message, so Redis hands it to
another worker once the message is older than the visibility timeout (the test workers use a
few seconds, see ``conftest.VISIBILITY_TIMEOUT``; a worker sweeps for such messages as it
starts). The redelivered task finds its job or request half done and finishes it.
"""

import time

import pytest
from django.urls import reverse

from collections_app import tasks as collection_tasks
from collections_app.ingest import launch
from collections_app.models import Collection, IngestJob, Sale, Token
from gan_app.generation import render
from gan_app.generation import requests as generation
from gan_app.models import GeneratedImage, GenerationRequest
from tests.fake_opensea import FakeCollection, FakeOpenSea

from .conftest import VISIBILITY_TIMEOUT, tiny_generator, wait_until, worker_env

JSON = {"HTTP_ACCEPT": "application/json"}
FAST_OPENSEA = {"OPENSEA_RATE_LIMIT": 200, "OPENSEA_BACKOFF_SECONDS": 0.02}


def finished(job, timeout=180):
    wait_until(
        lambda: IngestJob.objects.get(pk=job.pk).finished_at, timeout=timeout, what="job end"
    )
    job.refresh_from_db()
    return job


def wait_for_pages(job, pages=1, timeout=90):
    wait_until(
        lambda: IngestJob.objects.get(pk=job.pk).pages_done >= pages,
        timeout=timeout,
        interval=0.05,
        what=f"{pages} committed page(s)",
    )


def redelivery_due(since):
    """Sleep until a message delivered before ``since`` may be handed out again."""
    time.sleep(max(0.0, since + VISIBILITY_TIMEOUT + 0.5 - time.monotonic()))


def assert_ingested_once(slug, collection):
    ids = list(Token.objects.filter(collection__slug=slug).values_list("token_id", flat=True))
    assert sorted(ids, key=int) == [str(i) for i in range(len(collection.tokens))]
    assert Sale.objects.filter(collection__slug=slug).count() == len(collection.events)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_it_finishes_an_ingest_on_a_new_worker_after_a_kill(machines):
    source = FakeCollection.from_demo(size=450, seed=4, slug="killed-fakes")
    first = machines("ingest-1", ("ingest",), env=worker_env(**FAST_OPENSEA)).start()
    with FakeOpenSea(source, latency=0.005) as api:
        collection = Collection.objects.create(
            slug="killed-fakes", name="Killed", source=Collection.Source.OPENSEA
        )
        job = launch.queue_opensea_ingest(collection, api_url=api.url, sales=True)
        wait_for_pages(job)
        first.worker.kill()
        killed_at = time.monotonic()

        job.refresh_from_db()
        assert job.status == IngestJob.Status.RUNNING  # half done; nobody marked it
        assert 0 < Token.objects.filter(collection=collection).count() < 450
        redelivery_due(killed_at)
        second = machines("ingest-2", ("ingest",), env=worker_env(**FAST_OPENSEA)).start()
        job = finished(job)

    assert job.status == IngestJob.Status.SUCCEEDED, job.message
    assert job.attempts == 2  # the same job, claimed again by the redelivered task
    assert f"[{job.task_id}] succeeded" in second.worker.log()
    assert_ingested_once("killed-fakes", source)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_it_finishes_a_generation_on_a_new_worker_after_a_kill(machines, client, settings, s3):
    settings.GENERATION_RATE_LIMIT = "1000/m"
    env = {**s3[1], **worker_env()}  # the model file and images are in S3, shared by both
    first = machines("generate-1", ("generate",), env=env).start()
    collection = Collection.objects.create(slug="kill-gen", name="Kill Gen")
    # Full width at 128 px: loading it and drawing 16 images takes long enough to be caught.
    generator = tiny_generator(
        collection, slug="kill-gen-v1", resolution=128, latent_dim=100, width=None
    )

    response = client.post(
        reverse("gan:generate"),
        {"generator": generator.slug, "seed": "500", "count": "16"},
        **JSON,
    )
    assert response.status_code == 202, response.content
    request = GenerationRequest.objects.get(public_id=response.json()["id"])
    wait_until(
        lambda: GenerationRequest.objects.get(pk=request.pk).status != "queued",
        timeout=60,
        interval=0.02,
        what="the worker to take the request",
    )
    first.worker.kill()
    killed_at = time.monotonic()
    request.refresh_from_db()
    assert request.status == "running", "the worker finished before it could be killed"

    redelivery_due(killed_at)
    second = machines("generate-2", ("generate",), env=env).start()
    status = reverse("gan:request_status", args=[request.public_id])
    body = client.get(status).json()
    deadline = time.monotonic() + 120
    while body["status"] in ("queued", "running") and time.monotonic() < deadline:
        body = client.get(f"{status}?since={body['status']}&wait=10").json()

    assert body["status"] == "done", body
    assert f"[{request.task_id}] succeeded" in second.worker.log()
    seeds = list(GeneratedImage.objects.filter(generator=generator).values_list("seed", flat=True))
    assert sorted(seeds) == list(range(500, 516))


@pytest.mark.django_db
def test_it_finishes_what_a_lost_task_had_claimed_when_it_comes_again(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    collection = Collection.objects.create(slug="lost-task", name="Lost")
    generator = tiny_generator(collection, slug="lost-task-v1")
    head = generation.submit(generator, kind="single", seeds=[1])
    sibling = generation.submit(generator, kind="batch", seeds=[2, 3])
    # As the killed worker left them: both claimed by the head's task, nothing rendered.
    GenerationRequest.objects.filter(pk__in=[head.pk, sibling.pk]).update(
        status="running", task_id="task-1"
    )

    assert render.process(head.pk, task_id="another-task") == []  # not a redelivery
    assert sorted(render.process(head.pk, task_id="task-1")) == [head.pk, sibling.pk]
    assert sorted(GeneratedImage.objects.values_list("seed", flat=True)) == [1, 2, 3]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_it_reconnects_and_finishes_after_redis_restarts(machines, private_redis):
    from nftsite.celery import app

    # One-second chunks: the job sends its next chunk while Redis is away.
    env = worker_env(CELERY_BROKER_URL=private_redis.url, INGEST_CHUNK_SECONDS=1, **FAST_OPENSEA)
    worker = machines("ingest-redis", ("ingest",), env=env).start()
    source = FakeCollection.from_demo(size=450, seed=5, slug="restart-fakes")
    after = FakeCollection.from_demo(size=20, seed=6, slug="after-restart")

    def send(job):
        with app.connection_for_write(private_redis.url) as connection:
            collection_tasks.ingest_opensea.apply_async(args=[job.pk], connection=connection)

    def new_job(slug, api):
        collection = Collection.objects.create(
            slug=slug, name=slug, source=Collection.Source.OPENSEA
        )
        return IngestJob.objects.create(
            kind=IngestJob.Kind.OPENSEA,
            collection=collection,
            params={"api_url": api.url, "sales": True},
        )

    with FakeOpenSea(source, latency=0.005) as api, FakeOpenSea(after) as api_after:
        job = new_job("restart-fakes", api)
        send(job)
        wait_for_pages(job)
        private_redis.stop()
        assert not IngestJob.objects.get(pk=job.pk).finished_at  # stopped mid-job
        time.sleep(3)
        private_redis.start()  # same port, empty: no persistence
        job = finished(job)
        # The worker is connected again: work sent after the restart is done too.
        later = new_job("after-restart", api_after)
        send(later)
        later = finished(later, timeout=90)

    assert job.status == IngestJob.Status.SUCCEEDED, job.message
    assert job.attempts >= 2  # it went on in a new chunk, sent by the worker
    assert later.status == IngestJob.Status.SUCCEEDED, later.message
    assert_ingested_once("restart-fakes", source)
    assert_ingested_once("after-restart", after)
    assert "Connection to broker lost" in worker.worker.log()
