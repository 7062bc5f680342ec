"""Conditional training runs: the tokens' traits feed the run; the vocabulary is published."""

import pytest

from collections_app.demo.build import build_demo_collection
from collections_app.models import TrainingSet
from gan_app.models import Generator, TrainingRun
from gan_app.training import chunks
from gan_app.training import runs as training
from tests.training.conftest import TINY

pytestmark = pytest.mark.django_db

CONDITIONAL = {**TINY, "conditional": True, "trait_min_count": 3}


@pytest.fixture
def inline_chain(eager_celery, django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def demo_set():
    """24 demo tokens (32 px layered characters with six trait types)."""
    collection, _ = build_demo_collection("cond-demo", size=24)
    return training.whole_collection_set(collection)


def test_it_trains_on_the_tokens_traits_and_publishes_the_vocabulary(demo_set, inline_chain):
    from gan_app.gan import load_generator, read_checkpoint

    with inline_chain():
        run = training.create_run(demo_set, auto_publish=True, **CONDITIONAL)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.conditional and run.config["conditional"]
    assert all("aux_loss" in entry for entry in run.loss_history)
    manifest, _ = read_checkpoint(run.checkpoints.get(epoch=2).state_file.read())
    traits = chunks.load_traits(demo_set)
    assert len(traits) == 24 and all(any(n == "type" for n, _ in t) for t in traits)
    assert {t["name"] for t in manifest["conditions"]["types"]} == {
        name for token in traits for name, _ in token
    }
    generator = Generator.objects.get(training_run=run)
    assert generator.conditional
    assert generator.manifest["conditions"] == manifest["conditions"]
    loaded = load_generator(generator.model_file.read())
    assert loaded.vocabulary.to_json() == manifest["conditions"]


def test_it_resumes_a_conditional_run_exactly(demo_set, inline_chain):
    from gan_app.gan import read_checkpoint

    with inline_chain():
        straight = training.create_run(demo_set, **CONDITIONAL)
    split = training.create_run(demo_set, enqueue=False, **CONDITIONAL)
    chunks.run_chunk(split.pk, split.task_id, chain=False, max_seconds=0.001)
    with inline_chain():
        training.resume_run(split)

    split.refresh_from_db()
    assert split.status == TrainingRun.Status.SUCCEEDED, split.error
    a = read_checkpoint(straight.checkpoints.get(epoch=2).state_file.read())[1]
    b = read_checkpoint(split.checkpoints.get(epoch=2).state_file.read())[1]
    for group in a:
        for x, y in zip(a[group], b[group], strict=True):
            assert (x == y).all(), group


def test_it_refuses_a_conditional_run_on_tokens_without_traits(sprite_set):
    with pytest.raises(training.TrainingSetupError, match="lists no traits"):
        training.create_run(sprite_set, enqueue=False, **CONDITIONAL)


def test_it_starts_conditional_runs_from_the_admin_form_and_the_command(admin_client, demo_set):
    from django.core.management import call_command
    from django.urls import reverse

    response = admin_client.post(
        reverse("admin:gan_app_trainingrun_start"),
        {
            "training_set": demo_set.pk,
            "resolution": 32,
            "epochs": 3,
            "batch_size": 8,
            "checkpoint_every": 1,
            "g_learning_rate": 0.0004,
            "d_learning_rate": 0.0002,
            "seed": 0,
            "conditional": "on",
            "trait_min_count": 4,
        },
    )
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert run.conditional and run.config["trait_min_count"] == 4

    call_command(
        "train", "cond-demo", "--conditional", "--queue", "--epochs", "1", "--batch-size", "8"
    )
    queued = TrainingRun.objects.exclude(pk=run.pk).get()
    assert queued.conditional and queued.config["conditional"]


def test_the_default_recipe_conditions_on_traits_when_the_set_lists_some(
    demo_set, sprite_set, settings
):
    settings.TRAIN_DEFAULT_PRESET = "nff"
    with_traits = training.create_run(demo_set, enqueue=False, **TINY)
    without_traits = training.create_run(sprite_set, enqueue=False, **TINY)
    turned_off = training.create_run(demo_set, enqueue=False, conditional=False, **TINY)
    seed_recipe = training.create_run(demo_set, enqueue=False, preset="seed-dcgan", **TINY)

    assert with_traits.conditional and with_traits.config["conditional"]
    # A set without traits trains unconditioned rather than being refused...
    assert not without_traits.conditional and not without_traits.config["conditional"]
    # ...and an explicit choice, or a recipe that does not condition, is kept.
    assert not turned_off.conditional and not seed_recipe.conditional
    suggested = training.suggested_defaults_by_set(
        TrainingSet.objects.filter(pk__in=[demo_set.pk, sprite_set.pk])
    )
    assert suggested[demo_set.pk]["conditional"] is True
    assert suggested[sprite_set.pk]["conditional"] is False
    assert training.suggested_defaults(demo_set)["conditional"] is True
    settings.TRAIN_DEFAULT_PRESET = "seed-dcgan"
    assert training.suggested_defaults(demo_set)["conditional"] is False


def test_it_publishes_a_conditional_generator_with_a_grid_of_free_draws(demo_set, inline_chain):
    """The public grid shows seeds 0-15, each with the traits it draws, not the training
    grid's one combination per row (which the checkpoint keeps for the run page)."""
    import numpy as np
    from django.core.files.base import ContentFile

    from gan_app import publishing
    from gan_app.gan import load_generator, to_png

    with inline_chain():
        run = training.create_run(demo_set, **CONDITIONAL)
    checkpoint = run.checkpoints.get(epoch=2)
    training_grid = to_png(np.full((8, 8, 3), 200, np.uint8))  # told apart from any drawing
    checkpoint.grid.save("training-grid.png", ContentFile(training_grid))

    generator = publishing.publish_checkpoint(checkpoint)

    loaded = load_generator(generator.model_file.read())
    published = generator.sample_grid.read()
    assert published != training_grid
    assert published == loaded.to_png(loaded.grid())
