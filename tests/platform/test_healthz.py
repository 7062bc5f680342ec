import pytest

pytestmark = pytest.mark.django_db


def test_it_reports_database_broker_and_storage(client):
    beat("all@a", ["ingest", "train", "generate", "default"])

    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200
    assert {"database", "broker", "storage", "workers"} <= set(body["checks"])
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["storage"]["ok"] is True
    assert response["Cache-Control"] == "no-store"


def test_it_is_degraded_not_down_without_workers(client):
    body = client.get("/healthz").json()

    assert body["checks"]["workers"]["ok"] is False
    assert body["status"] == "degraded"


def test_it_answers_503_when_the_broker_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_it_is_all_green_with_a_worker_running(client, celery_worker):
    from tests.platform.test_worker_roundtrip import wait_until

    assert wait_until(lambda: client.get("/healthz").json()["status"] == "ok", timeout=30)


def beat(hostname, queues):
    from django.utils import timezone

    from nftsite.models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname=hostname, queues=queues, pid=1, last_seen=now, started_at=now
    )


def test_it_answers_503_degraded_when_a_queue_has_no_worker(client):
    beat("ingest@a", ["ingest", "default"])

    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "degraded"
    assert body["checks"]["workers"]["ok"] is False
    assert body["checks"]["workers"]["queues_without_worker"] == ["train", "generate"]


def test_it_answers_503_degraded_when_no_worker_is_alive(client):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"


def test_it_is_ok_when_every_queue_has_a_fresh_worker(client):
    beat("ingest@a", ["ingest", "default"])
    beat("gpu@b", ["train", "generate"])

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"]["workers"]["queues_without_worker"] == []
