from uuid import uuid4

import pytest
from django.contrib.auth import get_user_model
from kombu import Connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("ops", "ops@example.com", "pw", is_staff=True)
    client.force_login(user)
    return client


def test_it_keeps_the_operations_page_from_anonymous_visitors(client):
    response = client.get("/admin/operations/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.fixture
def quiet_broker_prefix(settings):
    """Point the page at a Redis key prefix no worker listens on; delete its keys afterwards."""
    import redis

    from nftsite.celery import app
    from tests.conftest import delete_prefix
    from tests.testenv import REDIS_URL

    # Celery builds its producer pool from the settings of the moment it is first needed (the
    # page's worker inspection needs it): build it now, so later tests don't inherit the prefix.
    app.amqp.producer_pool  # noqa: B018
    prefix = f"opstest-{uuid4().hex}:"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": prefix,
    }
    yield settings.CELERY_BROKER_TRANSPORT_OPTIONS
    delete_prefix(redis.Redis.from_url(REDIS_URL), prefix)


@pytest.mark.services
def test_it_shows_queue_depths_from_the_broker(staff_client, settings, quiet_broker_prefix):
    with Connection(settings.CELERY_BROKER_URL, transport_options=quiet_broker_prefix) as conn:
        conn.SimpleQueue("train").put({"probe": 1})

    response = staff_client.get("/admin/operations/")

    assert response.status_code == 200
    assert response.context["queues"] == {"ingest": 0, "train": 1, "generate": 0, "default": 0}
    assert b"Operations" in response.content


def test_it_still_loads_when_the_broker_is_down(staff_client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = staff_client.get("/admin/operations/")

    assert response.status_code == 200
    assert "Broker unreachable" in response.content.decode()
