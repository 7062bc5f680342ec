"""Evaluation done-when on the demo collection, at full size: trained vs untrained vs real.

    python bench/evaluate_demo.py [--tokens 1000] [--epochs 30] [--every 10]

Draws the synthetic demo collection (``collections_app.demo.build``, 32 px), trains its trait
classifier with the production defaults, trains a 32 px DCGAN (default widths) for
``--epochs`` and evaluates the untrained generator and every ``--every`` epochs with
``gan_app.gan.evaluation.evaluate_generator`` (the report the site stores). No database:
the same ML the Celery tasks run. Prints one JSON object per line: the classifier's held-out
accuracy, then per epoch the domain FID/KID, trait TV and near-copy share beside the real-vs-real
baseline, then the recommended epoch.
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

from collections_app.demo import build as demo
from gan_app.gan import GANConfig, Trainer, latent_vectors
from gan_app.gan.evaluation import evaluate_generator, select_best_checkpoint
from gan_app.gan.memorisation import NearCopyIndex
from gan_app.gan.sampling import to_uint8
from gan_app.gan.trait_classifier import TraitClassifier

EVALUATION_SEED_BASE = 1_000_000  # as gan_app.evaluation


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    base = {"bench": "evaluate_demo", "tokens": args.tokens, "cpu_cores": os.cpu_count()}

    tokens = demo.demo_tokens(args.tokens)
    images = np.stack([np.asarray(Image.open(io.BytesIO(t.png)).convert("RGB")) for t in tokens])
    traits = [[(t["trait_type"], t["value"]) for t in d.metadata["traits"]] for d in tokens]
    started = time.perf_counter()
    classifier = TraitClassifier.fit(images, traits)
    print(
        json.dumps(
            {
                **base,
                "stage": "classifier",
                "seconds": round(time.perf_counter() - started, 1),
                "heldout_count": classifier.metrics["heldout_count"],
                "per_type_accuracy": classifier.metrics["per_type_accuracy"],
                "majority_per_type_accuracy": classifier.metrics["majority_per_type_accuracy"],
            }
        ),
        flush=True,
    )
    index = NearCopyIndex.fit(images)
    config = GANConfig(resolution=32, epochs=args.epochs, checkpoint_every=args.every, seed=1)
    trainer = Trainer(config, images)
    count = len(images) // 2
    latent = latent_vectors(
        range(EVALUATION_SEED_BASE, EVALUATION_SEED_BASE + count), config.latent_dim
    )
    reports = []

    def evaluate(epoch):
        pixels = to_uint8(trainer.generator(latent, training=False))
        started = time.perf_counter()
        report = evaluate_generator(
            images, traits, pixels, classifier, near_copy_index=index, kid_subsets=100
        )
        reports.append((epoch, report))
        baseline = report["baseline"]
        print(
            json.dumps(
                {
                    **base,
                    "stage": "evaluate",
                    "epoch": epoch,
                    "seconds": round(time.perf_counter() - started, 1),
                    "load_average": round(os.getloadavg()[0], 2),
                    "domain_fid": round(report["domain"]["fid"], 4),
                    "domain_fid_real_vs_real": round(baseline["domain"]["fid"], 4),
                    "domain_kid": round(report["domain"]["kid_mean"], 5),
                    "domain_kid_real_vs_real": round(baseline["domain"]["kid_mean"], 5),
                    "trait_tv": round(report["traits"]["tv_mean"], 4),
                    "trait_tv_real_vs_real": round(baseline["traits"]["tv_mean"], 4),
                    "near_copy_share": report["memorisation"]["pixel"]["near_copy_share"],
                    "inception": report["inception"].get("unavailable", "computed")[:40],
                }
            ),
            flush=True,
        )

    evaluate(0)
    while trainer.epoch < config.epochs:
        trainer.run(max_epochs=args.every)
        evaluate(trainer.epoch)
    best = select_best_checkpoint(reports)
    print(json.dumps({**base, "stage": "recommended", **best}), flush=True)


if __name__ == "__main__":
    main()
