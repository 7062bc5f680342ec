import io
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from collections_app.demo import build as demo
from collections_app.models import Collection, IngestJob, Token, Trait

TABLES = {
    "background": demo.BACKGROUNDS,
    "type": demo.SKINS,
    "eyes": demo.EYES,
    "mouth": demo.MOUTHS,
    "headwear": {k: v for k, v in demo.HEADWEAR.items() if k != "None"},
    "accessory": demo.ACCESSORIES,
}


@pytest.fixture(scope="module")
def thousand():
    return demo.demo_tokens(1000, 11, "check")


def test_it_writes_identical_archives_for_the_same_seed(tmp_path):
    first = demo.write_demo_archives(tmp_path / "a", slug="d", size=30, seed=4)
    second = demo.write_demo_archives(tmp_path / "b", slug="d", size=30, seed=4)
    other = demo.write_demo_archives(tmp_path / "c", slug="d", size=30, seed=5)

    for a, b, c in zip(first, second, other, strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()
        assert Path(a).read_bytes() != Path(c).read_bytes()


def test_it_draws_32px_rgba_sprites():
    token = next(demo.generate(1, 1, "x"))
    image = Image.open(io.BytesIO(token.png))
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (32, 32))
    assert image.getextrema()[3] == (255, 255)  # opaque: the background fills the frame


def test_it_gives_every_trait_value_its_own_distinct_pixels():
    cache = demo.LayerCache()
    for trait_type, table in TABLES.items():
        kind = trait_type if trait_type != "accessory" else "accessory"
        layers = {name: cache.get(kind, name, "Tan") for name in table}
        for name, layer in layers.items():
            assert (layer[:, :, 3] > 0).sum() >= 4, f"{trait_type}={name} is barely visible"
        for (a, la), (b, lb) in combinations(layers.items(), 2):
            assert not np.array_equal(la, lb), f"{trait_type}: {a} looks like {b}"


def test_it_puts_a_trait_on_the_same_pixels_in_every_token(thousand):
    crowned = [t for t in thousand if t.character.headwear == "Crown"][:5]
    assert len(crowned) >= 2
    crown = demo.LayerCache().get("headwear", "Crown")
    mask = crown[:, :, 3] > 0
    for token in crowned:
        pixels = np.array(Image.open(io.BytesIO(token.png)))
        assert np.array_equal(pixels[mask], crown[mask])


def test_it_follows_the_rarity_weights_and_allows_several_accessories(thousand):
    types = Counter(t.character.type for t in thousand)
    assert types["Light"] > types["Zombie"] > types["Robot"] > 0
    assert Counter(t.character.headwear for t in thousand)["None"] > 200
    assert any(len(t.character.accessories) >= 2 for t in thousand)
    for token in thousand:
        listed = [tr["trait_type"] for tr in token.metadata["traits"]]
        assert listed[:4] == ["background", "type", "eyes", "mouth"]
        assert ("headwear" in listed) == (token.character.headwear != "None")


def test_it_prices_rarer_tokens_higher_and_leaves_some_unsold(thousand):
    sold = [t for t in thousand if t.metadata["last_sale"]]
    assert 0.7 < len(sold) / len(thousand) < 0.9
    info = np.array([demo._information(t.character) for t in sold])
    eth = np.array([int(t.metadata["last_sale"]["total_price"]) / 1e18 for t in sold])
    ranks = lambda a: np.argsort(np.argsort(a))  # noqa: E731
    spearman = np.corrcoef(ranks(info), ranks(eth))[0, 1]
    assert spearman > 0.5
    days = sorted(t.metadata["last_sale"]["event_timestamp"][:7] for t in sold)
    assert days[0] < "2021-09" and days[-1] > "2023-09"  # spread over the whole period
    assert all(t.metadata["last_sale"]["payment_token"]["symbol"] == "ETH" for t in sold)


@pytest.mark.django_db
def test_it_builds_the_collection_through_the_ingest_path():
    call_command(
        "make_demo_collection", "--slug", "mini", "--size", "40", "--seed", "3", verbosity=0
    )

    collection = Collection.objects.get(slug="mini")
    assert collection.source == Collection.Source.DEMO
    assert collection.supply == 40 and collection.cover_image
    assert Token.objects.filter(collection=collection).exclude(image="").count() == 40
    expected = Counter(
        (tr["trait_type"], tr["value"])
        for t in demo.demo_tokens(40, 3, "mini")
        for tr in t.metadata["traits"]
    )
    stored = {(t.trait_type, t.value): t.count for t in Trait.objects.filter(collection=collection)}
    assert stored == dict(expected)
    job = IngestJob.objects.get(kind=IngestJob.Kind.DEMO)
    assert job.status == IngestJob.Status.SUCCEEDED and job.items_done == 40


@pytest.mark.django_db
def test_it_rebuilds_the_demo_from_scratch():
    call_command(
        "make_demo_collection", "--slug", "mini", "--size", "30", "--seed", "3", verbosity=0
    )
    call_command(
        "make_demo_collection", "--slug", "mini", "--size", "10", "--seed", "4", verbosity=0
    )

    collection = Collection.objects.get(slug="mini")
    assert collection.tokens.count() == 10
    names = {t["name"] for t in collection.tokens.values("name")}
    assert names == {f"Mini #{i}" for i in range(10)}
    assert collection.sales.count() == sum(
        1 for t in demo.demo_tokens(10, 4, "mini") if t.metadata["last_sale"]
    )


@pytest.mark.django_db
def test_the_collection_it_returns_is_the_one_stored():
    # Ingest bumps the data version in the database; a stale copy named files (the trait
    # classifier's) after the version before.
    collection, _ = demo.build_demo_collection("fresh", 10, 3)

    stored = Collection.objects.get(slug="fresh")
    assert collection.data_version == stored.data_version >= 1
    assert collection.updated_at == stored.updated_at


@pytest.mark.django_db
def test_it_will_not_overwrite_a_real_collection():
    Collection.objects.create(slug="real", name="Real", source=Collection.Source.OPENSEA)
    with pytest.raises(CommandError, match="not a demo collection"):
        call_command("make_demo_collection", "--slug", "real", "--size", "5", verbosity=0)


@pytest.mark.django_db
def test_it_rejects_bad_arguments():
    with pytest.raises(CommandError, match="not a slug"):
        call_command("make_demo_collection", "--slug", "Not A Slug", verbosity=0)
    with pytest.raises(CommandError):
        call_command("make_demo_collection", "--size", "0", verbosity=0)
