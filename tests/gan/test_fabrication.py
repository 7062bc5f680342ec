"""Fabricating a whole collection (issue 16): uniqueness, determinism, resume, stopping, export."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from collections_app.analytics.rarity import score_records
from gan_app.gan.conditioning import ConditionVocabulary
from gan_app.gan.fabrication import (
    EMBED_WIDTH,
    FabricationError,
    FabricationOptions,
    FabricationState,
    Fabricator,
    embed,
    fabricate,
    provenance_hash,
    squared_limit,
)
from gan_app.gan.fabrication_export import Erc721Writer, SeedArchiveWriter
from gan_app.gan.memorisation import NearCopyIndex
from gan_app.gan.sampling import load_generator
from gan_app.gan.trait_classifier import TraitClassifier
from tests.generators import one_layer_artifact


def _generator(latent_dim=2, stddev=0.6, vocabulary=None, seed=0):
    """A one-layer generator: a low latent_dim makes near-duplicates common, as in a real run."""
    return load_generator(one_layer_artifact(latent_dim, stddev, vocabulary, seed))


@pytest.fixture(scope="module")
def generator():
    return _generator()


@pytest.fixture(scope="module")
def collapsed():
    return _generator(stddev=0.0)


@pytest.fixture(scope="module")
def classifier():
    """A tiny classifier of one trait ("type": Red or Blue) trained for one epoch."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    sets = [{"type": "Red" if i % 3 else "Blue"} for i in range(24)]
    return TraitClassifier.fit(images, sets, epochs=1, width=4, feature_dim=8)


@pytest.fixture(scope="module")
def vocabulary():
    sets = [{"type": t, "hat": h} for t in ("Ape", "Alien", "Zombie") for h in ("Cap", "Beanie")]
    return ConditionVocabulary.from_traits(sets * 3)


def _run(generator, writers=(), state=None, **options):
    fabricator = Fabricator(generator, FabricationOptions(**{"count": 40, "seed": 3, **options}))
    return fabricate(fabricator, writers, state=state, rarity=score_records), fabricator


def _tokens(generator, **options):
    fabricator = Fabricator(generator, FabricationOptions(**{"count": 40, "seed": 3, **options}))
    return [(t.candidate, t.sha256, t.png) for t in fabricator.run()]


def test_it_accepts_no_pair_within_the_distance(generator):
    tokens = _tokens(generator)
    assert len(tokens) == 40
    images = np.stack([_decode(png) for _, _, png in tokens])
    emb = embed(images).astype(np.float64)
    diff = emb[:, None, :] - emb[None, :, :]
    squared = (diff * diff).sum(axis=2)
    np.fill_diagonal(squared, np.inf)
    assert squared.min() > squared_limit(0.04)
    # The low-dimensional latent does make duplicates: the check had work to do.
    assert tokens[-1][0] >= 40


def test_it_counts_rejections_by_reason(generator):
    result, _ = _run(generator)
    assert result.made == 40 and result.status == "done"
    assert result.rejected["duplicate"] == result.candidates - 40 > 0
    assert result.rejected["near_copy"] == 0
    assert result.to_json()["rejection_rate"] == pytest.approx(
        (result.candidates - 40) / result.candidates, abs=1e-6
    )


def test_it_rejects_near_copies_of_training_images(generator):
    training = generator.generate([1, 2, 3, 4])
    fabricator = Fabricator(
        generator,
        FabricationOptions(count=10, seed=3),
        guard=NearCopyIndex.fit(np.concatenate([training, _first_images(generator, 5)])),
    )
    state = FabricationState()
    list(fabricator.run(state))
    assert state.rejected["near_copy"] >= 5


def _first_images(generator, count):
    tokens = _tokens(generator, count=count)
    return np.stack([_decode(png) for _, _, png in tokens])


def test_it_gives_the_same_tokens_for_any_batch_size(generator):
    assert _tokens(generator, batch_size=64) == _tokens(generator, batch_size=7)


def test_it_resumes_from_a_mid_way_state_with_the_same_result(generator, tmp_path):
    whole, _ = _run(generator, [SeedArchiveWriter(tmp_path / "a", "fab")])
    fabricator = Fabricator(generator, FabricationOptions(count=40, seed=3, batch_size=16))
    state = FabricationState()
    for token in fabricator.run(state):
        if token.token_id == 17:
            break
    saved = state.to_bytes()  # what a killed job left behind
    resumed = FabricationState.from_bytes(saved)
    assert resumed.accepted == 18 and resumed.accepted_embeddings().shape == (18, EMBED_WIDTH)
    rest = [t.token_id for t in Fabricator(generator, fabricator.options).run(resumed)]
    assert rest == list(range(18, 40))
    assert [r["sha256"] for r in resumed.records] == [r["sha256"] for r in whole.records]


def test_it_exports_byte_identical_archives_twice(generator, tmp_path):
    digests = []
    for run in ("one", "two"):
        out = tmp_path / run
        _result, _ = _run(
            generator,
            [
                SeedArchiveWriter(out, "fab"),
                Erc721Writer(out / "erc721.zip", name="Fab", image_uri="ipfs://CID/{id}.png"),
            ],
        )
        digests.append(
            {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
        )
    assert digests[0] == digests[1]
    assert set(digests[0]) == {"fab_archive.zip", "fab_metadata_archive.zip", "erc721.zip"}


def test_it_writes_erc721_metadata_and_the_provenance_hash(generator, tmp_path):
    result, _ = _run(
        generator,
        [Erc721Writer(tmp_path / "erc", name="Fab", image_uri="ipfs://CID/{id}.png")],
        count=12,
    )
    images = [(tmp_path / "erc" / "images" / f"{i}.png").read_bytes() for i in range(12)]
    expected = hashlib.sha256(
        "".join(hashlib.sha256(b).hexdigest() for b in images).encode()
    ).hexdigest()
    assert (
        result.provenance
        == expected
        == provenance_hash(hashlib.sha256(b).hexdigest() for b in images)
    )
    assert (tmp_path / "erc" / "provenance.txt").read_text().strip() == expected
    meta = json.loads((tmp_path / "erc" / "metadata" / "5").read_text())
    assert meta["name"] == "Fab #5" and meta["image"] == "ipfs://CID/5.png"
    assert meta["attributes"] == []
    assert "without traits" in " ".join(result.notes)


def test_it_stops_a_collapsed_generator_with_a_report(collapsed):
    result, _ = _run(collapsed, count=100, window=50)
    assert result.status == "exhausted"
    # Candidate 0 is accepted; the window of candidates 1..50 holds no acceptance.
    assert result.made == 1 and result.candidates == 51
    assert result.rejected["duplicate"] == 50
    assert result.rejection_rate == pytest.approx(50 / 51)


def test_it_refuses_an_unknown_trait_naming_it(generator, vocabulary):
    with pytest.raises(FabricationError, match="not trait-conditioned"):
        Fabricator(generator, FabricationOptions(count=5, traits="uniform"))
    conditional = _generator(vocabulary=vocabulary)
    with pytest.raises(FabricationError, match="'mouth'"):
        Fabricator(conditional, FabricationOptions(count=5, traits={"mouth": {"Smile": 1}}))
    with pytest.raises(FabricationError, match="'Crown'"):
        Fabricator(conditional, FabricationOptions(count=5, traits={"hat": {"Crown": 1}}))
    with pytest.raises(FabricationError, match="over the maximum"):
        Fabricator(conditional, FabricationOptions(count=11, max_count=10))


def test_it_steers_a_conditional_generator_by_a_table(vocabulary):
    conditional = _generator(vocabulary=vocabulary, latent_dim=4)
    fabricator = Fabricator(
        conditional,
        FabricationOptions(count=30, seed=1, traits={"type": {"Alien": 1, "Ape": 0}}),
    )
    tokens = list(fabricator.run())
    assert {t.conditions["type"] for t in tokens} == {"Alien"}
    uniform = Fabricator(conditional, FabricationOptions(count=60, seed=1, traits="uniform"))
    assert {t.conditions["type"] for t in uniform.run()} == {"Alien", "Ape", "Zombie"}


def test_it_labels_tokens_and_scores_rarity_within_the_collection(generator, classifier, tmp_path):
    fabricator = Fabricator(generator, FabricationOptions(count=20, seed=3), classifier=classifier)
    result = fabricate(
        fabricator, [SeedArchiveWriter(tmp_path, "fab", name="Fab")], rarity=score_records
    )
    assert not any("without traits" in note for note in result.notes)
    with zipfile.ZipFile(tmp_path / "fab_metadata_archive.zip") as zf:
        assets = [json.loads(zf.read(f"fab/{i}.json")) for i in range(20)]
    assert all(a["traits"] and a["traits"][0]["trait_type"] == "type" for a in assets)
    counts = {}
    for a in assets:
        counts[a["traits"][0]["value"]] = counts.get(a["traits"][0]["value"], 0) + 1
    assert all(a["traits"][0]["trait_count"] == counts[a["traits"][0]["value"]] for a in assets)
    assert sorted(a["nff_rarity"]["rarity_rank"] for a in assets)[0] == 1
    with zipfile.ZipFile(tmp_path / "fab_archive.zip") as zf:
        assert zf.namelist() == [f"fab/{i}.png" for i in range(20)]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def _decode(png):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.mark.django_db
def test_it_reimports_the_seed_archive_with_the_same_tokens_and_traits(
    generator, classifier, tmp_path
):
    """The export round trip through the real archive importer (PostgreSQL)."""
    from collections_app.ingest.archives import import_archive
    from collections_app.models import Token

    fabricator = Fabricator(generator, FabricationOptions(count=15, seed=3), classifier=classifier)
    result = fabricate(
        fabricator, [SeedArchiveWriter(tmp_path, "fabbed", name="Fabbed")], rarity=score_records
    )
    summary = import_archive(
        tmp_path / "fabbed_archive.zip", tmp_path / "fabbed_metadata_archive.zip"
    )
    assert summary.written == 15 and summary.rejected == 0 and summary.with_problems == 0
    tokens = Token.objects.filter(collection=summary.collection).order_by("token_number")
    assert [t.token_id for t in tokens] == [str(r["token_id"]) for r in result.records]
    assert [t.image_sha256 for t in tokens] == [r["sha256"] for r in result.records]
    imported = [sorted((tr.trait_type, tr.value) for tr in t.traits.all()) for t in tokens]
    made = [sorted((t["trait_type"], t["value"]) for t in r["traits"]) for r in result.records]
    assert imported == made
