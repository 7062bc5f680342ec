"""POST /generate/: validation, CSRF, JSON and no-JavaScript answers, queueing."""

import pytest
from django.test import Client
from django.urls import reverse

from gan_app.generation import render
from gan_app.generation import requests as generation
from gan_app.generation.requests import MAX_SEED
from gan_app.models import GenerationRequest

from .conftest import make_generator

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def post(client, data, **extra):
    return client.post(reverse("gan:generate"), data, **extra)


def test_it_queues_a_request_and_answers_202_with_its_status_url(
    client, generator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, {"generator": generator.slug, "seed": "42"}, **JSON)

    req = GenerationRequest.objects.get()
    assert response.status_code == 202
    body = response.json()
    assert body["id"] == str(req.public_id) and body["status"] == "queued" and body["seeds"] == [42]
    assert body["status_url"] == reverse("gan:request_status", args=[req.public_id])
    assert response["Location"] == body["status_url"]
    assert (req.kind, req.seeds, req.status) == ("single", [42], "queued")
    assert len(req.client_key) == 64 and "127.0.0.1" not in req.client_key
    assert len(callbacks) == 1  # the task is sent once the row is committed


def test_it_sends_the_task_to_the_generate_queue(generator, django_capture_on_commit_callbacks):
    from celery.signals import before_task_publish

    sent = []

    def capture(sender=None, body=None, routing_key=None, headers=None, **kwargs):
        sent.append((sender, body[0], routing_key, headers["id"]))

    before_task_publish.connect(capture, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            req = generation.submit(generator, kind="single", seeds=[5])
    finally:
        before_task_publish.disconnect(capture)

    assert sent == [("gan_app.tasks.generate_images", [req.pk], "generate", req.task_id)]


def test_it_picks_a_random_seed_in_the_javascript_safe_range(client, generator):
    seeds = set()
    for _ in range(5):
        assert post(client, {"generator": generator.slug}, **JSON).status_code == 202
    for req in GenerationRequest.objects.all():
        (seed,) = req.seeds
        assert 0 <= seed <= MAX_SEED
        seeds.add(seed)
    assert len(seeds) == 5


def test_it_plans_a_batch_as_consecutive_seeds(client, generator):
    response = post(client, {"generator": generator.slug, "seed": "1_000", "count": "4"}, **JSON)

    assert response.status_code == 202
    req = GenerationRequest.objects.get()
    assert (req.kind, req.seeds) == ("batch", [1000, 1001, 1002, 1003])


def test_it_redirects_a_plain_form_post_to_the_result_page(client, generator):
    response = post(client, {"generator": generator.slug, "seed": "7"})

    req = GenerationRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("gan:request", args=[req.public_id])


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"seed": "-1"}, "seed", "whole number"),
        ({"seed": "1.5"}, "seed", "whole number"),
        ({"seed": str(MAX_SEED + 1)}, "seed", "too large"),
        ({"seed": "abc"}, "seed", "whole number"),
        ({"count": "17"}, "count", "1 to 16"),
        ({"count": "0"}, "count", "1 to 16"),
        ({"seed": str(MAX_SEED), "count": "2"}, "__all__", "largest seed"),
        ({"kind": "walk", "seed": "1", "seed_end": "2", "steps": "40"}, "steps", "less than"),
        ({"kind": "poster"}, "kind", "valid choice"),
    ],
)
def test_it_rejects_bad_input_with_a_specific_message(client, generator, data, field, message):
    response = post(client, {"generator": generator.slug, **data}, **JSON)

    assert response.status_code == 400
    body = response.json()
    assert message in " ".join(body["errors"][field])
    assert body["error"]
    assert GenerationRequest.objects.count() == 0


def test_it_accepts_the_largest_seed(client, generator):
    response = post(client, {"generator": generator.slug, "seed": str(MAX_SEED)}, **JSON)

    assert response.status_code == 202
    assert GenerationRequest.objects.get().seeds == [MAX_SEED]


def test_it_refuses_unknown_and_unpublished_generators(client, collection, tiny_artifact):
    hidden = make_generator(collection, tiny_artifact, slug="draft-v2", version=2, published=False)

    for slug in ("no-such-generator", hidden.slug):
        response = post(client, {"generator": slug, "seed": "1"}, **JSON)
        assert response.status_code == 400
        assert "no published generator" in response.json()["errors"]["generator"][0]
    assert GenerationRequest.objects.count() == 0


def test_it_shows_errors_on_a_page_without_javascript(client, generator):
    response = post(client, {"generator": generator.slug, "seed": "-5"})

    assert response.status_code == 400
    assert b"whole number" in response.content
    assert b"<!doctype html>" in response.content.lower()


def test_it_requires_the_csrf_token(generator):
    client = Client(enforce_csrf_checks=True)

    response = post(client, {"generator": generator.slug, "seed": "1"}, **JSON)

    assert response.status_code == 403
    assert GenerationRequest.objects.count() == 0


def test_it_accepts_the_csrf_token_from_the_collection_page(generator):
    client = Client(enforce_csrf_checks=True)
    page = client.get(generator.collection.get_absolute_url())
    token = page.cookies["csrftoken"].value

    response = post(
        client,
        {"generator": generator.slug, "seed": "1", "csrfmiddlewaretoken": token},
        **JSON,
    )

    assert response.status_code == 202


def test_it_only_accepts_post(client, generator):
    assert client.get(reverse("gan:generate")).status_code == 405


def test_it_answers_at_once_when_the_image_exists_already(client, generator):
    render.store_image(generator, 9, b"\x89PNG fake bytes")

    response = post(client, {"generator": generator.slug, "seed": "9"}, **JSON)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "done"
    assert body["images"][0]["png"] == reverse("gan:image_png", args=[generator.slug, 9])
    assert GenerationRequest.objects.get().task_id == ""  # nothing was queued
