"""Generated images download at full size too: a nearest-neighbour upscale of the stored PNG
(``?scale=N``), deterministic, beside the native file; metadata names say the version once."""

import io

import pytest
from PIL import Image

from gan_app.models import GenerationRequest

from .conftest import body, make_generator

pytestmark = pytest.mark.django_db


def test_it_upscales_every_pixel_into_a_block(client, made):
    response = client.get("/g/tiny-v1/42.png?scale=16&download=1")

    with made.image.open("rb") as fh:
        native = Image.open(fh).convert("RGB")
        native.load()
    big = Image.open(io.BytesIO(body(response))).convert("RGB")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="tiny-v1-42@16x.png"'
    assert big.size == (native.width * 16, native.height * 16)
    for x, y in [(0, 0), (5, 7), (native.width - 1, native.height - 1)]:
        block = {big.getpixel((16 * x + dx, 16 * y + dy)) for dx in range(16) for dy in range(16)}
        assert block == {native.getpixel((x, y))}
    assert response["ETag"] == f'"{made.image_sha256}@16x"'


def test_it_gives_the_same_bytes_every_time(client, made):
    first = body(client.get("/g/tiny-v1/42.png?scale=8"))
    second = body(client.get("/g/tiny-v1/42.png?scale=8"))

    assert first == second


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ("abc", "scale must be a whole number from 1 to 16, not 'abc'."),
        ("0", "scale must be from 1 to 16 for this 32 px image (at most 2048 px a side), not 0."),
        ("99", "scale must be from 1 to 16 for this 32 px image (at most 2048 px a side), not 99."),
    ],
)
def test_it_refuses_a_scale_it_does_not_serve_with_a_reason(client, made, scale, message):
    response = client.get(f"/g/tiny-v1/42.png?scale={scale}")

    assert response.status_code == 400
    assert response.content.decode() == message


def test_the_result_offers_the_large_download_beside_the_native_one(client, made):
    req = GenerationRequest.objects.get(seeds=[42])
    data = client.get(f"/generate/r/{req.public_id}.json").json()

    assert data["images"][0]["large"] == {"url": "/g/tiny-v1/42.png?scale=16", "side": 512}
    page = client.get("/g/tiny-v1/42/").content.decode()
    assert "/g/tiny-v1/42.png?scale=16&amp;download=1" in page and "Download 512 px" in page


def test_metadata_names_the_version_once(collection, tiny_artifact):
    named = make_generator(collection, tiny_artifact, slug="v-named", name="Tiny v1 (epoch 3)")
    plain = make_generator(collection, tiny_artifact, slug="plain", name="Tiny", version=2)

    from gan_app.generation.metadata import image_metadata

    assert "drawn by Tiny v1 (epoch 3), a GAN" in image_metadata(named, 1)["description"]
    assert "drawn by Tiny, version 2, a GAN" in image_metadata(plain, 1)["description"]
