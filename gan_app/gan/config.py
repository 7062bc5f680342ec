"""Hyperparameters of a DCGAN run, as one JSON-round-trippable dataclass.

The defaults follow the original project (DCGAN best practices: Adam with beta1 0.5, N(0, 0.02)
initialisation, LeakyReLU 0.2, dropout in the discriminator, one-sided label smoothing, a
checkpoint every 15 epochs) and were tuned on CryptoPunks at 32 px on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from typing import Any

RESOLUTIONS = (32, 64, 128)
RESIZE_MODES = ("auto", "nearest", "area", "native")
RARE_TRAIT_MODES = ("other", "exclude")
AUTO_MODES = ("auto", "on", "off")
LOSSES = ("bce", "hinge")
LR_SCHEDULES = ("constant", "cosine")

# Width = channels of the highest-resolution hidden layer; deeper layers double it (up to 8x).
# 32 px: trains recognisable CryptoPunks in 5 minutes on 2 CPU cores (wider nets learned no
# better per minute). 64 px: a published generator serves >= 500 images/s on those cores.
DEFAULT_GENERATOR_WIDTH = {32: 32, 64: 24, 128: 16}
DEFAULT_DISCRIMINATOR_WIDTH = {32: 32, 64: 24, 128: 16}

_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class ConfigError(ValueError):
    """A hyperparameter has a wrong name, type or value."""


@dataclass(frozen=True)
class GANConfig:
    """Everything that determines a training run (and, with the data, its result).

    ``generator_width``/``discriminator_width`` of ``None`` mean "the default for the
    resolution" (see ``DEFAULT_*_WIDTH``); read the resolved numbers from ``g_width``/``d_width``.
    """

    resolution: int = 32
    latent_dim: int = 100
    generator_width: int | None = None
    discriminator_width: int | None = None
    batch_size: int = 64
    epochs: int = 100
    # Two time-scale update rule (TTUR). The discriminator wins easily on small sprite sets;
    # a generator twice as fast kept the game balanced and gave the cleanest punks.
    g_learning_rate: float = 0.0004
    d_learning_rate: float = 0.0002
    beta_1: float = 0.5
    beta_2: float = 0.999
    label_smoothing: float = 0.1
    dropout: float = 0.3
    init_stddev: float = 0.02
    checkpoint_every: int = 15
    background: str = "#ffffff"
    resize: str = "auto"
    augment: bool = False
    mixed_precision: str = "auto"
    xla: str = "auto"
    seed: int = 0
    # Trait conditioning (see ``conditioning``): the generator takes a multi-hot trait vector
    # beside the latent, the discriminator projects it onto its features and also predicts it
    # (auxiliary head, weighted by ``aux_weight``; 0 turns the head off).
    conditional: bool = False
    trait_min_count: int = 5  # values on fewer tokens are grouped ("other") or dropped
    rare_traits: str = "other"
    condition_dim: int = 32
    aux_weight: float = 1.0
    # Recipe beyond the seed DCGAN (all off by default, so a stored config means what it meant;
    # ``PRESETS`` name the combinations, ``DEFAULT_PRESET`` is what new runs get).
    preset: str = "custom"  # a label: which preset the config started from
    ema_decay: float = 0.0  # >0: sample and publish an exponential moving average of G
    loss: str = "bce"  # "hinge": hinge loss for D, -D(G(z)) for G (no label smoothing)
    r1_gamma: float = 0.0  # >0: R1 gradient penalty on real images (Mescheder et al. 2018)
    # Conditional runs: >0 adds the mode-seeking term (Mao et al. 2019), so that two seeds
    # with the same traits give different images instead of one image per trait combination.
    diversity_weight: float = 0.0
    # "cosine": both learning rates decay to 10% over ``epochs`` (optimizer steps), so the
    # last epochs refine instead of oscillating; set ``epochs`` to the run's real length.
    lr_schedule: str = "constant"

    def __post_init__(self):
        _validate(self)

    @property
    def g_width(self) -> int:
        return self.generator_width or DEFAULT_GENERATOR_WIDTH[self.resolution]

    @property
    def d_width(self) -> int:
        return self.discriminator_width or DEFAULT_DISCRIMINATOR_WIDTH[self.resolution]

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        return tuple(int(self.background[i : i + 2], 16) for i in (1, 3, 5))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GANConfig:
        """Build from JSON data; unknown keys and wrong types raise ``ConfigError``."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes) -> GANConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_preset(cls, name: str | None = None, **overrides) -> GANConfig:
        """A config from a named recipe (``PRESETS``), with ``overrides`` on top."""
        name = DEFAULT_PRESET if name is None else name
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls.from_dict({**PRESETS[name], "preset": name, **overrides})


# Named recipes. "seed-dcgan" is the original project's DCGAN with every best practice it lists
# (the dataclass defaults); "nff" is ours (see docs/training.md for what each change gained).
PRESETS: dict[str, dict[str, Any]] = {
    "seed-dcgan": {},
    # From the ablation: R1 gave the lowest FID, EMA smoother samples; hinge and DiffAugment
    # (for small sets: add augment=true there) did not pay at these budgets. Conditioning on
    # the tokens' traits (drawn from the set's own combinations when a visitor asks for none)
    # gave the largest gain of all; runs on sets that list no traits train without it.
    "nff": {"ema_decay": 0.999, "r1_gamma": 1.0, "conditional": True},
}
DEFAULT_PRESET = "nff"


def _check_type(name, value, kinds, allow_none=False):
    if value is None and allow_none:
        return
    # bool is an int subclass; True as a batch size is a mistake, not a 1.
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"{name} must be {_kind_names(kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise ConfigError(f"{name} must be {_kind_names(kinds)}, got {value!r}")


def _kind_names(kinds):
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


def _check_range(name, value, low=None, high=None, low_open=False):
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{name} must be <= {high}, got {value!r}")


def _validate(c: GANConfig) -> None:
    for name in ("resolution", "latent_dim", "batch_size", "epochs", "checkpoint_every", "seed"):
        _check_type(name, getattr(c, name), (int,))
    for name in ("generator_width", "discriminator_width"):
        _check_type(name, getattr(c, name), (int,), allow_none=True)
        if getattr(c, name) is not None:
            _check_range(name, getattr(c, name), 1, 1024)
    floats = ("g_learning_rate", "d_learning_rate", "beta_1", "beta_2")
    for name in (*floats, "label_smoothing", "dropout", "init_stddev"):
        _check_type(name, getattr(c, name), (int, float))
    for name in ("background", "resize", "mixed_precision", "xla"):
        _check_type(name, getattr(c, name), (str,))
    _check_type("augment", c.augment, (bool,))
    _check_type("conditional", c.conditional, (bool,))
    for name in ("trait_min_count", "condition_dim"):
        _check_type(name, getattr(c, name), (int,))
    _check_range("trait_min_count", c.trait_min_count, 1)
    _check_range("condition_dim", c.condition_dim, 1, 4096)
    _check_type("aux_weight", c.aux_weight, (int, float))
    _check_range("aux_weight", c.aux_weight, 0)
    _check_type("ema_decay", c.ema_decay, (int, float))
    _check_range("ema_decay", c.ema_decay, 0)
    if c.ema_decay >= 1:
        raise ConfigError(f"ema_decay must be < 1, got {c.ema_decay!r}")
    _check_type("diversity_weight", c.diversity_weight, (int, float))
    _check_range("diversity_weight", c.diversity_weight, 0, 100)
    _check_type("r1_gamma", c.r1_gamma, (int, float))
    _check_range("r1_gamma", c.r1_gamma, 0, 1000)
    for name, allowed in (
        ("loss", LOSSES),
        ("preset", (*PRESETS, "custom")),
        ("lr_schedule", LR_SCHEDULES),
    ):
        _check_type(name, getattr(c, name), (str,))
        if getattr(c, name) not in allowed:
            raise ConfigError(f"{name} must be one of {list(allowed)}, got {getattr(c, name)!r}")
    _check_type("rare_traits", c.rare_traits, (str,))
    if c.rare_traits not in RARE_TRAIT_MODES:
        raise ConfigError(
            f"rare_traits must be one of {list(RARE_TRAIT_MODES)}, got {c.rare_traits!r}"
        )

    if c.resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution must be one of {list(RESOLUTIONS)}, got {c.resolution!r}")
    _check_range("latent_dim", c.latent_dim, 1, 4096)
    _check_range("batch_size", c.batch_size, 1, 65536)
    _check_range("epochs", c.epochs, 1)
    _check_range("checkpoint_every", c.checkpoint_every, 1)
    _check_range("seed", c.seed, 0, 2**63 - 1)
    for name in ("g_learning_rate", "d_learning_rate", "init_stddev"):
        _check_range(name, getattr(c, name), 0, low_open=True)
    for name in ("beta_1", "beta_2"):
        _check_range(name, getattr(c, name), 0, 1)
        if getattr(c, name) >= 1:
            raise ConfigError(f"{name} must be < 1, got {getattr(c, name)!r}")
    _check_range("label_smoothing", c.label_smoothing, 0, 0.5)
    _check_range("dropout", c.dropout, 0)
    if c.dropout >= 1:
        raise ConfigError(f"dropout must be < 1, got {c.dropout!r}")
    if not _HEX_COLOUR.match(c.background):
        raise ConfigError(f"background must be a colour like '#ffffff', got {c.background!r}")
    if c.resize not in RESIZE_MODES:
        raise ConfigError(f"resize must be one of {list(RESIZE_MODES)}, got {c.resize!r}")
    for name in ("mixed_precision", "xla"):
        if getattr(c, name) not in AUTO_MODES:
            raise ConfigError(f"{name} must be one of {list(AUTO_MODES)}, got {getattr(c, name)!r}")
