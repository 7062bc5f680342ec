import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from collections_app.models import Collection, IngestJob, Sale, Token, Trait
from tests.fake_opensea import ETH_USD, FakeCollection, FakeOpenSea
from tests.testenv import ROOT
from tests.workers import database_url

KEY = "os-key-never-to-be-seen-6f1d2c"
SLUG = "fake-punks"


@pytest.fixture(scope="module")
def fake_collection():
    return FakeCollection.from_demo(size=300, seed=8, slug=SLUG)


@pytest.fixture
def fast_client(settings):
    settings.OPENSEA_RATE_LIMIT = 1000
    settings.OPENSEA_BACKOFF_SECONDS = 0.02
    settings.OPENSEA_MAX_RETRIES = 8


def ingest(api, *extra, key=KEY):
    call_command(
        "ingest_opensea", SLUG, "--api-url", api.url, "--api-key", key, *extra, verbosity=0
    )


def expected_traits(tokens):
    return Counter((t["trait_type"], t["value"]) for d in tokens for t in d.metadata["traits"])


def assert_key_absent(*texts):
    for text in texts:
        assert KEY not in str(text)


@pytest.mark.django_db
def test_it_gets_every_token_exactly_once_through_injected_errors(
    fake_collection, fast_client, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    faults = {
        "error_rate": 0.05,
        "throttle_rate": 0.02,
        "retry_after": "0.05",
        "image_error_rate": 0.05,
        "corrupt_images": {"7"},
        "missing_details": {"9"},
    }
    with FakeOpenSea(fake_collection, api_key=KEY, **faults) as api:
        ingest(api)

    assert api.stats["injected_5xx"] > 5 and api.stats["injected_429"] > 0
    assert api.stats["image_5xx"] > 0
    collection = Collection.objects.get(slug=SLUG)
    ids = list(Token.objects.filter(collection=collection).values_list("token_id", flat=True))
    assert sorted(ids, key=int) == [str(i) for i in range(300) if i != 9]  # each exactly once
    landed = [t for t in fake_collection.tokens if t.token_id != "9"]
    stored = {(t.trait_type, t.value): t.count for t in Trait.objects.filter(collection=collection)}
    assert stored == dict(expected_traits(landed))
    for source in landed:
        token = Token.objects.get(collection=collection, token_id=source.token_id)
        if source.token_id == "7":
            assert not token.image
        else:
            with token.image.open("rb") as fh:
                assert fh.read() == source.png
        sale = source.metadata["last_sale"]
        if sale:
            amount = Decimal(sale["total_price"]) / 10**18
            assert token.last_sale_amount == amount
            assert token.last_sale_usd == (amount * Decimal(ETH_USD)).quantize(Decimal("0.000001"))
            assert token.metadata["last_sale"]["total_price"] == sale["total_price"]
        else:
            assert token.last_sale_amount is None
    events = [e for e in fake_collection.events if e["nft"]["identifier"] != "9"]
    assert Sale.objects.filter(collection=collection).count() == len(events)
    assert collection.supply == 300 and collection.cover_image
    assert collection.contract_address == fake_collection.contract

    job = IngestJob.objects.get(kind=IngestJob.Kind.OPENSEA)
    assert job.status == IngestJob.Status.PARTIAL
    errors = {e["item"]: e for e in job.errors}
    assert set(errors) == {"7", "9"}
    assert errors["7"]["imported"] and "truncated" in errors["7"]["reason"]
    assert not errors["9"]["imported"] and "404" in errors["9"]["reason"]
    assert "299 tokens stored" in job.message and "supply of 300" in job.message
    assert "1 could not be fetched" in job.message
    assert (job.items_done, job.items_failed, job.items_expected) == (298, 2, 300)
    assert job.cursor == "done:"

    # The key reached the server and nothing else.
    assert set(api.keys_seen) == {KEY}
    output = capsys.readouterr()
    assert_key_absent(
        job.params,
        job.message,
        job.errors,
        job.cursor,
        job.task_id,
        caplog.text,
        output.out,
        output.err,
    )


@pytest.mark.django_db
def test_it_reingests_without_duplicating_anything(fast_client):
    small = FakeCollection.from_demo(size=60, seed=6, slug=SLUG)
    with FakeOpenSea(small) as api:
        ingest(api, "--no-sales")
        assert Token.objects.count() == 60 and not Sale.objects.exists()
        ingest(api)
        ingest(api)

    assert Token.objects.count() == 60
    assert Sale.objects.count() == len(small.events)
    assert sum(Trait.objects.values_list("count", flat=True)) == sum(
        expected_traits(small.tokens).values()
    )
    assert IngestJob.objects.filter(status=IngestJob.Status.SUCCEEDED).count() == 3


@pytest.mark.django_db
def test_it_fails_in_one_line_when_the_api_stays_down_and_resumes_later(
    fake_collection, fast_client, settings
):
    settings.OPENSEA_MAX_RETRIES = 2
    with FakeOpenSea(fake_collection, failing_details={"250"}) as api:
        # Token 250's details keep failing: page 1 lands, page 2 cannot be completed.
        with pytest.raises(CommandError) as info:
            ingest(api)
        message = str(info.value)
        assert "\n" not in message and "nfts/250: HTTP 503 after 3 attempts" in message
        job = IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get()
        assert job.status == IngestJob.Status.FAILED
        assert job.pages_done == 1 and job.cursor.startswith("nfts:")
        assert Token.objects.count() == 200
        assert not job.errors  # token 250 is not written off: it was never given up on

        api.failing_details.clear()  # the outage is over
        details_before = api.stats["detail_requests"]
        ingest(api)

    job.refresh_from_db()
    assert job.status == IngestJob.Status.SUCCEEDED and job.attempts == 2, job.message
    assert Token.objects.count() == 300
    assert api.stats["detail_requests"] - details_before == 100  # only the unfinished page
    assert api.nft_cursors[-1] is not None  # it started from the saved cursor


@pytest.mark.django_db
def test_it_stays_under_the_rate_limit(settings):
    settings.OPENSEA_RATE_LIMIT = 40
    small = FakeCollection.from_demo(size=40, seed=1, slug=SLUG)
    with FakeOpenSea(small, rate_limit=45) as api:
        ingest(api, "--no-sales")
    assert api.stats["rate_limited"] == 0
    assert Token.objects.count() == 40
    span = api.api_times[-1] - api.api_times[0]
    assert span >= (len(api.api_times) - 1) / 40 * 0.95


@pytest.mark.django_db
def test_it_rejects_bad_arguments():
    with pytest.raises(CommandError, match="not an http"):
        call_command("ingest_opensea", SLUG, "--api-url", "ftp://x", verbosity=0)
    with pytest.raises(CommandError, match="not an OpenSea collection slug"):
        call_command("ingest_opensea", "no such slug!", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_it_resumes_exactly_after_the_command_is_killed():
    """SIGKILL a real ingest process after its first committed page, then run it again."""
    collection = FakeCollection.from_demo(size=450, seed=4, slug=SLUG)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "OPENSEA_RATE_LIMIT": "200",
        "OPENSEA_BACKOFF_SECONDS": "0.02",
    }
    with FakeOpenSea(collection, error_rate=0.03) as api:
        command = [
            sys.executable,
            "manage.py",
            "ingest_opensea",
            SLUG,
            "--api-url",
            api.url,
            "--api-key",
            KEY,
        ]
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                job = IngestJob.objects.filter(kind=IngestJob.Kind.OPENSEA).first()
                if job and job.pages_done >= 1:
                    break
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        job.refresh_from_db()
        assert job.status == IngestJob.Status.RUNNING  # killed: nobody marked it
        assert job.cursor.startswith("nfts:") and job.pages_done in (1, 2)
        landed = Token.objects.count()
        assert landed == 200 * job.pages_done
        details_before = api.stats["detail_requests"]

        output = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    assert output.returncode == 0, output.stdout + output.stderr
    assert f"Resuming job #{job.pk}" in output.stderr
    job.refresh_from_db()
    assert job.status == IngestJob.Status.SUCCEEDED
    ids = sorted(Token.objects.values_list("token_id", flat=True), key=int)
    assert ids == [str(i) for i in range(450)]
    assert Sale.objects.count() == len(collection.events)
    assert api.stats["detail_requests"] - details_before == 450 - landed
    assert KEY not in output.stdout + output.stderr


@pytest.mark.django_db
def test_it_works_in_chunks_that_requeue_themselves(
    fake_collection, fast_client, settings, eager_celery
):
    """A task stops after INGEST_CHUNK_SECONDS and sends itself again to go on from the cursor."""
    from collections_app import tasks

    settings.INGEST_CHUNK_SECONDS = 1
    settings.OPENSEA_RATE_LIMIT = 250  # a page of 200 details takes about a second
    collection = Collection.objects.create(slug=SLUG, name="x", source=Collection.Source.OPENSEA)
    with FakeOpenSea(fake_collection) as api:
        job = IngestJob.objects.create(
            kind=IngestJob.Kind.OPENSEA, collection=collection, params={"api_url": api.url}
        )
        tasks.ingest_opensea.delay(job.pk)

    job.refresh_from_db()
    assert job.status == IngestJob.Status.SUCCEEDED, job.message
    assert job.attempts >= 2  # more than one chunk
    assert Token.objects.count() == 300
    assert Sale.objects.count() == len(fake_collection.events)
