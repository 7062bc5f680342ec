"""The job kernel (nftsite.jobs) as every job kind uses it: cancel wins over a late finish or
failure, the lease is configured per kind, and the watchdog puts a stale job back in the queue."""

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from collections_app.models import Collection, IngestJob, TrainingSet
from gan_app.generation import render
from gan_app.models import GenerationRequest, Generator, TrainingRun
from nftsite import jobs
from tests.testenv import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def collection():
    return Collection.objects.create(slug="kernel", name="Kernel")


@pytest.fixture
def run(collection):
    training_set = TrainingSet.objects.create(collection=collection, name="all")
    return TrainingRun.objects.create(training_set=training_set)


@pytest.fixture
def request_row(collection):
    generator = Generator.objects.create(
        slug="kernel-v1", name="Kernel v1", collection=collection, resolution=32, latent_dim=8
    )
    return GenerationRequest.objects.create(generator=generator, seeds=[1])


@pytest.mark.parametrize("kind", [IngestJob.Kind.OPENSEA, IngestJob.Kind.ANALYTICS])
def test_it_keeps_a_cancelled_ingest_or_analytics_job_cancelled(collection, kind):
    job = IngestJob.objects.create(collection=collection, kind=kind)
    assert job.claim("task-1")

    assert job.cancel()
    assert not job.finish("done")
    assert not job.fail("broken")
    assert not job.heartbeat()

    job.refresh_from_db()
    assert job.status == IngestJob.Status.CANCELLED


def test_it_keeps_a_cancelled_generation_request_cancelled(request_row):
    assert render.claim(request_row.pk, "task-1")
    assert request_row.cancel()

    render.finish([request_row], {})
    render.fail([request_row], "late failure")

    request_row.refresh_from_db()
    assert request_row.status == GenerationRequest.Status.CANCELLED


def test_it_cancels_an_idle_training_run_now_and_a_live_one_at_its_next_epoch(run):
    assert run.cancel()
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED and run.finished_at

    live = TrainingRun.objects.create(training_set=run.training_set)
    assert live.claim("task-1")
    assert live.cancel()
    live.refresh_from_db()
    assert live.status == TrainingRun.Status.RUNNING
    assert live.control == TrainingRun.Control.CANCEL  # the chunk reads it between epochs


def test_it_reads_each_kinds_lease_from_settings(settings, run, request_row):
    settings.JOB_LEASE_SECONDS = {**settings.JOB_LEASE_SECONDS, "training": 5, "generation": 50}
    ten_seconds_ago = timezone.now() - timedelta(seconds=10)
    for job in (run, request_row):
        assert job.claim("task-1")
        type(job).objects.filter(pk=job.pk).update(heartbeat_at=ten_seconds_ago)

    assert list(TrainingRun.stale_running()) == [run]
    assert list(GenerationRequest.stale_running()) == []


def test_it_puts_a_stale_job_back_in_the_queue_under_a_new_task_id(
    settings, collection, django_capture_on_commit_callbacks
):
    settings.JOB_LEASE_SECONDS = {**settings.JOB_LEASE_SECONDS, "ingest": 1}
    job = IngestJob.objects.create(collection=collection, kind=IngestJob.Kind.OPENSEA)
    job.claim("lost-task")
    IngestJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    fresh = IngestJob.objects.create(collection=collection, kind=IngestJob.Kind.ARCHIVE_EXPORT)
    fresh.claim("live-task")

    with django_capture_on_commit_callbacks() as sends:
        assert jobs.resend_stale() == 1
        assert jobs.resend_stale() == 0  # swapped once: a second watchdog sends nothing

    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == IngestJob.Status.QUEUED and job.task_id != "lost-task"
    assert fresh.status == IngestJob.Status.RUNNING and fresh.task_id == "live-task"
    assert len(sends) == 1


def test_every_task_is_sent_through_the_kernels_one_broker_down_policy():
    # Health probes want the broker's error (they report it); every other send goes through
    # nftsite.jobs, which logs a broker outage and leaves the job to the watchdog.
    allowed = {Path("nftsite/jobs.py"), Path("nftsite/tasks.py")}
    senders = []
    for package in ("nftsite", "collections_app", "gan_app"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"apply_async", "delay", "send_task"}
                    and path.relative_to(ROOT) not in allowed
                ):
                    senders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert senders == []
