"""What labelling adds to generation: traits, rarity and the near-copy check per stored image.

    python bench/label.py [--tokens 1000] [--repeat 40]

The generate worker runs, per batch of new images (``gan_app.evaluation.labelling.label_pixels``,
called from ``generation.render.store_images``): PNG decode, the trait classifier's forward pass, an
OpenRarity-style score against the collection's trait frequencies, and a nearest-neighbour
search against the training images (``NearCopyIndex``). Everything is loaded once per worker,
so this times the steady state, beside the generator's own forward pass for scale. Uses the
synthetic demo collection (32 px, ``--tokens`` of them); the classifier's weights are barely
trained (speed does not depend on them). No database: the Django glue around these steps is
a cached lookup.

Prints one JSON object per line (milliseconds, p50/p95 over ``--repeat`` batches).
"""

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from collections_app.analytics import rarity
from collections_app.demo import build as demo
from gan_app.gan import GANConfig, build_generator, export_generator, load_generator, to_png
from gan_app.gan.memorisation import NearCopyIndex
from gan_app.gan.trait_classifier import TraitClassifier


def timed(step, repeat):
    step()  # warm-up (graph tracing)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(float(np.percentile(samples, 50)), 2),
        "p95_ms": round(float(np.percentile(samples, 95)), 2),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()

    tokens = demo.demo_tokens(args.tokens)
    images = np.stack([np.asarray(Image.open(io.BytesIO(t.png)).convert("RGB")) for t in tokens])
    traits = [[(t["trait_type"], t["value"]) for t in d.metadata["traits"]] for d in tokens]
    started = time.perf_counter()
    classifier = TraitClassifier.fit(images, traits, epochs=1)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    index = NearCopyIndex.fit(images)
    index_seconds = time.perf_counter() - started
    frequencies = rarity.TraitFrequencies.from_pairs(
        rarity.TraitPairs.from_records(
            list(range(len(traits))),
            [(i, t, v) for i, pairs in enumerate(traits) for t, v in pairs],
        )
    )
    config = GANConfig(resolution=32)
    artifact = io.BytesIO()
    export_generator(build_generator(config), artifact, config=config.to_dict(), epoch=0)
    generator = load_generator(artifact.getvalue())
    base = {
        "bench": "label",
        "tokens": len(images),
        "classifier_fit_1_epoch_s": round(fit_seconds, 2),
        "index_fit_s": round(index_seconds, 2),
        "load_average": round(os.getloadavg()[0], 2),
        "cpu_cores": os.cpu_count(),
    }
    for batch in (1, 16):
        pixels = generator.generate(list(range(batch)))
        pngs = [to_png(p) for p in pixels]

        def decode(pngs=pngs):
            return np.stack([np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in pngs])

        def score(pixels=pixels):
            predicted = classifier.predict_traits(pixels)
            records = [
                (i, t, e["value"])
                for i, tr in enumerate(predicted)
                for t, es in tr.items()
                for e in es
            ]
            frequencies.score(rarity.TraitPairs.from_records(list(range(len(predicted))), records))

        def everything(pixels=pixels, pngs=pngs):
            decode(pngs)
            score(pixels)
            index.check(pixels)

        row = {
            **base,
            "batch": batch,
            "generator_forward": timed(
                lambda batch=batch: generator.generate(list(range(batch))), args.repeat
            ),
            "png_decode": timed(decode, args.repeat),
            "classifier_and_rarity": timed(score, args.repeat),
            "near_copy_check": timed(lambda pixels=pixels: index.check(pixels), args.repeat),
            "label_total": timed(everything, args.repeat),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
