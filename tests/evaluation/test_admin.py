"""The run's evaluation page in the admin: who may see it, the chart, publishing an epoch."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from gan_app.models import Generator

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def evaluated(demo, db):
    from gan_app.evaluation import reports as evaluation

    _, _, run = demo
    evaluation.evaluate_run(run)
    return run


def staff(username, *perms):
    user = User.objects.create_user(username, password="pw-for-tests-1", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_it_keeps_the_page_to_staff_with_view_permission(evaluated, client):
    url = reverse("admin:gan_app_trainingrun_evaluation", args=[evaluated.pk])

    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(staff("nobody"))
    assert client.get(url).status_code == 403
    client.force_login(staff("viewer", "view_trainingrun"))
    page = client.get(url)
    assert page.status_code == 200
    assert b"Publish epoch" not in page.content  # viewing is not publishing
    publish = reverse(
        "admin:gan_app_trainingrun_publish",
        args=[evaluated.pk, evaluated.checkpoints.get(epoch=20).pk],
    )
    assert client.post(publish).status_code == 403
    evaluate = reverse("admin:gan_app_trainingrun_evaluate", args=[evaluated.pk])
    assert client.post(evaluate).status_code == 403


def test_it_charts_metrics_and_publishes_the_recommended_epoch(
    evaluated, admin_client, eager_celery
):
    from gan_app.evaluation import figures

    best = figures.recommended_checkpoint(evaluated)
    url = reverse("admin:gan_app_trainingrun_evaluation", args=[evaluated.pk])

    page = admin_client.get(url).content.decode()
    assert f"Recommended: epoch {best['epoch']}" in page
    assert 'id="run-metrics-data" type="application/json"' in page
    assert "vendor/plotly" in page and "<script>" not in page  # CSP: no inline scripts
    assert f"Publish epoch {best['epoch']}" in page
    # The quality figures beside the distances: precision / recall and valid tokens vs real.
    report = evaluated.checkpoints.get(pk=best["checkpoint"]).metrics
    assert "Precision / recall" in page and "Valid tokens" in page
    assert f"{round(100 * report['quality']['valid_token_rate'])}%" in page
    publish = reverse("admin:gan_app_trainingrun_publish", args=[evaluated.pk, best["checkpoint"]])
    assert admin_client.get(publish).status_code == 405

    response = admin_client.post(publish)

    generator = Generator.objects.get(checkpoint_id=best["checkpoint"])
    assert response.status_code == 302 and generator.is_published
    assert (
        generator.metrics["domain"]["fid"]
        == evaluated.checkpoints.get(pk=best["checkpoint"]).metrics["domain"]["fid"]
    )
    assert generator.slug in admin_client.get(url).content.decode()
    change = admin_client.get(reverse("admin:gan_app_trainingrun_change", args=[evaluated.pk]))
    assert url in change.content.decode()


def test_evaluate_all_queues_every_checkpoint(demo, admin_client, eager_celery):
    _, _, run = demo
    run.checkpoints.update(metrics={})
    url = reverse("admin:gan_app_trainingrun_evaluate", args=[run.pk])

    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url, follow=True)

    assert "Evaluating the 3 checkpoint(s)" in response.content.decode()
    assert all(c.metrics.get("domain") for c in run.checkpoints.all())
    assert "Recommended: epoch" in response.content.decode()
