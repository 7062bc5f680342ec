"""GenerationRequest.image_count: what the rate limit sums (was computed from each row's seeds)."""

from django.db import migrations, models

CHUNK = 1000


def count_images(apps, schema_editor):
    """Batches and walks made before the column: their seeds or steps (singles are 1)."""
    GenerationRequest = apps.get_model("gan_app", "GenerationRequest")
    rows = GenerationRequest.objects.exclude(kind="single").only("kind", "seeds", "params")
    changed = []
    for row in rows.iterator(chunk_size=CHUNK):
        if row.kind == "walk":
            row.image_count = max(1, int((row.params or {}).get("steps") or len(row.seeds)))
        else:
            row.image_count = max(1, len(row.seeds))
        changed.append(row)
        if len(changed) == CHUNK:
            GenerationRequest.objects.bulk_update(changed, ["image_count"])
            changed = []
    GenerationRequest.objects.bulk_update(changed, ["image_count"])


class Migration(migrations.Migration):
    dependencies = [
        ("gan_app", "0008_private_run_grids"),
    ]

    operations = [
        migrations.AddField(
            model_name="generationrequest",
            name="image_count",
            field=models.PositiveIntegerField(default=1, help_text="Images the request renders."),
        ),
        migrations.RunPython(count_images, migrations.RunPython.noop),
    ]
