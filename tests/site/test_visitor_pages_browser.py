"""The visitor's pages in headless Chromium (Debian's, through Playwright), with a real worker:
fast charts, the filter sidebar, the Generate panel's helpers, plain language, and an axe-core
accessibility check (the pinned npm package, injected from node_modules, never a CDN).

Set NFF_SCREENSHOT_DIR to keep screenshots of the pages.
"""

import io
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image

from collections_app.models import Trait
from gan_app.models import Generator

from .test_browser import DESKTOP, Page, browser, generate, site  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-figure]')]
    .every(el => el.querySelector('.main-svg'))"""
METRICS = {
    "domain": {"fid": 3.1},
    "traits": {"tv_mean": 0.12},
    "baseline": {"domain": {"fid": 1.2}, "traits": {"tv_mean": 0.04}},
}


# Playwright's sync API runs an event loop in the test's thread: these fixtures touch the
# database before the browser fixture starts it (tests list them before ``browser``).


@pytest.fixture
def top_trait(site):  # noqa: F811
    collection, _ = site
    return Trait.objects.filter(collection=collection).order_by("-count").first()


@pytest.fixture
def rated(site):  # noqa: F811
    _, generator = site
    Generator.objects.filter(pk=generator.pk).update(metrics=METRICS)
    return generator


@pytest.fixture
def long_named(site):  # noqa: F811
    collection, generator = site
    name = "Punks Like, a rather long generator name that must not be cut short v1"
    Generator.objects.filter(pk=generator.pk).update(name=name)
    return collection


@pytest.fixture
def token_path(site):  # noqa: F811
    collection, _ = site
    token = collection.tokens.order_by("rarity_rank").first()
    return f"{collection.get_absolute_url()}t/{token.token_id}/"


def open_page(browser, base, path, **options):  # noqa: F811
    view = Page(browser, base, **options)
    view.page.goto(f"{base}{path}")
    return view


def test_it_draws_every_chart_from_the_cartesian_bundle(live_server, site, browser):  # noqa: F811
    collection, _ = site
    view = open_page(browser, live_server.url, collection.get_absolute_url())
    page = view.page

    page.wait_for_function(CHARTS_DRAWN, timeout=20000)
    view.shot("collection-charts")

    scripts = [u for u in view.requests if "/static/vendor/" in u]
    assert [u.rsplit("/", 1)[1] for u in scripts] == ["plotly-cartesian.min.js"]
    assert page.locator("#plotly-js").get_attribute("async") is not None
    ticks = page.locator("#price-histogram .xtick text").evaluate_all(
        "texts => texts.map(t => t.textContent)"
    )
    assert ticks and all(t.startswith("$") for t in ticks)
    assert view.errors == []


def test_it_filters_with_checkboxes_and_removable_chips(live_server, site, top_trait, browser):  # noqa: F811
    collection, _ = site
    trait = top_trait
    view = open_page(browser, live_server.url, collection.get_absolute_url() + "#tokens")
    page = view.page

    group = page.locator(".trait-group", has=page.locator(f"input[value='{trait.pk}']"))
    group.locator("summary").click()
    box = group.locator(f"input[value='{trait.pk}']")
    assert box.locator("xpath=ancestor::li").inner_text().split()[-1] == f"{trait.count:,}"
    with page.expect_navigation():
        box.check()  # applies at once
    chip = page.locator(".active-filters .chip-remove")
    assert f"trait={trait.pk}" in page.url
    assert chip.inner_text().startswith(f"{trait.trait_type}: {trait.value}")
    assert page.locator(f"input[value='{trait.pk}']").is_checked()
    view.shot("collection-filters")

    with page.expect_navigation():
        chip.click()
    assert "trait=" not in page.url and page.locator(".active-filters").count() == 0
    assert view.errors == []


def test_it_says_which_filters_it_could_not_use(live_server, site, browser):  # noqa: F811
    collection, _ = site
    path = collection.get_absolute_url() + "?min_usd=abc&max_rank=-5&page=999#tokens"
    view = open_page(browser, live_server.url, path)
    notice = view.page.locator(".filter-problems")

    text = notice.inner_text()
    view.shot("collection-invalid-filters")
    assert notice.is_visible() and notice.get_attribute("role") == "alert"
    assert "Min price (USD) “abc”" in text and "Rarity rank up to “-5”" in text
    assert "There is no page “999”" in text


def test_the_generate_panel_validates_inline_and_offers_next_steps(live_server, site, browser):  # noqa: F811
    collection, generator = site
    view = open_page(browser, live_server.url, collection.get_absolute_url() + "#generate")
    view.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = view.page

    generate(page, 4242)
    page.fill("#gen-seed", "12ab")
    page.click("#generate .btn-generate")
    error = page.locator("#gen-seed-error")
    assert error.inner_text().startswith("Use digits only")
    assert page.locator("#gen-seed").get_attribute("aria-invalid") == "true"
    assert page.locator("#generate-result img.result-image").count() == 0, "stale result cleared"
    view.shot("generate-inline-error")

    page.fill("#gen-seed", "4242")
    page.click("#generate .btn-generate")
    page.wait_for_selector("#generate-result[data-state=done] img.result-image", timeout=60000)
    assert page.locator("#gen-seed-error").count() == 0, "the message goes on the next try"

    page.click("#generate-result >> text=Next seed")
    page.wait_for_selector("#generate-result[data-state=done] >> text=Seed 4243", timeout=60000)
    assert page.input_value("#gen-seed") == "4243"

    page.click("#generate-result >> text=Copy link")
    page.wait_for_selector("#generate-result .copy-status >> text=Link copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"{live_server.url}/g/{generator.slug}/4243/"

    with page.expect_download() as download:
        page.click("#generate-result >> text=Download 512 px")
    big = Image.open(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert big.size == (512, 512)

    page.click("#generate-result >> text=Random again")
    page.wait_for_selector("#generate-result[data-state=done] img.result-image", timeout=60000)
    assert page.input_value("#gen-seed") == ""
    view.shot("generate-next-steps")
    assert view.errors == []


def test_a_batch_of_nine_is_a_three_by_three_grid(live_server, site, browser):  # noqa: F811
    collection, _ = site
    view = open_page(browser, live_server.url, collection.get_absolute_url() + "#generate")
    page = view.page

    page.fill("#gen-seed", "10")
    page.select_option("#gen-count", "9")
    page.click("#generate .btn-generate")
    page.wait_for_selector("#generate-result[data-state=done] .batch-result img", timeout=60000)
    boxes = page.locator(".batch-result li").evaluate_all(
        "items => items.map(i => { const r = i.getBoundingClientRect(); return [r.x, r.y]; })"
    )
    view.shot("generate-batch-9")

    assert len(boxes) == 9
    assert len({round(x) for x, _ in boxes}) == 3 and len({round(y) for _, y in boxes}) == 3


def test_the_generator_page_shows_a_badge_and_folds_the_numbers(live_server, rated, browser):  # noqa: F811
    view = open_page(browser, live_server.url, rated.get_absolute_url())
    page = view.page

    badge = page.locator(".quality-badge")
    table = page.locator(".about-numbers table")
    assert badge.inner_text().strip() == "Recognisable"
    assert not table.is_visible()
    page.click("text=About these numbers")
    assert table.is_visible() and "FID" in table.inner_text()
    view.shot("generator-quality")


def test_the_gallery_filters_by_collection_and_shows_whole_titles(live_server, long_named, browser):  # noqa: F811
    collection = long_named
    view = open_page(browser, live_server.url, collection.get_absolute_url() + "#generate")
    generate(view.page, 9)
    page = view.page
    page.goto(f"{live_server.url}/gallery/?collection={collection.slug}")

    name = page.locator(".gallery-name").first
    assert name.evaluate("n => n.scrollWidth <= n.clientWidth && n.scrollHeight <= n.clientHeight")
    assert "must not be cut short" in name.inner_text()
    assert page.locator(
        "nav[aria-label='Filter by collection'] [aria-current=page]"
    ).inner_text() == (collection.name)
    view.shot("gallery-filtered")


def axe_violations(page):
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_public_pages_have_no_serious_accessibility_violations(
    live_server,
    site,  # noqa: F811
    rated,
    token_path,
    browser,  # noqa: F811
):
    collection, generator = site
    setup = open_page(browser, live_server.url, collection.get_absolute_url())
    generate(setup.page, 5)
    paths = [
        "/",
        collection.get_absolute_url(),
        collection.get_absolute_url() + "?min_usd=abc",
        token_path,
        "/compare/",
        generator.get_absolute_url(),
        f"/c/{collection.slug}/generators/",
        "/gallery/",
        f"/g/{generator.slug}/5/",
    ]
    found = {}
    for scheme in ("light", "dark"):
        for path in paths:
            # axe is injected as an inline script: the page's CSP would (rightly) refuse it.
            view = open_page(browser, live_server.url, path, bypass_csp=True, color_scheme=scheme)
            view.page.wait_for_load_state("networkidle")
            problems = axe_violations(view.page)
            if problems:
                found[f"{path} ({scheme})"] = problems
            view.context.close()

    assert found == {}, "\n".join(f"{path}: {p}" for path, ps in found.items() for p in ps)
