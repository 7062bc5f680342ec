"""Training throughput (images/second) of our pipeline against a straightforward reference.

Ours: images decoded once (``prepare_images``), each batch gathered from them, a compiled train
step (``Trainer``; XLA and mixed precision when a GPU is present). Reference: the same networks and
the same train step run eagerly, each batch read and decoded from the PNG files per step.

    python bench/train.py [--resolutions 32 64] [--seconds 30] [--rounds 3] [--images 512]

Prints one JSON object per line: one per pipeline and resolution, then the speedup.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from gan_app.gan import GANConfig, Trainer, build_dcgan, prepare_images
from gan_app.gan.data import preprocess_image, resolve_resize
from gan_app.gan.runtime import resolve_runtime

SPRITE = 24  # source images are 24x24 RGBA sprites, like CryptoPunks


def write_sprites(directory: Path, count: int) -> list[Path]:
    """Synthetic pixel-art tokens: a head-like block and an accessory on transparency."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        pixels = np.zeros((SPRITE, SPRITE, 4), np.uint8)
        x, y = rng.integers(4, 10, 2)
        pixels[y : y + 12, x : x + 9] = (*rng.integers(60, 256, 3), 255)
        pixels[y + 1 : y + 3, x - 2 : x + 11] = (*rng.integers(0, 256, 3), 255)
        path = directory / f"{i}.png"
        Image.fromarray(pixels, "RGBA").save(path)
        paths.append(path)
    return paths


class Ours:
    name = "ours"

    def __init__(self, config: GANConfig, paths: list[Path]):
        started = time.monotonic()
        images = prepare_images(paths, config)
        self.extra = {"prepare_seconds": round(time.monotonic() - started, 3)}
        self.trainer = Trainer(config, images)
        self.trainer.train_epoch()  # traces and compiles the train step

    def run_for(self, seconds: float) -> int:
        """Whole epochs for about ``seconds``; returns the steps done."""
        steps, started = 0, time.monotonic()
        while steps == 0 or time.monotonic() - started < seconds:
            self.trainer.train_epoch()
            steps += self.trainer.batches.steps_per_epoch
        return steps


class Reference:
    """The same networks and train step, run eagerly, each batch decoded from the files."""

    name = "reference"

    def __init__(self, config: GANConfig, paths: list[Path]):
        self.config, self.paths, self.extra = config, paths, {}
        self.model = build_dcgan(config.replace(xla="off", mixed_precision="off"))
        self.resize = resolve_resize(config.resize, (SPRITE, SPRITE), config.resolution)
        self.rng = np.random.default_rng(config.seed)
        self.step()

    def step(self):
        batch = self.rng.choice(len(self.paths), self.config.batch_size, replace=False)
        images = []
        for i in batch:
            with Image.open(self.paths[i]) as image:
                images.append(preprocess_image(image, self.config, self.resize))
        self.model.train_step(np.stack(images))  # eager: no tf.function around it

    def run_for(self, seconds: float) -> int:
        steps, started = 0, time.monotonic()
        while steps == 0 or time.monotonic() - started < seconds:
            self.step()
            steps += 1
        return steps


def compare(config: GANConfig, paths: list[Path], args) -> list[dict]:
    """Alternate short timed rounds of each pipeline, so a load spike from another process
    on the shared CPU hits both alike instead of skewing the ratio."""
    pipelines = [Ours(config, paths)]
    if not args.skip_reference:
        pipelines.append(Reference(config, paths))
    totals = {p.name: [0, 0.0] for p in pipelines}
    for _ in range(args.rounds):
        for pipeline in pipelines:
            started = time.monotonic()
            steps = pipeline.run_for(args.seconds / args.rounds)
            totals[pipeline.name][0] += steps
            totals[pipeline.name][1] += time.monotonic() - started
    return [_figures(p.name, config, *totals[p.name], **p.extra) for p in pipelines]


def _figures(pipeline, config, steps, seconds, **extra):
    return {
        "bench": "train",
        "pipeline": pipeline,
        "resolution": config.resolution,
        "device": resolve_runtime(config).device,
        "batch_size": config.batch_size,
        "g_width": config.g_width,
        "d_width": config.d_width,
        "steps": steps,
        "seconds": round(seconds, 3),
        "images_per_second": round(steps * config.batch_size / seconds, 1),
        # The CPU is shared: a load average above the core count means the figures are low.
        "load_average": round(os.getloadavg()[0], 2),
        **extra,
    }


def main():
    gpu = resolve_runtime(GANConfig()).gpu
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--resolutions", type=int, nargs="+", default=[64, 128] if gpu else [32, 64]
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="timed seconds per pipeline")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per pipeline")
    parser.add_argument("--images", type=int, default=8192 if gpu else 512)
    parser.add_argument("--batch-size", type=int, default=256 if gpu else 64)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_sprites(Path(tmp), args.images)
        for resolution in args.resolutions:
            config = GANConfig(resolution=resolution, batch_size=args.batch_size, epochs=10**6)
            figures = compare(config, paths, args)
            for line in figures:
                print(json.dumps(line), flush=True)
            if len(figures) == 2:
                ours, reference = figures
                speedup = ours["images_per_second"] / reference["images_per_second"]
                summary = {"bench": "train", "resolution": resolution, "device": ours["device"]}
                print(json.dumps({**summary, "speedup": round(speedup, 2), "target": 2.0}))


if __name__ == "__main__":
    main()
