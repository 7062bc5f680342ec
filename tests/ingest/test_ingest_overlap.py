"""The overlapped ingest: the start's requests go out together, sale-event pages are read (and
parsed) ahead during the NFT pass, stopped with the run, failures resumable, the rate kept."""

import gc
import threading
import time

import pytest
from django.core.management import CommandError

from collections_app.ingest import collector
from collections_app.ingest.collector import run_opensea_job
from collections_app.ingest.opensea import EVENT_PAGE_LIMIT
from collections_app.models import Collection, IngestJob, Sale, Token
from tests.fake_opensea import FakeCollection, FakeOpenSea
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


@pytest.mark.django_db
def test_it_stays_under_the_rate_limit_with_every_request_overlapped(settings):
    # Collection, stats and the first NFT page at once, then detail calls beside the event
    # walk: all of it through the one bucket, so the server never throttles. The margin (45
    # against 40) is for the jitter of a shared machine, as in the plain rate-limit test.
    settings.OPENSEA_RATE_LIMIT = 40
    small = FakeCollection.from_demo(size=80, seed=5, slug=SLUG)
    assert len(small.events) > 2 * EVENT_PAGE_LIMIT  # the walk takes a few pages
    with FakeOpenSea(small, rate_limit=45) as api:
        ingest(api)

    assert api.stats["rate_limited"] == 0
    assert api.stats["asset_events_pages"] >= 3 and api.stats["nfts_pages"] == 1
    assert Token.objects.count() == 80
    assert Sale.objects.count() == len(small.events)
    assert gc.get_freeze_count() == 0  # what the run froze is back in the collector's hands


@pytest.mark.django_db
def test_it_reports_a_broken_sale_event_parsed_during_the_read_ahead(fast_client):
    small = FakeCollection.from_demo(size=60, seed=6, slug=SLUG)
    broken = small.events[3]
    del broken["payment"]
    transfer = {**small.events[4], "event_type": "transfer", "transaction": "0xtransfer"}
    small.events.insert(5, transfer)
    with FakeOpenSea(small) as api:
        ingest(api)

    job = IngestJob.objects.get(kind=IngestJob.Kind.OPENSEA)
    assert job.errors == [
        {
            "item": f"sale {broken['transaction']}",
            "reason": "sale event has no payment",
            "imported": False,
        }
    ]
    assert Sale.objects.count() == len(small.events) - 2  # the broken one and the transfer
    assert not Sale.objects.filter(tx_hash__in=[broken["transaction"], "0xtransfer"]).exists()
    assert Token.objects.count() == 60


@pytest.mark.django_db
def test_it_fails_on_a_missing_collection_whatever_the_requests_beside_it(fast_client):
    elsewhere = FakeCollection.from_demo(size=10, seed=6, slug="another-one")
    with FakeOpenSea(elsewhere) as api, pytest.raises(CommandError, match="HTTP 404"):
        ingest(api)

    job = IngestJob.objects.get(kind=IngestJob.Kind.OPENSEA)
    assert job.status == IngestJob.Status.FAILED and "/collections/fake-punks" in job.message
    assert not Token.objects.exists()
    assert gc.get_freeze_count() == 0
