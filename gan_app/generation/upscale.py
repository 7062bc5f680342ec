"""Full-size downloads of generated images: a nearest-neighbour upscale of the stored PNG.

A 32 px image is a thumbnail on today's screens and blurs when an app scales it smoothly;
repeating each pixel N times keeps the pixel art crisp and is deterministic (the same bytes
for the same image and scale), so it can be served and cached like the native file.
"""

import io

from PIL import Image

MAX_SCALE = 16
MAX_SIDE = 2048  # pixels: enough for any screen, small enough to render per request


class ScaleError(ValueError):
    """A ?scale= the site does not serve; the message says what it does serve."""


def parse_scale(raw: str | None, side: int) -> int:
    """1 when no scale is asked for; else a whole number 1..16 keeping the side <= 2048 px."""
    if raw in (None, ""):
        return 1
    try:
        scale = int(raw)
    except ValueError:
        message = f"scale must be a whole number from 1 to {MAX_SCALE}, not {raw!r}."
        raise ScaleError(message) from None
    biggest = max(1, min(MAX_SCALE, MAX_SIDE // max(side, 1)))
    if not 1 <= scale <= biggest:
        raise ScaleError(
            f"scale must be from 1 to {biggest} for this {side} px image (at most "
            f"{MAX_SIDE} px a side), not {scale}."
        )
    return scale


def upscale_png(data: bytes, scale: int) -> bytes:
    """The PNG ``data`` with every pixel repeated ``scale`` times each way."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        big = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    big.save(out, format="PNG", optimize=False)
    return out.getvalue()


def large_download(png_url: str, resolution: int, side: int = 512) -> dict:
    """The full-size download offered beside the native PNG: the URL of its upscale to about
    ``side`` px (a whole scale factor, at least 2x) and the side it will have."""
    scale = max(2, min(MAX_SCALE, side // max(resolution, 1)))
    joiner = "&" if "?" in png_url else "?"
    return {"url": f"{png_url}{joiner}scale={scale}", "side": resolution * scale}
