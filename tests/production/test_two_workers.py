"""Two worker machines that share only PostgreSQL, Redis and S3 (moto's standalone server).

Worker A consumes ``ingest``, worker B ``generate`` and ``train``; each runs in its own working
directory with its own var/, so anything one passes to the other must go through the services:
A imports an archive from S3, B trains a tiny run on it, publishes it and serves a generation.
"""

import pytest
from django.urls import reverse

from collections_app.demo import build as demo
from collections_app.models import Collection, IngestJob, Token
from gan_app.models import GeneratedImage, GenerationRequest, TrainingRun
from gan_app.training import runs as training
from tests.site.conftest import wait_done
from tests.training.conftest import TINY

from .conftest import s3_keys, wait_until, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
JSON = {"HTTP_ACCEPT": "application/json"}


def upload_seed_archives(client, tmp_path, slug, size):
    paths = demo.write_demo_archives(tmp_path / "src", slug=slug, size=size, seed=11)
    urls = []
    for path in paths:
        key = f"incoming/{str(path).rsplit('/', 1)[-1]}"
        client.upload_file(str(path), "seed", key)
        urls.append(f"s3://seed/{key}")
    return urls


def test_it_ingests_on_one_machine_and_trains_and_generates_on_another(
    s3, machines, admin_client, tmp_path
):
    client, s3_env = s3
    ingest_node = machines("node-a", ("ingest",), env={**s3_env, **worker_env()}).start()
    gpu_node = machines("node-b", ("generate", "train"), env={**s3_env, **worker_env()}).start()
    images_url, metadata_url = upload_seed_archives(client, tmp_path, "two-node-fakes", 16)

    response = admin_client.post(
        reverse("admin:collections_app_collection_import_archive"),
        {"images_url": images_url, "metadata_url": metadata_url, "slug": "two-node-fakes"},
    )
    assert response.status_code == 302
    job = IngestJob.objects.get(kind=IngestJob.Kind.ARCHIVE_IMPORT)
    wait_until(
        lambda: IngestJob.objects.get(pk=job.pk).finished_at, timeout=240, what="archive import"
    )
    job.refresh_from_db()

    assert job.status == IngestJob.Status.SUCCEEDED, job.message
    assert f"[{job.task_id}] succeeded" in ingest_node.worker.log()
    assert job.task_id not in gpu_node.worker.log()
    collection = Collection.objects.get(slug="two-node-fakes")
    tokens = Token.objects.filter(collection=collection)
    assert tokens.count() == 16
    # Token images went to the shared bucket, not to node A's disk.
    assert {f"nft-assets/{t.image.name}" for t in tokens} <= s3_keys(client)

    # Node B trains a tiny run on it (checkpoints in S3) and publishes the last epoch.
    run = training.create_run(training.whole_collection_set(collection), auto_publish=True, **TINY)
    wait_until(lambda: not TrainingRun.objects.get(pk=run.pk).is_active, timeout=300, what="run")
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.task_id in gpu_node.worker.log() and run.task_id not in ingest_node.worker.log()
    # Checkpoints and generator artifacts are private files: the bucket's private prefix.
    checkpoint_keys = {f"nft-private/{c.state_file.name}" for c in run.checkpoints.all()}
    assert len(checkpoint_keys) == 2 and checkpoint_keys <= s3_keys(client)
    generator = run.generators.get()
    assert generator.is_published and generator.epoch == 2
    assert f"nft-private/{generator.model_file.name}" in s3_keys(client)
    response = admin_client.post(
        reverse("gan:generate"), {"generator": generator.slug, "seed": "2718"}, **JSON
    )
    assert response.status_code == 202, response.content
    body = wait_done(admin_client, response.json()["id"], timeout=240)

    assert body["status"] == "done", body
    request = GenerationRequest.objects.get(public_id=body["id"])
    assert f"[{request.task_id}] succeeded" in gpu_node.worker.log()
    assert request.task_id not in ingest_node.worker.log()
    image = GeneratedImage.objects.get(generator=generator, seed=2718)
    assert f"nft-assets/{image.image.name}" in s3_keys(client, prefix="nft-assets/generated/")
    png = admin_client.get(body["images"][0]["png"])
    assert png.status_code in (200, 302)
    # Neither machine kept media of its own: everything it made is in S3.
    for node in (ingest_node, gpu_node):
        assert not [p for p in node.files() if p.suffix in (".png", ".zip")], node.files()
