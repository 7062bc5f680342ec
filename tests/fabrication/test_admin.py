"""The admin: the Generator action opens the form, which queues a job; pause/resume/cancel."""

import pytest
from django.urls import reverse

from gan_app.models import FabricationJob


@pytest.fixture
def staff(admin_client):
    return admin_client


@pytest.mark.django_db(transaction=True)
def test_the_generator_action_opens_the_form_that_queues_a_job(spread, staff, settings):
    settings.FABRICATE_MAX_COUNT = 100
    changelist = reverse("admin:gan_app_generator_changelist")
    response = staff.post(
        changelist, {"action": "fabricate_action", "_selected_action": [spread.pk]}
    )
    start = reverse("admin:gan_app_fabricationjob_start")
    assert response.status_code == 302 and response.url == f"{start}?generator={spread.pk}"
    assert staff.get(response.url).status_code == 200

    form = {"generator": spread.pk, "seed": 1, "traits": "source", "image_uri": "{id}.png"}
    too_many = staff.post(start, {**form, "count": 101})
    assert "At most 100 tokens" in too_many.content.decode()
    assert not FabricationJob.objects.exists()

    assert staff.post(start, {**form, "count": 5}).status_code == 302
    job = FabricationJob.objects.get()
    assert (job.count, job.seed, job.traits, job.status) == (5, 1, "source", "queued")
    jobs = staff.get(reverse("admin:gan_app_fabricationjob_changelist")).content.decode()
    assert "0 / 5 (0%)" in jobs


@pytest.mark.django_db(transaction=True)
def test_the_job_actions_pause_resume_and_cancel(spread, staff):
    job = FabricationJob.objects.create(generator=spread, count=5)
    changelist = reverse("admin:gan_app_fabricationjob_changelist")

    def act(action):
        staff.post(changelist, {"action": action, "_selected_action": [job.pk]})
        job.refresh_from_db()
        return job.status

    assert act("pause") == "paused"
    assert act("resume") == "queued"
    assert act("cancel") == "cancelled"
