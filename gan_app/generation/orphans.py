"""Collect generated PNGs that no row names.

A render writes each image under its content-derived name, then inserts the rows. A worker
killed between the two leaves files no row will ever point at (unless the same seed is asked
for again). Celery beat runs ``collect`` every ORPHAN_COLLECT_SECONDS; a file is only removed
once it is older than any render can take, so a writer about to insert its row keeps its file.
Walk strips (``walks/``) have no rows by design and are never touched.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from ..models import GeneratedImage

log = logging.getLogger(__name__)

ROOT = "generated"


def collect(older_than: float | None = None) -> list[str]:
    """Delete generated images without a row older than ``older_than`` seconds; their names."""
    seconds = settings.ORPHAN_MIN_AGE_SECONDS if older_than is None else older_than
    cutoff = timezone.now() - timedelta(seconds=seconds)
    removed = []
    for names in _image_names_by_generator():
        kept = set(GeneratedImage.objects.filter(image__in=names).values_list("image", flat=True))
        for name in names:
            if name not in kept and _older(name, cutoff):
                default_storage.delete(name)
                removed.append(name)
    if removed:
        log.warning("removed %d generated images without a row", len(removed))
    return removed


def _image_names_by_generator():
    if not default_storage.exists(ROOT):
        return
    folders, _files = default_storage.listdir(ROOT)
    for folder in folders:
        _subfolders, files = default_storage.listdir(f"{ROOT}/{folder}")
        names = [f"{ROOT}/{folder}/{name}" for name in files if name.endswith(".png")]
        if names:
            yield names


def _older(name: str, cutoff) -> bool:
    try:
        return default_storage.get_modified_time(name) < cutoff
    except FileNotFoundError:  # removed meanwhile
        return False
