"""Generated PNGs whose row never landed (a worker killed between the file and the row) are
collected once they are older than a render can take; files with a row, files still being
written and walk strips (which have no rows by design) stay."""

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from gan_app.generation import orphans
from gan_app.models import GeneratedImage

pytestmark = pytest.mark.django_db


def age(name, seconds):
    path = Path(settings.MEDIA_ROOT, name)
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_it_collects_an_old_file_without_a_row_and_keeps_the_rest(made, generator):
    slug = generator.slug
    orphan = default_storage.save(f"generated/{slug}/7-0123456789abcdef.png", ContentFile(b"o"))
    fresh = default_storage.save(f"generated/{slug}/8-0123456789abcdef.png", ContentFile(b"f"))
    strip = default_storage.save(f"generated/{slug}/walks/1-2-8.png", ContentFile(b"s"))
    hour = 3600
    for name in (orphan, strip, made.image.name):
        age(name, hour)

    removed = orphans.collect(older_than=600)

    assert removed == [orphan]
    assert not default_storage.exists(orphan)
    assert default_storage.exists(made.image.name)  # it has its row
    assert default_storage.exists(fresh)  # a writer may still be about to add its row
    assert default_storage.exists(strip)
    assert GeneratedImage.objects.filter(pk=made.pk).exists()


def test_it_is_scheduled_by_celery_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["collect-orphan-images"]

    assert entry["task"] == "gan_app.tasks.collect_orphan_images"
    from gan_app import tasks

    assert tasks.collect_orphan_images.name == entry["task"]
