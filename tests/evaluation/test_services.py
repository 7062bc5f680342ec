"""Evaluation services on the small demo collection (see conftest)."""

import pytest

from collections_app.models import Collection
from gan_app.evaluation import figures
from gan_app.evaluation import reports as evaluation
from nftsite.storage import private_storage

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_it_stores_one_classifier_per_collection_data_version(demo, db):
    collection, _, _ = demo
    name = evaluation.classifier_name(collection)
    evaluation.clear_caches()

    loaded = evaluation.classifier_for(collection, train=False)
    summary = evaluation.classifier_summary(collection)

    assert private_storage().exists(name) and loaded is not None
    assert summary["heldout_count"] > 0
    assert set(summary["per_type_accuracy"]) >= {"background", "type", "eyes"}
    # The demo draws every trait at fixed pixels: the backgrounds are easy to read.
    assert summary["per_type_accuracy"]["background"] > 0.8
    collection.bump_data_version()
    assert evaluation.classifier_for(collection, train=False) is None
    Collection.objects.filter(pk=collection.pk).update(data_version=collection.data_version - 1)


def test_it_does_not_evaluate_the_same_checkpoint_twice_unless_forced(demo, db):
    _, _, run = demo
    checkpoint = run.checkpoints.get(epoch=20)

    first = evaluation.evaluate_checkpoint(checkpoint)
    again = evaluation.evaluate_checkpoint(run.checkpoints.get(pk=checkpoint.pk))
    forced = evaluation.evaluate_checkpoint(checkpoint, force=True)

    assert again["evaluated_at"] == first["evaluated_at"]
    assert forced["evaluated_at"] != first["evaluated_at"]
    # Same seeds, same classifier, same real halves: the same figures.
    assert forced["domain"] == first["domain"]
    assert first["subject"] == {"kind": "checkpoint", "run": run.pk, "epoch": 20}
    assert first["counts"]["generated"] == first["counts"]["compared"] == 96
    assert "INCEPTION_WEIGHTS is not set" in first["baseline"]["inception"]["unavailable"]


def test_it_recommends_a_trained_epoch_for_the_run(demo, db):
    _, _, run = demo

    best = evaluation.evaluate_run(run)
    series = figures.metric_series(run)

    assert [row["epoch"] for row in series] == [0, 20, 40]
    assert best["epoch"] in (20, 40)
    assert best["checkpoint"] == run.checkpoints.get(epoch=best["epoch"]).pk
    assert "lowest domain FID" in best["reason"]


def test_it_says_why_a_collection_cannot_be_evaluated(db):
    empty = Collection.objects.create(slug="no-images", name="No Images")

    with pytest.raises(evaluation.EvaluationError, match="has 0 token image"):
        evaluation.classifier_for(empty)
