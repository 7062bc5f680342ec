"""Archives and images on S3, through moto's standalone server on loopback."""

import zipfile

import pytest
from django.core.management import CommandError, call_command

from collections_app.models import Token

pytestmark = pytest.mark.django_db


@pytest.fixture
def s3(s3_client):
    for bucket in ("seed", "media"):
        s3_client.create_bucket(Bucket=bucket)
    return s3_client


def upload(client, pair):
    urls = []
    for path in pair:
        key = f"nft-assets/tiny-fakes/{path.rsplit('/', 1)[-1]}"
        client.upload_file(path, "seed", key)
        urls.append(f"s3://seed/{key}")
    return urls


def test_it_imports_an_archive_pair_from_s3_urls(s3, demo_pair):
    call_command("import_archive", *upload(s3, demo_pair), verbosity=0)

    assert Token.objects.filter(collection__slug="tiny-fakes").exclude(image="").count() == 24


def test_it_says_when_an_s3_archive_is_missing(s3):
    with pytest.raises(CommandError, match=r"s3://seed/nope_archive\.zip: not found"):
        call_command("import_archive", "s3://seed/nope_archive.zip", "s3://seed/x.zip", verbosity=0)


def test_it_stores_images_in_s3_and_exports_back_to_s3(s3, demo_pair, settings, tmp_path):
    settings.AWS_STORAGE_BUCKET_NAME = "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage"},
    }

    call_command("import_archive", *upload(s3, demo_pair), verbosity=0)
    call_command("export_archive", "tiny-fakes", "s3://seed/exports", verbosity=0)

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="media")["Contents"]}
    token = Token.objects.get(token_id="0")
    assert f"nft-assets/{token.image.name}" in keys
    assert token.image.url.startswith(settings.AWS_S3_ENDPOINT_URL)
    for name in ("tiny-fakes_archive.zip", "tiny-fakes_metadata_archive.zip"):
        local = tmp_path / name
        s3.download_file("seed", f"exports/{name}", str(local))
        source = next(p for p in demo_pair if p.endswith(name))
        with zipfile.ZipFile(local) as exported, zipfile.ZipFile(source) as original:
            assert exported.namelist() == original.namelist()
            if name == "tiny-fakes_archive.zip":
                assert all(exported.read(n) == original.read(n) for n in original.namelist())
