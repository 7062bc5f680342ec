"""Evaluation services on the small demo collection (see conftest)."""

import pytest

from collections_app.models import Collection
from gan_app.evaluation import figures
from gan_app.evaluation import reports as evaluation
from gan_app.gan import GANConfig, Trainer, load_generator
from gan_app.models import TrainingRun
from gan_app.training.chunks import load_traits
from nftsite.storage import private_storage
from tests.evaluation.conftest import GAN, add_checkpoint, artifact_bytes

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


def test_it_applies_the_quality_gate_at_the_end_of_a_generator_evaluation(demo, db, settings):
    from gan_app.evaluation import gate
    from gan_app.publishing import publish_checkpoint

    settings.QUALITY_GATE = True
    _, _, run = demo
    generator = publish_checkpoint(run.checkpoints.get(epoch=40))
    assert generator.is_published and not generator.is_listed

    report = evaluation.evaluate_generator(generator)

    generator.refresh_from_db()
    checks = {c["name"]: c for c in generator.gate_verdict["checks"]}
    assert set(checks) == {"fid_ratio", "valid_token_rate", "valid_token_ratio", "near_copy_share"}
    ratio = report["domain"]["fid"] / report["baseline"]["domain"]["fid"]
    assert checks["fid_ratio"]["value"] == pytest.approx(ratio)
    assert checks["fid_ratio"]["passed"] == (ratio <= 4.0)
    assert generator.gate_verdict["evaluated_at"] == report["evaluated_at"]
    assert generator.is_listed == generator.gate_verdict["passed"]

    # Looser thresholds apply at the next evaluation (an unchanged report is reused).
    settings.QUALITY_GATE_MAX_FID_RATIO = 1e9
    settings.QUALITY_GATE_MIN_VALID_TOKEN_RATE = 0.0
    settings.QUALITY_GATE_MIN_VALID_TOKEN_RATIO = 0.0
    settings.QUALITY_GATE_MAX_NEAR_COPY_SHARE = 1.0
    evaluation.evaluate_generator(generator)
    generator.refresh_from_db()
    measured = "valid_token_rate" in (report.get("quality") or {})
    assert generator.is_listed == measured  # an unmeasured rate fails closed
    if not measured:
        assert gate.failing(generator) == [
            "not measured: the report has no quality.valid_token_rate",
            "not measured: the report has no valid-token rate of real tokens"
            " (baseline.quality.valid_token_rate)",
        ]


def test_it_evaluates_a_trait_conditioned_checkpoint_as_its_generator_draws(demo, db):
    """A conditioned generator takes [latent, traits]: evaluating its checkpoint used to call it
    with latents alone (a crash). Now a checkpoint draws exactly what its published generator
    draws, traits and all."""
    _, training_set, _ = demo
    config = GANConfig(**{**GAN, "epochs": 1, "conditional": True, "trait_min_count": 3})
    run = TrainingRun.objects.create(
        training_set=training_set,
        config=config.to_dict(),
        resolution=config.resolution,
        epochs_total=1,
        conditional=True,
        status=TrainingRun.Status.SUCCEEDED,
    )
    real = evaluation.run_real_set(run)
    trainer = Trainer(config, real.images, traits=load_traits(training_set))
    trainer.run()
    checkpoint = add_checkpoint(run, trainer.checkpoint().data, 1)

    report = evaluation.evaluate_checkpoint(checkpoint)
    pixels, _ = evaluation.checkpoint_pixels(checkpoint, 8)
    published = load_generator(artifact_bytes(checkpoint))
    assert published.conditional
    assert report["counts"]["generated"] == 96
    assert report["domain"]["fid"] >= 0
    assert (pixels == evaluation.generator_pixels(published, 8)).all()
