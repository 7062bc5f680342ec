"""Token images: checked with Pillow, saved content-addressed through Django storage.

Every image is decoded before it is accepted, with a pixel limit checked from the header (so a
decompression bomb is refused before any pixel is allocated) and a full decode (so a truncated
file is refused instead of training on half a picture). Two files are kept: the original bytes,
which archive export gives back unchanged, and a normalised RGBA PNG, which training reads; when
the original already is an RGBA PNG they are the same file.

Names are ``tokens/<sha256[:2]>/<sha256>.<ext>``: the same picture is stored once however often
it is ingested, a resumed or repeated ingest rewrites nothing, and any storage (local or S3)
works because nothing depends on renaming or overwriting.
"""

import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, UnidentifiedImageError

from .records import StoredImage

FORMAT_EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp"}
EXTENSION_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".webp": "WEBP"}


class ImageRejected(ValueError):
    """The bytes are not an image we accept; the message says why."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    sha256: str
    format: str
    width: int
    height: int
    png: bytes  # the normalised RGBA PNG (``data`` itself when it already is one)


def storage_name(sha256, extension):
    return f"tokens/{sha256[:2]}/{sha256}{extension}"


def check_image(data, *, max_pixels=None, max_bytes=None):
    """Decode ``data`` fully and return a :class:`CheckedImage`, or raise ImageRejected."""
    max_pixels = max_pixels or settings.INGEST_MAX_IMAGE_PIXELS
    max_bytes = max_bytes or settings.INGEST_MAX_IMAGE_BYTES
    if not data:
        raise ImageRejected("image file is empty")
    if len(data) > max_bytes:
        raise ImageRejected(f"image is {len(data):,} bytes, over the {max_bytes:,}-byte limit")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (width, height) = im.format, im.size
            if fmt not in FORMAT_EXTENSIONS:
                raise ImageRejected(f"{fmt} images are not accepted (use PNG, JPEG, GIF or WEBP)")
            if width * height > max_pixels:
                raise ImageRejected(
                    f"decompression bomb refused: {width}x{height} is over {max_pixels:,} pixels"
                )
            im.verify()  # checksums and structure, without decoding pixels
        with Image.open(io.BytesIO(data)) as im:
            animated = getattr(im, "is_animated", False)
            im.load()  # decodes the first frame: truncated data fails here
            if fmt == "PNG" and im.mode == "RGBA" and not animated:
                png = data
            else:
                buffer = io.BytesIO()
                im.convert("RGBA").save(buffer, "PNG")
                png = buffer.getvalue()
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRejected("not an image (Pillow cannot identify the file)") from None
    except Exception as exc:  # Pillow's decoders raise many types on hostile input
        raise ImageRejected(f"corrupt or truncated image: {exc}") from None
    return CheckedImage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        width=width,
        height=height,
        png=png,
    )


def _save_once(name, data):
    # Content-addressed: an existing file with this name already holds these bytes.
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(data))
    return name


def store_image(checked):
    """Save a checked image's original and normalised PNG; return the StoredImage to record."""
    original = _save_once(
        storage_name(checked.sha256, FORMAT_EXTENSIONS[checked.format]), checked.data
    )
    if checked.png is checked.data:
        normalised = original
    else:
        normalised = _save_once(
            storage_name(hashlib.sha256(checked.png).hexdigest(), ".png"), checked.png
        )
    return StoredImage(
        name=normalised,
        original_name=original,
        sha256=checked.sha256,
        size=len(checked.data),
        width=checked.width,
        height=checked.height,
        format=checked.format,
    )


def save_image(data, **limits):
    """check_image + store_image: the one call sources make for each downloaded/read image."""
    return store_image(check_image(data, **limits))


def original_name(token):
    """Where a token's original image bytes are stored (None when it has no image)."""
    if not token.image_sha256 or token.image_format not in FORMAT_EXTENSIONS:
        return None
    return storage_name(token.image_sha256, FORMAT_EXTENSIONS[token.image_format])


def read_original(token):
    name = original_name(token)
    if name is None:
        return None
    with default_storage.open(name, "rb") as fh:
        return fh.read()
