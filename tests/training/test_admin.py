"""The training run page, its controls and publishing, and generator zips in the admin."""

import io
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from collections_app.models import Token
from gan_app.models import Generator, TrainingRun
from gan_app.publishing import export_generator_zip
from gan_app.training import chunks
from gan_app.training import runs as training
from tests.training.conftest import TINY, make_sprite_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    """Staff without any model permission."""
    user = get_user_model().objects.create_user("clerk", "c@example.com", "pw", is_staff=True)
    client.force_login(user)
    return client


def change_url(run):
    return reverse("admin:gan_app_trainingrun_change", args=[run.pk])


def control_url(run, action):
    return reverse("admin:gan_app_trainingrun_control", args=[run.pk, action])


def test_it_shows_progress_chart_grids_and_publish_buttons(admin_client, trained_run):
    page = admin_client.get(change_url(trained_run))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'value="100.0"' in html and "epoch <span" in html
    assert 'data-live-chart="loss-figure"' in html and 'id="loss-figure"' in html
    assert "vendor/plotly-cartesian.min." in html and "js/training_run." in html
    assert "<script>" not in html.replace(
        '<script type="application/json"', ""
    )  # CSP: no inline JS
    assert html.count("Publish epoch") == 2  # one per checkpoint
    assert trained_run.sample_grid.url in html


def test_it_answers_the_live_status_as_json(admin_client, trained_run):
    response = admin_client.get(reverse("admin:gan_app_trainingrun_status", args=[trained_run.pk]))

    data = response.json()
    assert data["status"] == "succeeded" and data["percent"] == 100.0
    assert (data["epoch_done"], data["epochs_total"], data["checkpoints"]) == (2, 2, 2)
    assert data["grid_url"] and data["figure"]["data"][0]["y"]


def test_it_publishes_a_checkpoint_the_site_can_generate_from(admin_client, trained_run):
    checkpoint = trained_run.checkpoints.get(epoch=1)

    response = admin_client.post(
        reverse("admin:gan_app_trainingrun_publish", args=[trained_run.pk, checkpoint.pk])
    )

    assert response.status_code == 302
    generator = Generator.objects.get(checkpoint=checkpoint)
    assert generator.is_published and generator.epoch == 1
    page = admin_client.get(generator.get_absolute_url())
    assert page.status_code == 200
    from gan_app.generation import render

    render.ensure_images(generator, [7])  # what a generate worker does for a visitor
    image = admin_client.get(reverse("gan:image_png", args=[generator.slug, 7]))
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    again = admin_client.get(change_url(trained_run)).content.decode()
    assert generator.slug in again and again.count("Publish epoch") == 1


def test_it_pauses_resumes_and_cancels_from_the_buttons(admin_client, sprite_set, eager_celery):
    run = training.create_run(sprite_set, enqueue=False, **TINY)

    admin_client.post(control_url(run, "pause"))
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.PAUSED
    admin_client.post(control_url(run, "resume"))
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED and run.task_id
    admin_client.post(control_url(run, "cancel"))
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED


def test_it_keeps_the_controls_for_staff_with_permission(client, staff_client, trained_run):
    publish = reverse(
        "admin:gan_app_trainingrun_publish",
        args=[trained_run.pk, trained_run.checkpoints.first().pk],
    )
    status = reverse("admin:gan_app_trainingrun_status", args=[trained_run.pk])

    assert staff_client.get(change_url(trained_run)).status_code == 403
    assert staff_client.get(status).status_code == 403
    assert staff_client.post(control_url(trained_run, "retry")).status_code == 403
    assert staff_client.post(publish).status_code == 403
    client.logout()
    for url in (change_url(trained_run), status):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    response = client.post(publish)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Generator.objects.exists()


def test_it_refuses_a_control_by_get(admin_client, trained_run):
    assert admin_client.get(control_url(trained_run, "pause")).status_code == 403


def test_it_starts_a_run_from_the_form(admin_client, sprite_set):
    form = reverse("admin:gan_app_trainingrun_start")
    assert admin_client.get(reverse("admin:gan_app_trainingrun_add")).url == form
    assert admin_client.get(form, {"training_set": sprite_set.pk}).status_code == 200

    response = admin_client.post(
        form,
        {
            "training_set": sprite_set.pk,
            "preset": "nff",
            "resolution": 32,
            "epochs": 3,
            "batch_size": 8,
            "checkpoint_every": 1,
            "g_learning_rate": 0.0004,
            "d_learning_rate": 0.0002,
            "seed": 5,
            "auto_publish": "on",
            "extra": '{"latent_dim": 8, "generator_width": 4}',
        },
    )

    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response.url == change_url(run)
    assert (run.epochs_total, run.seed, run.auto_publish) == (3, 5, True)
    assert run.config["latent_dim"] == 8 and run.status == TrainingRun.Status.QUEUED


def test_it_explains_why_a_run_cannot_start(admin_client):
    small = make_sprite_set("small", count=4)
    data = {
        "training_set": small.pk,
        "preset": "nff",
        "resolution": 32,
        "epochs": 3,
        "batch_size": 64,
        "checkpoint_every": 1,
        "g_learning_rate": 0.0004,
        "d_learning_rate": 0.0002,
        "seed": 0,
        "extra": '{"dropout": 7}',
    }

    page = admin_client.post(reverse("admin:gan_app_trainingrun_start"), data).content.decode()
    assert "dropout must be &lt; 1" in page
    data["extra"] = ""
    page = admin_client.post(reverse("admin:gan_app_trainingrun_start"), data).content.decode()
    assert (
        "Training set small/all has 4 image(s), fewer than the batch size 64; "
        "add images or lower the batch size to 4 or less." in page
    )
    assert not TrainingRun.objects.exists()


def test_it_suggests_defaults_that_fit_the_chosen_set(admin_client, sprite_set):
    small = make_sprite_set("small", count=6)
    url = reverse("admin:gan_app_trainingrun_start")

    page = admin_client.get(url, {"training_set": small.pk}).content.decode()

    assert 'name="batch_size" value="4"' in page
    assert 'id="id_augment" checked' in page
    assert "has 6 image(s)" in page
    plain = admin_client.get(url).content.decode()
    assert 'name="batch_size" value="64"' in plain


def test_it_hands_the_page_every_sets_defaults_for_a_change_of_set(admin_client, sprite_set):
    small = make_sprite_set("small", count=6)
    empty = make_sprite_set("blank", count=3)
    Token.objects.filter(collection=empty.collection).update(image="")  # no image: not counted

    response = admin_client.get(reverse("admin:gan_app_trainingrun_start"))
    page = response.content.decode()
    defaults = response.context["set_defaults"]["sets"]

    assert '<script id="training-set-defaults" type="application/json">' in page
    assert "js/start_run." in page
    for training_set in (sprite_set, small, empty):
        assert defaults[str(training_set.pk)] == {
            **training.suggested_defaults(training_set),
            "help": f"{training_set} has "
            f"{training.suggested_defaults(training_set)['image_count']} image(s); "
            "a batch is at most that many.",
        }
    assert defaults[str(sprite_set.pk)]["batch_size"] == 32
    assert defaults[str(small.pk)]["batch_size"] == 4
    assert defaults[str(empty.pk)]["image_count"] == 0
    assert response.context["set_defaults"]["initial"] == {
        "batch_size": 64,
        "augment": False,
        "conditional": False,
    }


def test_it_exports_and_imports_generator_zips(admin_client, trained_run):
    from gan_app.publishing import publish_checkpoint

    generator = publish_checkpoint(trained_run.checkpoints.get(epoch=2))
    response = admin_client.post(
        reverse("admin:gan_app_generator_changelist"),
        {"action": "export_zip", "_selected_action": [generator.pk]},
    )
    assert response["Content-Disposition"] == 'attachment; filename="sprites-v1_generator.zip"'
    data = response.content
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()[:2] == ["manifest.json", "generator.zip"]
    Generator.objects.all().delete()

    url = reverse("admin:gan_app_generator_import")
    bad = admin_client.post(url, {"file": SimpleUploadedFile("x_generator.zip", b"nope")})
    assert "not a generator zip" in bad.content.decode()
    good = admin_client.post(url, {"file": SimpleUploadedFile("x.zip", data), "publish": "on"})

    imported = Generator.objects.get()
    assert good.status_code == 302 and imported.is_published
    assert imported.model_sha256 == generator.model_sha256
    assert export_generator_zip(imported)


def test_it_starts_from_the_training_set_action(admin_client, sprite_set):
    response = admin_client.post(
        reverse("admin:collections_app_trainingset_changelist"),
        {"action": "train_gan", "_selected_action": [sprite_set.pk]},
    )

    assert response.status_code == 302
    page = admin_client.get(response.url).content.decode()
    assert f'<option value="{sprite_set.pk}" selected>' in page


def test_it_sends_an_unattended_run_again(
    admin_client, sprite_set, django_capture_on_commit_callbacks
):
    """A queued run whose message was lost: a new task id, and the old message does nothing.
    The button shows only once the run is stale by the job kernel's lease."""
    run = training.create_run(sprite_set, enqueue=False, **TINY)
    old_task = run.task_id
    assert "Send to the workers again" not in admin_client.get(change_url(run)).content.decode()
    TrainingRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - run.lease() - timedelta(seconds=1)
    )
    assert "Send to the workers again" in admin_client.get(change_url(run)).content.decode()

    with django_capture_on_commit_callbacks() as queued:
        admin_client.post(control_url(run, "resume"))

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED and run.task_id != old_task
    assert len(queued) == 1
    assert chunks.run_chunk(run.pk, old_task).status == "skipped"


def test_it_offers_sending_again_only_for_a_running_run_past_its_lease(admin_client, sprite_set):
    run = training.create_run(sprite_set, enqueue=False, **TINY)
    fresh = timezone.now() - run.lease() / 2
    TrainingRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=fresh)
    assert "Send to the workers again" not in admin_client.get(change_url(run)).content.decode()

    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=fresh - run.lease())

    assert "Send to the workers again" in admin_client.get(change_url(run)).content.decode()


def test_it_serves_the_newest_grid_at_one_stable_address(admin_client, sprite_set):
    run = training.create_run(sprite_set, enqueue=False, **TINY)
    page = admin_client.get(change_url(run)).content.decode()
    assert "No sample grid yet" in page and 'src=""' not in page
    live = reverse("admin:gan_app_trainingrun_live_grid", args=[run.pk])
    assert admin_client.get(live).status_code == 404

    chunks.run_chunk(run.pk, run.task_id, chain=False)
    run.refresh_from_db()
    first = admin_client.get(live)
    status = admin_client.get(reverse("admin:gan_app_trainingrun_status", args=[run.pk])).json()

    assert status["grid_url"] == f"{live}?v={run.epoch_done}"
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    assert b"".join(first.streaming_content).startswith(b"\x89PNG")
    # The file behind it is renamed every epoch; the address still answers.
    old_name = run.sample_grid.name
    run.sample_grid.save("renamed.png", io.BytesIO(run.sample_grid.read()))
    run.sample_grid.storage.delete(old_name)
    assert admin_client.get(status["grid_url"]).status_code == 200


def test_it_puts_history_above_the_dashboard_and_asks_before_cancelling(admin_client, trained_run):
    html = admin_client.get(change_url(trained_run)).content.decode()

    assert html.index('class="object-tools"') < html.index('class="run-dashboard"')
    assert html.count('class="object-tools"') == 1
