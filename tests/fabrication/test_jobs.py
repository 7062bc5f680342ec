"""Fabrication jobs through the worker code: a real collection, determinism, bad input."""

import hashlib
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from collections_app.models import Collection
from gan_app.fabrication import runs, worker
from gan_app.models import FabricationJob


def fabricate(generator, count=12, seed=7, traits="source", **kwargs):
    job = runs.create_job(generator, count, seed, traits, send=False, **kwargs)
    status = worker.process(job.pk)
    job.refresh_from_db()
    assert status == job.status
    return job


def export_bytes(job):
    with default_storage.open(job.export_file.name, "rb") as handle:
        return handle.read()


@pytest.mark.django_db(transaction=True)
def test_it_makes_a_fabricated_collection_of_unique_labelled_tokens(spread):
    job = fabricate(spread, count=40, seed=3)
    assert job.status == "succeeded", job.error
    collection = job.collection
    assert collection.source == Collection.Source.FABRICATED
    assert collection.source_collection == spread.collection
    assert collection.fabrication.generator == spread
    tokens = list(collection.tokens.order_by("token_number"))
    assert [t.token_id for t in tokens] == [str(i) for i in range(40)]
    assert len({t.image_sha256 for t in tokens}) == 40
    assert all(t.image for t in tokens)
    assert sum(t.trait_count for t in tokens) > 0  # the demo's classifier labelled them
    assert job.made == 40 and job.result["made"] == 40
    assert job.result["rejected"]["duplicate"] > 0  # the check had work to do


@pytest.mark.django_db(transaction=True)
def test_it_gives_byte_identical_exports_for_the_same_options(spread):
    first = export_bytes(fabricate(spread, seed=3))
    second = export_bytes(fabricate(spread, seed=3))
    other = export_bytes(fabricate(spread, seed=4))
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    assert first != other


@pytest.mark.django_db(transaction=True)
def test_its_export_holds_the_seed_archive_erc721_folder_and_provenance(spread):
    job = fabricate(spread, image_uri="ipfs://CID/{id}.png")
    names = zipfile.ZipFile(default_storage.open(job.export_file.name, "rb")).namelist()
    slug = worker.export_slug(job)
    assert f"seed-archive/{slug}_archive.zip" in names
    assert f"seed-archive/{slug}_metadata_archive.zip" in names
    assert "erc721/provenance.txt" in names
    assert {f"erc721/images/{i}.png" for i in range(12)} <= set(names)
    assert {f"erc721/metadata/{i}" for i in range(12)} <= set(names)


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_count_over_the_maximum(spread, settings):
    settings.FABRICATE_MAX_COUNT = 50
    with pytest.raises(runs.FabricationSetupError, match="over the maximum of 50"):
        runs.create_job(spread, 51, send=False)
    assert not FabricationJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_stops_a_collapsed_generator_with_the_rejection_rate(collapsed):
    job = fabricate(collapsed, count=20)
    assert job.status == "succeeded"
    assert job.made == 1 and job.collection.tokens.count() == 1
    assert "rejection rate" in job.notes and job.result["status"] == "exhausted"
    assert job.result["rejection_rate"] > 0.9


@pytest.mark.django_db(transaction=True)
def test_it_fabricates_without_traits_and_says_so_without_a_classifier(spread):
    from gan_app.evaluation import reports as evaluation
    from nftsite.storage import private_storage

    storage = private_storage()  # classifiers are private files
    name = evaluation.classifier_name(spread.collection)
    with storage.open(name, "rb") as handle:
        kept = handle.read()  # the session's classifier: other tests need it back
    storage.delete(name)
    evaluation.clear_caches()
    try:
        job = fabricate(spread, count=5)
    finally:
        storage.save(name, ContentFile(kept))
        evaluation.clear_caches()
    assert job.status == "succeeded", job.error
    assert "without traits" in job.notes
    assert all(t.trait_count == 0 for t in job.collection.tokens.all())


@pytest.mark.django_db(transaction=True)
def test_it_names_an_unknown_trait_in_the_table(conditional):
    with pytest.raises(runs.FabricationSetupError, match="Hairdo"):
        runs.create_job(conditional, 5, traits={"Hairdo": {"Mohawk": 1}}, send=False)
