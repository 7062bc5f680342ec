"""The comparison page, the export download and the "Generated" badge on collection cards."""

from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser import CHROMIUM_ARGS
from tests.fabrication.test_jobs import export_bytes, fabricate
from tests.site.test_browser import Page


def compare_url(collection):
    return reverse("gan:fabrication_compare", args=[collection.slug])


@pytest.mark.django_db(transaction=True)
def test_the_cards_mark_a_fabricated_collection_as_generated(spread, client):
    job = fabricate(spread, count=6)
    page = client.get("/").content.decode()
    fabricated = page.split(job.collection.name)[1].split("</li>")[0]
    source = page.split(f">{spread.collection.name}<")[1].split("</li>")[0]
    assert "badge-fabricated" in fabricated and "Generated" in fabricated
    assert "badge-fabricated" not in source
    detail = client.get(job.collection.get_absolute_url()).content.decode()
    assert "badge-fabricated" in detail and compare_url(job.collection) in detail


@pytest.mark.django_db(transaction=True)
def test_the_comparison_page_shows_both_sides_and_links_the_export(spread, client):
    job = fabricate(spread, count=8)
    response = client.get(compare_url(job.collection))
    assert response.status_code == 200
    html = response.content.decode()
    for part in ("traits-source", "traits-fabricated", "rarity-distribution", job.collection.name):
        assert part in html
    assert spread.collection.name in html and job.result["provenance"] in html
    assert html.count('class="token-card"') == 12 + 8  # a sample of 12 from the source
    download = client.get(reverse("gan:fabrication_zip", args=[job.collection.slug]))
    assert b"".join(download.streaming_content) == export_bytes(job)


@pytest.mark.django_db(transaction=True)
def test_a_collection_that_is_not_fabricated_has_no_comparison(spread, client):
    assert client.get(compare_url(spread.collection)).status_code == 404


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def fabricated(spread, live_server, plain_static_urls):
    """(page URL, export bytes), made before the browser's event loop starts (no ORM after)."""
    job = fabricate(spread, count=10)
    return f"{live_server.url}{compare_url(job.collection)}", export_bytes(job)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_comparison_page_draws_in_a_browser(fabricated, live_server, browser):
    url, export = fabricated
    view = Page(browser, live_server.url)
    page = view.page
    page.goto(url)
    for chart in ("traits-source", "traits-fabricated", "rarity-distribution"):
        page.wait_for_selector(f"#{chart}.is-drawn svg.main-svg", timeout=20000)
    for side in ("source", "fabricated"):
        images = page.locator(f"#sample-{side} img")
        images.first.wait_for()
        widths = images.evaluate_all(
            "imgs => Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth)))"
        )
        assert widths and all(w > 0 for w in widths), side
    assert page.locator("#sample-source img").count() == 12
    assert page.locator("#sample-fabricated img").count() == 10
    view.shot("fabrication-compare")
    with page.expect_download() as download:
        page.click("text=Download the export (.zip)")
    assert Path(download.value.path()).read_bytes() == export
    assert view.errors == []
    assert all(u.startswith(live_server.url) for u in view.requests), "nothing leaves the site"
