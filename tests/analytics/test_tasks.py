"""compute_analytics: after a data change, on demand, delivered twice; eager and real worker."""

import time

import pytest
from django.db import transaction
from django.urls import reverse

from collections_app.analytics import compute as analytics
from collections_app.models import Collection, IngestJob, Token
from collections_app.signals import collection_data_changed
from collections_app.tasks import compute_analytics

from .factory import punks_like


def analytics_jobs():
    return IngestJob.objects.filter(kind=IngestJob.Kind.ANALYTICS)


@pytest.mark.django_db
def test_it_computes_when_data_changed_is_sent(eager_celery, django_capture_on_commit_callbacks):
    collection = punks_like(n=20)
    with django_capture_on_commit_callbacks(execute=True):
        collection_data_changed.send(sender=None, collection=collection)
    collection.refresh_from_db()

    assert collection.analytics_fresh
    job = analytics_jobs().get()
    assert job.status == IngestJob.Status.SUCCEEDED
    assert job.items_done == 20
    assert "20 tokens" in job.message


@pytest.mark.django_db
def test_it_waits_for_the_commit_before_queueing(eager_celery, django_capture_on_commit_callbacks):
    collection = punks_like(n=5)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        collection_data_changed.send(sender=None, collection=collection)
    collection.refresh_from_db()

    assert len(callbacks) == 1
    assert not collection.analytics


@pytest.mark.django_db
def test_it_skips_a_second_delivery_when_analytics_are_fresh(eager_celery):
    collection = punks_like(n=10)
    compute_analytics.delay(collection.pk)
    computed_at = Collection.objects.get(pk=collection.pk).analytics_computed_at
    compute_analytics.delay(collection.pk)

    assert analytics_jobs().count() == 1
    assert Collection.objects.get(pk=collection.pk).analytics_computed_at == computed_at


@pytest.mark.django_db
def test_it_does_not_run_an_ended_job_again(eager_celery):
    collection = punks_like(n=10)
    job = IngestJob.objects.create(collection=collection, kind=IngestJob.Kind.ANALYTICS)
    compute_analytics.delay(collection.pk, force=True, job_id=job.pk)
    first = Collection.objects.get(pk=collection.pk).analytics_computed_at
    compute_analytics.delay(collection.pk, force=True, job_id=job.pk)

    job.refresh_from_db()
    assert job.status == IngestJob.Status.SUCCEEDED
    assert job.attempts == 1
    assert Collection.objects.get(pk=collection.pk).analytics_computed_at == first


@pytest.mark.django_db
def test_it_ignores_a_deleted_collection(eager_celery):
    compute_analytics.delay(987654)

    assert not analytics_jobs().exists()


@pytest.mark.django_db
def test_it_records_a_failure_on_the_job(eager_celery, monkeypatch):
    collection = punks_like(n=5)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(analytics.rarity, "score_collection", broken)
    compute_analytics.delay(collection.pk)

    job = analytics_jobs().get()
    assert job.status == IngestJob.Status.FAILED
    assert job.message == "RuntimeError: disk on fire"


@pytest.mark.django_db
def test_it_recomputes_on_demand_from_the_admin(
    eager_celery, admin_client, django_capture_on_commit_callbacks
):
    collection = punks_like(n=10)
    analytics.compute(collection)
    before = Collection.objects.get(pk=collection.pk).analytics_computed_at
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:collections_app_collection_changelist"),
            {"action": "recompute_analytics", "_selected_action": [collection.pk]},
        )

    assert response.status_code == 302
    job = analytics_jobs().get()
    assert job.params == {"force": True}
    assert job.status == IngestJob.Status.SUCCEEDED
    assert Collection.objects.get(pk=collection.pk).analytics_computed_at > before


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_it_computes_on_the_real_worker_after_an_ingest_commits(celery_worker):
    collection = punks_like(n=30, slug="worker-punks")
    with transaction.atomic():
        Token.objects.filter(collection=collection, token_id="0").update(name="Renamed")
        collection.bump_data_version()
        collection_data_changed.send(sender=None, collection=collection)

    # The analytics are stored first and the job finishes in its own commit right after: wait
    # for both (under load the second can trail the first by a poll or two).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        collection.refresh_from_db()
        ended = analytics_jobs().exclude(status=IngestJob.Status.RUNNING).exists()
        if collection.analytics_fresh and ended:
            break
        time.sleep(0.2)
    assert collection.analytics_fresh, celery_worker.log()[-3000:]
    job = analytics_jobs().get()
    assert job.status == IngestJob.Status.SUCCEEDED
    assert job.task_id
    assert not Token.objects.filter(collection=collection, rarity_rank=None).exists()
