"""New runs start from a named recipe; pixel-art runs publish generators that draw on the grid."""

import numpy as np
import pytest

from gan_app.models import Generator
from gan_app.training import runs as training
from tests.training.conftest import TINY


@pytest.fixture
def inline_chain(eager_celery, django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_it_starts_runs_from_the_default_preset(sprite_set, settings):
    settings.TRAIN_DEFAULT_PRESET = "nff"
    run = training.create_run(sprite_set, enqueue=False, **TINY)
    assert run.config["preset"] == "nff"
    assert run.config["ema_decay"] > 0 and run.config["r1_gamma"] > 0
    assert run.config["batch_size"] == TINY["batch_size"]  # the fields go on top of the recipe


def test_it_starts_runs_from_a_named_preset(sprite_set):
    run = training.create_run(sprite_set, enqueue=False, preset="seed-dcgan", **TINY)
    assert run.config["preset"] == "seed-dcgan" and run.config["ema_decay"] == 0


def test_it_names_an_unknown_preset(sprite_set):
    with pytest.raises(training.TrainingSetupError, match="unknown preset 'stylegan'"):
        training.create_run(sprite_set, enqueue=False, preset="stylegan", **TINY)


def test_it_publishes_a_pixel_art_generator_that_draws_on_the_native_grid(
    sprite_set, inline_chain, settings
):
    from gan_app.gan import load_generator
    from gan_app.gan.metrics import palette_conformity
    from gan_app.gan.pixelart import PixelArtProfile

    settings.TRAIN_DEFAULT_PRESET = "nff"
    with inline_chain():
        run = training.create_run(sprite_set, auto_publish=True, **TINY)

    generator = Generator.objects.get(training_run=run)
    profile = PixelArtProfile.from_dict(generator.manifest["training_set"]["source"]["pixel_art"])
    with generator.model_file.open("rb") as handle:
        loaded = load_generator(handle.read())
    tokens = loaded.generate([1, 2, 3])
    assert tokens.shape[1:3] == profile.grid[::-1]  # the sprites' own grid, not 32 px
    assert palette_conformity(tokens, profile.palette) == 1.0
    assert np.array_equal(loaded.generate([2]), tokens[1:2])  # same seed, same pixels
