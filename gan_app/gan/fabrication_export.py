"""Streaming, byte-identical exports of a fabricated collection, without Django.

Writers take each accepted token as it is made (``add``: its PNG goes straight to the zip or
folder and is dropped) and finish with ``close(records, result)`` once rarity is known, so the
images of a 10k collection are never all in memory. Zip members carry a fixed timestamp and
0644 permissions (``zip_member``, as ``collections_app.ingest.archives`` writes them), so the same
run gives the same bytes.

- ``SeedArchiveWriter``: ``{slug}_archive.zip`` + ``{slug}_metadata_archive.zip`` in the seed
  archive format (OpenSea v1 asset JSON per token), which the archive importer reads back.
- ``Erc721Writer``: ``images/{id}.png``, ``metadata/{id}`` (ERC-721 metadata JSON: name,
  description, image from a URI template, attributes) and ``provenance.txt``, into a folder or
  a ``.zip``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
RARITY_KEY = "nff_rarity"  # the key the archive export/import keeps our rarity figures under
FABRICATION_KEY = "nff_fabrication"


def zip_member(name: str) -> zipfile.ZipInfo:
    """A deflated zip member with the fixed time and 0644 permissions: the same bytes each run.

    ``collections_app.ingest.archives`` writes its members the same way but cannot share this
    (the catalog never imports ``gan_app``, and this package imports no app code); a test
    keeps the two equal.
    """
    info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


class _Sink:
    """Named files into a zip (``target`` ends in .zip) or a folder, written atomically."""

    def __init__(self, target):
        self.target = Path(target)
        self.zipped = self.target.suffix.lower() == ".zip"
        if self.zipped:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._part = self.target.with_name(self.target.name + ".part")
            self._zip = zipfile.ZipFile(self._part, "w")
        else:
            self.target.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, data: bytes):
        if self.zipped:
            self._zip.writestr(zip_member(name), data)
        else:
            path = self.target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def close(self):
        if self.zipped:
            self._zip.close()
            os.replace(self._part, self.target)


def dump_json(data) -> bytes:
    """Metadata JSON as the archive export writes it (indent 1, UTF-8)."""
    return json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8")


def trait_counts(records) -> dict:
    counts = {}
    for record in records:
        for trait in record["traits"]:
            key = (trait["trait_type"], trait["value"])
            counts[key] = counts.get(key, 0) + 1
    return counts


class SeedArchiveWriter:
    """The seed archive pair for a fabricated collection (docs: archive-format.md)."""

    def __init__(self, directory, slug: str, name: str | None = None):
        self.slug = slug
        self.name = name or slug
        directory = Path(directory)
        self.images_path = directory / f"{slug}_archive.zip"
        self.metadata_path = directory / f"{slug}_metadata_archive.zip"
        self._images = _Sink(self.images_path)

    def add(self, token):
        self._images.write(f"{self.slug}/{token.token_id}.png", token.png)

    def close(self, records, result):
        self._images.close()
        counts = trait_counts(records)
        metadata = _Sink(self.metadata_path)
        for record, rarity in zip(records, result.rarity, strict=True):
            metadata.write(
                f"{self.slug}/{record['token_id']}.json",
                dump_json(self.asset(record, rarity, counts)),
            )
        metadata.close()

    def asset(self, record, rarity, counts) -> dict:
        """One OpenSea v1 asset object; fabrication details under FABRICATION_KEY."""
        return {
            "token_id": str(record["token_id"]),
            "name": f"{self.name} #{record['token_id']}",
            "image_url": None,
            "background_color": None,
            "external_link": None,
            "asset_contract": {"address": None, "schema_name": "ERC721", "name": self.name},
            "owner": None,
            "traits": [
                {
                    "trait_type": t["trait_type"],
                    "value": t["value"],
                    "display_type": None,
                    "trait_count": counts[(t["trait_type"], t["value"])],
                }
                for t in record["traits"]
            ],
            "last_sale": None,
            RARITY_KEY: rarity,
            FABRICATION_KEY: _fabrication_details(record),
        }


class Erc721Writer:
    """ERC-721 metadata: ``images/``, ``metadata/{id}``, ``provenance.txt`` (folder or .zip).

    ``image_uri`` is a template with ``{id}`` (e.g. ``ipfs://CID/{id}.png``), set by the admin
    once the images are pinned.
    """

    def __init__(self, target, *, name: str, description: str = "", image_uri: str = "{id}.png"):
        if "{id}" not in image_uri:
            raise ValueError(f"the image URI template must contain {{id}}, got {image_uri!r}")
        self.name = name
        self.description = description
        self.image_uri = image_uri
        self._sink = _Sink(target)

    def add(self, token):
        self._sink.write(f"images/{token.token_id}.png", token.png)

    def close(self, records, result):
        for record, rarity in zip(records, result.rarity, strict=True):
            self._sink.write(
                f"metadata/{record['token_id']}", dump_json(self.metadata(record, rarity))
            )
        self._sink.write("provenance.txt", (result.provenance + "\n").encode("ascii"))
        self._sink.close()

    def metadata(self, record, rarity) -> dict:
        token_id = record["token_id"]
        return {
            "name": f"{self.name} #{token_id}",
            "description": self.description,
            "image": self.image_uri.replace("{id}", str(token_id)),
            "attributes": [
                {"trait_type": t["trait_type"], "value": t["value"]} for t in record["traits"]
            ],
            "rarity": rarity,
            "image_sha256": record["sha256"],
        }


def _fabrication_details(record) -> dict:
    return {
        "seed": record["seed"],
        "candidate": record["candidate"],
        "sha256": record["sha256"],
        "conditions": record["conditions"],
        "confidence": {
            f"{t['trait_type']}={t['value']}": t.get("confidence") for t in record["traits"]
        },
    }
