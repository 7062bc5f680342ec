"""The build-training-set form in headless Chromium: the trait picker follows the collection,
the preview follows the filters (count and thumbnails), errors read as sentences, and without
JavaScript the Preview button shows the same."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from collections_app.models import Token, TrainingSet
from tests.browser import CHROMIUM_ARGS, keep_screenshot, log_in, poll, watch_errors

from .factory import punks_like
from .test_browser import tiny_png

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUILD = "/admin/collections_app/trainingset/build/"


@pytest.fixture
def punks(plain_static_urls):
    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    punks_like(n=5, slug="other")
    collection = punks_like(n=80)
    for token in Token.objects.filter(collection=collection):
        token.image.save(f"{token.token_id}.png", ContentFile(tiny_png(token.pk)), save=True)
    return collection


def holding(collection, value):
    return Token.objects.filter(collection=collection, traits__value=value).count()


def shot(page, name):
    keep_screenshot(page, name)


def preview_count(page):
    return page.evaluate(
        "(document.querySelector('#build-preview .preview-count strong') || {}).textContent"
    )


def test_it_picks_traits_and_previews_as_the_filters_change(live_server, punks):
    from playwright.sync_api import sync_playwright

    males = holding(punks, "Male")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = watch_errors(page)
        log_in(page, live_server.url, BUILD)
        assert "Choose a collection" in page.inner_text("#trait-picker")

        page.select_option("#id_collection", str(punks.pk))
        page.wait_for_selector("#trait-picker details.trait-group")
        poll(page, "!!document.querySelector('#build-preview .preview-count')")
        assert preview_count(page) == "80"
        assert page.locator(".preview-strip img").count() == 24

        # The find box narrows the picker to matching values; their type opens.
        page.fill("#trait-find", "male")
        visible = page.evaluate(
            "[...document.querySelectorAll('#trait-picker li')]"
            ".filter(li => !li.hidden).map(li => li.querySelector('.trait-value').textContent)"
        )
        assert sorted(visible) == ["Female", "Male"]
        page.check("input[name=include_traits][value='type=Male']")
        poll(
            page,
            f"(document.querySelector('.preview-count strong') || {{}}).textContent === '{males}'",
        )
        poll(
            page,
            "[...document.querySelectorAll('.preview-strip img')]"
            ".every(i => i.complete && i.naturalWidth > 0)",
        )
        assert page.locator(".preview-strip img").count() == min(24, males)
        assert "with type=Male" in page.inner_text(".preview-funnel")
        page.fill("#trait-find", "")
        shot(page, "build-preview.png")

        # Invalid filters: the preview says why, in sentences, and nothing fails.
        page.fill("#id_top_price_pct", "150")
        poll(page, "!!document.querySelector('#build-preview .preview-errors')")
        assert page.inner_text("#build-preview .preview-errors") == (
            "Top % by price: Ensure this value is less than or equal to 100."
        )
        shot(page, "build-preview-error.png")

        page.fill("#id_top_price_pct", "")
        poll(page, "!!document.querySelector('#build-preview .preview-count')")
        page.fill("#id_name", "males")
        page.click("input[type=submit].default")
        page.wait_for_load_state()
        built = page.inner_text("ul.messagelist")
        browser.close()

    training_set = TrainingSet.objects.get(name="males")
    assert training_set.token_count == males
    assert training_set.filter_spec["include_traits"] == ["type=Male"]
    assert f"Built punks/males: {males} tokens." in built
    assert errors == []


def test_it_previews_with_the_button_without_javascript(live_server, punks):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(
            java_script_enabled=False, viewport={"width": 1280, "height": 1000}
        )
        page = context.new_page()
        errors = watch_errors(page)
        log_in(page, live_server.url, f"{BUILD}?collection={punks.pk}")
        page.locator("summary", has_text="accessory").click()
        page.check("input[name=exclude_traits][value='accessory=Earring']")
        page.click("input[name=_preview]")
        page.wait_for_load_state()
        count = page.inner_text("#build-preview .preview-count strong")
        ticked = page.is_checked("input[name=exclude_traits][value='accessory=Earring']")
        opened = page.evaluate(
            "document.querySelector('details.trait-group[open] summary').textContent"
        )
        shot(page, "build-preview-no-js.png")
        browser.close()

    assert count == str(80 - holding(punks, "Earring"))
    assert ticked
    assert opened.startswith("accessory")
    assert not TrainingSet.objects.exists()
    assert errors == []
