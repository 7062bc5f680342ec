import pytest

pytestmark = pytest.mark.django_db


def fresh_worker(hostname, queues):
    from django.utils import timezone

    from nftsite.models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname=hostname, queues=queues, last_seen=now, started_at=now)


def test_it_reports_database_broker_and_storage(client):
    fresh_worker("all@test", ["ingest", "train", "generate", "default"])

    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert {"database", "broker", "storage", "workers"} <= set(body["checks"])
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["storage"]["ok"] is True
    assert response["Cache-Control"] == "no-store"


def test_it_is_degraded_with_503_without_workers(client):
    response = client.get("/healthz")

    body = response.json()
    assert body["checks"]["workers"]["ok"] is False
    assert body["status"] == "degraded"
    assert response.status_code == 503


def test_it_is_degraded_with_503_when_a_queue_has_no_worker(client):
    fresh_worker("web-only@test", ["default", "train"])

    response = client.get("/healthz")

    body = response.json()
    assert body["checks"]["workers"]["queues_without_worker"] == ["ingest", "generate"]
    assert body["checks"]["workers"]["ok"] is False
    assert (body["status"], response.status_code) == ("degraded", 503)


def test_it_keeps_a_web_node_in_rotation_without_workers_for_the_load_balancer(client):
    response = client.get("/healthz?scope=web")

    assert (response.json()["status"], response.status_code) == ("degraded", 200)


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
