import json

import pytest

from gan_app.gan import ConfigError, GANConfig


def test_it_round_trips_through_json():
    config = GANConfig(resolution=64, generator_width=24, augment=True, background="#102030")
    assert GANConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_it_has_the_original_projects_defaults():
    config = GANConfig()
    assert (config.beta_1, config.init_stddev, config.checkpoint_every) == (0.5, 0.02, 15)
    assert config.augment is False
    assert (config.mixed_precision, config.xla) == ("auto", "auto")


def test_it_resolves_default_widths_per_resolution():
    assert GANConfig(resolution=64).g_width == 24
    assert GANConfig(resolution=64, generator_width=40).g_width == 40


def test_it_names_unknown_keys():
    with pytest.raises(ConfigError, match=r"unknown hyperparameter.*lr"):
        GANConfig.from_dict({"lr": 0.1})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"resolution": 48}, "resolution must be one of"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"batch_size": "64"}, "batch_size must be an integer"),
        ({"epochs": True}, "epochs must be an integer"),
        ({"g_learning_rate": 0}, "g_learning_rate must be > 0"),
        ({"beta_1": 1.0}, "beta_1 must be < 1"),
        ({"label_smoothing": 0.7}, "label_smoothing must be <= 0.5"),
        ({"dropout": 1}, "dropout must be < 1"),
        ({"background": "white"}, "background must be a colour"),
        ({"resize": "bicubic"}, "resize must be one of"),
        ({"xla": "yes"}, "xla must be one of"),
        ({"seed": -1}, "seed must be >= 0"),
    ],
)
def test_it_rejects_bad_values_with_the_field_name(changes, message):
    with pytest.raises(ConfigError, match=message):
        GANConfig.from_dict({**GANConfig().to_dict(), **changes})
