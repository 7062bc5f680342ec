"""An analytics job cancelled in the admin while it computes stays cancelled."""

import pytest
from django.urls import reverse

from collections_app.analytics import compute as analytics
from collections_app.analytics import refresh
from collections_app.models import IngestJob

from .factory import punks_like


@pytest.mark.django_db
def test_it_keeps_a_job_cancelled_in_the_admin_while_it_ran(admin_client, monkeypatch):
    collection = punks_like(n=5)
    job = IngestJob.objects.create(collection=collection, kind=IngestJob.Kind.ANALYTICS)
    assert job.claim("task-1")
    compute = analytics.compute

    def cancelled_meanwhile(collection, progress=None):
        response = admin_client.post(
            reverse("admin:collections_app_ingestjob_changelist"),
            {"action": "cancel_jobs", "_selected_action": [job.pk]},
        )
        assert response.status_code == 302
        return compute(collection, progress=progress)

    monkeypatch.setattr(analytics, "compute", cancelled_meanwhile)
    refresh.run_job(job)

    job.refresh_from_db()
    assert job.status == IngestJob.Status.CANCELLED
