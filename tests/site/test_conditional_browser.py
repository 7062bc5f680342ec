"""A visitor asks a conditional generator for traits in headless Chromium, with a real worker."""

import io
from pathlib import Path

import pytest
from PIL import Image

from .conditional import conditional_artifact, demo_collection, make_conditional_generator
from .test_browser import Page, browser  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def conditional_site(generate_worker, plain_static_urls):
    from gan_app.evaluation import reports as evaluation

    collection = demo_collection(slug="cond-browser")
    generator = make_conditional_generator(collection, conditional_artifact(), slug="cond-b-v1")
    # The collection's trait classifier (stored, so the worker reads the results with it).
    evaluation.classifier_for(collection, epochs=1, width=8, feature_dim=16)
    return generator


def test_it_generates_the_traits_a_visitor_picks_and_shows_what_is_recognised(
    live_server,
    conditional_site,
    browser,  # noqa: F811
):
    generator = conditional_site
    view = Page(browser, live_server.url)
    page = view.page

    page.goto(f"{live_server.url}{generator.get_absolute_url()}")
    page.select_option("select[name='trait.type']", "Zombie")
    page.select_option("select[name='trait.eyes']", "Laser")
    page.fill("#gen-seed", "77")
    page.click("#generate .btn-generate")
    page.wait_for_selector("#generate-result[data-state=done] img.result-image", timeout=60000)
    page.wait_for_selector("#generate-result [data-trait-check] li")
    rows = page.eval_on_selector_all(
        "#generate-result [data-trait-check] li",
        "items => items.map(li => [li.textContent, li.dataset.seen])",
    )
    with page.expect_download() as download:
        page.click("#generate-result >> text=Download PNG")
    png = Path(download.value.path()).read_bytes()
    view.shot("conditional-generator-after-generate")
    permalink = page.request.get(
        f"{live_server.url}/g/{generator.slug}/77.png?traits=eyes%3DLaser%3Btype%3DZombie"
    )

    assert [text.split(" — ")[0] for text, _ in rows] == ["Eyes: Laser", "Type: Zombie"]
    assert all(seen in ("yes", "no") for _, seen in rows)  # read by the classifier
    assert Image.open(io.BytesIO(png)).size == (32, 32)
    assert permalink.status == 200 and permalink.body() == png
    assert view.errors == []
    assert all(url.startswith(live_server.url) for url in view.requests), "nothing leaves the site"
