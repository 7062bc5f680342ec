"""Analytics store what a collection's images are: pixel art on which grid, in which palette."""

import io
import subprocess
import sys

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image

from collections_app.analytics import compute
from collections_app.demo.build import build_demo_collection
from collections_app.models import Collection, Token
from gan_app.gan.pixelart import PixelArtProfile
from tests.testenv import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_it_stores_the_grid_and_palette_of_a_pixel_art_collection():
    collection, _ = build_demo_collection(slug="profiled", size=40, seed=3)
    collection.refresh_from_db()

    compute.compute(collection)

    collection.refresh_from_db()
    stored = collection.image_profile
    assert stored["data_version"] == collection.data_version
    assert stored["images"] == 40 and stored["reason"] == ""
    profile = PixelArtProfile.from_dict(stored["pixel_art"])
    with Token.objects.filter(collection=collection).first().image.open("rb") as fh:
        first = np.asarray(Image.open(fh).convert("RGB"))
    assert profile.grid[0] * profile.block == first.shape[1]
    assert max(profile.grid) <= 32 and 2 <= profile.colours <= 256
    # Every colour of the image is in the palette.
    used = {tuple(c) for c in first.reshape(-1, 3)}
    assert used <= {tuple(c) for c in profile.palette}


def test_it_says_why_photographic_images_are_not_pixel_art():
    collection = Collection.objects.create(slug="photos", name="Photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        token = Token.objects.create(collection=collection, token_id=str(i), token_number=i)
        noise = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        token.image.save(f"{i}.png", ContentFile(png(noise)))
    collection.bump_data_version()
    collection.refresh_from_db()

    compute.compute(collection)

    collection.refresh_from_db()
    assert collection.image_profile["pixel_art"] is None
    assert collection.image_profile["images"] == 3
    assert "not pixel art" in collection.image_profile["reason"]


def test_it_reads_the_images_once_per_data_version():
    collection, _ = build_demo_collection(slug="once", size=20, seed=4)
    collection.refresh_from_db()
    compute.compute(collection)
    collection.refresh_from_db()
    first = collection.image_profile
    Token.objects.filter(collection=collection).update(image="")  # unreadable if read again

    assert compute.profile_images(collection, collection.data_version) == first


def test_pages_never_load_tensorflow():
    # The image profile is read on workers; a page process must not import TensorFlow for it.
    code = (
        "import sys, django; django.setup(); import nftsite.urls, gan_app.apps; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DJANGO_SETTINGS_MODULE": "nftsite.settings", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_the_admin_shows_the_grid_and_palette(admin_client):
    collection, _ = build_demo_collection(slug="shown", size=20, seed=5)
    collection.refresh_from_db()
    compute.compute(collection)
    collection.refresh_from_db()
    art = collection.image_profile["pixel_art"]

    page = admin_client.get(f"/admin/collections_app/collection/{collection.pk}/change/")

    text = page.content.decode()
    assert f"Pixel art: {art['grid'][0]} x {art['grid'][1]} cells" in text
    assert f"background:{art['palette'][0]}" in text
