"""Content safeguards on the site: excluded trait values are refused by conditional generation
and not offered; images read as carrying one are withheld with the reason; visitors report
images into the moderation queue."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from collections_app.models import Trait
from gan_app.evaluation import labelling
from gan_app.models import GeneratedImage, GenerationRequest, ImageReport

from .conditional import conditional_artifact, demo_collection, make_conditional_generator
from .conftest import body

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(scope="module")
def artifact():
    return conditional_artifact()


@pytest.fixture
def cond_collection():
    return demo_collection()


@pytest.fixture
def conditional(cond_collection, artifact):
    return make_conditional_generator(cond_collection, artifact)


def exclude(collection, trait_type, value):
    rows = Trait.objects.filter(collection=collection, trait_type=trait_type, value=value)
    assert Trait.exclude_values(rows, "offensive") == 1


def test_it_refuses_an_excluded_trait_with_a_clear_message(client, conditional, cond_collection):
    exclude(cond_collection, "eyes", "Laser")

    response = client.post(
        reverse("gan:generate"),
        {"generator": conditional.slug, "seed": "1", "trait.eyes": "laser"},
        **JSON,
    )

    assert response.status_code == 400
    assert "'Laser' is excluded on this site" in response.json()["error"]
    assert not GenerationRequest.objects.exists()


def test_it_does_not_offer_an_excluded_trait_in_the_picker(client, conditional, cond_collection):
    assert (
        '<option value="Laser">Laser</option>'
        in client.get(conditional.get_absolute_url()).content.decode()
    )

    exclude(cond_collection, "eyes", "Laser")

    page = client.get(conditional.get_absolute_url()).content.decode()
    assert '<option value="Laser">Laser</option>' not in page
    assert 'name="trait.eyes"' in page


def test_it_withholds_an_image_labelled_with_an_excluded_trait(client, made, collection):
    Trait.objects.create(collection=collection, trait_type="eyes", value="Laser", count=1)
    label = labelling.Label(
        traits={"eyes": [{"value": "Laser", "confidence": 0.97}]},
        rarity_score=1.0,
        nearest_distance=0.4,
        is_near_copy=False,
        excluded=labelling.excluded_read(
            {"eyes": [{"value": "Laser", "confidence": 0.97}]}, {("eyes", "Laser")}
        ),
    )
    labelling.apply_label(made, label).save()
    slug = made.generator.slug

    png = client.get(reverse("gan:image_png", args=[slug, 42]))
    page = client.get(reverse("gan:image", args=[slug, 42]))

    assert png.status_code == 451
    assert b"shows a trait this site does not publish (eyes: Laser)" in body(png)
    assert page.status_code == 451 and "eyes: Laser" in page.content.decode()
    assert f"/g/{slug}/42.png" not in client.get(reverse("gan:gallery")).content.decode()


def test_it_withholds_an_image_whose_trait_was_excluded_after_labelling(client, made, collection):
    made.traits = {"eyes": [{"value": "Laser", "confidence": 0.97}]}
    made.save(update_fields=["traits"])
    png_url = reverse("gan:image_png", args=[made.generator.slug, 42])
    assert client.get(png_url).status_code == 200

    Trait.objects.create(collection=collection, trait_type="eyes", value="Laser", count=1)
    exclude(collection, "eyes", "Laser")

    assert client.get(png_url).status_code == 451


def test_it_queues_a_reported_image_for_moderation(made, settings):
    visitor = Client(enforce_csrf_checks=True)
    page_url = reverse("gan:image", args=[made.generator.slug, 42])
    report_url = reverse("gan:report_image", args=[made.generator.slug, 42])
    page = visitor.get(page_url)
    assert f'action="{report_url}"' in page.content.decode()
    assert visitor.post(report_url, {"reason": "no token"}).status_code == 403  # CSRF

    token = page.cookies["csrftoken"].value
    response = visitor.post(
        report_url, {"reason": "  Looks like a slur  ", "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302 and response["Location"] == f"{page_url}?reported=1"
    report = ImageReport.objects.get()
    assert (report.image, report.reason, report.status) == (made, "Looks like a slur", "open")
    assert len(report.client_key) == 64 and "127.0.0.1" not in report.client_key
    assert (
        "a moderator will look at this image" in visitor.get(response["Location"]).content.decode()
    )


def test_it_limits_reports_per_client(client, made, settings):
    settings.REPORT_RATE_LIMIT = "2/h"
    url = reverse("gan:report_image", args=[made.generator.slug, 42])

    answers = [client.post(url, {"reason": str(i)}, **JSON).status_code for i in range(3)]

    assert answers == [202, 202, 429]
    assert ImageReport.objects.count() == 2
    other = client.post(url, {}, REMOTE_ADDR="10.0.0.9", **JSON)
    assert other.status_code == 202


def test_it_hides_or_dismisses_reports_from_the_admin(client, made):
    client.post(reverse("gan:report_image", args=[made.generator.slug, 42]), {"reason": "bad"})
    report = ImageReport.objects.get()
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("mod", "m@example.com", "pw"))
    url = reverse("admin:gan_app_imagereport_changelist")

    listing = admin.get(url).content.decode()
    assert "bad" in listing and "Open" in listing

    admin.post(url, {"action": "dismiss", "_selected_action": [report.pk]})
    report.refresh_from_db()
    assert report.status == "dismissed" and not GeneratedImage.objects.get().is_hidden

    admin.post(url, {"action": "hide_image", "_selected_action": [report.pk]})
    report.refresh_from_db()
    assert report.status == "hidden" and GeneratedImage.objects.get().is_hidden
    assert client.get(reverse("gan:image_png", args=[made.generator.slug, 42])).status_code == 410
