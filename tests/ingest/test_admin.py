"""The admin side of ingestion: forms, actions and the job page (tasks run eagerly here)."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from collections_app.demo import build as demo
from collections_app.models import Collection, IngestJob, Token
from nftsite.storage import private_storage

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:collections_app_collection_import_archive"


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def run_tasks(eager_celery, django_capture_on_commit_callbacks):
    """Use as ``with run_tasks():`` — tasks queued on commit run inline when it ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def upload(path):
    with open(path, "rb") as fh:
        return SimpleUploadedFile(path.rsplit("/", 1)[-1], fh.read(), "application/zip")


def test_it_imports_an_uploaded_archive_pair(admin_client, demo_pair, run_tasks):
    with run_tasks():
        response = admin_client.post(
            reverse(IMPORT_URL),
            {"images_file": upload(demo_pair[0]), "metadata_file": upload(demo_pair[1])},
        )

    job = IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:collections_app_ingestjob_change", args=[job.pk])
    assert job.status == IngestJob.Status.SUCCEEDED, job.message
    assert Token.objects.filter(collection__slug="tiny-fakes").count() == 24
    upload_name = job.params["images"].removeprefix("storage:")
    assert not private_storage().exists(upload_name)  # the upload is removed once imported


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "Upload the images archive or give its URL"),
        ({"images_url": "https://x/y_archive.zip", "metadata_url": "s3://b/m.zip"}, "Only s3://"),
        ({"images_url": "s3://b/.zip", "metadata_url": "s3://b/m.zip"}, "Cannot tell the slug"),
    ],
)
def test_it_explains_what_is_wrong_with_the_import_form(admin_client, data, error):
    response = admin_client.post(reverse(IMPORT_URL), data)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not IngestJob.objects.exists()


def test_it_shows_a_job_with_progress_and_readable_errors(admin_client):
    collection = Collection.objects.create(slug="c", name="C")
    job = IngestJob.objects.create(
        kind=IngestJob.Kind.ARCHIVE_IMPORT,
        collection=collection,
        status=IngestJob.Status.RUNNING,
        items_expected=200,
        items_done=50,
        items_failed=2,
        errors=[
            {"item": "7", "reason": "image refused: <script>truncated</script>", "imported": True},
            {"item": "9", "reason": "malformed JSON", "imported": False},
        ],
    )

    page = admin_client.get(reverse("admin:collections_app_ingestjob_change", args=[job.pk]))
    listing = admin_client.get(reverse("admin:collections_app_ingestjob_changelist"))

    html = page.content.decode()
    assert '<progress value="26.0" max="100"' in html
    assert "&lt;script&gt;truncated&lt;/script&gt;" in html and "<script>truncated" not in html
    assert "malformed JSON" in html
    assert 'http-equiv="refresh"' in html  # a running job's page follows its progress
    assert "26.0%" in listing.content.decode()


def test_it_exports_a_collection_and_links_both_archives(admin_client, run_tasks):
    demo.build_demo_collection("mini", 12, 1)
    collection = Collection.objects.get(slug="mini")

    with run_tasks():
        admin_client.post(
            reverse("admin:collections_app_collection_changelist"),
            {"action": "export_archives", "_selected_action": [collection.pk]},
        )

    job = IngestJob.objects.get(kind=IngestJob.Kind.ARCHIVE_EXPORT)
    assert job.status == IngestJob.Status.SUCCEEDED and job.items_done == 12
    assert job.result_file.name.endswith("mini_archive.zip")
    assert default_storage.exists(job.result_file.name.replace("_archive", "_metadata_archive"))
    page = admin_client.get(reverse("admin:collections_app_ingestjob_change", args=[job.pk]))
    assert "mini_metadata_archive.zip</a>" in page.content.decode()


def test_it_reingests_a_demo_collection_from_its_recipe(admin_client, run_tasks):
    demo.build_demo_collection("mini", 8, 2)
    IngestJob.objects.create(
        kind=IngestJob.Kind.DEMO,
        collection=Collection.objects.get(slug="mini"),
        params={"slug": "mini", "size": 8, "seed": 2},
    )
    collection = Collection.objects.get(slug="mini")

    with run_tasks():
        admin_client.post(
            reverse("admin:collections_app_collection_changelist"),
            {"action": "reingest", "_selected_action": [collection.pk]},
        )

    latest = IngestJob.objects.filter(kind=IngestJob.Kind.DEMO).first()
    assert latest.status == IngestJob.Status.SUCCEEDED
    assert collection.tokens.count() == 8


def test_it_cancels_a_running_job(admin_client):
    job = IngestJob.objects.create(kind=IngestJob.Kind.OPENSEA, status=IngestJob.Status.RUNNING)

    admin_client.post(
        reverse("admin:collections_app_ingestjob_changelist"),
        {"action": "cancel_jobs", "_selected_action": [job.pk]},
    )

    job.refresh_from_db()
    assert job.status == IngestJob.Status.CANCELLED


def test_it_offers_the_ingest_buttons_to_admins_only(admin_client, client):
    listing = admin_client.get(reverse("admin:collections_app_collection_changelist"))
    assert "Ingest from OpenSea" in listing.content.decode()
    assert "Import archive" in listing.content.decode()

    client.logout()
    response = client.get(reverse("admin:collections_app_collection_ingest_opensea"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_will_not_start_a_second_ingest_of_the_same_collection(admin_client):
    collection = Collection.objects.create(slug="busy", name="Busy", source="opensea")
    running = IngestJob.objects.create(
        kind=IngestJob.Kind.OPENSEA, collection=collection, status=IngestJob.Status.RUNNING
    )

    response = admin_client.post(
        reverse("admin:collections_app_collection_ingest_opensea"), {"slug": "busy"}, follow=True
    )

    assert f"Job #{running.pk} is already ingesting busy" in response.content.decode()
    assert IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).count() == 1


def test_it_removes_the_upload_of_an_import_cancelled_midway(demo_pair):
    from collections_app.ingest import launch

    sources = [launch.store_upload(upload(path)) for path in demo_pair]
    job = IngestJob.objects.create(
        kind=IngestJob.Kind.ARCHIVE_IMPORT,
        status=IngestJob.Status.CANCELLED,  # the admin cancelled it while it ran
        params={"images": sources[0], "metadata": sources[1]},
    )

    launch.run_archive_import(job)

    for source in sources:
        assert not private_storage().exists(source.removeprefix("storage:"))
