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


@pytest.fixture
def eager_celery(settings):
    """Run tasks inline (unit tests of task bodies); integration tests use celery_worker."""
    from nftsite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
