"""The synthetic demo collection: layered 32x32 pixel-art characters, like an NFT layer engine.

Each token is composed from layers drawn in a fixed order on a fixed grid (background, body,
mouth, eyes, accessories, headwear), so every trait value always occupies the same pixels: a
crown is always the gold shape above the head, laser eyes always the red beams at eye height.
That makes traits learnable from the pixels (a trait classifier and a trait-conditioned GAN are
trained on it) and keeps a 32 px DCGAN's job small. Trait values are picked with rarity
weights; ``accessory`` may repeat, as in CryptoPunks, and a "None" headwear is simply absent
from the metadata, the way real collections list only the traits a token has.

Sale prices grow with rarity (log-normal noise around it), a share of tokens never sold, sales
are spread over 2021-2023 with ETH at its rough USD price of the day. Everything follows from
``seed``: the same seed gives the same bytes, images and archives alike.
"""

import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image

SIZE = 32
DEFAULT_SLUG = "pixel-fakes"
DEFAULT_SIZE = 1000
DEFAULT_SEED = 7
SOLD_SHARE = 0.8
SALES_FROM = datetime(2021, 6, 1, tzinfo=UTC)
SALES_DAYS = 940

Color = tuple[int, int, int]


def _hex(value):
    value = value.lstrip("#")
    return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))


def _shade(color, factor):
    return tuple(max(0, min(255, round(c * factor))) for c in color)


class Canvas:
    """A 32x32 RGBA layer; everything not painted stays transparent."""

    def __init__(self):
        self.pixels = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)

    def px(self, points, color):
        for x, y in points:
            if 0 <= x < SIZE and 0 <= y < SIZE:
                self.pixels[y, x] = (*color, 255)

    def rect(self, x0, y0, x1, y1, color):
        """Fill the inclusive rectangle (x0, y0)-(x1, y1)."""
        self.pixels[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = (*color, 255)


# --- Layers ------------------------------------------------------------------------------------
# Fixed anatomy: head x 10..21, y 9..22; eyes on row 14; mouth on row 19; neck y 23..25;
# shoulders from y 26 down. Every drawing below refers to these rows and columns.
OUTLINE = _hex("#1b1b1f")
WHITE = _hex("#ffffff")
BLACK = _hex("#000000")
GOLD = _hex("#f2c12e")
RED = _hex("#e0322b")

BACKGROUNDS = {
    "Sky": (_hex("#8ecae6"), 18),
    "Mint": (_hex("#95d5b2"), 18),
    "Peach": (_hex("#ffcdb2"), 16),
    "Lavender": (_hex("#cdb4db"), 16),
    "Slate": (_hex("#5c677d"), 14),
    "Sunset": (None, 8),  # a vertical orange-to-pink gradient
    "Night": (None, 6),  # dark navy with stars
    "Gold": (GOLD, 4),
}

SKINS = {
    "Light": (_hex("#f3cfa6"), 28),
    "Tan": (_hex("#c68642"), 24),
    "Dark": (_hex("#7a4a26"), 20),
    "Zombie": (_hex("#7da269"), 11),
    "Ape": (_hex("#6b4a2f"), 8),
    "Alien": (_hex("#b8f0f0"), 5),
    "Robot": (_hex("#9aa4ae"), 4),
}

EYES = {
    "Normal": 30,
    "Wide": 16,
    "Sleepy": 14,
    "Angry": 10,
    "Shades": 10,
    "3D Glasses": 8,
    "VR Headset": 5,
    "Laser": 3,
}

MOUTHS = {"Smile": 30, "Neutral": 26, "Frown": 14, "Open": 12, "Grin": 10, "Beard": 8}

HEADWEAR = {
    "None": 28,
    "Cap": 16,
    "Beanie": 14,
    "Headband": 10,
    "Mohawk": 10,
    "Top Hat": 9,
    "Crown": 4,
    "Halo": 3,
    "Wizard Hat": 6,
}

# (probability, group): accessories in one group exclude each other (one thing in the mouth).
ACCESSORIES = {
    "Earring": (0.24, "ear"),
    "Gold Chain": (0.12, "neck"),
    "Bow Tie": (0.07, "neck"),
    "Cigarette": (0.10, "mouth"),
    "Pipe": (0.05, "mouth"),
    "Clown Nose": (0.06, "nose"),
}

TRAIT_TYPES = ("background", "type", "eyes", "mouth", "headwear", "accessory")


def draw_background(name):
    canvas = Canvas()
    color = BACKGROUNDS[name][0]
    if name == "Sunset":
        top, bottom = np.array(_hex("#ff9f1c")), np.array(_hex("#e5567f"))
        for y in range(SIZE):
            mix = y / (SIZE - 1)
            canvas.rect(0, y, SIZE - 1, y, tuple(int(v) for v in top * (1 - mix) + bottom * mix))
    elif name == "Night":
        canvas.rect(0, 0, SIZE - 1, SIZE - 1, _hex("#14213d"))
        canvas.px([(3, 4), (27, 3), (6, 12), (25, 10), (2, 22), (29, 19), (15, 2)], _hex("#fff3b0"))
    else:
        canvas.rect(0, 0, SIZE - 1, SIZE - 1, color)
    return canvas


def draw_body(name):
    canvas = Canvas()
    skin = SKINS[name][0]
    edge = _shade(skin, 0.55)
    shirt = _hex("#3d405b") if name != "Robot" else _hex("#6c757d")
    # Shoulders and shirt.
    canvas.rect(7, 27, 24, 31, edge)
    canvas.rect(8, 28, 23, 31, shirt)
    canvas.rect(6, 29, 25, 31, shirt)
    # Neck.
    canvas.rect(13, 22, 18, 27, edge)
    canvas.rect(14, 22, 17, 27, skin)
    # Head with an outline and rounded corners.
    canvas.rect(9, 8, 22, 23, edge)
    canvas.rect(10, 9, 21, 22, skin)
    for x, y in ((9, 8), (22, 8), (9, 23), (22, 23)):
        canvas.pixels[y, x] = 0
    canvas.px([(10, 9), (21, 9), (10, 22), (21, 22)], edge)
    # Ears.
    canvas.rect(8, 14, 9, 17, edge)
    canvas.rect(22, 14, 23, 17, edge)
    canvas.px([(9, 15), (9, 16), (22, 15), (22, 16)], skin)
    if name == "Ape":
        canvas.rect(12, 17, 19, 22, _hex("#c89f7a"))  # the lighter muzzle
    elif name == "Robot":
        canvas.rect(15, 3, 16, 7, edge)  # antenna
        canvas.px([(15, 2), (16, 2)], RED)
        canvas.px([(11, 10), (20, 10), (11, 21), (20, 21)], _hex("#5b6167"))  # rivets
    elif name == "Alien":
        canvas.px([(11, 11), (12, 10), (19, 10), (20, 11)], _shade(skin, 0.8))
    elif name == "Zombie":
        canvas.px([(11, 15), (12, 15), (16, 15), (17, 15), (19, 19)], _shade(skin, 0.7))
    return canvas


def draw_eyes(name, skin):
    canvas = Canvas()
    left, right = (12, 14), (17, 14)
    if name == "Normal":
        for x, y in (left, right):
            canvas.px([(x, y)], WHITE)
            canvas.px([(x + 1, y)], BLACK)
    elif name == "Wide":
        for x, y in (left, right):
            canvas.rect(x, y - 1, x + 1, y, WHITE)
            canvas.px([(x + 1, y)], BLACK)
    elif name == "Sleepy":
        for x, y in (left, right):
            canvas.rect(x, y - 1, x + 1, y - 1, _shade(skin, 0.7))
            canvas.rect(x, y, x + 1, y, BLACK)
    elif name == "Angry":
        for x, y in (left, right):
            canvas.px([(x, y)], WHITE)
            canvas.px([(x + 1, y)], RED)
        canvas.px([(11, 12), (12, 12), (13, 13), (19, 12), (20, 12), (18, 13)], BLACK)
    elif name == "Shades":
        canvas.rect(10, 13, 21, 13, BLACK)
        canvas.rect(11, 14, 14, 15, BLACK)
        canvas.rect(16, 14, 19, 15, BLACK)
        canvas.px([(12, 14), (17, 14)], _hex("#5a5a6e"))
    elif name == "3D Glasses":
        canvas.rect(10, 13, 21, 13, WHITE)
        canvas.rect(11, 14, 14, 15, _hex("#e63946"))
        canvas.rect(16, 14, 19, 15, _hex("#3a86ff"))
        canvas.px([(15, 14), (10, 14), (20, 14)], WHITE)
    elif name == "VR Headset":
        canvas.rect(9, 12, 22, 16, _hex("#2b2d42"))
        canvas.rect(10, 13, 21, 15, _hex("#8d99ae"))
        canvas.rect(12, 14, 19, 14, _hex("#edf2f4"))
    elif name == "Laser":
        for x, y in (left, right):
            canvas.rect(x, y, x + 1, y, RED)
        canvas.rect(20, 14, SIZE - 1, 14, _hex("#ff5d5d"))  # the beam leaves the face
        canvas.rect(20, 13, SIZE - 1, 13, _hex("#ffb3b3"))
    return canvas


def draw_mouth(name, skin):
    canvas = Canvas()
    dark = _hex("#4a1c1c")
    if name == "Smile":
        canvas.px([(13, 18), (14, 19), (15, 19), (16, 19), (17, 19), (18, 18)], dark)
    elif name == "Neutral":
        canvas.rect(14, 19, 17, 19, dark)
    elif name == "Frown":
        canvas.px([(13, 20), (14, 19), (15, 19), (16, 19), (17, 19), (18, 20)], dark)
    elif name == "Open":
        canvas.rect(14, 18, 17, 20, dark)
        canvas.rect(15, 20, 16, 20, _hex("#e5989b"))
    elif name == "Grin":
        canvas.rect(13, 18, 18, 20, dark)
        canvas.rect(14, 19, 17, 19, WHITE)
    elif name == "Beard":
        beard = _hex("#4b3621") if skin != _hex("#4b3621") else _hex("#2b1d0e")
        canvas.rect(10, 18, 21, 23, beard)
        canvas.rect(12, 24, 19, 24, beard)
        canvas.rect(14, 19, 17, 19, _hex("#7f1d1d"))
    return canvas


def draw_headwear(name):
    canvas = Canvas()
    if name == "Cap":
        canvas.rect(10, 6, 21, 10, _hex("#d62828"))
        canvas.rect(18, 10, 25, 11, _hex("#9d0208"))  # the brim points right
        canvas.px([(15, 5), (16, 5)], _hex("#d62828"))
    elif name == "Beanie":
        canvas.rect(10, 5, 21, 10, _hex("#277da1"))
        canvas.rect(10, 10, 21, 11, _hex("#f8f9fa"))
        canvas.rect(15, 3, 16, 4, _hex("#f8f9fa"))
    elif name == "Headband":
        canvas.rect(9, 11, 22, 12, _hex("#ef476f"))
        canvas.px([(23, 12), (24, 13), (24, 14)], _hex("#ef476f"))
    elif name == "Mohawk":
        canvas.rect(14, 2, 17, 9, _hex("#06d6a0"))
        canvas.rect(15, 1, 16, 1, _hex("#06d6a0"))
    elif name == "Top Hat":
        canvas.rect(12, 0, 19, 9, _hex("#111111"))
        canvas.rect(12, 7, 19, 8, _hex("#9d0208"))
        canvas.rect(8, 9, 23, 10, _hex("#111111"))
    elif name == "Crown":
        canvas.rect(10, 6, 21, 9, GOLD)
        canvas.px([(10, 5), (10, 4), (13, 5), (13, 4), (15, 5), (16, 4), (16, 5), (18, 5)], GOLD)
        canvas.px([(18, 4), (21, 5), (21, 4), (15, 3), (16, 3)], GOLD)
        canvas.px([(12, 7), (15, 7), (19, 7)], _hex("#d00000"))
    elif name == "Halo":
        ring = _hex("#ffe66d")
        canvas.rect(11, 2, 20, 2, ring)
        canvas.rect(11, 5, 20, 5, ring)
        canvas.px([(10, 3), (10, 4), (21, 3), (21, 4)], ring)
    elif name == "Wizard Hat":
        purple = _hex("#5a189a")
        for row, (x0, x1) in enumerate([(15, 16), (14, 17), (13, 17), (13, 18), (12, 19)]):
            canvas.rect(x0, 1 + row * 2, x1, 2 + row * 2, purple)
        canvas.rect(8, 10, 23, 11, purple)
        canvas.px([(14, 5), (17, 8), (13, 9)], _hex("#ffd60a"))
    return canvas


def draw_accessory(name):
    canvas = Canvas()
    if name == "Earring":
        canvas.rect(8, 18, 9, 19, GOLD)
    elif name == "Gold Chain":
        canvas.px(
            [(12, 24), (13, 25), (14, 26), (15, 26), (16, 26), (17, 26), (18, 25), (19, 24)], GOLD
        )
    elif name == "Bow Tie":
        canvas.rect(12, 27, 19, 28, RED)
        canvas.rect(15, 27, 16, 28, _hex("#9d0208"))
    elif name == "Cigarette":
        canvas.rect(18, 19, 23, 19, WHITE)
        canvas.px([(24, 19)], _hex("#ff7b00"))
        canvas.px([(25, 17), (24, 16), (25, 15), (26, 14)], _hex("#c0c0c0"))
    elif name == "Pipe":
        brown = _hex("#6f4518")
        canvas.rect(18, 19, 22, 19, brown)
        canvas.rect(22, 17, 24, 20, brown)
        canvas.px([(23, 16), (24, 15)], _hex("#c0c0c0"))
    elif name == "Clown Nose":
        canvas.rect(15, 16, 16, 17, RED)
    return canvas


# --- Composition -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Character:
    background: str
    type: str
    eyes: str
    mouth: str
    headwear: str
    accessories: tuple

    def traits(self):
        traits = [
            ("background", self.background),
            ("type", self.type),
            ("eyes", self.eyes),
            ("mouth", self.mouth),
        ]
        if self.headwear != "None":
            traits.append(("headwear", self.headwear))
        traits.extend(("accessory", a) for a in self.accessories)
        return traits


class LayerCache:
    """Every layer is drawn once; composing a token is then a handful of masked copies."""

    def __init__(self):
        self._layers = {}

    def get(self, kind, name, skin=None):
        key = (kind, name, skin)
        if key not in self._layers:
            self._layers[key] = self._draw(kind, name, skin).pixels
        return self._layers[key]

    @staticmethod
    def _draw(kind, name, skin):
        if kind == "background":
            return draw_background(name)
        if kind == "type":
            return draw_body(name)
        if kind == "eyes":
            return draw_eyes(name, SKINS[skin][0])
        if kind == "mouth":
            return draw_mouth(name, SKINS[skin][0])
        if kind == "headwear":
            return draw_headwear(name)
        return draw_accessory(name)

    def compose(self, character):
        out = self.get("background", character.background).copy()
        layers = [
            self.get("type", character.type),
            self.get("mouth", character.mouth, character.type),
            self.get("eyes", character.eyes, character.type),
            *(self.get("accessory", a) for a in character.accessories if a != "Cigarette"),
            self.get("headwear", character.headwear),
            # Smoke drifts over everything else.
            *(self.get("accessory", a) for a in character.accessories if a == "Cigarette"),
        ]
        for layer in layers:
            mask = layer[:, :, 3] > 0
            out[mask] = layer[mask]
        return out


def _pick(rng, options):
    names = list(options)
    weights = np.array(
        [options[n][1] if isinstance(options[n], tuple) else options[n] for n in names], dtype=float
    )
    return names[rng.choice(len(names), p=weights / weights.sum())]


def roll_character(rng):
    accessories, groups = [], set()
    for name, (probability, group) in ACCESSORIES.items():
        if rng.random() < probability and group not in groups:
            accessories.append(name)
            groups.add(group)
    return Character(
        background=_pick(rng, BACKGROUNDS),
        type=_pick(rng, SKINS),
        eyes=_pick(rng, EYES),
        mouth=_pick(rng, MOUTHS),
        headwear=_pick(rng, HEADWEAR),
        accessories=tuple(accessories),
    )


def encode_png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


# --- Prices -------------------------------------------------------------------------------------
# Rough ETH/USD on the first of each quarter, 2021-06 .. 2024-01; days in between interpolate.
ETH_USD = [2700, 2300, 3400, 4600, 3000, 1100, 1300, 1600, 1200, 1800, 1900, 1650, 2300]


def eth_usd_on(moment):
    days = (moment - SALES_FROM).total_seconds() / 86400
    position = min(max(days / 91.25, 0), len(ETH_USD) - 1.0001)
    low = int(position)
    mix = position - low
    return ETH_USD[low] * (1 - mix) + ETH_USD[low + 1] * mix


def _information(character):
    """Bits of surprise in a character's traits: the rarer the traits, the higher."""
    total = 0.0
    for table, value in (
        (BACKGROUNDS, character.background),
        (SKINS, character.type),
        (EYES, character.eyes),
        (MOUTHS, character.mouth),
        (HEADWEAR, character.headwear),
    ):
        weights = {k: (v[1] if isinstance(v, tuple) else v) for k, v in table.items()}
        total -= math.log2(weights[value] / sum(weights.values()))
    for name, (probability, _) in ACCESSORIES.items():
        total -= math.log2(probability if name in character.accessories else 1 - probability)
    return total


def _last_sale(rng, info, mean_info, spread):
    if rng.random() >= SOLD_SHARE:
        return None
    z = (info - mean_info) / spread
    eth = math.exp(math.log(0.6) + 0.55 * z + rng.normal(0, 0.35))
    wei = round(eth * 10_000) * 10**14  # priced to 0.0001 ETH, like real listings
    moment = SALES_FROM + timedelta(seconds=int(rng.integers(0, SALES_DAYS * 86400)))
    rate = eth_usd_on(moment) * float(np.exp(rng.normal(0, 0.03)))
    return {
        "total_price": str(max(wei, 10**14)),
        "quantity": "1",
        "event_timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S"),
        "payment_token": {"symbol": "ETH", "decimals": 18, "usd_price": f"{rate:.6f}"},
    }


# --- The collection ---------------------------------------------------------------------------
@dataclass
class DemoToken:
    token_id: str
    character: Character
    metadata: dict
    png: bytes


def collection_name(slug):
    return slug.replace("-", " ").replace("_", " ").title()


def contract_address(slug, seed):
    import hashlib

    return "0x" + hashlib.sha256(f"{slug}:{seed}".encode()).hexdigest()[:40]


def generate(size=DEFAULT_SIZE, seed=DEFAULT_SEED, slug=DEFAULT_SLUG):
    """Yield the collection's DemoTokens in token order; deterministic in (size, seed, slug)."""
    rng = np.random.default_rng(seed)
    characters = [roll_character(rng) for _ in range(size)]
    infos = [_information(c) for c in characters]
    mean_info = float(np.mean(infos)) if infos else 0.0
    spread = float(np.std(infos)) or 1.0
    cache = LayerCache()
    name = collection_name(slug)
    contract = {
        "address": contract_address(slug, seed),
        "schema_name": "ERC721",
        "name": name,
    }
    for number, (character, info) in enumerate(zip(characters, infos, strict=True)):
        token_id = str(number)
        owner = "0x" + "".join(f"{b:02x}" for b in rng.integers(0, 256, 20, dtype=np.uint8))
        metadata = {
            "token_id": token_id,
            "name": f"{name} #{number}",
            "image_url": f"https://example.invalid/{slug}/{number}.png",
            "background_color": None,
            "external_link": None,
            "asset_contract": contract,
            "owner": {"address": owner},
            "traits": [
                {"trait_type": t, "value": v, "display_type": None} for t, v in character.traits()
            ],
            "last_sale": _last_sale(rng, info, mean_info, spread),
        }
        yield DemoToken(token_id, character, metadata, encode_png(cache.compose(character)))


def add_trait_counts(tokens):
    """Fill ``trait_count`` in every trait, as OpenSea v1 did (counts over the whole set)."""
    from collections import Counter

    counts = Counter((t["trait_type"], t["value"]) for d in tokens for t in d.metadata["traits"])
    for token in tokens:
        for trait in token.metadata["traits"]:
            trait["trait_count"] = counts[(trait["trait_type"], trait["value"])]
    return tokens


def demo_tokens(size=DEFAULT_SIZE, seed=DEFAULT_SEED, slug=DEFAULT_SLUG):
    """The whole demo collection as a list, with trait counts filled in."""
    return add_trait_counts(list(generate(size, seed, slug)))


def cover_png(tokens, grid=3, scale=2):
    """A grid of the first tokens, nearest-neighbour scaled, for Collection.cover_image."""
    sheet = Image.new("RGBA", (SIZE * grid, SIZE * grid))
    for i, token in enumerate(tokens[: grid * grid]):
        sheet.paste(Image.open(io.BytesIO(token.png)), ((i % grid) * SIZE, (i // grid) * SIZE))
    sheet = sheet.resize((SIZE * grid * scale,) * 2, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    return buffer.getvalue()


def write_demo_archives(directory, *, slug=DEFAULT_SLUG, size=DEFAULT_SIZE, seed=DEFAULT_SEED):
    """Write the demo as a seed archive pair; returns (images_zip_path, metadata_zip_path)."""
    from collections_app.ingest.archives import ArchivePairWriter

    writer = ArchivePairWriter(str(directory), slug)
    for token in demo_tokens(size, seed, slug):
        writer.add(token.token_id, token.metadata, token.png, "PNG")
    writer.close()
    return writer.images_path, writer.metadata_path


def build_demo_collection(
    slug=DEFAULT_SLUG, size=DEFAULT_SIZE, seed=DEFAULT_SEED, *, job=None, on_progress=None
):
    """Create (or rebuild) the demo collection through the same path real data takes.

    Returns ``(collection, counts)``. A rebuild replaces the previous demo tokens entirely,
    so the result depends only on (slug, size, seed); a collection of another source with
    this slug is never touched (ValueError).
    """
    from django.db import transaction

    from collections_app.ingest.archives import save_cover
    from collections_app.ingest.importer import RawItem, import_items
    from collections_app.ingest.upsert import finalize_collection
    from collections_app.models import Collection, IngestJob

    existing = Collection.objects.filter(slug=slug).first()
    if existing and existing.source != Collection.Source.DEMO:
        raise ValueError(f"collection {slug!r} exists and is not a demo collection")
    tokens = demo_tokens(size, seed, slug)
    with transaction.atomic():
        collection, _ = Collection.objects.update_or_create(
            slug=slug,
            defaults={
                "name": collection_name(slug),
                "source": Collection.Source.DEMO,
                "description": (
                    f"{size:,} procedurally drawn 32x32 characters (seed {seed}): a synthetic "
                    "collection with layered traits and rarity-driven prices, for trying the "
                    "platform without any data."
                ),
                "contract_address": contract_address(slug, seed),
                "schema_name": "ERC721",
                "supply": size,
            },
        )
        collection.tokens.all().delete()
        collection.sales.all().delete()
        collection.traits.all().delete()
    if job is not None:
        IngestJob.objects.filter(pk=job.pk).update(collection=collection, items_expected=size)
        job.collection, job.items_expected = collection, size
    batches = (
        [RawItem(t.token_id, metadata=t.metadata, image=t.png) for t in tokens[i : i + 250]]
        for i in range(0, len(tokens), 250)
    )
    counts = import_items(collection, batches, job=job, on_progress=on_progress)
    finalize_collection(collection)
    if tokens:
        save_cover(collection, cover_png(tokens))
    return collection, counts


def run_demo_build(job):
    """The demo job the admin queued (``ingest.launch.queue_demo_build``), on a worker."""
    params = job.params
    try:
        _, counts = build_demo_collection(params["slug"], params["size"], params["seed"], job=job)
    except ValueError as exc:
        job.fail(str(exc))
        return
    except Exception as exc:
        job.fail(f"{type(exc).__name__}: {exc}")
        raise
    job.finish(f"Demo collection {params['slug']}: {counts.written} tokens")
