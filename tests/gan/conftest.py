"""Tiny networks and a few synthetic sprites: the GAN tests run on a CPU in seconds."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gan_app.gan import GANConfig
from tests.testenv import ROOT

TINY = {
    "resolution": 32,
    "latent_dim": 8,
    "generator_width": 4,
    "discriminator_width": 4,
    "batch_size": 4,
    "epochs": 4,
    "checkpoint_every": 2,
}


def sprite_png(seed, size=12, mode="RGBA"):
    """A transparent sprite with a coloured block, like a tiny pixel-art token."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    colour = (*(int(c) for c in rng.integers(0, 256, 3)), 255)
    x, y = (int(v) for v in rng.integers(0, size // 2, 2))
    image.paste(colour, (x, y, x + size // 2, y + size // 2))
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def tiny_config():
    return GANConfig(**TINY)


@pytest.fixture
def sprites():
    return [(f"{i}.png", sprite_png(i)) for i in range(12)]


@pytest.fixture
def sprite_images():
    """12 uint8 images (32, 32, 3) as the trainer takes them."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)


def run_python(code, *args, timeout=120):
    """Run ``code`` in a fresh interpreter (a new process, as a resumed Celery chunk is)."""
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
