"""Visitors read plain language: a quality badge with the figures in a fold, no staff-only
notes, no issue numbers; the gallery filters by collection and by generator."""

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from collections_app.models import Collection, TrainingSet
from gan_app.models import GeneratedImage, TrainingRun
from gan_app.showcase import quality_badge

from .conftest import make_generator

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def report(fid, baseline):
    return {
        "domain": {"fid": fid},
        "traits": {"tv_mean": 0.1},
        "baseline": {"domain": {"fid": baseline}, "traits": {"tv_mean": 0.05}},
    }


@pytest.mark.parametrize(
    ("fid", "label"),
    [(1.5, "Close to the real thing"), (8.0, "Recognisable"), (40.0, "Rough sketches")],
)
def test_it_sums_up_quality_in_words(fid, label):
    assert quality_badge(report(fid, 2.0))["label"] == label


def test_it_has_no_badge_without_a_yardstick():
    assert quality_badge({"domain": {"fid": 3.0}}) is None
    assert quality_badge({}) is None


def test_the_generator_page_leads_with_the_badge_and_folds_the_figures(
    client, collection, tiny_artifact
):
    make_generator(collection, tiny_artifact, metrics=report(1.5, 2.0))

    html = client.get("/gen/tiny-v1/").content.decode()

    fold = html[html.index('<details class="about-numbers">') :].split("</details>")[0]
    before = html[: html.index('<details class="about-numbers">')]
    assert 'class="quality-badge is-good"' in before and "Close to the real thing" in before
    assert "<summary>About these numbers</summary>" in fold and "FID" in fold
    assert "FID" not in before.split("</header>", 1)[1]


def with_small_set_warning(collection, tiny_artifact):
    training_set = TrainingSet.objects.create(
        collection=collection,
        name="top 15%",
        token_count=12,
        stats={"warnings": ["Only 12 tokens: expect the generator to memorise them."]},
    )
    run = TrainingRun.objects.create(training_set=training_set, name="run")
    return make_generator(collection, tiny_artifact, training_run=run)


def test_staff_notes_stay_off_public_pages(client, collection, tiny_artifact):
    with_small_set_warning(collection, tiny_artifact)

    html = client.get("/gen/tiny-v1/").content.decode()

    assert "expect the generator to memorise" not in html


def test_staff_still_see_their_notes(client, collection, tiny_artifact):
    with_small_set_warning(collection, tiny_artifact)
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)

    html = client.get("/gen/tiny-v1/").content.decode()

    assert "Staff only</span> Only 12 tokens: expect the generator to memorise them." in html


def test_the_empty_home_page_sends_visitors_nowhere_near_the_admin(client):
    html = client.get("/").content.decode()

    assert "/admin/" not in html and "An admin can" not in html


ISSUE_NUMBER = re.compile(r"\bissues?\s*#?\s*\d+", re.IGNORECASE)


def product_files():
    for folder in ("templates", "static", "collections_app", "gan_app", "nftsite"):
        for path in (ROOT / folder).rglob("*"):
            if (
                path.suffix in {".html", ".js", ".css", ".py", ".txt"}
                and "migrations" not in path.parts
            ):
                yield path


def test_no_issue_numbers_anywhere_in_the_product():
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in product_files()
        for match in ISSUE_NUMBER.finditer(path.read_text(errors="replace"))
    ]

    assert found == []


def image_of(generator, seed):
    return GeneratedImage.objects.create(
        generator=generator, seed=seed, image=f"generated/{generator.slug}-{seed}.png", metadata={}
    )


def test_the_gallery_filters_by_collection_and_by_generator(client, collection, tiny_artifact):
    other = Collection.objects.create(slug="other-fakes", name="Other Fakes")
    mine = make_generator(collection, tiny_artifact)
    theirs = make_generator(other, tiny_artifact, slug="other-v1", name="Other Fakes v1")
    image_of(mine, 1), image_of(theirs, 2), image_of(theirs, 3)

    everything = client.get("/gallery/").context["page"].object_list
    by_collection = client.get("/gallery/?collection=other-fakes")
    by_generator = client.get("/gallery/?generator=tiny-v1").context["page"].object_list

    assert len(everything) == 3
    assert {i.seed for i in by_collection.context["page"].object_list} == {2, 3}
    assert by_collection.context["generators"] == [theirs]
    assert [i.seed for i in by_generator] == [1]
    assert client.get("/gallery/?collection=nope").status_code == 404
    html = by_collection.content.decode()
    assert (
        'aria-label="Filter by collection"' in html and 'aria-current="page">Other Fakes<' in html
    )


def test_the_generate_panel_says_the_version_once(client, collection, tiny_artifact):
    make_generator(collection, tiny_artifact, name="Tiny Fakes v1 (epoch 3)")

    html = client.get(f"/c/{collection.slug}/").content.decode()

    assert "Tiny Fakes v1 (epoch 3)</a>" in html
    assert "v1 · " not in html and "(version 1)" not in html
    page = client.get("/gen/tiny-v1/").content.decode()
    assert "Tiny Fakes v1 (epoch 3)</h1>" in page and "version 1</span>" not in page
