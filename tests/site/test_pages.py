"""Home, collection panel, generator page and gallery as visitors and staff see them."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from collections_app.models import TrainingSet
from gan_app.generation import render
from gan_app.models import GeneratedImage, GenerationRequest, TrainingRun

from .conftest import make_generator

pytestmark = pytest.mark.django_db


def make_images(generator, seeds):
    req = GenerationRequest.objects.create(generator=generator, kind="batch", seeds=list(seeds))
    render.process(req.pk)


@pytest.fixture
def run(collection):
    training_set = TrainingSet.objects.create(
        collection=collection,
        name="top-15",
        filter_spec={"top_price_pct": 15.0, "include_traits": ["type=Alien"]},
        token_count=150,
        stats={
            "subset": {"price_usd": {"median": "1500.00"}, "share_of_collection": 0.15},
            "collection": {"price_usd": {"median": "300.00"}},
        },
    )
    return TrainingRun.objects.create(
        training_set=training_set,
        status=TrainingRun.Status.RUNNING,
        epochs_total=200,
        epoch_done=84,
        images_per_second=412.0,
        loss_history=[
            {"g_loss": 1.2, "d_loss": 0.7, "seconds": 30},
            {"g_loss": 1.0, "d_loss": 0.6, "seconds": 30},
        ],
    )


def test_it_shows_collections_with_their_generators_and_training_progress(client, generator, run):
    make_images(generator, [1, 2, 3, 4])

    html = client.get("/").content.decode()

    assert "Tiny Fakes v1" in html and generator.get_absolute_url() in html
    assert "New generator training: 42%" in html
    assert '<progress max="100" value="42"' in html
    assert f"{generator.collection.get_absolute_url()}#generate" in html  # Try the generator
    assert "/g/tiny-v1/1.png" in html  # recent images


def test_it_keeps_the_home_page_to_four_queries_however_many_collections(
    client, collection, tiny_artifact, django_assert_num_queries
):
    from collections_app.models import Collection

    for i in range(5):
        other = Collection.objects.create(slug=f"c{i}", name=f"C{i}")
        make_generator(other, tiny_artifact, slug=f"c{i}-v1")

    with django_assert_num_queries(4):
        html = client.get("/").content.decode()

    assert all(f"/gen/c{i}-v1/" in html for i in range(5))


def test_it_says_generator_training_when_none_is_published_yet(client, collection, run):
    html = client.get("/").content.decode()

    assert "Generator training: 42%" in html
    assert "Try the generator" not in html


def test_it_fills_the_generate_panel_on_the_collection_page(
    client, generator, collection, tiny_artifact
):
    make_generator(collection, tiny_artifact, slug="tiny-v2", version=2, name="Tiny Fakes v2")
    make_generator(collection, tiny_artifact, slug="tiny-v3", version=3, published=False)

    html = client.get(collection.get_absolute_url()).content.decode()

    assert 'id="generate"' in html and 'action="/generate/"' in html
    assert "csrfmiddlewaretoken" in html
    assert '<option value="tiny-v2">Tiny Fakes v2' in html
    assert '<option value="tiny-v1">' in html and "tiny-v3" not in html
    assert html.index("tiny-v2") < html.index('<option value="tiny-v1">')  # newest first
    assert "9,007,199,254,740,991" in html  # the seed range, said out loud
    assert "js/generate" in html


def test_it_leaves_the_panel_out_without_a_published_generator(client, collection):
    html = client.get(collection.get_absolute_url()).content.decode()

    assert 'id="generate"' not in html and "js/generate" not in html


def test_it_shows_the_generator_page(client, generator, run):
    generator.training_run = run
    generator.metrics = {
        "inception": {"fid": 41.5},
        "baseline": {"inception": {"fid": 12.25}},
        "memorisation": {"pixel": {"near_copy_share": 0.02}},
    }
    generator.save()
    make_images(generator, [4])

    response = client.get(reverse("gan:generator", args=[generator.slug]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "top-15" in html and "150" in html
    assert "type=Alien, top 15% of sold by price" in html
    assert "$1,500.00" in html and "$300.00" in html
    assert "Epochs trained" in html and "3 of 200" in html
    assert "412 images/s" in html and "1 min 0 s" in html
    assert "FID (Inception)" in html and "41.5" in html and "12.2" in html
    assert "2.0%" in html
    assert 'id="loss-chart"' in html
    assert 'id="walk"' in html and 'name="seed_end"' in html
    assert "/g/tiny-v1/4.png" in html


def test_it_shows_trained_on_from_the_manifest_without_a_run(client, generator):
    html = client.get(generator.get_absolute_url()).content.decode()

    assert "all tokens" in html and ">12<" in html
    assert "FID" not in html


def test_it_hides_unpublished_generators_from_visitors_but_not_staff(
    client, collection, tiny_artifact
):
    draft = make_generator(collection, tiny_artifact, slug="draft-v9", version=9, published=False)
    url = draft.get_absolute_url()

    assert client.get(url).status_code == 404
    staff = get_user_model().objects.create_user("mod", password="pw", is_staff=True)
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200
    assert b"Not published" in response.content
    assert b'action="/generate/"' not in response.content


def test_it_lists_recent_images_without_hidden_ones(client, generator):
    make_images(generator, [1, 2, 3])
    GeneratedImage.objects.filter(seed=2).update(is_hidden=True)

    html = client.get(reverse("gan:gallery")).content.decode()

    assert "/g/tiny-v1/1.png" in html and "/g/tiny-v1/3.png" in html
    assert "/g/tiny-v1/2.png" not in html


def test_it_paginates_the_gallery_and_filters_by_generator(
    client, generator, collection, tiny_artifact, monkeypatch
):
    from gan_app import views

    monkeypatch.setattr(views, "GALLERY_PAGE", 2)
    other = make_generator(collection, tiny_artifact, slug="tiny-v2", version=2)
    make_images(generator, [1, 2, 3])
    make_images(other, [9])

    first = client.get(reverse("gan:gallery")).content.decode()
    last = client.get(reverse("gan:gallery") + "?page=2").content.decode()
    only_v2 = client.get(reverse("gan:gallery") + "?generator=tiny-v2").content.decode()

    assert "Page 1 of 2" in first and "Older" in first
    assert first.count('class="gallery-card"') == 2 and last.count('class="gallery-card"') == 2
    assert "/g/tiny-v2/9.png" in only_v2 and "/g/tiny-v1/" not in only_v2.split("gallery-grid")[1]
    assert client.get(reverse("gan:gallery") + "?generator=nope").status_code == 404


def test_it_leaves_images_of_private_collections_out(client, generator, collection):
    make_images(generator, [1])
    collection.is_public = False
    collection.save()

    assert "/g/tiny-v1/1.png" not in client.get(reverse("gan:gallery")).content.decode()
    assert client.get("/g/tiny-v1/1.png").status_code == 404
    assert client.get(generator.get_absolute_url()).status_code == 404
