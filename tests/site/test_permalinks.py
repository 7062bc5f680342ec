"""/g/<generator>/<seed>.png|.json|/ and walks: served from storage, never re-rendered."""

import json

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from gan_app.generation import render
from gan_app.models import GeneratedImage, GenerationRequest

from .conftest import body

pytestmark = pytest.mark.django_db


def test_it_serves_the_stored_png(client, made):
    response = client.get("/g/tiny-v1/42.png")

    with made.image.open("rb") as fh:
        assert body(response) == fh.read()
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["ETag"] == f'"{made.image_sha256}"'
    assert "attachment" not in response.get("Content-Disposition", "")


def test_it_offers_the_png_as_a_download(client, made):
    response = client.get("/g/tiny-v1/42.png?download=1")

    assert response["Content-Disposition"] == 'attachment; filename="tiny-v1-42.png"'


def test_it_answers_not_modified_for_a_known_etag(client, made):
    response = client.get("/g/tiny-v1/42.png", HTTP_IF_NONE_MATCH=f'"{made.image_sha256}"')

    assert response.status_code == 304


def test_it_never_renders_on_a_permalink(client, generator):
    response = client.get("/g/tiny-v1/43.png")

    assert response.status_code == 404
    assert GeneratedImage.objects.count() == 0
    assert GenerationRequest.objects.count() == 0


def test_it_serves_absolute_metadata(client, made):
    response = client.get("/g/tiny-v1/42.json")

    data = json.loads(response.content)
    assert response["Content-Type"] == "application/json"
    assert data["image"] == "http://testserver/g/tiny-v1/42.png"
    assert data["name"] == "Tiny Fakes v1 #42"
    assert {"trait_type": "generator", "value": "tiny-v1"} in data["attributes"]


def test_it_answers_410_for_hidden_images_and_404_once_deleted(client, made):
    made.is_hidden = True
    made.save()

    assert client.get("/g/tiny-v1/42.png").status_code == 410
    assert client.get("/g/tiny-v1/42.json").status_code == 410
    assert client.get("/g/tiny-v1/42/").status_code == 410


def test_it_removes_the_file_of_a_deleted_image(client, made, django_capture_on_commit_callbacks):
    name = made.image.name
    with django_capture_on_commit_callbacks(execute=True):
        made.delete()

    assert not default_storage.exists(name)
    assert client.get("/g/tiny-v1/42.png").status_code == 404


def test_it_hides_every_image_of_an_unpublished_generator(client, made, generator):
    generator.unpublish()

    assert client.get("/g/tiny-v1/42.png").status_code == 404
    assert client.get("/g/tiny-v1/42/").status_code == 404


def test_it_shows_the_image_page_and_counts_views(client, made):
    response = client.get("/g/tiny-v1/42/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Tiny Fakes v1 #42" in html
    assert "/g/tiny-v1/42.png?download=1" in html
    made.refresh_from_db()
    assert made.views == 1


def test_it_offers_to_generate_a_seed_not_made_yet(client, generator):
    response = client.get("/g/tiny-v1/5/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "generated seed" in html and 'value="5"' in html and 'action="/generate/"' in html


def test_it_rejects_seeds_beyond_the_range_in_urls(client, generator):
    assert client.get("/g/tiny-v1/99999999999999999.png").status_code == 404
    assert client.get("/g/tiny-v1/9999999999999999/").status_code == 404


def test_it_serves_a_drawn_walk_strip(client, generator):
    req = GenerationRequest.objects.create(
        generator=generator, kind="walk", seeds=[1, 2], params={"steps": 4}
    )
    url = reverse("gan:walk_png", args=[generator.slug, 1, 2, 4])
    assert client.get(url).status_code == 404

    render.process(req.pk)
    response = client.get(url)

    assert response.status_code == 200
    assert body(response).startswith(b"\x89PNG")
    assert (
        client.get(reverse("gan:request_status", args=[req.public_id])).json()["strip_url"] == url
    )
