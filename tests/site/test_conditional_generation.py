"""Trait-conditioned generation on the site: requests with traits, images per
(generator, traits, seed), permalinks, the classifier's check, the page and the command."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from gan_app.generation import conditions, render
from gan_app.generation import requests as generation
from gan_app.models import GeneratedImage, GenerationRequest

from .conditional import conditional_artifact, demo_collection, make_conditional_generator
from .conftest import make_generator

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(scope="module")
def artifact():
    return conditional_artifact()


@pytest.fixture(autouse=True)
def fresh_classifiers():
    """Each test's media folder is its own: forget classifiers loaded by earlier tests."""
    from gan_app.evaluation import reports as evaluation

    evaluation.clear_caches()
    yield
    evaluation.clear_caches()


@pytest.fixture
def collection():
    return demo_collection()


@pytest.fixture
def generator(collection, artifact):
    return make_conditional_generator(collection, artifact)


def loaded(generator):
    from gan_app.gan import load_generator

    return load_generator(generator.model_file.read())


def make(generator, seeds, traits=None):
    req = generation.submit(generator, kind="single", seeds=seeds, traits=traits)
    render.process(req.pk)
    req.refresh_from_db()
    return req


REQUESTS = [
    {},
    {"eyes": "Laser"},
    {"EYES": " laser ", "type": "any"},
    {"headwear": "none", "accessory": ["Earring"]},
    {"type": "Zombie", "mouth": "Smile", "background": "Sky"},
]
BAD = [{"eyes": "Purple"}, {"hat": "Cap"}, {"type": ["Zombie", "Ape"]}]


def test_it_checks_requests_as_the_generators_vocabulary_does(generator):
    vocabulary = loaded(generator).vocabulary

    for request in REQUESTS:
        cleaned, key = conditions.clean_traits(generator, request)
        assert key == vocabulary.condition_key(request), request
        assert cleaned == {k: list(v) for k, v in vocabulary.check(request).items()}
    for request in BAD:
        with pytest.raises(conditions.TraitRequestError):
            conditions.clean_traits(generator, request)
        with pytest.raises(ValueError):
            vocabulary.check(request)


def test_it_draws_and_stores_one_image_per_traits_and_seed(generator):
    laser = make(generator, [7], {"eyes": "Laser"})
    shades = make(generator, [7], {"eyes": "Shades"})

    assert laser.status == shades.status == GenerationRequest.Status.DONE, laser.error
    rows = {row.condition_key: row for row in GeneratedImage.objects.filter(seed=7)}
    assert set(rows) == {"eyes=Laser", "eyes=Shades"}
    model = loaded(generator)
    for key, traits in (("eyes=Laser", {"eyes": "Laser"}), ("eyes=Shades", {"eyes": "Shades"})):
        expected = model.to_png(model.generate([7], traits)[0])
        assert rows[key].image.read() == expected
        assert rows[key].metadata["requested_traits"] == {"eyes": [traits["eyes"]]}
    assert rows["eyes=Laser"].image_sha256 != rows["eyes=Shades"].image_sha256
    again = generation.submit(generator, kind="single", seeds=[7], traits={"EYES": "laser"})
    assert again.status == GenerationRequest.Status.DONE  # made before: served at once


def test_it_refuses_unknown_traits_with_the_valid_choices(client, generator, collection):
    response = client.post(
        reverse("gan:generate"),
        {"generator": generator.slug, "seed": "1", "trait.eyes": "Purple"},
        **JSON,
    )

    assert response.status_code == 400
    assert "Unknown value 'Purple' for trait 'eyes'" in response.json()["error"]
    assert "'Laser'" in response.json()["error"]
    plain = make_generator(collection, _plain_artifact(), slug="plain-v1", version=2)
    response = client.post(
        reverse("gan:generate"), {"generator": plain.slug, "trait.eyes": "Laser"}, **JSON
    )
    assert response.status_code == 400
    assert "not trait-conditioned" in response.json()["error"]
    assert not GenerationRequest.objects.exists()


def _plain_artifact():
    import io

    from gan_app.gan import GANConfig, build_generator, export_generator

    config = GANConfig(resolution=32, latent_dim=8, generator_width=4)
    buffer = io.BytesIO()
    sha = export_generator(build_generator(config), buffer, config=config.to_dict(), epoch=1)
    return buffer.getvalue(), sha


def test_it_serves_permalinks_per_traits_and_seed(client, generator):
    make(generator, [11], {"type": "Zombie", "eyes": "3D Glasses"})
    key = "eyes=3D Glasses;type=Zombie"
    row = GeneratedImage.objects.get(seed=11)

    png = client.get(reverse("gan:image_png", args=[generator.slug, 11]), {"traits": key})
    meta = client.get(reverse("gan:image_json", args=[generator.slug, 11]), {"traits": key})
    page = client.get(reverse("gan:image", args=[generator.slug, 11]), {"traits": key})

    assert row.condition_key == key
    assert png.status_code == 200 and png.getvalue() == row.image.read()
    assert json.loads(meta.content)["image"].endswith(
        "/11.png?traits=eyes%3D3D+Glasses%3Btype%3DZombie"
    )
    assert page.status_code == 200 and b"3D Glasses" in page.content
    assert client.get(reverse("gan:image_png", args=[generator.slug, 11])).status_code == 404
    gallery = client.get(reverse("gan:gallery")).content.decode()
    assert row.png_url() in gallery and row.get_absolute_url() in gallery
    assert row.png_url() == "/g/cond-v1/11.png?traits=eyes%3D3D+Glasses%3Btype%3DZombie"


def test_it_reports_which_requested_traits_the_classifier_recognises(client, generator):
    from gan_app.evaluation import reports as evaluation

    evaluation.classifier_for(generator.collection, epochs=1, width=8, feature_dim=16)

    req = make(generator, [3], {"type": "Alien", "headwear": "Cap"})
    body = client.get(reverse("gan:request_status", args=[req.public_id])).json()

    check = body["images"][0]["trait_check"]
    assert [(r["trait_type"], r["value"]) for r in check] == [
        ("headwear", "Cap"),
        ("type", "Alien"),
    ]
    assert all(r["seen"] in (True, False) for r in check), GeneratedImage.objects.get(seed=3).traits
    row = GeneratedImage.objects.get(seed=3)
    read = {entry["value"] for entry in row.traits["type"]}
    assert check[1]["seen"] == ("Alien" in read)
    assert body["traits"] == "headwear: Cap · type: Alien"


def test_it_says_when_no_classifier_has_checked_the_traits(client, generator):
    req = make(generator, [4], {"eyes": "Laser"})

    body = client.get(reverse("gan:request_status", args=[req.public_id])).json()

    assert body["images"][0]["trait_check"] == [
        {"trait_type": "eyes", "value": "Laser", "seen": None}
    ]


def test_it_offers_a_select_per_trait_type_on_the_generators_page(client, generator):
    page = client.get(generator.get_absolute_url()).content.decode()

    for trait_type in ("accessory", "background", "eyes", "headwear", "mouth", "type"):
        assert f'name="trait.{trait_type}"' in page
    assert '<option value="Laser">Laser</option>' in page
    assert page.count('<option value="any">any</option>') == 6


def test_it_generates_with_traits_from_the_command_line(tmp_path, generator):
    tmp_path = tmp_path / "out"
    call_command(
        "generate", generator.slug, str(tmp_path), "--seed", "5", "--count", "2",
        "--trait", "eyes=Laser", "--trait", "type=Ape",
    )  # fmt: skip

    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 4
    assert all(f.startswith((f"{generator.slug}-5-", f"{generator.slug}-6-")) for f in files)
    metadata = json.loads(next(tmp_path.glob("*-5-*.json")).read_text())
    assert metadata["requested_traits"] == {"eyes": ["Laser"], "type": ["Ape"]}
    model = loaded(generator)
    png = next(tmp_path.glob("*-5-*.png")).read_bytes()
    assert png == model.to_png(model.generate([5], {"eyes": "Laser", "type": "Ape"})[0])
    with pytest.raises(CommandError, match="unknown value 'Purple' for trait 'eyes'"):
        call_command("generate", generator.slug, str(tmp_path), "--trait", "eyes=Purple")
    with pytest.raises(CommandError, match="--trait wants TYPE=VALUE"):
        call_command("generate", generator.slug, str(tmp_path), "--trait", "eyes")


def test_it_renders_queued_requests_with_different_traits_in_one_call(generator):
    zombie = generation.submit(generator, kind="batch", seeds=[1, 2], traits={"type": "Zombie"})
    ape = generation.submit(generator, kind="single", seeds=[1], traits={"type": "Ape"})
    free = generation.submit(generator, kind="single", seeds=[1])

    finished = render.process(zombie.pk)

    assert sorted(finished) == sorted([zombie.pk, ape.pk, free.pk])
    keys = sorted(GeneratedImage.objects.values_list("condition_key", "seed"))
    assert keys == [("", 1), ("type=Ape", 1), ("type=Zombie", 1), ("type=Zombie", 2)]
    model = loaded(generator)
    for row in GeneratedImage.objects.all():
        traits = {"type": row.condition_key[5:]} if row.condition_key else {}
        assert row.image.read() == model.to_png(model.generate([row.seed], traits)[0])


def test_it_reads_none_and_other_as_the_hit_rate_does():
    choice = conditions.TraitChoice("hat", ("Cap", "other", "none"), False, ("Crown", "Halo"))

    assert conditions.is_seen(choice, "other", {"Crown"})
    assert not conditions.is_seen(choice, "other", {"Cap"})
    assert conditions.is_seen(choice, "none", set())
    assert not conditions.is_seen(choice, "Cap", set())


def test_it_offers_to_make_a_missing_image_with_its_traits_preselected(client, generator):
    url = reverse("gan:image", args=[generator.slug, 99])

    page = client.get(url, {"traits": "eyes=Laser;type=Ape"}).content.decode()

    assert "Nobody has generated seed" in page
    assert '<option value="Laser" selected>Laser</option>' in page
    assert '<option value="Ape" selected>Ape</option>' in page
    assert page.count(" selected>") == 2
