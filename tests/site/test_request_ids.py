"""Generation requests are addressed by an unguessable public id, never the sequential pk."""

import pytest
from django.urls import reverse

from gan_app.generation import render
from gan_app.models import GenerationRequest

pytestmark = pytest.mark.django_db


def test_it_routes_status_page_and_zip_by_an_unguessable_id(client, generator):
    req = GenerationRequest.objects.create(generator=generator, kind="batch", seeds=[3, 4])
    render.process(req.pk)
    req.refresh_from_db()

    body = client.get(f"/generate/r/{req.public_id}.json").json()

    assert body["status"] == "done"
    assert str(req.public_id) in body["status_url"] and str(req.pk) != body["id"]
    assert body["zip_url"] == reverse("gan:request_zip", args=[req.public_id])
    assert client.get(body["zip_url"]).status_code == 200
    assert client.get(body["page_url"]).status_code == 200


def test_it_answers_404_for_the_old_integer_urls(client, generator):
    req = GenerationRequest.objects.create(generator=generator, kind="batch", seeds=[3, 4])
    render.process(req.pk)

    for suffix in (".json", ".zip", "/"):
        assert client.get(f"/generate/r/{req.pk}{suffix}").status_code == 404


def test_it_gives_each_request_its_own_id(generator):
    first, second = (
        GenerationRequest.objects.create(generator=generator, seeds=[n]) for n in (1, 2)
    )

    assert first.public_id != second.public_id
    assert len(str(first.public_id)) == 36
