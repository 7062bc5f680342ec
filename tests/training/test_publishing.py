"""Publish epoch E: a checkpoint becomes a Generator the site serves; generators travel as zips."""

import io
import json
import zipfile

import pytest
from django.core.files.base import ContentFile

from gan_app.models import Checkpoint, Generator, TrainingRun
from gan_app.publishing import (
    GeneratorImportError,
    export_filename,
    export_generator_zip,
    import_generator_zip,
    publish_checkpoint,
)
from tests.training.conftest import TINY

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def checkpoint_bytes():
    """(checkpoint file, grid) after one epoch of a tiny run on the sprite images."""
    from gan_app.gan import GANConfig, Trainer, prepare_images
    from tests.training.conftest import sprite_png

    config = GANConfig(**{**TINY, "epochs": 1})
    images = prepare_images([sprite_png(i, size=16) for i in range(32)], config)
    trainer = Trainer(config, images)
    trainer.run()
    checkpoint = trainer.checkpoint("finished")
    return checkpoint.data, checkpoint.grid_png


@pytest.fixture
def checkpoint(sprite_set, checkpoint_bytes):
    data, grid = checkpoint_bytes
    run = TrainingRun.objects.create(
        training_set=sprite_set, config=TINY, resolution=32, epochs_total=1, epoch_done=1
    )
    row = Checkpoint(run=run, epoch=1, losses={"g_loss": 1.0})
    row.state_file.save("run-1-e1.zip", ContentFile(data), save=False)
    row.grid.save("run-1-e1.png", ContentFile(grid), save=False)
    row.save()
    return row


def test_it_publishes_a_checkpoint_as_a_servable_generator(checkpoint):
    from gan_app.generation import generator_cache

    generator = publish_checkpoint(checkpoint)

    generator.refresh_from_db()
    assert generator.is_published and generator.published_at
    assert generator.slug == "sprites-v1"
    assert (generator.version, generator.epoch, generator.resolution) == (1, 1, 32)
    assert generator.training_run == checkpoint.run
    assert generator.manifest["training_set"]["slug"] == "sprites"
    assert generator.manifest["training_set"]["token_count"] == 32
    assert generator.sample_grid.read()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = generator_cache.load(generator).generate([1, 2])
    assert pixels.shape == (2, 16, 16, 3)  # pixel-art sprites come out on their 16x16 grid


def test_it_returns_the_same_generator_for_the_same_checkpoint(checkpoint):
    first = publish_checkpoint(checkpoint, publish=False)
    again = publish_checkpoint(checkpoint)

    assert again.pk == first.pk
    assert Generator.objects.count() == 1
    first.refresh_from_db()
    assert first.is_published


def test_it_numbers_versions_per_collection(checkpoint, checkpoint_bytes):
    data, _ = checkpoint_bytes
    other = Checkpoint(run=checkpoint.run, epoch=2)
    other.state_file.save("other.zip", ContentFile(data), save=False)
    other.save()

    first = publish_checkpoint(checkpoint, name="First")
    second = publish_checkpoint(other)

    assert (first.name, first.version) == ("First", 1)
    assert (second.slug, second.version) == ("sprites-v2", 2)


def test_it_round_trips_a_generator_through_its_zip(checkpoint):
    generator = publish_checkpoint(checkpoint)
    data = export_generator_zip(generator)

    generator.collection.generators.all().delete()
    imported = import_generator_zip(io.BytesIO(data))

    assert export_filename(generator) == "sprites-v1_generator.zip"
    assert imported.collection == generator.collection
    assert imported.model_sha256 == generator.model_sha256
    assert not imported.is_published
    assert imported.sample_grid
    assert import_generator_zip(data).pk == imported.pk  # same artifact: the same row


def test_it_imports_into_a_new_site_creating_the_collection(checkpoint):
    data = export_generator_zip(publish_checkpoint(checkpoint))
    checkpoint.run.training_set.collection.generators.all().delete()
    manifest_patch = rewrite(data, manifest={"collection": {"slug": "elsewhere", "name": "Else"}})

    imported = import_generator_zip(manifest_patch, publish=True)

    assert imported.collection.slug == "elsewhere"
    assert imported.slug == "elsewhere-v1" and imported.is_published


def rewrite(data, *, manifest=None, members=None):
    """The export with manifest keys replaced and members added or replaced."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "manifest.json" and manifest:
                content = json.dumps({**json.loads(content), **manifest}).encode()
            if members and info.filename in members:
                continue
            zf.writestr(info.filename, content)
        for name, content in (members or {}).items():
            zf.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: b"not a zip at all", "not a generator zip"),
        (lambda d: rewrite(d, members={"../../etc/passwd": b"x"}), "unexpected entries"),
        (lambda d: rewrite(d, members={"manifest.json": b"{oops"}), "not valid JSON"),
        (lambda d: rewrite(d, manifest={"format": "other"}), "format is not"),
        (lambda d: rewrite(d, manifest={"artifact_sha256": "0" * 64}), "corrupt"),
        (
            lambda d: rewrite(d, manifest={"collection": {"slug": "../x"}}),
            "not a valid slug",
        ),
        (lambda d: rewrite(d, members={"sample_grid.png": b"GIF89a"}), "sample_grid.png"),
    ],
)
def test_it_refuses_a_malformed_or_hostile_zip(checkpoint, change, message):
    data = export_generator_zip(publish_checkpoint(checkpoint))
    count = Generator.objects.count()

    with pytest.raises(GeneratorImportError, match=message):
        import_generator_zip(change(data))
    assert Generator.objects.count() == count


def test_it_refuses_a_zip_bomb(checkpoint):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b"{}")
        zf.writestr("generator.zip", b"\0" * (20 * 1024**2))

    with pytest.raises(GeneratorImportError, match="zip bomb"):
        import_generator_zip(out.getvalue())


def test_it_refuses_an_artifact_that_does_not_load(checkpoint):
    import hashlib

    data = export_generator_zip(publish_checkpoint(checkpoint))
    junk = b"PK\x05\x06" + b"\0" * 18  # an empty zip: no generator manifest
    bad = rewrite(
        data,
        manifest={"artifact_sha256": hashlib.sha256(junk).hexdigest()},
        members={"generator.zip": junk},
    )

    with pytest.raises(GeneratorImportError, match=r"generator\.zip"):
        import_generator_zip(bad)


@pytest.mark.parametrize("enabled, queued", [(True, 1), (False, 0)])
def test_it_queues_an_evaluation_of_a_new_generator_when_asked(
    checkpoint, settings, django_capture_on_commit_callbacks, enabled, queued
):
    settings.EVALUATE_ON_PUBLISH = enabled
    with django_capture_on_commit_callbacks() as first:
        publish_checkpoint(checkpoint, publish=False)
    with django_capture_on_commit_callbacks() as again:
        publish_checkpoint(checkpoint)  # the same generator: evaluated once is enough

    assert (len(first), len(again)) == (queued, 0)
