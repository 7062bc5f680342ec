"""A tiny generator (untrained, 32 px, latent 8) exported as a real artifact: no training."""

import io
import time

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from collections_app.models import Collection
from gan_app.models import Generator
from tests.testenv import SERVICES_UP
from tests.workers import WorkerProcess

TINY = {"resolution": 32, "latent_dim": 8, "generator_width": 4}


@pytest.fixture(scope="session")
def tiny_artifact():
    """(artifact bytes, sha256) of a freshly initialised tiny generator."""
    from gan_app.gan import GANConfig, build_generator, export_generator

    config = GANConfig(**TINY)
    buffer = io.BytesIO()
    sha = export_generator(
        build_generator(config),
        buffer,
        config=config.to_dict(),
        epoch=3,
        training_set={"slug": "tiny", "count": 12},
    )
    return buffer.getvalue(), sha


def make_generator(collection, artifact, *, slug="tiny-v1", version=1, published=True, **fields):
    data, sha = artifact
    generator = Generator(
        slug=slug,
        name=fields.pop("name", f"Tiny Fakes v{version}"),
        collection=collection,
        version=version,
        resolution=TINY["resolution"],
        latent_dim=TINY["latent_dim"],
        epoch=3,
        model_sha256=fields.pop("model_sha256", sha),
        manifest={"training_set": {"slug": "tiny", "count": 12}, "epoch": 3},
        is_published=published,
        is_listed=fields.pop("is_listed", published),  # past the quality gate unless told
        published_at=timezone.now() if published else None,
        **fields,
    )
    generator.model_file.save(f"{slug}.zip", ContentFile(data), save=False)
    generator.save()
    return generator


@pytest.fixture
def collection(db):
    return Collection.objects.create(slug="tiny-fakes", name="Tiny Fakes")


@pytest.fixture
def generator(collection, tiny_artifact):
    return make_generator(collection, tiny_artifact)


@pytest.fixture
def made(generator):
    """Seed 42 of ``generator``, rendered and stored as the worker would."""
    from gan_app.generation import render
    from gan_app.models import GeneratedImage, GenerationRequest

    req = GenerationRequest.objects.create(generator=generator, kind="single", seeds=[42])
    render.process(req.pk)
    return GeneratedImage.objects.get(seed=42)


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture(autouse=True)
def isolated_media(request, settings, tmp_path):
    """Files of one test never meet another's (rows roll back, files would not).

    Tests with a worker process keep the session's MEDIA_ROOT, which the worker shares, and so
    do tests whose queued tasks a worker started earlier in the session may take (``shared_media``).
    """
    if not any(request.node.get_closest_marker(m) for m in ("worker", "browser", "shared_media")):
        settings.MEDIA_ROOT = str(tmp_path / "media")
        settings.PRIVATE_MEDIA_ROOT = str(tmp_path / "private")


@pytest.fixture
def generous_rate(settings):
    settings.GENERATION_RATE_LIMIT = "10000/m"


@pytest.fixture(scope="session")
def generate_worker(django_db_setup, django_db_blocker, tiny_artifact):
    """A worker on the generate queue only, started after a generator was published (so it
    warms it). Tests that use it need ``transactional_db``; they make their own generators."""
    if not SERVICES_UP:
        pytest.skip("PostgreSQL/Redis not reachable")
    with django_db_blocker.unblock():
        collection = Collection.objects.create(slug="warm-fakes", name="Warm Fakes")
        make_generator(collection, tiny_artifact, slug="warm-v1", name="Warm Fakes v1")
    worker = WorkerProcess(
        "generate", queues=("generate",), concurrency=1, env={"GENERATOR_WARM_INTERVAL": "1"}
    ).start()
    worker.wait_for_log("generator cache: warmed warm-v1", timeout=90)
    yield worker
    worker.stop()
    with django_db_blocker.unblock():
        Collection.objects.filter(slug="warm-fakes").delete()


def wait_done(client, req_id, timeout=60):
    """Long-poll a generation request's JSON status until it is no longer queued or running."""
    url = reverse("gan:request_status", args=[req_id])
    deadline = time.monotonic() + timeout
    body = client.get(url).json()
    while body["status"] in ("queued", "running") and time.monotonic() < deadline:
        body = client.get(f"{url}?since={body['status']}&wait=10").json()
    return body
