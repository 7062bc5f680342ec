"""The run's evaluation chart draws in headless Chromium under the site's CSP."""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client

from gan_app.evaluation import reports as evaluation
from tests.browser import CHROMIUM_ARGS, keep_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_it_draws_the_metric_chart_and_publishes_from_it(
    demo, live_server, plain_static_urls, tmp_path
):
    from playwright.sync_api import sync_playwright

    _, _, run = demo
    best = evaluation.evaluate_run(run)
    admin = User.objects.create_superuser("chart-admin", password="pw-for-tests-1")
    client = Client()
    client.force_login(admin)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    url = f"{live_server.url}/admin/gan_app/trainingrun/{run.pk}/evaluation/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies(
            [{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
        )
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Admin pages name no favicon, so the browser asks for /favicon.ico: not our concern.
        page.on(
            "response",
            lambda r: (
                r.status >= 400
                and not r.url.endswith("/favicon.ico")
                and errors.append(f"{r.status} {r.url}")
            ),
        )
        page.goto(url)
        try:
            page.wait_for_selector("#run-metrics.is-drawn svg.main-svg", timeout=20000)
        except Exception:
            raise AssertionError(f"chart not drawn; page errors: {errors}") from None
        lines = page.locator("#run-metrics .scatterlayer .trace").count()
        keep_screenshot(page, "run-evaluation")
        with page.expect_navigation():
            page.get_by_role("button", name=f"Publish epoch {best['epoch']}").click()
        message = page.locator(".messagelist").inner_text()
        browser.close()

    assert errors == []
    assert lines == 4  # FID, its baseline, trait TV, its baseline
    assert f"Epoch {best['epoch']} is published as" in message
    assert run.generators.filter(checkpoint_id=best["checkpoint"], is_published=True).exists()
