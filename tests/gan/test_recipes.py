"""Named recipes and the parts beyond the seed DCGAN: EMA generator, hinge loss, R1 penalty."""

import numpy as np
import pytest

from gan_app.gan import ConfigError, GANConfig, Trainer, load_generator
from gan_app.gan.config import DEFAULT_PRESET, PRESETS
from gan_app.gan.training import generator_from_checkpoint, read_checkpoint


def tiny(preset=None, **overrides):
    settings = {
        "resolution": 32,
        "latent_dim": 8,
        "generator_width": 4,
        "discriminator_width": 4,
        "batch_size": 8,
        "epochs": 2,
        "checkpoint_every": 1,
        **overrides,
    }
    return GANConfig.from_preset(preset, **settings)


def blobs(count=16):
    rng = np.random.default_rng(0)
    images = np.full((count, 32, 32, 3), 255, np.uint8)
    for image in images:
        x, y = rng.integers(4, 20, 2)
        image[y : y + 8, x : x + 8] = rng.integers(0, 255, 3)
    return images


def test_it_keeps_the_seed_dcgan_as_a_preset_equal_to_the_old_defaults():
    assert GANConfig.from_preset("seed-dcgan").replace(preset="custom") == GANConfig()
    assert GANConfig().ema_decay == 0 and GANConfig().loss == "bce"


def test_it_gives_new_runs_the_default_recipe():
    config = GANConfig.from_preset()
    assert config.preset == DEFAULT_PRESET
    assert config.to_dict() == {**GANConfig().to_dict(), **PRESETS[DEFAULT_PRESET], "preset": "nff"}


def test_it_names_an_unknown_preset_or_value():
    with pytest.raises(ConfigError, match="unknown preset 'stylegan'"):
        GANConfig.from_preset("stylegan")
    with pytest.raises(ConfigError, match="loss must be one of"):
        GANConfig(loss="wasserstein")
    with pytest.raises(ConfigError, match="ema_decay must be < 1"):
        GANConfig(ema_decay=1.0)
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        GANConfig.from_preset("nff", emma_decay=0.9)


@pytest.mark.parametrize(
    "overrides",
    [
        {"loss": "hinge"},
        {"r1_gamma": 1.0},
        {"ema_decay": 0.9},
        {"loss": "hinge", "r1_gamma": 0.5, "ema_decay": 0.9, "augment": True},
    ],
)
def test_it_trains_every_recipe_part_to_finite_losses(overrides):
    trainer = Trainer(tiny("seed-dcgan", **overrides), blobs())
    result = trainer.run()
    assert result.finished
    assert all(np.isfinite(v) for v in trainer.history[-1].values())


def test_it_samples_and_publishes_the_moving_average(tmp_path):
    trainer = Trainer(tiny("seed-dcgan", ema_decay=0.5), blobs())
    trainer.run()
    live = trainer.model.generator.get_weights()
    average = trainer.generator.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(live, average, strict=True))

    trainer.export_generator(tmp_path / "g.zip")
    published = load_generator(tmp_path / "g.zip").model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(published, average, strict=True))


def test_it_resumes_the_moving_average_exactly(tmp_path):
    config = tiny("seed-dcgan", ema_decay=0.5, epochs=3)
    straight = Trainer(config, blobs())
    straight.run()

    first = Trainer(config, blobs())
    first.run(max_epochs=2)
    checkpoint = first.checkpoint().data
    assert "ema_generator" in read_checkpoint(checkpoint)[1]
    resumed = Trainer.resume(checkpoint, blobs())
    resumed.run()

    for a, b in zip(straight.generator.weights, resumed.generator.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    from_file, _ = generator_from_checkpoint(resumed.checkpoint().data)
    for a, b in zip(from_file.get_weights(), resumed.generator.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_it_trains_a_conditional_generator_with_the_mode_seeking_term(tmp_path):
    from tests.gan.conftest import TINY
    from tests.gan.trait_images import draw_collection

    images, traits = draw_collection(12, size=32, seed=3)
    config = GANConfig(**{**TINY, "conditional": True, "trait_min_count": 2}, diversity_weight=1.0)
    trainer = Trainer(config, images, traits=traits)
    trainer.run()
    assert all(np.isfinite(v) for v in trainer.history[-1].values())

    trainer.export_generator(tmp_path / "g.zip")
    generator = load_generator(tmp_path / "g.zip")
    fixed = generator.vocabulary.grid_conditions(1).traits[0]
    drawn = generator.generate(range(4), traits=fixed)
    # The same traits, four seeds: four different images (the noise still matters).
    assert len({image.tobytes() for image in drawn}) == 4


def test_it_refuses_a_negative_diversity_weight():
    with pytest.raises(ConfigError, match="diversity_weight must be >= 0"):
        GANConfig(diversity_weight=-1)
