"""The sale-event pages read ahead during the NFT pass: stopped with the run, failures resumable."""

import threading
import time

import pytest
from django.core.management import CommandError

from collections_app.ingest import collector
from collections_app.ingest.collector import run_opensea_job
from collections_app.models import Collection, IngestJob, Sale, Token
from tests.fake_opensea import FakeOpenSea
from tests.ingest.test_ingest_opensea import KEY, SLUG, fake_collection, fast_client, ingest

__all__ = ["fake_collection", "fast_client"]  # fixtures shared with the main ingest tests


def event_threads():
    return [t for t in threading.enumerate() if t.name == "os-events" and t.is_alive()]


@pytest.mark.django_db
def test_it_stops_reading_events_ahead_when_the_job_is_cancelled(
    fake_collection, fast_client, monkeypatch
):
    # One page of room: a walk nobody stops would wait to hand over its next page for ever.
    monkeypatch.setattr(collector, "SALES_PREFETCH_PAGES", 1)
    collection = Collection.objects.create(slug=SLUG, name="x", source=Collection.Source.OPENSEA)
    seen = []

    def cancel_in_the_admin(job):
        seen.append(len(event_threads()))
        IngestJob.objects.filter(pk=job.pk).update(status=IngestJob.Status.CANCELLED)

    with FakeOpenSea(fake_collection) as api:
        job = IngestJob.objects.create(
            kind=IngestJob.Kind.OPENSEA, collection=collection, params={"api_url": api.url}
        )
        job.claim()
        assert run_opensea_job(job, api_key=KEY, on_progress=cancel_in_the_admin)
        deadline = time.monotonic() + 5
        while event_threads() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not event_threads()  # the read-ahead ended with the run

    job.refresh_from_db()
    assert seen == [1]  # the walk was under way when the first page committed
    assert job.status == IngestJob.Status.CANCELLED
    assert Token.objects.count() == 300  # the page under way when it was cancelled landed
    assert not Sale.objects.exists()  # events read ahead are never written before the NFTs


@pytest.mark.django_db
def test_it_fails_resumably_when_event_pages_fail_during_the_read_ahead(
    fake_collection, fast_client, settings
):
    settings.OPENSEA_MAX_RETRIES = 1
    with FakeOpenSea(fake_collection, failing_events=True) as api:
        with pytest.raises(CommandError) as info:
            ingest(api)
        assert "HTTP 503 after 2 attempts" in str(info.value)
        job = IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get()
        assert job.status == IngestJob.Status.FAILED
        assert job.cursor == "sales:"  # every NFT page committed; the sales start over
        assert Token.objects.count() == 300 and not Sale.objects.exists()

        api.failing_events = False  # the outage is over
        ingest(api)

    job.refresh_from_db()
    assert job.status == IngestJob.Status.SUCCEEDED, job.message
    assert Token.objects.count() == 300
    assert Sale.objects.count() == len(fake_collection.events)
    assert not event_threads()
