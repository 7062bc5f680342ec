"""A small demo collection with a trained trait classifier and a briefly trained 32 px GAN.

Built once per session (training is the expensive part) and committed, so tests with ``db`` or
``transactional_db`` and a real worker all see it; removed at the end.
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
def demo(django_db_setup, django_db_blocker):
    """(collection, training set, run with checkpoints at epochs 0, 20 and 40)."""
    if not SERVICES_UP:
        pytest.skip("PostgreSQL/Redis not reachable")
    from collections_app.demo import build_demo_collection
    from collections_app.models import TrainingSet
    from gan_app import evaluation
    from gan_app.gan import GANConfig, Trainer
    from gan_app.models import TrainingRun

    with django_db_blocker.unblock():
        collection, _ = build_demo_collection(slug="eval-demo", size=DEMO_SIZE, seed=11)
        collection.refresh_from_db()  # the import bumped its data version
        training_set = TrainingSet.objects.create(
            collection=collection,
            name="all",
            token_count=DEMO_SIZE,
            data_version=collection.data_version,
        )
        training_set.tokens.set(collection.tokens.all())
        config = GANConfig(**GAN)
        run = TrainingRun.objects.create(
            training_set=training_set,
            name="eval demo run",
            config=config.to_dict(),
            resolution=config.resolution,
            epochs_total=config.epochs,
            status=TrainingRun.Status.SUCCEEDED,
        )
        evaluation.classifier_for(collection, **CLASSIFIER)
        trainer = Trainer(config, evaluation.run_real_set(run).images)
        add_checkpoint(run, trainer.checkpoint().data, 0)
        trainer.run(on_checkpoint=lambda c: add_checkpoint(run, c.data, c.epoch))
        run.epoch_done = trainer.epoch
        run.save(update_fields=["epoch_done"])
    yield collection, training_set, run
    with django_db_blocker.unblock():
        from gan_app.models import Generator

        Generator.objects.filter(collection=collection).delete()
        run.delete()
        training_set.delete()
        collection.delete()
    evaluation.clear_caches()


def artifact_bytes(checkpoint):
    from gan_app.gan import export_checkpoint_generator

    buffer = io.BytesIO()
    with checkpoint.state_file.open("rb") as handle:
        export_checkpoint_generator(handle.read(), buffer)
    return buffer.getvalue()
