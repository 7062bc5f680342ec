"""The training run page in headless Chromium: chart and grid drawn by our static JS under the
CSP, figures refreshed live from the JSON status, and the Pause button."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from gan_app.models import TrainingRun
from gan_app.training import chunks
from gan_app.training import runs as training
from tests.browser import CHROMIUM_ARGS, keep_screenshot, log_in, poll
from tests.training.conftest import TINY, make_sprite_set

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def training_run(plain_static_urls):
    """A run that trained 2 of 4 epochs and, as far as the page knows, is training now."""
    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    run = training.create_run(make_sprite_set(), enqueue=False, **TINY)
    chunks.run_chunk(run.pk, run.task_id, chain=False)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.RUNNING, epochs_total=4, heartbeat_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def in_thread(work):
    """Database work while Playwright's event loop runs in this thread (Django refuses it)."""
    from django.db import connection

    result = {}

    def target():
        try:
            result["value"] = work()
        finally:
            connection.close()  # the thread's own connection, or the test database lingers

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return result.get("value")


def test_it_draws_and_refreshes_the_run_page(live_server, training_run):
    from playwright.sync_api import sync_playwright

    run = training_run
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # CSP refusals show as console errors; failed loads are checked by URL (the admin
        # has no favicon, which the browser asks for anyway).
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and "Failed to load resource" not in m.text
                and errors.append(m.text)
            ),
        )
        page.on(
            "response",
            lambda r: (
                r.status >= 400
                and not r.url.endswith("/favicon.ico")
                and errors.append(f"{r.status} {r.url}")
            ),
        )
        page.goto(
            f"{live_server.url}/admin/login/?next=/admin/gan_app/trainingrun/{run.pk}/change/"
        )
        page.fill("#id_username", "boss")
        page.fill("#id_password", "pw-boss-123")
        page.click("input[type=submit]")

        poll(page, "!!document.querySelector('#loss-chart .main-svg')")
        poll(page, "document.querySelector('img[data-field=grid_url]').naturalWidth > 0")
        assert page.evaluate("document.getElementById('loss-chart').data[0].x.length") == 2

        def third_epoch():
            fresh = TrainingRun.objects.get(pk=run.pk)
            history = [*fresh.loss_history, {**fresh.loss_history[-1], "epoch": 3}]
            TrainingRun.objects.filter(pk=run.pk).update(
                epoch_done=3,
                loss_history=history,
                images_per_second=1234.0,
                heartbeat_at=timezone.now(),
            )

        in_thread(third_epoch)
        poll(page, "document.querySelector('[data-field=epoch_done]').textContent === '3'")
        assert page.inner_text("[data-field=images_per_second]") == "1234"
        assert page.evaluate("document.querySelector('progress').value") == 75
        assert page.evaluate("document.getElementById('loss-chart').data[0].x.length") == 3

        page.click("text=Pause")
        page.wait_for_load_state()
        assert "pause requested" in page.inner_text("body")
        browser.close()

    assert in_thread(lambda: TrainingRun.objects.get(pk=run.pk).control) == "pause"
    assert errors == []


def test_it_updates_the_run_page_in_place_and_confirms_cancel(live_server, training_run):
    """A status change swaps the controls without a navigation: a mark on window survives, a
    typed run name survives; Cancel asks first and does nothing when refused."""
    from playwright.sync_api import sync_playwright

    run = training_run
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        url = f"/admin/gan_app/trainingrun/{run.pk}/change/"
        log_in(page, live_server.url, url)
        poll(page, "(document.querySelector('img[data-field=grid_url]') || {}).naturalWidth > 0")
        assert "/live-grid.png?v=" in page.get_attribute("img[data-field=grid_url]", "src")
        navigations = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        page.evaluate("window.notReloaded = true")
        page.fill("#id_name", "typed, not saved")

        # The worker was lost: no heartbeat for longer than the lease.
        in_thread(
            lambda: TrainingRun.objects.filter(pk=run.pk).update(
                heartbeat_at=timezone.now() - run.lease() * 2
            )
        )
        poll(page, "document.body.innerText.includes('Send to the workers again')")
        # Paused elsewhere: the Resume button arrives, Pause and the live figures stay put.
        in_thread(lambda: TrainingRun.objects.filter(pk=run.pk).update(status="paused"))
        poll(page, "!!document.querySelector('[data-region=controls] button.default')")
        assert page.inner_text("[data-field=status_label]") == "Paused"
        assert "Send to the workers again" not in page.inner_text("[data-region=controls]")
        assert page.evaluate("window.notReloaded") is True
        assert page.input_value("#id_name") == "typed, not saved"
        assert navigations == []
        keep_screenshot(page, "run-page")

        answers = []

        def answer(dialog):
            answers.append(dialog.message)
            dialog.dismiss() if len(answers) == 1 else dialog.accept()

        page.on("dialog", answer)
        page.click("button:text-is('Cancel')")
        assert answers and answers[0].startswith("Cancel this run?")
        assert in_thread(lambda: TrainingRun.objects.get(pk=run.pk).status) == "paused"
        page.click("button:text-is('Cancel')")
        page.wait_for_load_state()
        browser.close()

    assert len(answers) == 2
    assert in_thread(lambda: TrainingRun.objects.get(pk=run.pk).status) == "cancelled"
