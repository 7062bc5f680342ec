"""Generated images get traits, a rarity score and the near-copy check; flagged ones are
withheld while REFUSE_NEAR_COPIES is on."""

import json

import pytest

from gan_app.evaluation import labelling
from gan_app.generation import render
from gan_app.models import GeneratedImage
from gan_app.publishing import publish_checkpoint

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def generator(demo, db):
    _, _, run = demo
    return publish_checkpoint(run.checkpoints.get(epoch=run.epoch_done))


def test_it_labels_generated_images_with_traits_and_rarity(generator, client):
    rows = render.ensure_images(generator, [5, 6, 7])

    image = rows[5]
    assert set(image.traits) >= {"background", "type", "eyes"}
    entries = [entry for values in image.traits.values() for entry in values]
    assert entries and all(set(entry) == {"value", "confidence"} for entry in entries)
    assert image.rarity_score > 0
    assert image.nearest_distance > 0 and image.is_near_copy is False
    metadata = json.loads(client.get(f"/g/{generator.slug}/5.json").content)
    names = {a["trait_type"] for a in metadata["attributes"]}
    assert {"generator", "seed", "rarity_score"} <= names
    assert names & {"background", "type", "eyes"}
    backgrounds = [e["value"] for e in image.traits["background"]]
    assert {"trait_type": "background", "value": backgrounds[0]} in metadata["attributes"]


def test_the_worker_labels_the_pixels_it_stores(generator):
    """The worker labels the pixels it drew without decoding its own PNG: the reading is the
    one the stored file gives."""
    rows = render.ensure_images(generator, [11, 12])

    for row in rows.values():
        with row.image.open("rb") as handle:
            (label,) = render.label_pngs(generator, [handle.read()])
        again = labelling.apply_label(GeneratedImage(generator=generator, seed=row.seed), label)
        assert again.traits == row.traits
        assert again.rarity_score == pytest.approx(row.rarity_score)
        assert again.nearest_distance == pytest.approx(row.nearest_distance)


def test_it_flags_a_generator_that_reproduces_training_images(demo, generator, client, settings):
    collection, _, _ = demo
    token = collection.tokens.exclude(image="").order_by("token_number").first()
    with token.image.open("rb") as handle:
        copied = handle.read()

    # What a memorising generator would hand the worker: a training image, as its PNG.
    render.store_images(generator, [(424242, copied, None, 0)])
    render.ensure_images(generator, [8])

    image = GeneratedImage.objects.get(generator=generator, seed=424242)
    assert image.is_near_copy and image.nearest_distance < 0.01
    assert not GeneratedImage.objects.get(generator=generator, seed=8).is_near_copy

    png = client.get(f"/g/{generator.slug}/424242.png")
    page = client.get(f"/g/{generator.slug}/424242/")
    gallery = client.get("/gallery/").content.decode()
    assert png.status_code == 451 and b"near-copy" in png.content
    assert page.status_code == 451 and "This image was withheld" in page.content.decode()
    assert client.get(f"/g/{generator.slug}/424242.json").status_code == 451
    assert "424242" not in gallery and f"/g/{generator.slug}/8.png" in gallery

    settings.REFUSE_NEAR_COPIES = False
    assert client.get(f"/g/{generator.slug}/424242.png").status_code == 200
    assert "424242" in client.get("/gallery/").content.decode()


def test_it_labels_images_made_before_the_classifier_existed(generator):
    render.ensure_images(generator, [11, 12])
    # As stored by a worker that found no classifier yet.
    GeneratedImage.objects.filter(generator=generator).update(traits={}, rarity_score=None)

    labelled = labelling.label_missing(generator)

    assert labelled == 2
    image = GeneratedImage.objects.get(generator=generator, seed=11)
    assert image.traits and image.rarity_score > 0
    assert any(a["trait_type"] == "rarity_score" for a in image.metadata["attributes"])
    assert labelling.label_missing(generator) == 0


def test_it_withholds_an_image_the_classifier_reads_an_excluded_trait_in(demo, generator, client):
    from collections_app.models import Trait

    collection, _, _ = demo
    first = render.ensure_images(generator, [31])[31]
    known = Trait.objects.filter(collection=collection)
    trait_type, value = next(
        (t, e["value"])
        for t, entries in sorted(first.traits.items())
        for e in entries
        if known.filter(trait_type=t, value=e["value"]).exists()
    )
    Trait.exclude_values(known.filter(trait_type=trait_type, value=value), "offensive")
    with first.image.open("rb") as handle:
        again = handle.read()

    # The same picture under another seed: the worker's labelling reads the same traits.
    render.store_images(generator, [(313131, again, None, 0)])

    image = GeneratedImage.objects.get(generator=generator, seed=313131)
    assert f"{trait_type}: {value}" in image.excluded_traits
    png = client.get(f"/g/{generator.slug}/313131.png")
    assert png.status_code == 451 and f"{trait_type}: {value}".encode() in png.content
    assert client.get(f"/g/{generator.slug}/31.png").status_code == 451  # labelled before
    assert "313131" not in client.get("/gallery/").content.decode()
