import os
import shutil

import pytest

from tests.testenv import CHECKOUT_TAG, IN_CI, REDIS_URL, SERVICES_UP
from tests.workers import WorkerProcess


def pytest_collection_modifyitems(config, items):
    chromium = shutil.which("chromium")
    for item in items:
        if not SERVICES_UP and (
            item.get_closest_marker("services") or item.get_closest_marker("worker")
        ):
            item.add_marker(pytest.mark.skip(reason="PostgreSQL/Redis not reachable"))
        if item.get_closest_marker("browser") and not chromium:
            if IN_CI:
                raise pytest.UsageError("CI=true but Debian's chromium is not installed")
            item.add_marker(pytest.mark.skip(reason="chromium not installed (make test adds it)"))


@pytest.fixture(scope="session", autouse=True)
def redis_keys_cleaned():
    """Leave no keys behind in the shared Redis: ours at the end, dead sessions' at the start."""
    if not SERVICES_UP:
        yield
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for prefix in stale_prefixes(client):
        delete_prefix(client, prefix)
    yield
    delete_prefix(client, os.environ["CELERY_BROKER_KEY_PREFIX"])


def stale_prefixes(client):
    """Prefixes of this checkout's earlier test sessions whose process is gone."""
    found = set()
    for key in client.scan_iter(f"nfftest-{CHECKOUT_TAG}-*", count=1000):
        prefix = key.decode().split(":", 1)[0] + ":"
        pid = int(prefix.rsplit("-", 1)[1].rstrip(":"))
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            found.add(prefix)
    return found


def delete_prefix(client, prefix):
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session", autouse=True)
def collected_static():
    """Production static storage (manifest + compression) needs collectstatic, as in deploys."""
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """One real worker over Redis on every queue, shared by the session's worker tests.

    Tests that use it need ``transactional_db`` so the worker sees their rows.
    """
    if not SERVICES_UP:
        pytest.skip("PostgreSQL/Redis not reachable")
    worker = WorkerProcess("session", concurrency=2).start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def s3_url():
    """moto's standalone S3 server on loopback, one per session; tests make their own buckets."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_client(s3_url, settings, monkeypatch):
    """A boto3 client of the moto server, with this process's credentials and S3 settings
    pointing at it; every bucket made meanwhile is emptied and removed afterwards."""
    import boto3

    from tests.s3 import REGION, S3_CREDENTIALS

    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.AWS_S3_ENDPOINT_URL = s3_url
    settings.AWS_S3_REGION_NAME = REGION
    client = boto3.client("s3", endpoint_url=s3_url, region_name=REGION)
    yield client
    for bucket in client.list_buckets()["Buckets"]:
        for item in client.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            client.delete_object(Bucket=bucket["Name"], Key=item["Key"])
        client.delete_bucket(Bucket=bucket["Name"])


@pytest.fixture
def plain_static_urls(settings):
    """live_server serves static files through the finders, which know unhashed names only."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def eager_celery(settings):
    """Run tasks inline (unit tests of task bodies); integration tests use celery_worker."""
    from nftsite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
