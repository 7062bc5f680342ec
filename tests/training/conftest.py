"""A small sprite collection and tiny hyperparameters: each training test runs in seconds."""

import hashlib
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from collections_app.models import Collection, Token, TrainingSet
from tests.gan.conftest import sprite_png

# 32 px, a handful of channels, batches of 8: about a second per epoch on a shared CPU.
TINY = {
    "resolution": 32,
    "latent_dim": 8,
    "generator_width": 4,
    "discriminator_width": 4,
    "batch_size": 8,
    "epochs": 2,
    "checkpoint_every": 1,
}


def make_sprite_set(slug="sprites", count=32, size=16, name="all", sizes=None):
    """A collection of ``count`` sprite tokens and a TrainingSet of all of them."""
    collection = Collection.objects.create(slug=slug, name=slug.title())
    tokens = []
    for i in range(count):
        token = Token(collection=collection, token_id=str(i), token_number=i, name=f"#{i}")
        side = sizes[i] if sizes else size
        png = sprite_png(i, side)
        token.image.save(f"{slug}-{i}.png", ContentFile(png), save=False)
        token.image_sha256 = hashlib.sha256(png).hexdigest()
        token.save()
        tokens.append(token)
    training_set = TrainingSet.objects.create(
        collection=collection, name=name, token_count=len(tokens)
    )
    training_set.tokens.set(tokens)
    return training_set


@pytest.fixture
def sprite_set(db):
    return make_sprite_set()


@pytest.fixture(autouse=True)
def isolated_media(request, settings, tmp_path):
    """Files of one test never meet another's; worker and browser tests keep the MEDIA_ROOT
    the worker shares and the media route serves."""
    if not (
        request.node.get_closest_marker("worker") or request.node.get_closest_marker("browser")
    ):
        settings.MEDIA_ROOT = str(tmp_path / "media")


def wait_until(run, check, timeout=180, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if check(run):
            return run
        time.sleep(0.2)
    raise AssertionError(
        f"run {run.pk} never reached {what}: {run.status} {run.epoch_done} {run.error}"
    )


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def trained_run(sprite_set):
    """A run that trained its 2 epochs in this process (checkpoints at epochs 1 and 2)."""
    from gan_app.training import chunks
    from gan_app.training import runs as training

    run = training.create_run(sprite_set, enqueue=False, **TINY)
    chunks.run_chunk(run.pk, run.task_id, chain=False)
    run.refresh_from_db()
    return run
