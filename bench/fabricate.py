"""Fabrication throughput: N unique tokens from a small 32 px generator (issue 16 targets).

Trains a small generator on the demo punks for ``--train-seconds`` of wall time (or loads one
with ``--generator FILE``), fits the near-copy guard on its training images and a tiny trait
classifier, then fabricates each ``--counts`` collection with both exports (seed archive pair
and ERC-721 zip) to a temporary folder, uniqueness checked exactly.

    python bench/fabricate.py [--counts 1000 10000] [--train-seconds 90] [--generator FILE]

Prints one JSON object per line: the generator, then one per count (seconds, tokens/s,
rejections by reason, peak RSS; the CPU is shared, so the load average goes with each figure).
"""

import argparse
import io
import json
import os
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from collections_app.analytics.rarity import score_records
from gan_app.gan import GANConfig, Trainer, load_generator, prepare_images
from gan_app.gan.fabrication import FabricationOptions, Fabricator, fabricate
from gan_app.gan.fabrication_export import Erc721Writer, SeedArchiveWriter
from gan_app.gan.memorisation import NearCopyIndex
from gan_app.gan.trait_classifier import TraitClassifier

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"  # ../shared/data
SLUG = "cryptopunks-1k"


def read_demo(data_dir: Path):
    """(name, PNG bytes) and trait lists of the demo archive pair, in token order."""
    with zipfile.ZipFile(data_dir / f"{SLUG}_archive.zip") as zf:
        images = sorted(
            ((n, zf.read(n)) for n in zf.namelist() if n.endswith(".png")),
            key=lambda item: int(Path(item[0]).stem),
        )
    with zipfile.ZipFile(data_dir / f"{SLUG}_metadata_archive.zip") as zf:
        traits = {
            Path(n).stem: json.loads(zf.read(n)).get("traits", [])
            for n in zf.namelist()
            if n.endswith(".json")
        }
    return images, [traits.get(Path(n).stem, []) for n, _ in images]


def train_generator(images, seconds: float):
    config = GANConfig(resolution=32, latent_dim=32, batch_size=64, generator_width=32)
    prepared = prepare_images(images, config)
    trainer = Trainer(config, prepared)
    started, epochs = time.monotonic(), 0
    while epochs == 0 or time.monotonic() - started < seconds:
        trainer.train_epoch()
        epochs += 1
    artifact = io.BytesIO()
    trainer.export_generator(artifact, training_set={"slug": SLUG})
    return artifact.getvalue(), epochs, round(time.monotonic() - started, 1)


def pixels(images, size=32):
    from PIL import Image

    rows = []
    for _, data in images:
        image = Image.open(io.BytesIO(data)).convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        canvas.alpha_composite(image)
        rows.append(np.asarray(canvas.convert("RGB").resize((size, size), Image.NEAREST)))
    return np.stack(rows)


def emit(row):
    row["load_average"] = round(os.getloadavg()[0], 2)
    row["cpu_cores"] = os.cpu_count()
    print(json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--train-seconds", type=float, default=90.0)
    parser.add_argument("--generator", type=Path, help="a published generator file to load")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    images, traits = read_demo(args.data)
    training = pixels(images)
    if args.generator:
        artifact, epochs, train_seconds = args.generator.read_bytes(), None, 0
    else:
        artifact, epochs, train_seconds = train_generator(images, args.train_seconds)
    generator = load_generator(artifact)
    started = time.monotonic()
    guard = NearCopyIndex.fit(training)
    classifier = TraitClassifier.fit(training, traits, epochs=3, width=16, feature_dim=64)
    emit(
        {
            "bench": "fabricate",
            "phase": "setup",
            "train_epochs": epochs,
            "train_seconds": train_seconds,
            "guard_and_classifier_seconds": round(time.monotonic() - started, 1),
            "near_copy_threshold": round(guard.threshold, 4),
        }
    )
    for count in args.counts:
        options = FabricationOptions(
            count=count, seed=args.seed, batch_size=args.batch, max_count=max(args.counts)
        )
        fabricator = Fabricator(generator, options, guard=guard, classifier=classifier)
        with tempfile.TemporaryDirectory(prefix="nff-fabricate-") as tmp:
            writers = [
                SeedArchiveWriter(tmp, "fab"),
                Erc721Writer(
                    Path(tmp) / "fab_erc721.zip", name="Fab", image_uri="ipfs://CID/{id}.png"
                ),
            ]
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            wall, cpu = time.monotonic(), time.process_time()
            result = fabricate(fabricator, writers, rarity=score_records)
            seconds = time.monotonic() - wall
        emit(
            {
                "bench": "fabricate",
                "count": count,
                "made": result.made,
                "status": result.status,
                "candidates": result.candidates,
                "rejected": result.rejected,
                "rejection_rate": round(result.rejection_rate, 4),
                "seconds": round(seconds, 1),
                "cpu_seconds": round(time.process_time() - cpu, 1),
                "tokens_per_second": round(result.made / seconds, 1),
                "peak_rss_before_mb": round(before, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "provenance": result.provenance,
            }
        )


if __name__ == "__main__":
    main()
