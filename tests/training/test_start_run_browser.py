"""The start-run form in headless Chromium: picking another training set fills in its suggested
batch size, augmentation and trait conditioning, but never over a value the admin typed."""

import pytest
from django.contrib.auth import get_user_model

from collections_app.models import Collection, Token, TokenTrait, TrainingSet, Trait
from gan_app.training.runs import SMALL_SET_IMAGES
from tests.browser import CHROMIUM_ARGS, keep_screenshot, log_in, watch_errors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

START = "/admin/gan_app/trainingrun/start/"


def image_set(slug, images):
    """A set of ``images`` tokens whose image names are set: the defaults count names only."""
    collection = Collection.objects.create(slug=slug, name=slug.title())
    tokens = Token.objects.bulk_create(
        Token(collection=collection, token_id=str(i), token_number=i, image=f"{slug}/{i}.png")
        for i in range(images)
    )
    training_set = TrainingSet.objects.create(collection=collection, name="all", token_count=images)
    training_set.tokens.set(tokens)
    return training_set


@pytest.fixture
def two_sets(plain_static_urls):
    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    return image_set("tiny", 6), image_set("large", SMALL_SET_IMAGES)


def fields(page):
    """The batch size, whether augmentation is ticked, and the batch size's help text."""
    return (
        page.input_value("#id_batch_size"),
        page.is_checked("#id_augment"),
        page.evaluate(
            "document.getElementById('id_batch_size').closest('.form-row')"
            ".querySelector('.help').textContent"
        ),
    )


def test_it_applies_each_sets_defaults_unless_edited_by_hand(live_server, two_sets):
    from playwright.sync_api import sync_playwright

    tiny, large = two_sets
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = watch_errors(page)
        log_in(page, live_server.url, START)
        loaded = fields(page)

        page.select_option("#id_training_set", str(tiny.pk))
        picked_tiny = fields(page)
        keep_screenshot(page, "start-run-defaults")
        page.select_option("#id_training_set", str(large.pk))
        picked_large = fields(page)

        # By hand: a batch of 16. Picking the tiny set again changes augmentation only.
        page.fill("#id_batch_size", "16")
        page.select_option("#id_training_set", str(tiny.pk))
        after_edit = fields(page)
        # Augmentation unticked by hand: the large set (no augmentation) then back keeps it so.
        page.uncheck("#id_augment")
        page.select_option("#id_training_set", str(large.pk))
        page.select_option("#id_training_set", str(tiny.pk))
        kept = fields(page)
        browser.close()

    assert loaded[:2] == ("64", False)
    assert picked_tiny == ("4", True, "tiny/all has 6 image(s); a batch is at most that many.")
    assert picked_large == (
        "64",
        False,
        f"large/all has {SMALL_SET_IMAGES} image(s); a batch is at most that many.",
    )
    assert after_edit[:2] == ("16", True)
    assert kept[:2] == ("16", False)
    assert errors == []


def test_it_starts_from_the_set_in_the_address_and_keeps_its_defaults(live_server, two_sets):
    from playwright.sync_api import sync_playwright

    tiny, large = two_sets
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors = watch_errors(page)
        log_in(page, live_server.url, f"{START}?training_set={tiny.pk}")
        loaded = fields(page)
        page.select_option("#id_training_set", str(large.pk))
        picked_large = fields(page)
        browser.close()

    assert loaded[:2] == ("4", True)
    assert picked_large[:2] == ("64", False)
    assert errors == []


def test_it_ticks_trait_conditioning_for_sets_that_list_traits(live_server, two_sets, settings):
    from playwright.sync_api import sync_playwright

    settings.TRAIN_DEFAULT_PRESET = "nff"  # a recipe that conditions on traits
    tiny, large = two_sets
    eyes = Trait.objects.create(collection=tiny.collection, trait_type="eyes", value="laser")
    for token in tiny.tokens.all():
        TokenTrait.objects.create(token=token, trait=eyes)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors = watch_errors(page)
        log_in(page, live_server.url, START)
        page.select_option("#id_training_set", str(tiny.pk))
        with_traits = page.is_checked("#id_conditional")
        page.select_option("#id_training_set", str(large.pk))
        without_traits = page.is_checked("#id_conditional")
        # Ticked by hand: picking a set is no longer a reason to change it.
        page.check("#id_conditional")
        page.select_option("#id_training_set", str(tiny.pk))
        page.select_option("#id_training_set", str(large.pk))
        kept = page.is_checked("#id_conditional")
        browser.close()

    assert (with_traits, without_traits, kept) == (True, False, True)
    assert errors == []
