"""Trained models, classifiers and uploads are not public media: nothing of
them answers under MEDIA_URL; staff download them through the private-file view."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from collections_app.ingest import launch
from collections_app.models import TrainingSet
from gan_app.evaluation import reports
from gan_app.models import Checkpoint, TrainingRun
from nftsite.storage import private_storage
from tests.site.conftest import body

pytestmark = pytest.mark.django_db


@pytest.fixture
def checkpoint(generator):
    training_set = TrainingSet.objects.create(collection=generator.collection, name="all")
    run = TrainingRun.objects.create(training_set=training_set, name="private run")
    row = Checkpoint(run=run, epoch=1)
    row.state_file.save("run-private/epoch-00001.zip", ContentFile(b"weights"), save=False)
    # A run's sample grids show what an unpublished (maybe withheld) generator draws.
    row.grid.save("run-private/epoch-00001.png", ContentFile(b"\x89PNG grid"), save=False)
    row.save()
    run.sample_grid.save("run-private.png", ContentFile(b"\x89PNG live"))
    return row


@pytest.fixture
def private_names(generator, checkpoint, collection):
    classifier = reports._save_once(reports.classifier_name(collection), b"classifier")
    upload = launch.store_upload(SimpleUploadedFile("punks.zip", b"PK upload"))
    return [
        generator.model_file.name,
        checkpoint.state_file.name,
        checkpoint.grid.name,
        checkpoint.run.sample_grid.name,
        classifier,
        upload.removeprefix("storage:"),
    ]


def test_it_serves_no_private_file_under_the_media_url(client, private_names):
    for name in private_names:
        assert client.get(settings.MEDIA_URL + name).status_code == 404, name


def test_it_keeps_them_in_the_private_storage_only(private_names, settings):
    for name in private_names:
        assert private_storage().exists(name), name
        assert not Path(settings.MEDIA_ROOT, name).exists(), name


def test_it_serves_them_to_staff_only(client, generator):
    url = generator.model_file.url
    assert url.startswith(settings.PRIVATE_MEDIA_URL)

    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    client.force_login(get_user_model().objects.create_user("visitor", password="x"))
    assert client.get(url).status_code == 302
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "x"))
    response = client.get(url)
    assert response.status_code == 200
    with generator.model_file.open("rb") as fh:
        assert body(response) == fh.read()
    assert client.get(settings.PRIVATE_MEDIA_URL + "nothing/here.zip").status_code == 404
