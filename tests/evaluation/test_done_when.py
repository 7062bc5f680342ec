"""Issue 7's done-when: on the demo collection a trained generator's domain FID is clearly
better than an untrained one's and worse than real-vs-real, and the page shows both."""

import pytest

from gan_app.evaluation import reports as evaluation
from gan_app.publishing import publish_checkpoint

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_it_ranks_trained_between_untrained_and_real(demo, db, client):
    _, _, run = demo
    untrained = run.checkpoints.get(epoch=0)
    trained = run.checkpoints.get(epoch=run.epoch_done)

    before = evaluation.evaluate_checkpoint(untrained)
    after = evaluation.evaluate_checkpoint(trained)
    print(
        "\nFIGURES domain FID untrained", before["domain"]["fid"],
        "trained", after["domain"]["fid"],
        "real-vs-real", after["baseline"]["domain"]["fid"],
        "| trait TV", before["traits"]["tv_mean"], after["traits"]["tv_mean"],
        after["baseline"]["traits"]["tv_mean"],
        "| KID", before["domain"]["kid_mean"], after["domain"]["kid_mean"],
        after["baseline"]["domain"]["kid_mean"],
    )  # fmt: skip

    real_vs_real = after["baseline"]["domain"]["fid"]
    assert after["domain"]["fid"] < 0.75 * before["domain"]["fid"]
    assert after["domain"]["fid"] > real_vs_real
    assert before["baseline"]["domain"]["fid"] == pytest.approx(real_vs_real)
    assert "INCEPTION_WEIGHTS is not set" in after["inception"]["unavailable"]

    generator = publish_checkpoint(trained)
    page = client.get(generator.get_absolute_url()).content.decode()
    assert "FID (trait features)" in page
    assert f"{after['domain']['fid']:,.3g}" in page
    assert f"{real_vs_real:,.3g}" in page


def test_it_compares_a_collections_generators(demo, db, client):
    collection, _, run = demo
    trained = publish_checkpoint(run.checkpoints.get(epoch=run.epoch_done))
    untrained = publish_checkpoint(run.checkpoints.get(epoch=0))
    untrained.metrics = {}
    untrained.save(update_fields=["metrics"])
    evaluation.evaluate_checkpoint(run.checkpoints.get(epoch=run.epoch_done))
    trained.refresh_from_db()

    page = client.get(f"/c/{collection.slug}/generators/").content.decode()

    assert trained.name in page and untrained.name in page
    assert "not evaluated yet" in page
    assert f"{trained.metrics['domain']['fid']:.3f}" in page
    assert f"{trained.metrics['baseline']['domain']['fid']:.3f}" in page
    assert "/generators/" in client.get(collection.get_absolute_url()).content.decode()
