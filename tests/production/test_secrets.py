"""Secrets (the OpenSea key, AWS keys, SECRET_KEY, a broker password) never show: not in pages,
error pages or health checks, not in a worker's log (at DEBUG, while it talks to OpenSea and S3),
not in the task messages sent to the broker nor in the job rows."""

import json
import time

import pytest
from celery.signals import before_task_publish
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse

from collections_app.models import Collection, IngestJob, Token
from gan_app.models import GenerationRequest
from tests.fake_opensea import FakeCollection, FakeOpenSea

from .conftest import tiny_generator, wait_until, worker_env

OPENSEA_KEY = "os-key-3f9a1c7e5b2d4086"
SECRET_KEY = "secret-key-" + "Zq8Wm3Rt6Yp1Kd4Hs7Jf0Lc2Nv5Bx9Ga"
BROKER_PASSWORD = "broker-pass-71c4e9a2"
AWS_ACCESS = "AKIAPRODUCTIONTEST77"
AWS_SECRET = "aws-secret-Vb6Nq2Xr8Ts4Lm0Pk3Hd9Fw1"
SECRETS = (OPENSEA_KEY, SECRET_KEY, BROKER_PASSWORD, AWS_ACCESS, AWS_SECRET)
JSON = {"HTTP_ACCEPT": "application/json"}


def leaks(*texts):
    """The secrets found in ``texts`` (empty when all is well)."""
    return [secret for secret in SECRETS for text in texts if secret in str(text)]


@pytest.fixture
def secret_settings(settings, monkeypatch):
    settings.OPENSEA_API_KEY = OPENSEA_KEY
    settings.SECRET_KEY = SECRET_KEY
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ACCESS)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    return settings


@pytest.mark.django_db
def test_it_shows_no_secret_on_any_page(secret_settings, tiny_site):
    collection, generator, token = tiny_site
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("boss", "b@x.com", "pw"))
    visitor = Client(raise_request_exception=False)
    pages = [
        "/",
        reverse("collections:detail", args=[collection.slug]),
        reverse("collections:token", args=[collection.slug, token.token_id]),
        reverse("gan:generator", args=[generator.slug]),
        reverse("gan:gallery"),
        "/healthz",
        "/no-such-page/",
        "/admin/login/",
    ]
    admin_pages = [
        "/admin/",
        reverse("admin:operations"),
        reverse("admin:collections_app_collection_changelist"),
        reverse("admin:collections_app_collection_change", args=[collection.pk]),
        reverse("admin:collections_app_collection_ingest_opensea"),
        reverse("admin:collections_app_ingestjob_changelist"),
        reverse("admin:gan_app_generator_change", args=[generator.pk]),
        reverse("admin:gan_app_trainingrun_start"),
    ]

    texts = [visitor.get(url).content.decode() for url in pages]
    texts += [staff.get(url).content.decode() for url in admin_pages]
    texts.append(Client(enforce_csrf_checks=True).post(reverse("gan:generate")).content)
    from nftsite.errors import server_error

    texts.append(server_error(RequestFactory().get("/")).content)

    assert len(texts) == len(pages) + len(admin_pages) + 2
    assert leaks(*texts) == []


@pytest.mark.django_db
def test_it_keeps_the_broker_password_off_health_and_operations_pages(secret_settings):
    secret_settings.CELERY_BROKER_URL = f"redis://:{BROKER_PASSWORD}@127.0.0.1:1/0"
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("boss", "b@x.com", "pw"))

    health = Client().get("/healthz")
    operations = staff.get(reverse("admin:operations"))

    assert health.status_code == 503 and "broker" in health.json()["checks"]
    assert operations.status_code == 200
    assert leaks(health.content, operations.content) == []


@pytest.fixture
def tiny_site(db):
    collection = Collection.objects.create(slug="secret-fakes", name="Secret Fakes")
    token = Token.objects.create(collection=collection, token_id="1", name="Secret #1")
    generator = tiny_generator(collection, slug="secret-v1")
    return collection, generator, token


@pytest.fixture
def published():
    messages = []

    def capture(sender=None, body=None, headers=None, exchange=None, routing_key=None, **kw):
        messages.append({"task": sender, "body": body, "headers": headers, "queue": routing_key})

    before_task_publish.connect(capture, weak=False)
    yield messages
    before_task_publish.disconnect(capture)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_it_keeps_secrets_out_of_worker_logs_task_messages_and_job_rows(
    machines, s3, published, client, settings
):
    _boto, s3_env = s3
    settings.OPENSEA_API_KEY = ""  # the web side does not need the key: only the worker has it
    settings.GENERATION_RATE_LIMIT = "100/m"
    env = {
        **s3_env,
        **worker_env(OPENSEA_RATE_LIMIT=500, OPENSEA_BACKOFF_SECONDS=0.02, LOG_LEVEL="DEBUG"),
        "OPENSEA_API_KEY": OPENSEA_KEY,
        "SECRET_KEY": SECRET_KEY,
        "AWS_ACCESS_KEY_ID": AWS_ACCESS,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    }
    # DEBUG: libraries log their requests (botocore its headers), the likeliest leak.
    worker = machines("keyed", ("ingest", "generate"), env=env, loglevel="DEBUG").start()
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("boss", "b@x.com", "pw"))
    source = FakeCollection.from_demo(size=12, seed=3, slug="keyed-fakes")

    with FakeOpenSea(source, api_key=OPENSEA_KEY, error_rate=0.1) as api:
        response = staff.post(
            reverse("admin:collections_app_collection_ingest_opensea"),
            {"slug": source.slug, "api_url": api.url, "sales": "on"},
        )
        assert response.status_code == 302
        job = IngestJob.objects.get(kind=IngestJob.Kind.OPENSEA)
        wait_until(lambda: IngestJob.objects.get(pk=job.pk).finished_at, timeout=120)
    job.refresh_from_db()
    assert job.status == IngestJob.Status.SUCCEEDED, job.message
    assert set(api.keys_seen) == {OPENSEA_KEY}  # the key did reach OpenSea, from the worker
    assert api.stats["injected_5xx"] > 0  # and errors were logged on the way

    collection = Collection.objects.get(slug=source.slug)
    generator = tiny_generator(collection, slug="keyed-v1")
    made = client.post(reverse("gan:generate"), {"generator": generator.slug}, **JSON)
    assert made.status_code == 202
    request = GenerationRequest.objects.get(public_id=made.json()["id"])
    wait_until(lambda: GenerationRequest.objects.get(pk=request.pk).status == "done", timeout=120)
    time.sleep(0.5)  # the worker's last log lines

    assert {m["task"] for m in published} >= {
        "collections_app.tasks.ingest_opensea",
        "gan_app.tasks.generate_images",
    }
    rows = [
        [job.params, job.message, job.errors, job.cursor, job.task_id]
        for job in IngestJob.objects.all()
    ]
    rows.append([request.params, request.seeds, request.error, request.task_id])
    assert leaks(json.dumps(published, default=str), json.dumps(rows, default=str)) == []
    log = worker.worker.log()
    assert "botocore" in log or "s3" in log.lower()  # it did log its S3 traffic at DEBUG
    assert leaks(log) == []
    written = [(worker.home / p).read_bytes().decode(errors="replace") for p in worker.files()]
    assert written and leaks(*written) == []
