"""Admin moderation of generated images: hide, unhide, delete; requests are read-only."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.urls import reverse

from gan_app.generation import render
from gan_app.models import GeneratedImage, GenerationRequest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def images(generator):
    req = GenerationRequest.objects.create(generator=generator, kind="batch", seeds=[1, 2, 3])
    render.process(req.pk)
    return list(GeneratedImage.objects.order_by("seed"))


def act(client, action, images):
    return client.post(
        reverse("admin:gan_app_generatedimage_changelist"),
        {"action": action, "_selected_action": [i.pk for i in images]},
        follow=True,
    )


def test_it_hides_and_unhides_images(admin_client, client, images):
    response = act(admin_client, "hide", images[:2])

    assert response.status_code == 200 and b"Hid 2 image(s)" in response.content
    assert list(
        GeneratedImage.objects.filter(is_hidden=True)
        .order_by("seed")
        .values_list("seed", flat=True)
    ) == [
        1,
        2,
    ]
    assert client.get("/g/tiny-v1/1.png").status_code == 410
    gallery = client.get(reverse("gan:gallery")).content.decode()
    assert "/g/tiny-v1/1.png" not in gallery and "/g/tiny-v1/3.png" in gallery

    act(admin_client, "unhide", images[:1])
    assert client.get("/g/tiny-v1/1.png").status_code == 200


def test_it_deletes_images_with_their_files(admin_client, client, images):
    names = [i.image.name for i in images[:2]]

    response = admin_client.post(
        reverse("admin:gan_app_generatedimage_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [i.pk for i in images[:2]],
            "post": "yes",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert list(GeneratedImage.objects.values_list("seed", flat=True)) == [3]
    assert not any(default_storage.exists(n) for n in names)
    assert client.get("/g/tiny-v1/1.png").status_code == 404


def test_it_shows_the_moderation_list_with_thumbnails(admin_client, images):
    response = admin_client.get(reverse("admin:gan_app_generatedimage_changelist"))

    assert response.status_code == 200
    assert response.content.count(b'style="image-rendering: pixelated"') == 3
    page = admin_client.get(reverse("admin:gan_app_generationrequest_changelist"))
    assert page.status_code == 200 and b" ms" in page.content


def test_it_keeps_visitors_out_of_the_admin(client, images):
    response = act(client, "hide", images)

    assert GeneratedImage.objects.filter(is_hidden=True).count() == 0
    assert "/admin/login/" in response.redirect_chain[0][0]
