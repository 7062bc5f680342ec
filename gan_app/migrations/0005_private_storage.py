"""Checkpoints and generator artifacts live in the private storage (nftsite/storage.py).

Files written before this migration are moved out of public media, with the trait
classifiers and near-copy indexes under ``evaluation/`` (the code reads those by name).
"""

from django.core.files.storage import storages
from django.db import migrations, models

import nftsite.storage


def _move(name, public, private):
    if not name or not public.exists(name):
        return
    if not private.exists(name):
        with public.open(name, "rb") as fh:
            private.save(name, fh)
    public.delete(name)


def _evaluation_names(public, folder="evaluation"):
    if not public.exists(folder):
        return
    folders, files = public.listdir(folder)
    for name in files:
        yield f"{folder}/{name}"
    for sub in folders:
        yield from _evaluation_names(public, f"{folder}/{sub}")


def move_private_files(apps, schema_editor):
    public, private = storages["default"], storages["private"]
    Checkpoint = apps.get_model("gan_app", "Checkpoint")
    Generator = apps.get_model("gan_app", "Generator")
    for name in Checkpoint.objects.values_list("state_file", flat=True).iterator():
        _move(name, public, private)
    for name in Generator.objects.values_list("model_file", flat=True).iterator():
        _move(name, public, private)
    for name in list(_evaluation_names(public)):
        _move(name, public, private)


class Migration(migrations.Migration):
    dependencies = [("gan_app", "0004_generationrequest_public_id")]

    operations = [
        migrations.AlterField(
            model_name="checkpoint",
            name="state_file",
            field=models.FileField(
                max_length=300, storage=nftsite.storage.private_storage, upload_to="checkpoints/"
            ),
        ),
        migrations.AlterField(
            model_name="generator",
            name="model_file",
            field=models.FileField(
                max_length=300, storage=nftsite.storage.private_storage, upload_to="generators/"
            ),
        ),
        migrations.RunPython(move_private_files, migrations.RunPython.noop),
    ]
