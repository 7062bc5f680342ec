"""A collection's image profile: is it pixel art, on which grid, in which palette.

Registered in ``collections_app.hooks.IMAGE_PROFILE`` (``gan_app.apps``), so analytics store it
on ``Collection.image_profile`` after every import or ingest, with the very detection that
training (``gan.data``, ``resize="auto"``) and rendering (``gan.pixelart``) use.
"""

from __future__ import annotations

import numpy as np
from django.core.files.storage import default_storage

# Images read per collection, spread evenly over its token order: the palette of a 10k
# collection is all but complete in 2,000 of its tokens, and reading them takes seconds.
PROFILE_SAMPLE = 2000
BACKGROUND = "#ffffff"  # what transparent pixels are composited on, as training does


def collection_profile(collection, limit: int = PROFILE_SAMPLE) -> dict:
    """``{"images": n, "pixel_art": profile dict or None, "reason": why not}``."""
    names = list(
        collection.tokens.exclude(image="")
        .order_by("token_number", "token_id")
        .values_list("image", flat=True)
    )
    if not names:
        return {"images": 0, "pixel_art": None, "reason": "no token images yet"}

    # Here, not at the top: gan_app.gan brings TensorFlow, which page views never load.
    from gan_app.gan.data import TrainingDataError, detect_set_pixel_art
    from gan_app.gan.pixelart import MAX_NATIVE_SIDE, MAX_PALETTE

    picked = np.unique(np.linspace(0, len(names) - 1, min(len(names), limit)).round().astype(int))
    named = []
    for index in picked:
        with default_storage.open(names[index], "rb") as handle:
            named.append((names[index], handle.read()))
    found = {"images": len(named), "pixel_art": None, "reason": ""}
    try:
        profile = detect_set_pixel_art(named, BACKGROUND)
    except TrainingDataError as exc:
        return {**found, "reason": str(exc)}
    if profile is None:
        found["reason"] = (
            f"not pixel art: the images are not made of equal cells in at most {MAX_PALETTE} "
            f"colours on a grid of at most {MAX_NATIVE_SIDE} cells"
        )
    else:
        found["pixel_art"] = profile.to_dict()
    return found
