"""Generation through a real worker over Redis: warmed at start, batched, served over HTTP."""

import pytest
from django.db import transaction
from django.urls import reverse
from PIL import Image

from gan_app.generation import requests as generation
from gan_app.models import GeneratedImage, GenerationRequest

from .conftest import make_generator, wait_done

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
JSON = {"HTTP_ACCEPT": "application/json"}


def test_it_warms_published_generators_as_it_starts(generate_worker):
    log = generate_worker.log()

    # Loaded by the warm-up at start, not by a request: no request for it was ever made.
    assert "generator cache: warmed warm-v1" in log
    assert "generator cache: loaded warm-v1" in log


def test_it_loads_a_generator_published_while_it_runs_before_anyone_asks(
    generate_worker, collection, tiny_artifact
):
    make_generator(collection, tiny_artifact, slug="late-v1", name="Late v1", model_sha256="")

    generate_worker.wait_for_log("generator cache: warmed late-v1", timeout=60)


def test_it_generates_through_the_worker_and_serves_the_png(
    generate_worker, client, collection, tiny_artifact
):
    generator = make_generator(collection, tiny_artifact)

    response = client.post(
        reverse("gan:generate"), {"generator": generator.slug, "seed": "314"}, **JSON
    )
    assert response.status_code == 202
    body = wait_done(client, response.json()["id"])

    assert body["status"] == "done", body
    png = client.get(body["images"][0]["png"])
    data = png.content
    assert png.status_code == 200 and data.startswith(b"\x89PNG")
    assert str(GeneratedImage.objects.get(seed=314).request.public_id) == body["id"]
    again = client.post(
        reverse("gan:generate"), {"generator": generator.slug, "seed": "314"}, **JSON
    )
    assert again.status_code == 200 and again.json()["status"] == "done"  # from storage
    assert client.get(body["images"][0]["png"]).content == data


def test_it_batches_requests_queued_together(generate_worker, client, collection, tiny_artifact):
    generator = make_generator(collection, tiny_artifact)
    with transaction.atomic():  # all six are queued before the first task runs
        ids = [
            generation.submit(generator, kind="single", seeds=[1000 + i]).public_id
            for i in range(6)
        ]

    bodies = [wait_done(client, pk) for pk in ids]

    assert [b["status"] for b in bodies] == ["done"] * 6
    task_ids = set(GenerationRequest.objects.filter(pk__in=ids).values_list("task_id", flat=True))
    assert len(task_ids) < 6  # some requests were rendered by another request's task
    with GeneratedImage.objects.get(seed=1003).image.open("rb") as fh:
        assert Image.open(fh).size == (32, 32)
