"""Per-client rate limit on Generate, counted in the database; hashed client keys."""

from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from gan_app.generation import ratelimit
from gan_app.generation.ratelimit import Rate
from gan_app.models import GenerationRequest

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def post(client, generator, ip="10.0.0.1", **extra):
    return client.post(
        reverse("gan:generate"), {"generator": generator.slug}, REMOTE_ADDR=ip, **extra
    )


def test_it_answers_429_with_json_once_the_limit_is_reached(client, generator, settings):
    settings.GENERATION_RATE_LIMIT = "3/m"

    codes = [post(client, generator, **JSON).status_code for _ in range(4)]

    assert codes == [202, 202, 202, 429]
    response = post(client, generator, **JSON)
    assert response.status_code == 429
    body = response.json()
    assert "3 images per minute" in body["error"]
    assert 1 <= body["retry_after"] <= 60
    assert response["Retry-After"] == str(body["retry_after"])
    assert GenerationRequest.objects.count() == 3


def test_it_answers_429_with_a_friendly_page_without_javascript(client, generator, settings):
    settings.GENERATION_RATE_LIMIT = "1/h"
    post(client, generator)

    response = post(client, generator)

    assert response.status_code == 429
    assert b"Slow down a little" in response.content
    assert b"1 images per hour" in response.content


def test_it_counts_each_client_separately(client, generator, settings):
    settings.GENERATION_RATE_LIMIT = "1/m"

    assert post(client, generator, ip="10.0.0.1", **JSON).status_code == 202
    assert post(client, generator, ip="10.0.0.2", **JSON).status_code == 202
    assert post(client, generator, ip="10.0.0.1", **JSON).status_code == 429


def test_it_frees_a_slot_when_the_window_passes(client, generator, settings):
    settings.GENERATION_RATE_LIMIT = "2/m"
    post(client, generator, **JSON)
    post(client, generator, **JSON)
    GenerationRequest.objects.update(created_at=timezone.now() - timedelta(seconds=61))

    assert post(client, generator, **JSON).status_code == 202


def test_it_says_when_the_oldest_request_leaves_the_window(generator):
    key = "k" * 64
    now = timezone.now()
    for age in (50, 20):
        req = GenerationRequest.objects.create(generator=generator, seeds=[1], client_key=key)
        GenerationRequest.objects.filter(pk=req.pk).update(created_at=now - timedelta(seconds=age))

    with pytest.raises(ratelimit.RateLimited) as caught:
        ratelimit.check(key, Rate(2, 60), now=now)

    assert caught.value.retry_after == 10


def test_it_ignores_forwarded_headers_unless_a_proxy_is_trusted(client, generator, settings):
    settings.GENERATION_RATE_LIMIT = "1/m"
    forged = {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}

    assert post(client, generator, **forged, **JSON).status_code == 202
    other = {"HTTP_X_FORWARDED_FOR": "203.0.113.10"}
    assert post(client, generator, **other, **JSON).status_code == 429


def test_it_keys_on_the_address_the_trusted_proxy_appended(settings):
    settings.TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    factory = RequestFactory()

    def key(xff, remote="10.0.0.5"):
        return ratelimit.client_key(factory.get("/", HTTP_X_FORWARDED_FOR=xff, REMOTE_ADDR=remote))

    # The client may put anything on the left; the proxy's own entry is the last one.
    assert key("1.1.1.1, 198.51.100.7") == key("9.9.9.9, 198.51.100.7")
    assert key("198.51.100.7") != key("198.51.100.8")
    assert key("") == ratelimit.client_key(factory.get("/", REMOTE_ADDR="10.0.0.5"))


def test_it_hashes_addresses_and_groups_ipv6_by_64(settings):
    factory = RequestFactory()

    def key(ip):
        return ratelimit.client_key(factory.get("/", REMOTE_ADDR=ip))

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9")
    assert key("2001:db8:1:2::1") != key("2001:db8:1:3::1")
    assert key("::ffff:192.0.2.1") == key("192.0.2.1")
    before = key("192.0.2.1")
    assert len(before) == 64 and "192" not in before
    settings.SECRET_KEY = "another-secret-key-another-secret-key-another-secret"
    assert key("192.0.2.1") != before  # keyed by the site's secret: not a plain hash


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30/m", Rate(30, 60)),
        ("100/5m", Rate(100, 300)),
        ("2/s", Rate(2, 1)),
        ("5/d", Rate(5, 86400)),
    ],
)
def test_it_parses_rates(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GENERATION_RATE_LIMIT", "30"),
        ("GENERATION_RATE_LIMIT", "0/m"),
        ("TRUSTED_PROXY_HEADER", "X Forwarded For"),
        ("SITE_URL", "fakes.example.com"),
    ],
)
def test_it_refuses_to_start_with_a_bad_generation_setting(name, value):
    from tests.platform.test_settings import load_settings

    code, last_line = load_settings(**{name: value})

    assert code != 0
    assert "ImproperlyConfigured" in last_line and name in last_line


def test_it_counts_images_not_requests(client, generator, settings):
    settings.GENERATION_RATE_LIMIT = "30/m"

    def batch(count):
        data = {"generator": generator.slug, "kind": "batch", "count": str(count)}
        return client.post(reverse("gan:generate"), data, REMOTE_ADDR="10.0.0.9", **JSON)

    assert batch(16).status_code == 202
    refused = batch(16)
    assert refused.status_code == 429
    assert "30 images per minute" in refused.json()["error"]
    assert batch(14).status_code == 202  # exactly 30 images
    assert batch(1).status_code == 429
    assert GenerationRequest.objects.count() == 2


def test_it_lets_one_batch_larger_than_the_limit_through_on_an_empty_window(
    client, generator, settings
):
    settings.GENERATION_RATE_LIMIT = "3/m"
    data = {"generator": generator.slug, "kind": "batch", "count": "4"}

    assert client.post(reverse("gan:generate"), data, **JSON).status_code == 202
    assert client.post(reverse("gan:generate"), data, **JSON).status_code == 429


@pytest.mark.django_db(transaction=True)
def test_its_migration_counts_the_images_of_earlier_requests(generator):
    """Requests made before ``image_count`` existed: batches count their seeds, walks their
    steps, so the limit is the same across the upgrade."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("gan_app", "0008_private_run_grids")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("gan_app", "GenerationRequest")
        made = {
            kind: old.objects.create(
                generator_id=generator.pk, kind=kind, seeds=seeds, params=params
            )
            for kind, seeds, params in [
                ("single", [7], {}),
                ("batch", [1, 2, 3, 4, 5], {}),
                ("walk", [1, 9], {"steps": 12}),
            ]
        }
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    counts = dict(
        GenerationRequest.objects.filter(pk__in=[r.pk for r in made.values()]).values_list(
            "kind", "image_count"
        )
    )
    assert counts == {"single": 1, "batch": 5, "walk": 12}
