"""Checkpoints, grids and published generators in S3 (moto's standalone server on loopback):
a run resumes from a checkpoint it reads back from the bucket."""

import boto3
import pytest

from gan_app import training
from gan_app.publishing import publish_checkpoint
from tests.training.conftest import TINY, make_sprite_set

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def s3_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def media_bucket(s3_url, settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.AWS_S3_ENDPOINT_URL = s3_url
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.AWS_STORAGE_BUCKET_NAME = "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage"},
    }
    client = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
    client.create_bucket(Bucket="media")
    yield client
    for item in client.list_objects_v2(Bucket="media").get("Contents", []):
        client.delete_object(Bucket="media", Key=item["Key"])
    client.delete_bucket(Bucket="media")


def test_it_keeps_checkpoints_in_s3_and_resumes_from_them(media_bucket, settings, tmp_path):
    run = training.create_run(make_sprite_set(), enqueue=False, **TINY)
    training.run_chunk(run.pk, run.task_id, chain=False, max_seconds=0.001)
    training.resume_run(run, enqueue=False)

    training.run_chunk(run.pk, run.task_id, chain=False)

    run.refresh_from_db()
    assert (run.status, run.epoch_done) == ("succeeded", 2)
    keys = {o["Key"] for o in media_bucket.list_objects_v2(Bucket="media")["Contents"]}
    for checkpoint in run.checkpoints.all():
        assert f"nft-assets/{checkpoint.state_file.name}" in keys
        assert f"nft-assets/{checkpoint.grid.name}" in keys
    assert f"nft-assets/{run.sample_grid.name}" in keys
    generator = publish_checkpoint(run.checkpoints.get(epoch=2))
    assert f"nft-assets/{generator.model_file.name}" in {
        o["Key"] for o in media_bucket.list_objects_v2(Bucket="media")["Contents"]
    }
    assert generator.sample_grid.url.startswith(settings.AWS_S3_ENDPOINT_URL)
