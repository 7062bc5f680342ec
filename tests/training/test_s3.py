"""Checkpoints, grids and published generators in S3 (moto's standalone server on loopback):
a run resumes from a checkpoint it reads back from the bucket."""

import pytest

from gan_app.publishing import publish_checkpoint
from gan_app.training import chunks
from gan_app.training import runs as training
from tests.s3 import use_s3_media
from tests.training.conftest import TINY, make_sprite_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def media_bucket(s3_client, settings):
    use_s3_media(settings)
    s3_client.create_bucket(Bucket="media")
    return s3_client


def test_it_keeps_checkpoints_in_s3_and_resumes_from_them(media_bucket, settings, tmp_path):
    run = training.create_run(make_sprite_set(), enqueue=False, **TINY)
    chunks.run_chunk(run.pk, run.task_id, chain=False, max_seconds=0.001)
    training.resume_run(run, enqueue=False)

    chunks.run_chunk(run.pk, run.task_id, chain=False)

    run.refresh_from_db()
    assert (run.status, run.epoch_done) == ("succeeded", 2)
    keys = {o["Key"] for o in media_bucket.list_objects_v2(Bucket="media")["Contents"]}
    for checkpoint in run.checkpoints.all():
        assert f"nft-private/{checkpoint.state_file.name}" in keys
        assert f"nft-private/{checkpoint.grid.name}" in keys  # an unpublished model's grids
    assert f"nft-private/{run.sample_grid.name}" in keys
    generator = publish_checkpoint(run.checkpoints.get(epoch=2))
    assert f"nft-private/{generator.model_file.name}" in {
        o["Key"] for o in media_bucket.list_objects_v2(Bucket="media")["Contents"]
    }
    assert generator.sample_grid.url.startswith(settings.AWS_S3_ENDPOINT_URL)


def test_it_keeps_private_files_under_their_own_prefix_with_signed_urls(media_bucket, settings):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from nftsite.storage import private_storage

    name = private_storage().save("generators/secret.zip", ContentFile(b"weights"))
    default_storage.save("tokens/public.png", ContentFile(b"png"))

    keys = {o["Key"] for o in media_bucket.list_objects_v2(Bucket="media")["Contents"]}
    assert keys == {f"nft-private/{name}", "nft-assets/tokens/public.png"}
    acl = media_bucket.get_object_acl(Bucket="media", Key=f"nft-private/{name}")
    assert not [g for g in acl["Grants"] if "AllUsers" in g["Grantee"].get("URI", "")]
    url = private_storage().url(name)
    assert "/nft-private/" in url and "Signature" in url
