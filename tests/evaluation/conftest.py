"""A small demo collection with a trained trait classifier and a briefly trained 32 px GAN.

Trained once per session (the expensive part), rebuilt as rows for each test that asks, so
nothing of it is left for other tests to see.
"""

import io

import pytest
from django.core.files.base import ContentFile

from tests.testenv import SERVICES_UP

DEMO_SIZE = 192
# A narrow, quick classifier: enough to read the demo's layered traits.
CLASSIFIER = {"epochs": 40, "width": 16, "feature_dim": 32}
GAN = {
    "resolution": 32,
    "latent_dim": 32,
    "generator_width": 16,
    "discriminator_width": 16,
    "batch_size": 32,
    "epochs": 40,
    "checkpoint_every": 20,
    "seed": 3,
}


def add_checkpoint(run, data, epoch):
    from gan_app.models import Checkpoint

    checkpoint = Checkpoint(run=run, epoch=epoch)
    checkpoint.state_file.save(f"run{run.pk}-e{epoch}.zip", ContentFile(data), save=False)
    checkpoint.save()
    return checkpoint


@pytest.fixture(scope="session")
def demo_files(django_db_setup, django_db_blocker):
    """What is expensive, made once per session: the collection's trait classifier (a file in
    storage, found again by the collection's slug and data version) and the GAN's checkpoint
    files at epochs 0, 20 and 40 (bytes). The rows it needed are deleted straight away: other
    tests count rows and must not see them."""
    if not SERVICES_UP:
        pytest.skip("PostgreSQL/Redis not reachable")
    from gan_app.evaluation import reports as evaluation
    from gan_app.gan import GANConfig, Trainer

    config = GANConfig(**GAN)
    with django_db_blocker.unblock():
        collection, training_set, run = demo_rows(config)
        try:
            evaluation.classifier_for(collection, **CLASSIFIER)
            trainer = Trainer(config, evaluation.run_real_set(run).images)
            checkpoints = [(0, trainer.checkpoint().data)]
            trainer.run(on_checkpoint=lambda c: checkpoints.append((c.epoch, c.data)))
            data_version = collection.data_version
        finally:
            run.delete()
            training_set.delete()
            collection.delete()
    evaluation.clear_caches()
    return config, checkpoints, data_version


@pytest.fixture
def demo(demo_files, db):
    """(collection, training set, run with checkpoints at epochs 0, 20 and 40), as rows of this
    test only (a transactional test commits them, so a real worker sees them too)."""
    from gan_app.evaluation import reports as evaluation

    config, checkpoints, data_version = demo_files
    collection, training_set, run = demo_rows(config)
    # The same import gives the same data version, so the session's classifier file is found.
    assert collection.data_version == data_version
    for epoch, data in checkpoints:
        add_checkpoint(run, data, epoch)
    run.epoch_done = checkpoints[-1][0]
    run.save(update_fields=["epoch_done"])
    yield collection, training_set, run
    evaluation.clear_caches()


def demo_rows(config):
    from collections_app.demo.build import build_demo_collection
    from collections_app.models import TrainingSet
    from gan_app.models import TrainingRun

    collection, _ = build_demo_collection(slug="eval-demo", size=DEMO_SIZE, seed=11)
    collection.refresh_from_db()  # the import bumped its data version
    training_set = TrainingSet.objects.create(
        collection=collection,
        name="all",
        token_count=DEMO_SIZE,
        data_version=collection.data_version,
    )
    training_set.tokens.set(collection.tokens.all())
    run = TrainingRun.objects.create(
        training_set=training_set,
        name="eval demo run",
        config=config.to_dict(),
        resolution=config.resolution,
        epochs_total=config.epochs,
        status=TrainingRun.Status.SUCCEEDED,
    )
    return collection, training_set, run


def artifact_bytes(checkpoint):
    from gan_app.gan import export_checkpoint_generator

    buffer = io.BytesIO()
    with checkpoint.state_file.open("rb") as handle:
        export_checkpoint_generator(handle.read(), buffer)
    return buffer.getvalue()
