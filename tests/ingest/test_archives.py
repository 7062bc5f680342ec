import json
import struct
import zipfile
import zlib
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from collections_app.ingest.archives import export_archive, import_archive
from collections_app.ingest.records import RARITY_KEY
from collections_app.models import Collection, IngestJob, Sale, Token, Trait
from tests.ingest.conftest import asset, png_bytes, write_zip

pytestmark = pytest.mark.django_db


def members(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def huge_png(width=50_000, height=50_000):
    """A tiny file whose header claims a huge image: what a decompression bomb looks like."""
    data = bytearray(png_bytes((1, 1)))
    ihdr = struct.pack(">II", width, height)
    data[16:24] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def errors_by_item(job):
    return {e["item"]: e for e in job.errors}


def test_it_imports_an_archive_pair_with_traits_sales_and_images(demo_pair, tiny_demo):
    call_command("import_archive", *demo_pair, verbosity=0)

    collection = Collection.objects.get(slug="tiny-fakes")
    assert collection.source == Collection.Source.ARCHIVE
    assert collection.tokens.count() == 24
    assert collection.cover_image
    expected_types = sum(
        1
        for t in tiny_demo
        for tr in t.metadata["traits"]
        if tr["trait_type"] == "type" and tr["value"] == "Light"
    )
    assert (
        Trait.objects.get(collection=collection, trait_type="type", value="Light").count
        == expected_types
    )
    for source in tiny_demo:
        token = Token.objects.get(collection=collection, token_id=source.token_id)
        assert token.trait_count == len(source.metadata["traits"])
        assert token.image_format == "PNG" and token.image_width == 32
        with token.image.open("rb") as fh:
            assert fh.read() == source.png
        sale = source.metadata["last_sale"]
        if sale:
            wei = Decimal(sale["total_price"])
            assert token.last_sale_amount == wei / 10**18
            assert token.last_sale_usd == (
                wei / 10**18 * Decimal(sale["payment_token"]["usd_price"])
            ).quantize(Decimal("0.000001"))
        else:
            assert token.last_sale_amount is None
    job = IngestJob.objects.get(kind=IngestJob.Kind.ARCHIVE_IMPORT)
    assert job.status == IngestJob.Status.SUCCEEDED
    assert (job.items_done, job.items_failed, job.items_expected) == (24, 0, 24)


def test_it_round_trips_export_and_import_losslessly(demo_pair, tmp_path):
    call_command("import_archive", *demo_pair, verbosity=0)
    Token.objects.filter(token_id="3").update(
        rarity_score=12.5, rarity_rank=1, ic_score=0.8, ic_rank=2
    )

    call_command("export_archive", "tiny-fakes", str(tmp_path / "out"), verbosity=0)

    original_images, original_meta = members(demo_pair[0]), members(demo_pair[1])
    exported_images = members(tmp_path / "out" / "tiny-fakes_archive.zip")
    exported_meta = members(tmp_path / "out" / "tiny-fakes_metadata_archive.zip")
    assert exported_images == original_images  # every image byte for byte
    assert exported_meta.keys() == original_meta.keys()
    for name, data in exported_meta.items():
        exported = json.loads(data)
        rarity = exported.pop(RARITY_KEY, None)
        assert exported == json.loads(original_meta[name])
        if name.endswith("/3.json"):
            assert rarity == {"rarity_score": 12.5, "rarity_rank": 1, "ic_score": 0.8, "ic_rank": 2}
        else:
            assert rarity is None

    # Importing the export into a new collection gives the same rows.
    out = tmp_path / "out"
    call_command(
        "import_archive",
        str(out / "tiny-fakes_archive.zip"),
        str(out / "tiny-fakes_metadata_archive.zip"),
        "--slug",
        "copy",
        verbosity=0,
    )
    original = Token.objects.filter(collection__slug="tiny-fakes").order_by("token_number")
    copy = Token.objects.filter(collection__slug="copy").order_by("token_number")
    fields = [
        "token_id",
        "name",
        "metadata",
        "image_sha256",
        "image",
        "last_sale_amount",
        "last_sale_usd",
        "last_sale_at",
        "trait_count",
    ]
    assert list(copy.values_list(*fields)) == list(original.values_list(*fields))
    assert RARITY_KEY not in copy.get(token_id="3").metadata


def test_it_imports_the_same_archive_twice_without_duplicates(demo_pair):
    call_command("import_archive", *demo_pair, verbosity=0)
    before = Collection.objects.get().data_version
    call_command("import_archive", *demo_pair, verbosity=0)

    collection = Collection.objects.get()
    assert collection.tokens.count() == 24
    assert Sale.objects.count() == sum(
        1 for t in collection.tokens.all() if t.metadata["last_sale"]
    )
    assert sum(Trait.objects.values_list("count", flat=True)) == sum(
        t.trait_count for t in collection.tokens.all()
    )
    assert collection.data_version > before


def test_it_reports_every_bad_item_and_imports_the_rest(tmp_path, tiny_demo):
    good = tiny_demo[0].png
    images = write_zip(
        tmp_path / "bad_archive.zip",
        {
            "bad/0.png": good,
            "bad/1.png": good[: len(good) * 3 // 4],  # truncated
            "bad/2.png": b"%PDF-1.4 not an image at all",
            "bad/3.png": huge_png(),  # decompression bomb
            "bad/4.png": good,  # no metadata for it
            "bad/6.png": good,
            "bad/6.jpg": good,  # two images for one token
            "bad/8.png": good,
            "bad/9.png": good,
            "../../etc/10.png": good,  # zip slip
            "bad/notes.txt": b"hello",
            "bad/.DS_Store": b"junk we skip",
        },
    )
    metadata = write_zip(
        tmp_path / "bad_metadata_archive.zip",
        {
            "bad/0.json": asset(0),
            "bad/1.json": asset(1),
            "bad/2.json": asset(2),
            "bad/3.json": asset(3),
            "bad/5.json": asset(5),  # no image for it
            "bad/6.json": asset(6),
            "bad/7.json": asset(7),
            "bad/8.json": '{"token_id": "8", "traits": [',  # malformed
            "bad/9.json": asset(99),  # says it is another token
            "bad/11.json": asset(
                11,
                last_sale={"total_price": "-5", "payment_token": {"symbol": "ETH", "decimals": 18}},
            ),
        },
    )

    call_command("import_archive", images, metadata, verbosity=0)

    job = IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get()
    errors = errors_by_item(job)
    stored = set(Token.objects.values_list("token_id", flat=True))
    assert stored == {"0", "1", "2", "3", "5", "6", "7", "11"}
    assert "0" not in errors
    assert errors["1"]["imported"] and "truncated" in errors["1"]["reason"]
    assert errors["2"]["imported"] and "not an image" in errors["2"]["reason"]
    assert errors["3"]["imported"] and "decompression bomb" in errors["3"]["reason"]
    assert not errors["4"]["imported"] and "no metadata" in errors["4"]["reason"]
    assert errors["5"]["imported"] and "no image" in errors["5"]["reason"]
    assert errors["6"]["imported"] and "duplicate images files" in errors["6"]["reason"]
    assert not Token.objects.get(token_id="6").image
    assert errors["7"]["imported"] and "no image" in errors["7"]["reason"]
    assert not errors["8"]["imported"] and "malformed JSON" in errors["8"]["reason"]
    assert not errors["9"]["imported"] and "token_id is 99" in errors["9"]["reason"]
    assert errors["11"]["imported"] and "negative" in errors["11"]["reason"]
    assert "zip slip" in errors["../../etc/10.png"]["reason"]
    assert "not a token id" in errors["bad/notes.txt"]["reason"]
    assert not any(".DS_Store" in e["item"] for e in job.errors)
    assert Token.objects.get(token_id="0").image
    assert not Token.objects.get(token_id="1").image
    assert Token.objects.get(token_id="11").last_sale_amount is None
    assert job.status == IngestJob.Status.PARTIAL
    assert job.items_done == 1 and job.items_failed == len(job.errors)


def test_it_refuses_a_zip_bomb_member_by_its_compression_ratio(tmp_path, settings):
    settings.ARCHIVE_MAX_RATIO = 50
    images = write_zip(
        tmp_path / "b_archive.zip", {"0.png": png_bytes(), "1.png": b"\0" * 10_000_000}
    )
    metadata = write_zip(
        tmp_path / "b_metadata_archive.zip", {"0.json": asset(0), "1.json": asset(1)}
    )

    call_command("import_archive", images, metadata, verbosity=0)

    errors = errors_by_item(IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get())
    assert "zip bomb" in errors["1"]["reason"]
    assert Token.objects.get(token_id="0").image


def test_it_refuses_a_whole_archive_that_would_inflate_too_far(tmp_path, settings):
    settings.ARCHIVE_MAX_UNCOMPRESSED_BYTES = 1_000_000
    images = write_zip(tmp_path / "c_archive.zip", {f"{i}.png": b"\0" * 300_000 for i in range(4)})
    metadata = write_zip(tmp_path / "c_metadata_archive.zip", {"0.json": asset(0)})

    with pytest.raises(CommandError, match="zip bomb"):
        call_command("import_archive", images, metadata, verbosity=0)
    assert (
        IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get().status
        == IngestJob.Status.FAILED
    )
    assert not Token.objects.exists()


def test_it_refuses_archives_with_too_many_members(tmp_path, settings):
    settings.ARCHIVE_MAX_ENTRIES = 5
    images = write_zip(tmp_path / "d_archive.zip", {f"{i}.png": b"x" for i in range(6)})
    metadata = write_zip(tmp_path / "d_metadata_archive.zip", {"0.json": asset(0)})

    with pytest.raises(CommandError, match="6 members"):
        call_command("import_archive", images, metadata, verbosity=0)


def test_it_refuses_symlinks_and_deep_paths(tmp_path):
    path = tmp_path / "e_archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo("0.png")
        link.external_attr = (0o120777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("a/b/1.png", png_bytes())
    metadata = write_zip(
        tmp_path / "e_metadata_archive.zip", {"0.json": asset(0), "1.json": asset(1)}
    )

    call_command("import_archive", str(path), metadata, verbosity=0)

    reasons = " | ".join(
        e["reason"] for e in IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get().errors
    )
    assert "symbolic link" in reasons and "nested deeper" in reasons
    assert not Token.objects.exclude(image="").exists()


@pytest.mark.parametrize(
    ("images", "metadata", "message"),
    [
        ("/nowhere/x_archive.zip", "/nowhere/x_metadata_archive.zip", "no such file"),
        ("NOTZIP", "NOTZIP", "not a readable zip"),
    ],
)
def test_it_fails_with_one_line_on_unusable_input(tmp_path, images, metadata, message):
    if images == "NOTZIP":
        images = metadata = str(tmp_path / "junk_archive.zip")
        (tmp_path / "junk_archive.zip").write_text("this is not a zip")

    with pytest.raises(CommandError, match=message) as info:
        call_command("import_archive", images, metadata, verbosity=0)
    assert "\n" not in str(info.value)


def test_it_needs_a_slug_when_the_name_does_not_give_one(tmp_path):
    images = write_zip(tmp_path / "_archive.zip", {"0.png": png_bytes()})
    metadata = write_zip(tmp_path / "m.zip", {"0.json": asset(0)})

    with pytest.raises(CommandError, match="pass --slug"):
        call_command("import_archive", images, metadata, verbosity=0)
    call_command("import_archive", images, metadata, "--slug", "named", verbosity=0)
    assert Token.objects.get(collection__slug="named").image


def test_it_continues_an_interrupted_import_after_its_cursor(demo_pair):
    job = IngestJob.objects.create(kind=IngestJob.Kind.ARCHIVE_IMPORT, cursor="15")
    job.claim()

    summary = import_archive(*demo_pair, job=job)

    assert summary.written == 8  # tokens 16..23
    assert set(Token.objects.values_list("token_id", flat=True)) == {str(i) for i in range(16, 24)}


def test_it_exports_to_a_directory_deterministically(demo_pair, tmp_path):
    import_archive(*demo_pair)
    collection = Collection.objects.get()

    first = export_archive(collection, tmp_path / "a")
    second = export_archive(collection, tmp_path / "b")

    for a, b in (
        (first.images_path, second.images_path),
        (first.metadata_path, second.metadata_path),
    ):
        with open(a, "rb") as fa, open(b, "rb") as fb:
            assert fa.read() == fb.read()
    assert (first.tokens, first.images) == (24, 24)


def test_it_says_which_collection_is_missing_on_export(tmp_path):
    with pytest.raises(CommandError, match="no collection with slug 'nope'"):
        call_command("export_archive", "nope", str(tmp_path), verbosity=0)


def test_it_strips_nul_characters_postgresql_would_refuse(tmp_path):
    images = write_zip(tmp_path / "n_archive.zip", {"0.png": png_bytes()})
    metadata = write_zip(
        tmp_path / "n_metadata_archive.zip",
        {"0.json": asset(0, name="Nul\u0000Punk", description={"k\u0000": "v\u0000"})},
    )

    call_command("import_archive", images, metadata, verbosity=0)

    token = Token.objects.get()
    assert token.name == "NulPunk"
    assert token.metadata["description"] == {"k": "v"}


def test_it_stops_after_the_current_batch_when_cancelled(demo_pair, monkeypatch):
    from collections_app.ingest import archives
    from collections_app.ingest.jobs import JobCancelled

    monkeypatch.setattr(archives, "BATCH_SIZE", 10)
    job = IngestJob.objects.create(kind=IngestJob.Kind.ARCHIVE_IMPORT)
    job.claim()

    def cancel_in_the_admin(job, counts):
        IngestJob.objects.filter(pk=job.pk).update(status=IngestJob.Status.CANCELLED)

    with pytest.raises(JobCancelled):
        import_archive(*demo_pair, job=job, on_progress=cancel_in_the_admin)

    job.refresh_from_db()
    assert job.status == IngestJob.Status.CANCELLED
    assert Token.objects.count() == 20  # the batch under way when it was cancelled still lands
    assert job.cursor == "19"


def test_it_reports_a_member_named_with_non_ascii_digits_per_item(tmp_path):
    images = write_zip(tmp_path / "u_archive.zip", {"0.png": png_bytes(), "².png": png_bytes()})
    metadata = write_zip(
        tmp_path / "u_metadata_archive.zip", {"0.json": asset(0), "١٢.json": asset(12)}
    )

    call_command("import_archive", images, metadata, verbosity=0)

    job = IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get()
    errors = errors_by_item(job)
    assert "not a token id" in errors["².png"]["reason"]
    assert "not a token id" in errors["١٢.json"]["reason"]
    assert list(Token.objects.values_list("token_id", flat=True)) == ["0"]


def test_it_accepts_large_members_that_compress_well_but_are_no_bombs(tmp_path):
    import io

    from PIL import Image

    flat = io.BytesIO()
    Image.new("RGB", (6000, 6000), (10, 20, 30)).save(flat, "PNG")
    images = write_zip(tmp_path / "f_archive.zip", {"0.png": flat.getvalue()})
    big_metadata = asset(0, description="a" * 300_000)  # ~300 KB, compresses over 100:1
    metadata = write_zip(tmp_path / "f_metadata_archive.zip", {"0.json": big_metadata})

    call_command("import_archive", images, metadata, verbosity=0)

    job = IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get()
    assert job.errors == []
    token = Token.objects.get()
    assert token.image_width == 6000 and len(token.description) == 300_000


@pytest.mark.parametrize("literal", ["NaN", "1e400", "-Infinity"])
def test_it_skips_only_a_sale_whose_numbers_are_not_finite(tmp_path, literal):
    numbers = ("total_price", "quantity", "event_timestamp")
    fields = ", ".join(f'"{name}": {literal}' for name in numbers)
    token = f'{{"symbol": "ETH", "decimals": 18, "usd_price": {literal}}}'
    sale = f'{{{fields}, "payment_token": {token}}}'
    raw = asset(0).replace('"last_sale": null', f'"last_sale": {sale}')
    images = write_zip(tmp_path / "x_archive.zip", {"0.png": png_bytes(), "1.png": png_bytes()})
    metadata = write_zip(tmp_path / "x_metadata_archive.zip", {"0.json": raw, "1.json": asset(1)})

    call_command("import_archive", images, metadata, verbosity=0)

    assert sorted(Token.objects.values_list("token_id", flat=True)) == ["0", "1"]
    assert not Sale.objects.exists()
    job = IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get()
    reason = errors_by_item(job)["0"]["reason"]
    assert "last sale skipped" in reason and "finite" in reason
