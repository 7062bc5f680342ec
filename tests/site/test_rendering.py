"""The worker's service: claim, batch, render once, store once (run here in-process)."""

import threading
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone
from PIL import Image

from gan_app.generation import render
from gan_app.generation import requests as generation
from gan_app.generation.requests import Walk
from gan_app.models import GeneratedImage, GenerationRequest

pytestmark = pytest.mark.django_db


def queued(generator, seeds, kind=None, **params):
    kind = kind or ("single" if len(seeds) == 1 else "batch")
    return GenerationRequest.objects.create(
        generator=generator, kind=kind, seeds=seeds, params=params
    )


def png_bytes(image):
    with image.image.open("rb") as fh:
        return fh.read()


def stored_files(generator):
    _, files = default_storage.listdir(f"generated/{generator.slug}")
    return sorted(files)


def test_it_renders_and_stores_a_seed_once(generator):
    req = queued(generator, [42])

    assert render.process(req.pk, task_id="t1") == [req.pk]

    req.refresh_from_db()
    image = GeneratedImage.objects.get()
    data = png_bytes(image)
    assert (req.status, req.task_id, req.error) == ("done", "t1", "")
    assert req.finished_at >= req.started_at >= req.created_at
    assert (image.seed, image.request_id, image.generator_id) == (42, req.pk, generator.pk)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with default_storage.open(image.image.name) as fh:
        assert Image.open(fh).size == (32, 32)
    assert image.metadata["name"] == "Tiny Fakes v1 #42"
    assert {"trait_type": "seed", "value": 42, "display_type": "number"} in image.metadata[
        "attributes"
    ]


def test_it_gives_the_same_pixels_as_the_generator_itself(generator, tiny_artifact):
    from gan_app.gan import load_generator

    req = queued(generator, [7, 8])
    render.process(req.pk)

    expected = load_generator(tiny_artifact[0]).generate([7, 8])
    for row, pixels in zip(GeneratedImage.objects.order_by("seed"), expected, strict=True):
        with row.image.open("rb") as fh:
            assert np.array_equal(np.asarray(Image.open(fh).convert("RGB")), pixels)


def test_it_does_nothing_when_delivered_twice(generator):
    req = queued(generator, [1, 2])
    render.process(req.pk, task_id="first")
    files = stored_files(generator)

    assert render.process(req.pk, task_id="first") == []

    req.refresh_from_db()
    assert req.task_id == "first" and req.status == "done"
    assert GeneratedImage.objects.count() == 2
    assert stored_files(generator) == files


def test_it_takes_over_a_request_left_running_by_a_lost_worker(generator):
    req = queued(generator, [3])
    long_ago = timezone.now() - timedelta(seconds=render.STALE_SECONDS + 5)
    GenerationRequest.objects.filter(pk=req.pk).update(status="running", started_at=long_ago)
    fresh = queued(generator, [4])
    GenerationRequest.objects.filter(pk=fresh.pk).update(
        status="running", started_at=timezone.now()
    )

    assert render.process(req.pk) == [req.pk]
    assert render.process(fresh.pk) == []  # someone is on it right now


def test_it_renders_queued_requests_of_one_generator_in_one_pass(
    generator, collection, tiny_artifact
):
    from .conftest import make_generator

    other = make_generator(collection, tiny_artifact, slug="tiny-v2", version=2)
    first = queued(generator, [10])
    batch = queued(generator, [11, 12, 13])
    walk = queued(generator, [10, 11], kind="walk", steps=5)
    elsewhere = queued(other, [10])
    render.process(first.pk, task_id="head")

    for req in (first, batch, walk, elsewhere):
        req.refresh_from_db()
    assert [first.status, batch.status, walk.status] == ["done"] * 3
    assert elsewhere.status == "queued"  # another generator: its own task renders it
    assert first.task_id == batch.task_id == walk.task_id == "head"
    assert sorted(GeneratedImage.objects.values_list("seed", flat=True)) == [10, 11, 12, 13]
    assert default_storage.exists(walk.params["strip"])
    # The siblings' own tasks arrive later and find nothing to do.
    assert render.process(batch.pk) == []
    assert render.process(walk.pk) == []


def test_it_keeps_one_pass_within_the_limit(generator, monkeypatch):
    monkeypatch.setattr(render, "PASS_LIMIT", 5)
    head = queued(generator, [1, 2])
    second = queued(generator, [3, 4, 5])
    third = queued(generator, [6])

    render.process(head.pk)

    statuses = [r.status for r in GenerationRequest.objects.order_by("pk")]
    assert statuses == ["done", "done", "queued"]
    assert [third.pk] == [r.pk for r in GenerationRequest.objects.filter(status="queued")]
    assert second.pk in GenerationRequest.objects.filter(status="done").values_list("pk", flat=True)


@pytest.mark.django_db(transaction=True)
def test_it_keeps_one_row_and_one_file_when_duplicate_requests_race(generator):
    requests = [queued(generator, [77, 78]) for _ in range(4)]
    render.draw_pixels(generator, [0], [])  # load the model first so the threads really overlap
    barrier = threading.Barrier(len(requests))
    errors = []

    def work(req):
        try:
            barrier.wait()
            # Each thread renders on its own, as separate workers would.
            render.render_requests(generator, [req])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert GeneratedImage.objects.filter(seed=77).count() == 1
    assert len(stored_files(generator)) == 2  # seeds 77 and 78, one file each
    assert all(r.status == "done" for r in GenerationRequest.objects.all())


def test_it_serves_a_hidden_seed_as_removed_without_rendering_it_again(generator):
    render.process(queued(generator, [5]).pk)
    GeneratedImage.objects.update(is_hidden=True)
    again = queued(generator, [5, 6])

    render.process(again.pk)

    again.refresh_from_db()
    result = generation.request_images(again)
    assert [(seed, image is None) for seed, image in result] == [(5, True), (6, False)]
    assert GeneratedImage.objects.count() == 2


def test_it_draws_a_latent_walk_whose_ends_are_the_seed_images(generator, tiny_artifact):
    from gan_app.gan import load_generator

    req = queued(generator, [3, 9], kind="walk", steps=4)

    render.process(req.pk)

    req.refresh_from_db()
    assert req.status == "done"
    assert req.params["strip"] == generation.walk_name(generator, Walk(3, 9, 4))
    with default_storage.open(req.params["strip"]) as fh:
        strip = np.asarray(Image.open(fh).convert("RGB"))
    assert strip.shape == (32, 4 * 32, 3)
    ends = load_generator(tiny_artifact[0]).generate([3, 9])
    assert np.array_equal(strip[:, :32], ends[0])
    assert np.array_equal(strip[:, -32:], ends[1])


def test_it_fails_the_request_when_the_model_file_is_broken(generator):
    from gan_app.generation.generator_cache import cache

    cache().clear()  # a worker that loaded the file before it broke would still serve it
    generator.model_file.save("broken.zip", ContentFile(b"not a zip"), save=True)
    req = queued(generator, [1])

    assert render.process(req.pk) == []

    req.refresh_from_db()
    assert req.status == "failed"
    assert "GeneratorArtifactError" in req.error
    assert GeneratedImage.objects.count() == 0


def test_it_fails_requests_of_a_generator_withdrawn_meanwhile(generator):
    req = queued(generator, [1])
    generator.unpublish()

    render.process(req.pk)

    req.refresh_from_db()
    assert req.status == "failed" and "no longer published" in req.error


def test_it_replaces_a_file_a_killed_writer_left_short(generator):
    import os
    import time

    name = "generated/tiny-v1/x.png"
    default_storage.save(name, ContentFile(b"\x89PNG trunc"))
    assert render.write_once(name, b"\x89PNG complete bytes") == name
    with default_storage.open(name) as fh:
        assert fh.read() == b"\x89PNG trunc"  # fresh: another writer may be finishing it

    old = time.time() - render.STALE_SECONDS - 10
    os.utime(default_storage.path(name), (old, old))
    render.write_once(name, b"\x89PNG complete bytes")

    with default_storage.open(name) as fh:
        assert fh.read() == b"\x89PNG complete bytes"
    assert default_storage.listdir("generated/tiny-v1")[1] == ["x.png"]
