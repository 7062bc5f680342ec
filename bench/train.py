"""Training throughput (images/second) of our pipeline against a straightforward reference.

Ours: images decoded once (``prepare_images``), batches from tf.data, a compiled train step
(``Trainer``; XLA and mixed precision when a GPU is present). Reference: the same networks and
the same train step run eagerly, each batch read and decoded from the PNG files per step.

    python bench/train.py [--resolutions 32 64] [--seconds 20] [--images 512] [--batch-size 64]

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


def bench_ours(config: GANConfig, paths: list[Path], seconds: float) -> dict:
    started = time.monotonic()
    images = prepare_images(paths, config)
    prepare_seconds = time.monotonic() - started
    trainer = Trainer(config, images)
    trainer.train_epoch()  # traces and compiles the train step
    done, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        trainer.train_epoch()
        done += trainer.batches.steps_per_epoch
    elapsed = time.monotonic() - started
    return _figures("ours", config, done, elapsed, prepare_seconds=round(prepare_seconds, 3))


def bench_reference(config: GANConfig, paths: list[Path], seconds: float) -> dict:
    model = build_dcgan(config.replace(xla="off", mixed_precision="off"))
    resize = resolve_resize(config.resize, (SPRITE, SPRITE), config.resolution)
    rng = np.random.default_rng(config.seed)

    def step():
        batch = rng.choice(len(paths), config.batch_size, replace=False)
        images = []
        for i in batch:
            with Image.open(paths[i]) as image:
                images.append(preprocess_image(image, config, resize))
        model.train_step(np.stack(images))  # eager: no tf.function around it

    step()
    done, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        step()
        done += 1
    return _figures("reference", config, done, time.monotonic() - started)


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
        **extra,
    }


def main():
    gpu = resolve_runtime(GANConfig()).gpu
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--resolutions", type=int, nargs="+", default=[64, 128] if gpu else [32, 64]
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per pipeline")
    parser.add_argument("--images", type=int, default=8192 if gpu else 512)
    parser.add_argument("--batch-size", type=int, default=256 if gpu else 64)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_sprites(Path(tmp), args.images)
        for resolution in args.resolutions:
            config = GANConfig(resolution=resolution, batch_size=args.batch_size, epochs=10**6)
            ours = bench_ours(config, paths, args.seconds)
            print(json.dumps(ours), flush=True)
            if args.skip_reference:
                continue
            reference = bench_reference(config, paths, args.seconds)
            print(json.dumps(reference), flush=True)
            speedup = ours["images_per_second"] / reference["images_per_second"]
            summary = {"bench": "train", "resolution": resolution, "device": ours["device"]}
            print(json.dumps({**summary, "speedup": round(speedup, 2), "target": 2.0}), flush=True)


if __name__ == "__main__":
    main()
