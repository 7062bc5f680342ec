"""The export's seed archive re-imports losslessly: the same tokens, images and traits."""

import io
import zipfile

import pytest
from django.core.files.storage import default_storage

from collections_app.ingest.archives import import_archive
from gan_app.fabrication import worker
from tests.fabrication.test_jobs import fabricate


def token_view(collection):
    return {
        t.token_id: (
            t.image_sha256,
            t.name,
            sorted((tr.trait_type, tr.value) for tr in t.traits.all()),
        )
        for t in collection.tokens.prefetch_related("traits")
    }


@pytest.mark.django_db(transaction=True)
def test_it_reimports_the_export_with_the_same_tokens_and_traits(spread, tmp_path):
    job = fabricate(spread, count=10)
    slug = worker.export_slug(job)
    with default_storage.open(job.export_file.name, "rb") as handle:
        zipfile.ZipFile(io.BytesIO(handle.read())).extractall(tmp_path)
    summary = import_archive(
        tmp_path / "seed-archive" / f"{slug}_archive.zip",
        tmp_path / "seed-archive" / f"{slug}_metadata_archive.zip",
        slug="round-trip",
    )
    assert summary.rejected == 0 and summary.written == 10
    original = token_view(job.collection)
    assert any(traits for _, _, traits in original.values())
    assert token_view(summary.collection) == original
    provenance = (tmp_path / "erc721" / "provenance.txt").read_text().strip()
    assert provenance == job.result["provenance"]


def test_it_writes_zip_members_and_rarity_as_the_archive_export_does():
    """The ML package cannot import the catalog's archive code, so it keeps its own copy of the
    member format and rarity key: they must stay the archive export's."""
    from collections_app.ingest import archives, records
    from gan_app.gan import fabrication_export

    ours, theirs = fabrication_export.zip_member("a/1.png"), archives._member("a/1.png")
    fields = ("date_time", "compress_type", "external_attr")
    assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields]
    assert fabrication_export.RARITY_KEY == records.RARITY_KEY
