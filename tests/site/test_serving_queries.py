"""What a Generate request asks of the database: none of the large columns it never reads."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from gan_app.generation import render
from gan_app.models import GenerationRequest

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}
# Loaded with the collection and generator rows unless left out; a lazy load would name them too.
LARGE_COLUMNS = ('"analytics"', '"image_profile"', '"metrics"', '"gate_verdict"')


def test_generate_its_render_and_the_permalink_never_read_the_large_columns(
    client, collection, generator, generous_rate
):
    # A large collection's analytics cache is hundreds of KB of JSON.
    collection.analytics = {"charts": {"scatter": [[i, i * 0.5] for i in range(20_000)]}}
    collection.image_profile = {"palette": ["#000000", "#ffffff"], "grid": 32}
    collection.save()
    generator.metrics = {"fid": 1.5, "traits": {f"t{i}": i for i in range(500)}}
    generator.gate_verdict = {"passed": True, "checks": []}
    generator.save()

    with CaptureQueriesContext(connection) as queries:
        posted = client.post(
            reverse("gan:generate"), {"generator": generator.slug, "seed": "7"}, **JSON
        )
        req = GenerationRequest.objects.get(public_id=posted.json()["id"])
        render.process(req.pk)
        done = client.get(reverse("gan:request_status", args=[req.public_id])).json()
        png = client.get(done["images"][0]["png"])

    assert posted.status_code == 202 and done["status"] == "done"
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert [q["sql"] for q in queries if any(c in q["sql"] for c in LARGE_COLUMNS)] == []


def test_the_gallery_never_reads_the_large_columns(client, collection, generator, made):
    collection.analytics = {"charts": {"scatter": [[i, i * 0.5] for i in range(20_000)]}}
    collection.save()
    generator.metrics = {"fid": 1.5}
    generator.save()

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("gan:gallery"))

    png = reverse("gan:image_png", args=[generator.slug, made.seed])
    assert page.status_code == 200 and png in page.content.decode()
    assert [q["sql"] for q in queries if any(c in q["sql"] for c in LARGE_COLUMNS)] == []


def test_the_generator_page_never_reads_its_collections_analytics(
    client, collection, generator, made
):
    collection.analytics = {"charts": {"scatter": [[i, i * 0.5] for i in range(20_000)]}}
    collection.save()

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("gan:generator", args=[generator.slug]))

    png = reverse("gan:image_png", args=[generator.slug, made.seed])
    assert page.status_code == 200 and png in page.content.decode()
    read = [q["sql"] for q in queries if '"analytics"' in q["sql"] or '"image_profile"' in q["sql"]]
    assert read == []


def _labelled(made, collection, value="Laser"):
    from collections_app.models import Trait

    Trait.objects.create(collection=collection, trait_type="eyes", value=value, count=1)
    made.traits = {"eyes": [{"value": value, "confidence": 0.97}]}
    made.save(update_fields=["traits"])
    return made


def test_a_done_requests_answer_loads_its_generator_once(
    client, collection, made, django_assert_num_queries
):
    _labelled(made, collection)  # a labelled image is checked against the exclusions
    url = reverse("gan:request_status", args=[made.request.public_id])
    client.get(url)  # this process has read the collection's exclusions

    # The request's pk, the request with its generator and collection, its images: the
    # images are not given their generator again one query each.
    with django_assert_num_queries(3):
        answer = client.get(url).json()

    assert answer["status"] == "done" and answer["images"][0]["png"]


def test_a_permalink_reads_the_exclusions_once_per_max_age(
    client, collection, made, monkeypatch, django_assert_num_queries
):
    from gan_app import showcase

    _labelled(made, collection)
    png = reverse("gan:image_png", args=[made.generator.slug, made.seed])
    client.get(png)

    with django_assert_num_queries(1):  # the image row with its generator; exclusions known
        assert client.get(png).status_code == 200
    monkeypatch.setattr(showcase, "EXCLUSIONS_MAX_AGE", 0.0)
    with django_assert_num_queries(2):  # older than the max age: read again
        assert client.get(png).status_code == 200


def test_exclusions_made_or_undone_in_this_process_apply_at_once(client, collection, made):
    from collections_app.models import Trait

    _labelled(made, collection)
    png = reverse("gan:image_png", args=[made.generator.slug, made.seed])
    assert client.get(png).status_code == 200  # the exclusions are now read and kept
    laser = Trait.objects.filter(collection=collection, value="Laser")

    Trait.exclude_values(laser, "offensive")
    assert client.get(png).status_code == 451
    Trait.allow_values(laser)
    assert client.get(png).status_code == 200
    laser.get().delete()  # a trait row saved or deleted is read afresh too
    Trait.objects.create(
        collection=collection, trait_type="eyes", value="Laser", count=1, is_excluded=True
    )
    assert client.get(png).status_code == 451


def _post(client, generator, seed):
    return client.post(reverse("gan:generate"), {"generator": generator.slug, "seed": seed}, **JSON)


def _generator_reads(queries):
    return [q["sql"] for q in queries if q["sql"].startswith('SELECT "gan_app_generator"')]


def test_generate_reads_the_generator_once_per_max_age(
    client, generator, generous_rate, monkeypatch
):
    from gan_app.generation import requests

    assert _post(client, generator, "1").status_code == 202

    with CaptureQueriesContext(connection) as queries:
        assert _post(client, generator, "2").status_code == 202
        png = client.get(reverse("gan:image_png", args=[generator.slug, 2]))
    assert _generator_reads(queries) == [] and png.status_code == 404  # not made yet
    monkeypatch.setattr(requests, "GENERATOR_MAX_AGE", 0.0)
    with CaptureQueriesContext(connection) as queries:
        assert _post(client, generator, "3").status_code == 202
    assert len(_generator_reads(queries)) == 1


def test_a_generator_withdrawn_or_unlisted_in_this_process_is_refused_at_once(
    client, generator, made, generous_rate
):
    png = reverse("gan:image_png", args=[generator.slug, made.seed])
    assert _post(client, generator, "5").status_code == 202 and client.get(png).status_code == 200

    generator.unpublish()
    assert _post(client, generator, "6").status_code == 400
    assert client.get(png).status_code == 404
    generator.publish()
    assert _post(client, generator, "7").status_code == 202
    generator.collection.is_public = False
    generator.collection.save(update_fields=["is_public"])
    assert _post(client, generator, "8").status_code == 400
    assert client.get(png).status_code == 404


def test_a_generator_withdrawn_elsewhere_is_refused_within_the_max_age(
    client, generator, generous_rate, monkeypatch
):
    from gan_app.generation import requests
    from gan_app.models import Generator

    assert _post(client, generator, "5").status_code == 202
    # As another process (the admin's) would: no signal reaches this one.
    Generator.objects.filter(pk=generator.pk).update(is_published=False)
    monkeypatch.setattr(requests, "GENERATOR_MAX_AGE", 0.0)  # the max age has passed

    refused = _post(client, generator, "6")
    assert refused.status_code == 400 and "no published generator" in refused.json()["error"]


def test_unknown_generators_are_not_kept(client, generator, generous_rate):
    from gan_app.generation import requests

    requests.forget_served_generators()
    for n in range(requests.GENERATORS_KEPT + 10):
        refused = _post(client, type(generator)(slug=f"nope-{n}"), "1")
        assert refused.status_code == 400
    assert requests._generators_seen == {}
    assert _post(client, generator, "1").status_code == 202
    assert len(requests._generators_seen) == 1
