import hashlib
import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from collections_app.ingest.images import ImageRejected, check_image, save_image
from tests.ingest.conftest import png_bytes
from tests.ingest.test_archives import huge_png


def encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_it_keeps_an_rgba_png_as_is_and_stores_it_once():
    data = png_bytes((12, 10), (1, 2, 3, 200))

    stored = save_image(data)
    again = save_image(data)

    assert stored == again
    assert stored.name == stored.original_name
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (stored.size, stored.width, stored.height, stored.format) == (len(data), 12, 10, "PNG")
    with default_storage.open(stored.name, "rb") as fh:
        assert fh.read() == data


@pytest.mark.parametrize(
    ("mode", "fmt", "options"),
    [
        ("RGB", "JPEG", {"quality": 95}),
        ("P", "GIF", {}),
        ("RGB", "WEBP", {"lossless": True}),
        ("L", "PNG", {}),
    ],
)
def test_it_normalises_other_images_to_rgba_png_and_keeps_the_original(mode, fmt, options):
    original = encoded(Image.new(mode, (9, 7), "red" if mode != "L" else 128), fmt, **options)

    stored = save_image(original)

    assert stored.format == fmt and stored.original_name != stored.name
    with default_storage.open(stored.original_name, "rb") as fh:
        assert fh.read() == original
    with default_storage.open(stored.name, "rb") as fh:
        normalised = Image.open(io.BytesIO(fh.read()))
        assert (normalised.format, normalised.mode, normalised.size) == ("PNG", "RGBA", (9, 7))


def test_it_takes_the_first_frame_of_an_animation():
    frames = [Image.new("RGBA", (4, 4), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])

    checked = check_image(buffer.getvalue())

    assert Image.open(io.BytesIO(checked.png)).getpixel((0, 0))[:3] == (255, 0, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"GIF89a but then nothing useful", r"not an image|corrupt"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image"),
        (huge_png(), "decompression bomb"),
        (huge_png(5000, 5000), "decompression bomb"),  # under Pillow's own limit, over ours
        (encoded(Image.new("RGB", (4, 4)), "BMP"), "BMP images are not accepted"),
    ],
)
def test_it_refuses_what_is_not_a_safe_image(data, message, settings):
    settings.INGEST_MAX_IMAGE_PIXELS = 1_000_000
    with pytest.raises(ImageRejected, match=message):
        check_image(data)


def test_it_refuses_a_truncated_image():
    data = encoded(Image.effect_noise((64, 64), 50).convert("RGB"), "PNG")
    with pytest.raises(ImageRejected, match=r"truncated|corrupt"):
        check_image(data[: len(data) * 2 // 3])


def test_it_refuses_a_file_over_the_byte_limit(settings):
    settings.INGEST_MAX_IMAGE_BYTES = 100
    with pytest.raises(ImageRejected, match="over the 100-byte limit"):
        check_image(encoded(Image.effect_noise((64, 64), 50), "PNG"))
