"""The collection page's plotly charts draw in headless Chromium (Debian's, via Playwright)."""

import io
import random
import time

import pytest
from django.core.files.base import ContentFile

from collections_app.analytics import compute as analytics
from collections_app.models import Token
from tests.browser import CHROMIUM_ARGS, keep_screenshot

from .factory import punks_like

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def tiny_png(seed):
    from PIL import Image

    rng = random.Random(seed)
    image = Image.new("RGB", (24, 24), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(40):
        image.putpixel((rng.randrange(24), rng.randrange(24)), (20, 20, 40))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def analysed_collection():
    collection = punks_like(n=80)
    for token in Token.objects.filter(collection=collection):
        token.image.save(f"{token.token_id}.png", ContentFile(tiny_png(token.pk)), save=True)
    analytics.compute(collection)
    return collection


def test_it_draws_the_collection_charts_and_opens_a_token_from_the_scatter(
    live_server, plain_static_urls, analysed_collection, tmp_path
):
    from playwright.sync_api import sync_playwright

    url = f"{live_server.url}/c/{analysed_collection.slug}/"
    shown = analysed_collection.analytics["scatter"]["shown"]
    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.goto(url)
        for chart in ("price-histogram", "rarity-vs-price", "sales-over-time", "rare-traits"):
            try:
                page.wait_for_selector(f"#{chart}.is-drawn svg.main-svg", timeout=20000)
            except Exception:
                raise AssertionError(f"{chart} not drawn; page errors: {errors}") from None
        svg_count = page.locator(".plotly svg.main-svg").count()
        points = page.locator("#rarity-vs-price .scatterlayer path.point")
        point_count = points.count()
        # Token images load lazily: bring the grid into view, then wait for them.
        page.locator(".token-grid").scroll_into_view_if_needed()
        # (A polling loop, not wait_for_function: that evaluates a string, which our CSP forbids.)
        deadline = time.monotonic() + 10
        while not page.evaluate(
            "[...document.querySelectorAll('.token-grid img')].slice(0, 8)"
            ".every(i => i.complete && i.naturalWidth > 0)"
        ):
            assert time.monotonic() < deadline, "token images did not load"
            page.wait_for_timeout(100)
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(300)
        page.evaluate("window.scrollTo(0, 0)")
        keep_screenshot(page, "collection")

        box = points.first.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector(".hoverlayer .hovertext", timeout=5000)
        hover = page.locator(".hoverlayer .hovertext").text_content()
        with page.expect_navigation():
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        token_url = page.url
        heading = page.locator("h1").inner_text()
        browser.close()

    assert errors == []
    assert svg_count >= 10  # each drawn chart has two stacked SVG layers
    assert point_count == shown > 0
    assert "Token #" in hover
    assert f"/c/{analysed_collection.slug}/t/" in token_url
    assert heading in hover
    assert all(r.startswith(live_server.url) for r in requests), "no request may leave the server"


def test_it_narrows_the_trait_sidebar_by_value_or_type_name(
    live_server, plain_static_urls, analysed_collection
):
    from playwright.sync_api import sync_playwright

    shown = (
        "[...document.querySelectorAll('#trait-groups li')].filter(li => !li.hidden)"
        ".map(li => li.querySelector('.trait-value').textContent)"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_server.url}/c/{analysed_collection.slug}/")
        page.fill("#trait-find", "earr")
        by_value = page.evaluate(shown)
        page.fill("#trait-find", "accessory")
        by_type = page.evaluate(shown)
        # Counts are not values: a number matches none.
        page.fill("#trait-find", "1")
        by_number = page.evaluate(shown)
        browser.close()

    accessories = set(
        analysed_collection.traits.filter(trait_type="accessory").values_list("value", flat=True)
    )
    assert by_value == ["Earring"]
    assert set(by_type) == accessories
    assert by_number == []
