"""A training run's sample grids (live and per checkpoint) live in the private storage: they
show what an unpublished, perhaps withheld, generator draws. Grids written before are moved."""

import importlib

from django.core.files.storage import storages
from django.db import migrations, models

import nftsite.storage

_move = importlib.import_module("gan_app.migrations.0005_private_storage")._move


def move_grids(apps, schema_editor):
    public, private = storages["default"], storages["private"]
    TrainingRun = apps.get_model("gan_app", "TrainingRun")
    Checkpoint = apps.get_model("gan_app", "Checkpoint")
    for name in TrainingRun.objects.values_list("sample_grid", flat=True).iterator():
        _move(name, public, private)
    for name in Checkpoint.objects.values_list("grid", flat=True).iterator():
        _move(name, public, private)


class Migration(migrations.Migration):
    dependencies = [("gan_app", "0007_merge_fabrication_private_storage")]

    operations = [
        migrations.AlterField(
            model_name="checkpoint",
            name="grid",
            field=models.FileField(
                blank=True,
                max_length=300,
                storage=nftsite.storage.private_storage,
                upload_to="grids/",
            ),
        ),
        migrations.AlterField(
            model_name="trainingrun",
            name="sample_grid",
            field=models.FileField(
                blank=True,
                help_text="The latest sample grid.",
                max_length=300,
                storage=nftsite.storage.private_storage,
                upload_to="grids/live/",
            ),
        ),
        migrations.RunPython(move_grids, migrations.RunPython.noop),
    ]
