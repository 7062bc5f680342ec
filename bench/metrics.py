"""Evaluation costs: trait-classifier training, near-copy checks, FID on Inception-sized features.

Prints one JSON object per line. Usage: python bench/metrics.py [--quick]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from gan_app.gan.memorisation import NearCopyIndex
from gan_app.gan.metrics import fid_from_features, kernel_inception_distance
from gan_app.gan.trait_classifier import TraitClassifier
from tests.gan.trait_images import draw_collection


def emit(**figures):
    print(json.dumps(figures), flush=True)


def bench_classifier(count, epochs):
    images, traits = draw_collection(count, size=32, seed=0)
    started = time.perf_counter()
    classifier = TraitClassifier.fit(images, traits, image_size=32, epochs=epochs, seed=0)
    seconds = time.perf_counter() - started
    classifier.predict_traits(images[:1])  # warm-up: the first call traces the model
    emit(
        bench="trait_classifier_fit",
        images=count,
        image_size=32,
        epochs=epochs,
        seconds=round(seconds, 2),
        heldout_per_type_accuracy=classifier.metrics["per_type_accuracy"],
    )
    started = time.perf_counter()
    for _ in range(20):
        classifier.predict_traits(images[:1])
    emit(bench="predict_traits_one_image", ms=round((time.perf_counter() - started) / 20 * 1e3, 2))


def bench_near_copies(count, size):
    images, _ = draw_collection(count, size=size, seed=1)
    started = time.perf_counter()
    index = NearCopyIndex.fit(images)
    fit_seconds = time.perf_counter() - started
    queries, _ = draw_collection(200, size=size, seed=2)
    index.check(queries[:1])
    timings = []
    for query in queries:
        started = time.perf_counter()
        index.check(query[None])
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    index.check(queries)
    batch = time.perf_counter() - started
    emit(
        bench="near_copy_index",
        training_images=count,
        image_size=size,
        fit_seconds=round(fit_seconds, 2),
        check_one_ms_median=round(float(np.median(timings)) * 1e3, 3),
        check_one_ms_p95=round(float(np.percentile(timings, 95)) * 1e3, 3),
        check_200_ms=round(batch * 1e3, 1),
        threshold=round(index.threshold, 4),
    )


def bench_inception_sized_fid(count):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(count, 2048)), rng.normal(size=(count, 2048)) + 0.01
    started = time.perf_counter()
    fid_from_features(x, y)
    fid_seconds = time.perf_counter() - started
    started = time.perf_counter()
    kernel_inception_distance(x, y, num_subsets=100, subset_size=min(1000, count))
    emit(
        bench="fid_kid_2048d",
        images_per_side=count,
        fid_seconds=round(fid_seconds, 2),
        kid_100_subsets_seconds=round(time.perf_counter() - started, 2),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    quick = parser.parse_args().quick
    bench_near_copies(1000 if quick else 10000, 24)
    bench_classifier(200 if quick else 1000, 2 if quick else 10)
    bench_inception_sized_fid(300 if quick else 2500)
