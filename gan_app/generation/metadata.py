"""ERC-721 / OpenSea metadata for generated images, and the ZIP a batch downloads as.

Stored metadata keeps site-relative links (the worker does not know the public host); they are
made absolute when served (``absolute``), from the request's host or ``SITE_URL``.
"""

import io
import json
import re
import zipfile
from urllib.parse import urlencode

from django.urls import reverse

LINK_FIELDS = ("image", "external_url")


def with_traits(path: str, key: str) -> str:
    """A permalink with its condition key (``?traits=...``) when the image has one."""
    return f"{path}?{urlencode({'traits': key})}" if key else path


def image_metadata(generator, seed: int, key: str = "", traits=None) -> dict:
    """Metadata for (generator, seed): name, description, image, external_url, attributes.

    The links are permalinks naming the generator version (its slug) and the seed, and for a
    conditional generator's image the traits asked for (``?traits=<condition key>``, also kept
    as ``requested_traits``).
    """
    collection = generator.collection
    attributes = [
        {"trait_type": "collection", "value": collection.name},
        {"trait_type": "generator", "value": generator.slug},
        {"trait_type": "generator_version", "value": generator.version, "display_type": "number"},
        {"trait_type": "seed", "value": seed, "display_type": "number"},
        {"trait_type": "resolution", "value": f"{generator.resolution}x{generator.resolution}"},
    ]
    if generator.epoch is not None:
        attributes.append(
            {"trait_type": "epoch", "value": generator.epoch, "display_type": "number"}
        )
    return {
        "name": f"{generator.name} #{seed}",
        "description": (
            f"A new image drawn by {name_with_version(generator)}, a GAN "
            f"trained on the {collection.name} collection, from seed {seed}. The same "
            "generator and seed always give this image. It is not one of the collection's "
            "tokens."
        ),
        "image": with_traits(reverse("gan:image_png", args=[generator.slug, seed]), key),
        "external_url": with_traits(reverse("gan:image", args=[generator.slug, seed]), key),
        "attributes": attributes,
        **({"requested_traits": traits or {}} if generator.conditional else {}),
    }


def name_with_version(generator) -> str:
    """The generator's name, with its version unless the name already says it (published
    generators are named like "Pixel Fakes v1 (epoch 100)")."""
    mentions = re.search(rf"\b(v|version )\s*{generator.version}\b", generator.name, re.IGNORECASE)
    return generator.name if mentions else f"{generator.name}, version {generator.version}"


def absolute(metadata: dict, base_url: str) -> dict:
    """``metadata`` with its site-relative links prefixed by ``base_url`` (no trailing slash)."""
    data = dict(metadata)
    for key in LINK_FIELDS:
        if isinstance(data.get(key), str) and data[key].startswith("/"):
            data[key] = base_url + data[key]
    return data


def dumps(metadata: dict) -> str:
    return json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"


def file_stem(generator_slug: str, seed: int) -> str:
    return f"{generator_slug}-{seed}"


def batch_zip(items, base_url: str) -> bytes:
    """A ZIP with ``<slug>-<seed>.png`` and ``<slug>-<seed>.json`` per (image, png bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for image, png in items:
            stem = file_stem(image.generator.slug, image.seed)
            stamp = image.created_at.timetuple()[:6]
            # PNGs are compressed already; the JSON is tiny. Stored, not deflated.
            zf.writestr(zipfile.ZipInfo(f"{stem}.png", stamp), png)
            zf.writestr(
                zipfile.ZipInfo(f"{stem}.json", stamp),
                dumps(absolute(image.metadata, base_url)),
            )
    return buffer.getvalue()
