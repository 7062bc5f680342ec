"""Pixel-art collections: find the native grid and palette, train on the grid, render clean.

A pixel-art collection is drawn on a small grid with few colours (CryptoPunks: 24x24, about
220 colours across 10k punks) and often saved enlarged (each grid cell a block of equal
pixels). A GAN trained on resampled files learns blurred cells and in-between colours: the
speckled backgrounds and smeared accessories of a raw DCGAN. So:

- ``detect_pixel_art(images)`` finds the cell size (``block``), the native ``grid`` and the
  collection's ``palette`` (None when the images are not pixel art);
- training uses the native grid at an integer scale, **centred** in the model's square
  resolution and padded with the background colour (``pad_to_model``; a 24x24 punk sits at
  offset 4 in a 32x32 model image, at scale 2 and offset 8 in a 64 px one), so every cell is
  a whole block of model pixels and nothing is resampled between cells;
- ``PixelArtProfile.render`` turns a model output back into a token: crop the grid
  (``crop_from_model``), snap every pixel to the nearest palette colour *that the collection
  uses at that cell or next to it* (``local_palettes``: a sky cell can only become a sky
  colour, so a smeared gradient snaps back to a gradient, not to a face colour), then clean
  the background (isolated stray cells surrounded by background become background);
- ``upscale`` enlarges by an integer factor with nearest neighbour for full-size downloads.

Everything is a pure function of its inputs, so the same model output gives the same pixels
(and, through ``sampling.to_png``, the same bytes).
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from math import gcd

import numpy as np

MAX_PALETTE = 256  # more colours than this and it is not palette art
MAX_NATIVE_SIDE = 128  # a grid larger than the biggest model cannot be trained cell for cell
DEFAULT_UPSCALE = 512
DETECTION_SAMPLE = 64  # images looked at by detect_pixel_art (spread over the collection)

# Colour distance weights: green differences show most, blue least ("redmean", dark colours).
_SNAP_WEIGHTS = np.array([2.0, 4.0, 3.0], dtype=np.float32)


class PixelArtError(ValueError):
    """Images or a stored profile cannot be used as pixel art; the message says why."""


@dataclass(frozen=True)
class PixelArtProfile:
    """How a pixel-art collection is drawn: its grid, its palette and its background."""

    grid: tuple[int, int]  # native (width, height) in cells
    block: int  # file pixels per cell side (1 when files are saved at the native size)
    palette: np.ndarray  # uint8 (k, 3), most used first
    background: tuple[int, int, int] | None  # the colour behind the figures, if one dominates
    # bool (h, w, k): which palette colours the collection uses at or next to each cell
    # (layered art puts every trait at fixed cells: a sky cell is only ever sky colours).
    local: np.ndarray | None = None

    def to_dict(self) -> dict:
        """JSON form (stored on the collection and in generator manifests)."""
        data = {
            "grid": list(self.grid),
            "block": self.block,
            "palette": [_hex(c) for c in self.palette],
            "background": _hex(self.background) if self.background is not None else None,
        }
        if self.local is not None:
            data["local"] = base64.b64encode(np.packbits(self.local).tobytes()).decode()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> PixelArtProfile:
        try:
            grid = tuple(int(v) for v in data["grid"])
            palette = np.array([_rgb(c) for c in data["palette"]], dtype=np.uint8).reshape(-1, 3)
            background = _rgb(data["background"]) if data.get("background") else None
            block = int(data.get("block", 1))
            local = _unpack_local(data.get("local"), grid, len(palette))
        except (KeyError, TypeError, ValueError) as exc:
            raise PixelArtError(f"not a pixel-art profile: {exc}") from exc
        if len(grid) != 2 or min(grid) < 1 or not len(palette) or block < 1:
            raise PixelArtError(f"not a pixel-art profile: grid {grid}, {len(palette)} colours")
        return cls(grid, block, palette, background, local)

    def fits(self, resolution: int) -> bool:
        """Whether the native grid fits the model's square resolution cell for cell."""
        return max(self.grid) <= resolution

    @property
    def colours(self) -> int:
        return len(self.palette)

    def render(
        self,
        model_images: np.ndarray,
        labels: np.ndarray | None = None,
        trait_colours: TraitColours | None = None,
    ) -> np.ndarray:
        """uint8 model outputs (N, R, R, 3) -> uint8 tokens (N, h, w, 3) on grid and palette.

        A trait-conditioned generator's images may also pass their multi-hot trait ``labels``
        (N, units) and the run's ``trait_colours``: each cell then only takes colours that the
        tokens sharing every one of its trait values use there (``TraitColours``)."""
        native = crop_from_model(model_images, self.grid)
        if trait_colours is not None and labels is not None and self.local is not None:
            snapped = np.empty_like(native)
            for start in range(0, len(native), 64):  # the masks of 64 images at a time
                allowed = trait_colours.allowed(labels[start : start + 64], self.local)
                chunk = native[start : start + 64]
                snapped[start : start + 64] = snap_to_local_palette(chunk, self.palette, allowed)
        elif self.local is not None:
            snapped = snap_to_local_palette(native, self.palette, self.local)
        else:
            snapped = snap_to_palette(native, self.palette)
        if self.background is not None:
            snapped = clean_background(snapped, self.background)
        return snapped


def detect_pixel_art(
    images, max_colours: int = MAX_PALETTE, block: int | None = None
) -> PixelArtProfile | None:
    """The collection's profile, or None when its images are not pixel art.

    ``images``: uint8 (N, H, W, 3) RGB arrays of one size (alpha already composited). Pixel art
    means: every sampled image is made of equal ``block`` x ``block`` cells (block 1 counts
    when the file is already small), the native grid is at most ``MAX_NATIVE_SIDE``, and the
    whole sample uses at most ``max_colours`` colours. ``block`` skips the cell search when the
    caller already knows it (e.g. from every image rather than a sample).
    """
    images = _check_images(images)
    if block is None:
        block = 0
        for image in images[_spread(len(images), DETECTION_SAMPLE)]:
            block = gcd(block, native_block(image))
    native = downsample_cells(images, block)
    height, width = native.shape[1:3]
    if max(width, height) > MAX_NATIVE_SIDE:
        return None
    colours, counts = np.unique(_pack(native.reshape(-1, 3)), return_counts=True)
    if len(colours) > max_colours:
        return None
    order = np.argsort(-counts, kind="stable")
    palette = _unpack(colours[order])
    local = local_palettes(native, palette)
    return PixelArtProfile((width, height), block, palette, _dominant_border(native), local)


def local_palettes(native: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """bool (h, w, k): palette colours used at each cell or its 8 neighbours in ``native``."""
    index = _palette_index(native, palette)
    height, width = index.shape[1:]
    seen = np.zeros((height, width, len(palette)), dtype=bool)
    cells = np.broadcast_to(np.arange(height * width).reshape(1, height, width), index.shape)
    seen.reshape(-1, len(palette))[cells.reshape(-1), index.reshape(-1)] = True
    return _grow(seen)


def snap_to_local_palette(images: np.ndarray, palette: np.ndarray, allowed) -> np.ndarray:
    """Like ``snap_to_palette``, but each cell only takes a colour ``allowed[y, x]`` permits
    (bool (h, w, k) for every image, or (N, h, w, k): one mask per image)."""
    images = np.asarray(images, dtype=np.uint8)
    palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    cells = images.shape[1] * images.shape[2]
    allowed = np.asarray(allowed, dtype=bool)
    per_image = allowed.ndim == 4
    # Per cell and colour: the colour's own term of the distance (``_scores``), or inf where
    # the cell may not take it.
    terms = _colour_terms(palette)
    shared = None if per_image else np.where(allowed.reshape(cells, -1), terms, np.inf)[None]
    out = np.empty_like(images)
    for start in range(0, len(images), 64):
        chunk = images[start : start + 64]
        score = _pixel_terms(chunk.reshape(-1, 3), palette).reshape(len(chunk), cells, -1)
        if per_image:
            mask = allowed[start : start + 64].reshape(len(chunk), cells, -1)
            score += np.where(mask, terms, np.inf)
        else:
            score += shared
        out[start : start + 64] = palette[score.argmin(-1)].reshape(chunk.shape)
    return out


class TraitColours:
    """Which palette colours the tokens carrying each trait unit use at each cell or next to
    it: bool ``(units, h, w, k)`` (units: a conditional run's vocabulary, ``conditioning``).

    Layered art draws each trait value at fixed cells with its own colours, so an image asked
    for (Zombie, Beanie) may use at a cell only colours that zombie tokens *and* beanie tokens
    use there: a blurred outline snaps back to the outline colour of its own skin, not to the
    grey-green of another one. ``allowed(labels, local)`` intersects the units an image
    carries with the collection's ``local`` palettes; a cell where no colour survives keeps
    ``local`` (a combination whose values never met at that cell).
    """

    # Larger masks (units x cells x colours) are not fitted: 8 MB of bits in every checkpoint
    # and generator is plenty (the demo's are 0.5 MB, the CryptoPunks sample's 0.8 MB).
    MAX_BITS = 2**26

    def __init__(self, units: np.ndarray, text: str | None = None):
        self.units = np.asarray(units, dtype=bool)
        if self.units.ndim != 4:
            raise PixelArtError(f"trait colours must be (units, h, w, k), got {self.units.shape}")
        self._text = text  # ``to_text``, once made (or as read)

    @classmethod
    def fits(cls, units: int, grid: tuple[int, int], colours: int) -> bool:
        """Whether masks of this size are fitted at all (``MAX_BITS``)."""
        return units * grid[0] * grid[1] * colours <= cls.MAX_BITS

    @classmethod
    def fit(cls, native: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> TraitColours:
        """From the training tokens at their native grid (N, h, w, 3, on ``palette``) and
        their multi-hot trait rows (N, units)."""
        native = _check_images(native)
        labels = np.asarray(labels) > 0.5
        if labels.ndim != 2 or len(labels) != len(native):
            raise PixelArtError(f"want one trait row per token, got {labels.shape}")
        height, width = native.shape[1:3]
        size = height * width * len(palette)
        units = np.zeros((labels.shape[1], size), dtype=bool)
        step = max(1, 2**22 // size)  # tokens per pass: a few MB of masks at a time
        for start in range(0, len(native), step):
            seen = _cell_colours(native[start : start + step], palette).reshape(-1, size)
            carried = labels[start : start + step].T.astype(np.float32)
            units |= carried @ seen.astype(np.float32) > 0
        return cls(units.reshape(labels.shape[1], height, width, len(palette)))

    def allowed(self, labels: np.ndarray, local: np.ndarray) -> np.ndarray:
        """bool (N, h, w, k): the colours each image's cells may take (class docstring)."""
        labels = np.asarray(labels) > 0.5
        if labels.ndim != 2 or labels.shape[1] != len(self.units):
            raise PixelArtError(f"trait rows must have {len(self.units)} units, got {labels.shape}")
        if self.units.shape[1:] != local.shape:
            raise PixelArtError(
                f"trait colours {self.units.shape[1:]} do not match the palettes {local.shape}"
            )
        # Images drawn with the same traits (a grid's rows, one request's batch) share a mask.
        rows, inverse = np.unique(labels, axis=0, return_inverse=True)
        masks = np.empty((len(rows), *local.shape), dtype=bool)
        for row, carried in enumerate(rows):
            mask = local & np.logical_and.reduce(self.units[carried], axis=0)
            empty = ~mask.any(-1)
            mask[empty] = local[empty]
            masks[row] = mask
        return masks[inverse.reshape(-1)]

    def to_text(self) -> str:
        """Compact text for a JSON manifest: base64 of the deflated bits, with the shape."""
        if self._text is None:
            shape = ",".join(str(n) for n in self.units.shape)
            bits = zlib.compress(np.packbits(self.units).tobytes(), 9)
            self._text = f"{shape}:{base64.b64encode(bits).decode()}"
        return self._text

    @classmethod
    def from_text(cls, text: str) -> TraitColours:
        try:
            shape_text, encoded = str(text).split(":", 1)
            shape = tuple(int(n) for n in shape_text.split(","))
            if len(shape) != 4:
                raise ValueError(f"a {shape} mask is not (units, h, w, k)")
            units = _unpack_bits(zlib.decompress(base64.b64decode(encoded)), shape)
        except (ValueError, zlib.error) as exc:
            raise PixelArtError(f"unreadable trait colours: {exc}") from exc
        return cls(units, text=str(text))


def _palette_index(native: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """int (N, h, w): each cell's position in ``palette`` (cells are palette colours)."""
    packed = _pack(palette)
    order = np.argsort(packed)
    position = np.searchsorted(packed[order], _pack(native.reshape(-1, 3)))
    return order[np.minimum(position, len(order) - 1)].reshape(native.shape[:3])


def _cell_colours(native: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """bool (N, h, w, k): per image, the palette colours at each cell or its 8 neighbours."""
    index = _palette_index(native, palette)
    seen = np.zeros((*index.shape, len(palette)), dtype=bool)
    np.put_along_axis(seen, index[..., None], True, axis=-1)
    return _grow(seen)


def _grow(seen: np.ndarray) -> np.ndarray:
    """bool (..., h, w, k) -> the same with each cell's colours joined by its 8 neighbours'."""
    height, width = seen.shape[-3:-1]
    pad = [(0, 0)] * (seen.ndim - 3) + [(1, 1), (1, 1), (0, 0)]
    padded = np.pad(seen, pad)
    grown = np.zeros_like(seen)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            grown |= padded[..., dy : dy + height, dx : dx + width, :]
    return grown


def native_block(image: np.ndarray) -> int:
    """The largest cell side ``b`` such that ``image`` is made of equal b x b blocks."""
    height, width = image.shape[:2]
    for block in sorted(_divisors(gcd(height, width)), reverse=True):
        cells = image[::block, ::block]
        if np.array_equal(cells.repeat(block, 0).repeat(block, 1), image):
            return block
    return 1


def downsample_cells(images: np.ndarray, block: int) -> np.ndarray:
    """One pixel per cell (the cells are uniform, so any pixel of a cell is the cell)."""
    return np.ascontiguousarray(images[:, ::block, ::block]) if block > 1 else images


def model_scale(grid: tuple[int, int], resolution: int) -> int:
    """Model pixels per grid cell: the largest integer scale at which the grid fits."""
    side = max(grid)
    if side > resolution:
        raise PixelArtError(
            f"a {grid[0]}x{grid[1]} grid does not fit a {resolution} px model; "
            f"choose a resolution of at least {side}"
        )
    return resolution // side


def pad_to_model(images: np.ndarray, resolution: int, background) -> np.ndarray:
    """Native-grid images (N, h, w, 3) -> (N, R, R, 3): each cell an s x s block, centred,
    padded with ``background`` (s = ``model_scale``; 24x24 in 32 px: s 1, offset 4)."""
    count, height, width = images.shape[:3]
    scale = model_scale((width, height), resolution)
    big = images.repeat(scale, 1).repeat(scale, 2) if scale > 1 else images
    top, left = (resolution - height * scale) // 2, (resolution - width * scale) // 2
    out = np.empty((count, resolution, resolution, 3), dtype=np.uint8)
    out[:] = np.asarray(background, dtype=np.uint8)
    out[:, top : top + height * scale, left : left + width * scale] = big
    return out


def crop_from_model(images: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The inverse of ``pad_to_model``: the centred grid, each s x s block averaged to a cell."""
    images = np.asarray(images)
    width, height = grid
    resolution = images.shape[1]
    scale = model_scale(grid, resolution)
    top, left = (resolution - height * scale) // 2, (resolution - width * scale) // 2
    region = images[:, top : top + height * scale, left : left + width * scale]
    if scale == 1:
        return region
    cells = region.reshape(len(region), height, scale, width, scale, 3).astype(np.float32)
    return np.rint(cells.mean(axis=(2, 4))).astype(np.uint8)


def snap_to_palette(images: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Every pixel replaced by the nearest palette colour (weighted RGB; exact, deterministic)."""
    images = np.asarray(images, dtype=np.uint8)
    palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    packed = _pack(images.reshape(-1, 3))
    # Snap each distinct colour once: a token has a few hundred colours at most.
    colours, inverse = np.unique(packed, return_inverse=True)
    score = _pixel_terms(_unpack(colours), palette) + _colour_terms(palette)[None, :]
    nearest = score.argmin(1)
    return palette[nearest[inverse.reshape(-1)]].reshape(images.shape)


# The nearest colour, exactly and fast. The weighted squared distance
#     sum w (p - c)^2 = sum w p^2 + sum w c^2 - 2 sum w p c
# has a first term that is the same for every colour, so the nearest colour is the argmin of
# ``_colour_terms(c) + _pixel_terms(p, c)``. With integer pixels and weights every term is an
# integer below 2**24 (at most 2 * 9 * 255**2 = 1,170,450), so float32 holds it and the matrix
# product exactly, in any summation order: the nearest colour (ties: the first) is the same on
# every machine, at half the memory traffic of float64 (rendering a token is this product).


def _colour_terms(palette: np.ndarray) -> np.ndarray:
    """(k,) float32: sum w c^2 per palette colour."""
    c = palette.astype(np.float32)
    return (c * c) @ _SNAP_WEIGHTS


def _pixel_terms(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(n, k) float32: -2 sum w p c for each pixel and palette colour."""
    p = pixels.astype(np.float32)
    return (p * (-2.0 * _SNAP_WEIGHTS)) @ palette.astype(np.float32).T


def clean_background(images: np.ndarray, background) -> np.ndarray:
    """Cells whose 8 neighbours are all background become background (stray specks).

    A cell at the image edge counts the outside as background. Figures are drawn with
    connected outlines, so a lone cell in open background is noise, never a drawn detail.
    """
    images = np.asarray(images, dtype=np.uint8)
    background = np.asarray(background, dtype=np.uint8)
    is_bg = (images == background).all(-1)
    padded = np.pad(is_bg, ((0, 0), (1, 1), (1, 1)), constant_values=True)
    height, width = is_bg.shape[1:]
    neighbours_bg = np.ones_like(is_bg)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if (dy, dx) != (1, 1):
                neighbours_bg &= padded[:, dy : dy + height, dx : dx + width]
    stray = ~is_bg & neighbours_bg
    out = images.copy()
    out[stray] = background
    return out


def upscale(image: np.ndarray, size: int = DEFAULT_UPSCALE) -> np.ndarray:
    """Nearest-neighbour enlargement by the largest integer factor that stays within ``size``."""
    factor = max(1, size // max(image.shape[:2]))
    return image.repeat(factor, 0).repeat(factor, 1)


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise PixelArtError(f"want uint8 (N, H, W, 3) images, got {images.dtype} {images.shape}")
    return images


def _spread(count: int, wanted: int) -> np.ndarray:
    return np.unique(np.linspace(0, count - 1, min(count, wanted)).round().astype(int))


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _dominant_border(native: np.ndarray):
    """The colour of most border cells, if at least half of them share it."""
    border = np.concatenate(
        [
            native[:, 0].reshape(-1, 3),
            native[:, -1].reshape(-1, 3),
            native[:, :, 0].reshape(-1, 3),
            native[:, :, -1].reshape(-1, 3),
        ]
    )
    colours, counts = np.unique(_pack(border), return_counts=True)
    if counts.max() * 2 < len(border):
        return None
    return tuple(int(v) for v in _unpack(colours[[counts.argmax()]])[0])


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def _unpack(packed: np.ndarray) -> np.ndarray:
    packed = np.asarray(packed, dtype=np.uint32)
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], 1).astype(np.uint8)


def _unpack_local(encoded, grid, colours):
    if not encoded:
        return None
    width, height = grid
    return _unpack_bits(base64.b64decode(encoded), (height, width, colours))


def _unpack_bits(packed: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """``np.packbits`` bytes -> bool array of ``shape``; ValueError when they are too few."""
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8))
    size = int(np.prod(shape))
    if len(bits) < size:
        raise ValueError(f"{len(bits)} bits for a {shape} mask")
    return bits[:size].astype(bool).reshape(shape)


def _hex(colour) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in colour)


def _rgb(value: str) -> tuple[int, int, int]:
    value = str(value)
    if len(value) != 7 or value[0] != "#":
        raise ValueError(f"not a colour like '#a1b2c3': {value!r}")
    return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))
