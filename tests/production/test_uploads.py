"""Hostile archives uploaded through the admin: refused with a clear message, nothing of the
hostile part lands (no rows, no files, no file outside the media folder), the upload is not
kept. The import itself runs inline here (its worker path is tested in tests/ingest)."""

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from collections_app.models import IngestJob, Token
from tests.ingest.conftest import asset, png_bytes

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:collections_app_collection_import_archive"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "site" / "media")
    settings.PRIVATE_MEDIA_ROOT = str(tmp_path / "site" / "private")  # where uploads wait
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def admin(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "b@x.com", "pw"))
    return client


@pytest.fixture
def upload(admin, eager_celery, django_capture_on_commit_callbacks):
    """POST an archive pair to the admin's import form; the job runs as the commit ends."""

    def post(images, metadata, slug="hostile"):
        files = {
            "images_file": SimpleUploadedFile(f"{slug}_archive.zip", images),
            "metadata_file": SimpleUploadedFile(f"{slug}_metadata_archive.zip", metadata),
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = admin.post(reverse(IMPORT_URL), files)
        job = IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).first()
        page = admin.get(reverse("admin:collections_app_ingestjob_change", args=[job.pk]))
        return response, job, page.content.decode()

    return post


def zip_bytes(members, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def metadata_for(*ids):
    return zip_bytes({f"hostile/{i}.json": asset(i) for i in ids})


def bomb_png(width=50_000, height=50_000):
    """A 1x1 PNG whose header claims a huge image: a decompression bomb."""
    data = bytearray(png_bytes((1, 1)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def test_it_keeps_a_zip_slip_member_inside_nothing(upload, media):
    images = zip_bytes({"hostile/0.png": png_bytes(), "../../../outside/1.png": png_bytes()})

    response, job, page = upload(images, metadata_for(0, 1))

    assert response.status_code == 302
    assert job.status == IngestJob.Status.PARTIAL
    assert "zip slip" in page
    assert Token.objects.get(token_id="0").image
    assert not Token.objects.get(token_id="1").image
    site = media.parent
    assert not [f for f in files_under(site.parent) if "outside" in f]
    assert not [f for f in files_under(site) if "uploads/" in f]  # upload removed


def test_it_refuses_a_zip_bomb_whole_and_keeps_nothing(upload, media, settings):
    settings.ARCHIVE_MAX_UNCOMPRESSED_BYTES = 1_000_000
    images = zip_bytes({f"hostile/{i}.png": b"\0" * 400_000 for i in range(4)})

    _response, job, page = upload(images, metadata_for(0, 1, 2, 3))

    assert job.status == IngestJob.Status.FAILED
    assert "zip bomb" in job.message and "zip bomb" in page
    assert not Token.objects.exists()
    assert files_under(media) == []


def test_it_refuses_a_member_that_inflates_too_far(upload, media, settings):
    settings.ARCHIVE_MAX_RATIO = 50
    settings.ARCHIVE_RATIO_CHECK_FROM_BYTES = 1_000_000  # the ratio judges large members only
    images = zip_bytes({"hostile/0.png": png_bytes(), "hostile/1.png": b"\0" * 3_000_000})

    _response, job, page = upload(images, metadata_for(0, 1))

    assert job.status == IngestJob.Status.PARTIAL
    assert "zip bomb" in page
    assert not Token.objects.get(token_id="1").image
    assert files_under(media / "tokens") == [
        str(Path(Token.objects.get(token_id="0").image.name).relative_to("tokens"))
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bomb_png(), "decompression bomb"),
        (b"MZ\x90\x00 an executable, not a picture", "not an image"),
        (b"<svg onload='alert(1)'/>", "not an image"),
    ],
)
def test_it_refuses_hostile_images_and_keeps_the_token_without_one(upload, media, data, reason):
    images = zip_bytes({"hostile/0.png": png_bytes(), "hostile/1.png": data})

    _response, job, page = upload(images, metadata_for(0, 1))

    assert job.status == IngestJob.Status.PARTIAL
    assert reason in page
    assert not Token.objects.get(token_id="1").image
    assert len(files_under(media / "tokens")) == 1  # token 0's image only


def test_it_refuses_a_file_that_is_no_zip_at_all(upload, media):
    _response, job, page = upload(png_bytes(), metadata_for(0))

    assert job.status == IngestJob.Status.FAILED
    assert "is not a readable zip archive" in page
    assert not Token.objects.exists() and files_under(media) == []


def test_it_refuses_an_upload_over_the_size_limit_before_queueing(admin, media, settings):
    settings.MAX_ARCHIVE_UPLOAD_BYTES = 10_000
    files = {
        "images_file": SimpleUploadedFile("big_archive.zip", b"\0" * 20_000),
        "metadata_file": SimpleUploadedFile("big_metadata_archive.zip", metadata_for(0)),
    }

    response = admin.post(reverse(IMPORT_URL), files)

    assert response.status_code == 200
    assert "over the upload limit of 9.8\xa0KB" in response.content.decode()
    assert not IngestJob.objects.exists() and files_under(media) == []


def test_it_answers_400_to_an_oversize_form_body(admin, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50_000

    response = admin.post(
        reverse(IMPORT_URL), {"images_url": "s3://b/x_archive.zip", "slug": "x" * 60_000}
    )

    assert response.status_code == 400
    assert not IngestJob.objects.exists()
