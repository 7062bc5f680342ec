"""The Generate button in headless Chromium (Debian's, through Playwright), with a real worker.

Set NFF_SCREENSHOT_DIR to keep screenshots of every page at desktop and phone widths.
"""

import io
from pathlib import Path

import pytest
from PIL import Image

from collections_app.analytics import compute as analytics
from tests.analytics.factory import punks_like
from tests.browser import CHROMIUM_ARGS, keep_screenshot

from .conftest import make_generator

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def site(generate_worker, plain_static_urls, tiny_artifact):
    collection = punks_like(n=40, slug="punks")
    analytics.compute(collection)
    generator = make_generator(collection, tiny_artifact, slug="punks-v1", name="Punks Like v1")
    return collection, generator


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread: fixtures touch the database
    # before it starts, tests only through HTTP while it runs.

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A page that records errors and every URL it requested."""

    def __init__(self, browser, base, viewport=DESKTOP, **options):
        self.context = browser.new_context(viewport=viewport, accept_downloads=True, **options)
        self.page = self.context.new_page()
        self.base = base
        self.errors, self.requests = [], []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def shot(self, name):
        keep_screenshot(self.page, name)


def generate(page, seed):
    page.fill("#gen-seed", str(seed))
    page.click("#generate .btn-generate")
    page.wait_for_selector("#generate-result[data-state=done] img.result-image", timeout=60000)
    page.wait_for_function(
        "document.querySelector('#generate-result img.result-image').naturalWidth > 0"
    )
    with page.expect_download() as download:
        page.click("#generate-result >> text=Download PNG")
    return Path(download.value.path()).read_bytes(), page.inner_text("#generate-result")


def test_it_generates_from_the_collection_page_and_downloads_the_png(live_server, site, browser):
    collection, generator = site
    view = Page(browser, live_server.url)
    page = view.page

    page.goto(f"{live_server.url}{collection.get_absolute_url()}")
    page.wait_for_selector("#price-histogram.is-drawn svg.main-svg", timeout=20000)
    first, caption = generate(page, 4242)
    view.shot("collection-after-generate")
    second, _ = generate(page, 4242)
    permalink = page.request.get(f"{live_server.url}/g/{generator.slug}/4242.png")

    image = Image.open(io.BytesIO(first))
    assert image.format == "PNG" and image.size == (32, 32)
    assert second == first
    assert "Seed 4242" in caption and "ready in" in caption
    assert permalink.body() == first and permalink.headers["content-type"] == "image/png"
    assert view.errors == []
    assert all(url.startswith(live_server.url) for url in view.requests), "nothing leaves the site"


def test_it_downloads_a_batch_as_a_zip(live_server, site, browser):
    import zipfile

    collection, _ = site
    page = Page(browser, live_server.url).page
    page.goto(f"{live_server.url}{collection.get_absolute_url()}#generate")

    page.fill("#gen-seed", "100")
    page.select_option("#gen-count", "4")
    page.click("#generate .btn-generate")
    page.wait_for_selector("#generate-result[data-state=done] .batch-result img", timeout=60000)
    with page.expect_download() as download:
        page.click("#generate-result >> text=Download ZIP")

    with zipfile.ZipFile(download.value.path()) as zf:
        names = sorted(zf.namelist())
    assert names == sorted(f"punks-v1-{s}.{e}" for s in range(100, 104) for e in ("png", "json"))


def test_it_works_without_javascript(live_server, site, browser):
    collection, _ = site
    page = Page(browser, live_server.url, java_script_enabled=False).page
    page.goto(f"{live_server.url}{collection.get_absolute_url()}")

    page.fill("#gen-seed", "77")
    page.click("#generate .btn-generate")
    page.wait_for_selector("img.result-image", timeout=60000)

    assert "/generate/r/" in page.url
    page.wait_for_load_state("load")  # the element can be there before its image has loaded
    assert page.locator("img.result-image").evaluate("i => i.naturalWidth") == 32
    with page.expect_download() as download:
        page.click("text=Download PNG")
    assert Path(download.value.path()).read_bytes().startswith(b"\x89PNG")


def test_it_lays_every_page_out_without_overflow_or_broken_images(live_server, site, browser):
    collection, generator = site
    view = Page(browser, live_server.url)
    page = view.page
    page.goto(f"{live_server.url}{generator.get_absolute_url()}")
    page.fill("#walk-from", "1")
    page.fill("#walk-to", "2")
    page.click("#walk button[type=submit]")
    page.wait_for_selector("#walk-result[data-state=done] img.walk-strip", timeout=60000)
    generate(page, 5)
    pages = [
        ("home", "/"),
        ("collection", collection.get_absolute_url()),
        ("generator", generator.get_absolute_url()),
        ("gallery", "/gallery/"),
        ("image", f"/g/{generator.slug}/5/"),
    ]

    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        for label, path in pages:
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            broken = page.evaluate(
                "[...document.images].filter(i => i.complete && i.naturalWidth === 0)"
                ".map(i => i.src)"
            )
            view.shot(f"{label}-{width}")
            assert overflow <= 0, f"{label} scrolls sideways by {overflow}px at {width} width"
            assert broken == [], f"{label} has broken images: {broken}"
    assert view.errors == []
