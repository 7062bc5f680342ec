"""GenerationRequest.public_id: an unguessable id for status, page and ZIP URLs.

Added nullable, filled with a fresh UUID per existing row, then made unique and required
(a callable default in AddField would give every existing row the same value).
"""

import uuid

from django.db import migrations, models


def fill_public_ids(apps, schema_editor):
    GenerationRequest = apps.get_model("gan_app", "GenerationRequest")
    rows = GenerationRequest.objects.filter(public_id=None).only("pk")
    for row in rows.iterator(chunk_size=2000):
        GenerationRequest.objects.filter(pk=row.pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("gan_app", "0003_job_kernel")]

    operations = [
        migrations.AddField(
            model_name="generationrequest",
            name="public_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="generationrequest",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
