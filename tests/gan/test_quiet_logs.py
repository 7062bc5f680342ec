"""Training logs no TensorFlow error lines: grappler's remapper used to fail on the
discriminator's Conv2D + BiasAdd + LeakyRelu gradient and log "remapper failed" every run."""

import os
import subprocess
import sys

from tests.testenv import ROOT

SCRIPT = """
import numpy as np
from gan_app.gan import GANConfig
from gan_app.gan.training import Trainer
from tests.gan.conftest import TINY
config = GANConfig(**TINY)
images = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
Trainer(config, images).train_epoch()
print("trained")
"""


def test_it_trains_without_a_remapper_error_line():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}  # show every TensorFlow log line
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained" in done.stdout
    assert "remapper failed" not in done.stderr
