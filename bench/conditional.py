"""Trait-conditioned vs unconditional DCGAN: trait hit rate and domain FID on one collection.

    python bench/conditional.py [--size 1000] [--minutes 4] [--resolution 32]
    python bench/conditional.py --archive ../shared/data/cryptopunks-1k_archive.zip --minutes 30
    python bench/conditional.py --archive ... --generator var/bench/quality/punks-nff.nffgen.zip

``--generator`` measures a trained conditional generator (an exported ``.nffgen.zip``, e.g.
one ``bench/quality.py`` kept) instead of training one; ``--skip-unconditional`` then skips
the chance level too.

Default collection: the synthetic demo collection (``collections_app.demo``). ``--archive``
takes a seed-archive images zip; its ``..._metadata_archive.zip`` sibling gives the traits.

Steps: a trait classifier is fitted on the real images only (20% held out: its held-out
recall per trait is printed and is what "the classifier recognises the trait" means), then a
conditional and an unconditional generator each train for ``--minutes`` of wall time with the
same hyperparameters. For every (type, value) of the conditional vocabulary (except the
grouped "other"), ``--per-trait`` images are asked for with ``{type: value}`` (other types
"any"); the hit rate is the share the classifier reads as asked. The unconditional generator's
images scored against the same requests give the chance level. Domain FID: classifier features
of as many generated images as real ones ("any" traits) vs the real images; the real-vs-real
baseline compares two halves of the real set. Diversity: ``diversity_ratio`` fixes whole trait
combinations (a grid's rows), ``diversity_ratio_one_trait`` one asked-for trait with the rest
"any"; each ``..._real`` is the same ratio for the real tokens grouped the same way, the
variety the collection itself has (layered art whose traits decide the picture has none for a
whole combination: None when no two tokens share one). Pixel-art sets are compared as
visitors see them: the native grid (what the generators render), not the padded training
images.

Prints one JSON object per line.
"""

import argparse
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from gan_app.gan import GANConfig, Trainer, load_generator, prepare_images, trait_hit_rate
from gan_app.gan.conditioning import OTHER
from gan_app.gan.metrics import diversity_ratio, fid_from_features
from gan_app.gan.pixelart import PixelArtProfile, crop_from_model
from gan_app.gan.trait_classifier import TraitClassifier


def emit(**figures):
    print(json.dumps(figures), flush=True)


def demo_collection(size, seed):
    from collections_app.demo.build import demo_tokens

    tokens = demo_tokens(size=size, seed=seed)
    return [(f"{t.token_id}.png", t.png) for t in tokens], [t.metadata["traits"] for t in tokens]


def archive_collection(images_zip):
    images_zip = Path(images_zip)
    metadata_zip = images_zip.with_name(images_zip.name.replace("_archive", "_metadata_archive"))
    traits = {}
    with zipfile.ZipFile(metadata_zip) as zf:
        for name in zf.namelist():
            if name.endswith(".json"):
                data = json.loads(zf.read(name))
                traits[Path(name).stem] = data.get("traits") or []
    sources, trait_sets = [], []
    with zipfile.ZipFile(images_zip) as zf:
        for name in sorted(zf.namelist(), key=lambda n: (len(Path(n).stem), Path(n).stem)):
            token = Path(name).stem
            if token in traits and not name.endswith("/"):
                sources.append((name, zf.read(name)))
                trait_sets.append(traits[token])
    return sources, trait_sets


def train(config, images, traits, minutes, out=None):
    trainer = Trainer(config, images, traits=traits if config.conditional else None)
    started = time.monotonic()
    trainer.run(max_seconds=minutes * 60)
    buffer = io.BytesIO()
    trainer.export_generator(buffer)
    if out:
        kind = "conditional" if config.conditional else "unconditional"
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{kind}-generator.zip").write_bytes(buffer.getvalue())
        (Path(out) / f"{kind}-grid.png").write_bytes(trainer.sample_grid_png())
    return load_generator(buffer.getvalue()), {
        "epochs": trainer.epoch,
        "train_seconds": round(time.monotonic() - started, 1),
        "last_losses": {k: round(v, 4) for k, v in trainer.history[-1].items()},
    }


def requests(vocabulary, per_trait):
    """``per_trait`` requests of ``{type: value}`` for every askable value."""
    wanted = []
    for trait_type in vocabulary.types:
        for value in trait_type.values:
            if value == OTHER:
                continue
            ask = [value] if trait_type.multi else value
            wanted += [{trait_type.name: ask}] * per_trait
    return wanted


def domain_fid(classifier, real, generated):
    real_features = classifier.features(real)
    scale = float(np.sqrt(np.mean(real_features**2))) or 1.0
    return fid_from_features(real_features / scale, classifier.features(generated) / scale)


def diversity(generator, classifier, combinations=8, seeds=16):
    """Mean pairwise domain distance of ``seeds`` images per fixed trait combination, over
    that of as many freely drawn images: 1 = fixing traits keeps all the variety."""
    fixed = generator.vocabulary.grid_conditions(combinations)
    groups = [
        classifier.features(generator.generate(range(seeds), traits=traits))
        for traits in fixed.traits
    ]
    free = classifier.features(generator.generate(range(seeds * combinations)))
    return diversity_ratio(groups, free)


def real_diversity(classifier, images, traits, keys):
    """``diversity_ratio`` of the real tokens themselves, grouped by ``keys(token traits)``
    (groups of at least 2): the variety the collection has for fixed traits, the ceiling for a
    generator's. None when no two tokens share a key (every full combination unique)."""
    groups = {}
    for i, token in enumerate(traits):
        for key in keys(token):
            groups.setdefault(key, []).append(i)
    members = [rows for rows in groups.values() if len(rows) >= 2]
    if not members:
        return None
    features = classifier.features(images)
    return diversity_ratio([features[rows] for rows in members], features)


def _combination(token):
    return [tuple(sorted((t["trait_type"], str(t["value"])) for t in token))]


def _each_trait(token):
    return [(t["trait_type"], str(t["value"])) for t in token]


def summary(report):
    return {
        "hit_rate": _round(report["overall"]),
        "recognised_hit_rate": _round(report["recognised"]["hit_rate"]),
        "recognised_traits": report["recognised"]["traits"],
        "per_type": {t: _round(v["hit_rate"]) for t, v in report["per_type"].items()},
        "per_trait": {
            t: {v: _round(f["hit_rate"]) for v, f in values.items()}
            for t, values in report["per_trait"].items()
        },
    }


def _round(value):
    return None if value is None else round(value, 4)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", help="a seed-archive images zip (default: the demo)")
    parser.add_argument("--size", type=int, default=1000, help="demo collection size")
    parser.add_argument("--demo-seed", type=int, default=7)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=4.0, help="training time per model")
    parser.add_argument("--per-trait", type=int, default=40)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--aux-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="seed-dcgan", help="recipe (GANConfig preset)")
    parser.add_argument("--diversity-weight", type=float, default=None)
    parser.add_argument("--skip-unconditional", action="store_true")
    parser.add_argument("--out", help="keep the generators and their sample grids here")
    parser.add_argument("--generator", help="measure this exported conditional generator")
    args = parser.parse_args()

    if args.archive:
        sources, traits = archive_collection(args.archive)
        collection = Path(args.archive).name
    else:
        sources, traits = demo_collection(args.size, args.demo_seed)
        collection = f"demo-{args.size}"
    extra = {} if args.diversity_weight is None else {"diversity_weight": args.diversity_weight}
    config = GANConfig.from_preset(
        args.preset,
        **extra,
        resolution=args.resolution,
        batch_size=args.batch_size,
        epochs=100000,
        checkpoint_every=100000,
        trait_min_count=args.min_count,
        aux_weight=args.aux_weight,
        seed=args.seed,
    )
    prepared = prepare_images(sources, config)
    images = prepared.images
    if prepared.pixel_art is not None:  # generators render the native grid: compare on it
        grid = PixelArtProfile.from_dict(prepared.pixel_art).grid
        images = crop_from_model(images, grid)
    emit(bench="conditional", stage="data", collection=collection, images=len(images))

    started = time.monotonic()
    classifier = TraitClassifier.fit(images, traits, image_size=args.resolution, seed=args.seed)
    emit(
        bench="conditional",
        stage="classifier",
        seconds=round(time.monotonic() - started, 1),
        heldout_per_type_accuracy=classifier.metrics["per_type_accuracy"],
        heldout_recall={
            t: {v: _round(f["recall"]) for v, f in values.items()}
            for t, values in classifier.metrics["per_trait"].items()
        },
    )
    real_halves = np.random.default_rng(0).permutation(len(images))
    half = len(images) // 2
    emit(
        bench="conditional",
        stage="baseline",
        domain_fid_real_halves=round(
            domain_fid(classifier, images[real_halves[:half]], images[real_halves[half:]]), 3
        ),
    )

    if args.generator:
        conditional = load_generator(Path(args.generator).read_bytes())
        if conditional.vocabulary is None:
            parser.error(f"{args.generator} is not a trait-conditioned generator")
        facts = {"generator": args.generator}
    else:
        conditional, facts = train(
            config.replace(conditional=True), prepared, traits, args.minutes, args.out
        )
    wanted = requests(conditional.vocabulary, args.per_trait)
    seeds = list(range(len(wanted)))
    # Requests come in runs of per_trait equal ones: one generate call per run.
    asked = np.concatenate(
        [
            conditional.generate(seeds[i : i + args.per_trait], wanted[i])
            for i in range(0, len(wanted), args.per_trait)
        ]
    )
    report = trait_hit_rate(asked, wanted, classifier, vocabulary=conditional.vocabulary)
    free = conditional.generate(list(range(len(images))))
    # One asked-for trait, the others "any": the variety a visitor sees for "laser eyes".
    one_trait = diversity_ratio(
        [
            classifier.features(asked[i : i + args.per_trait])
            for i in range(0, len(wanted), args.per_trait)
        ],
        classifier.features(free),
    )
    real_full = real_diversity(classifier, images, traits, _combination)
    emit(
        bench="conditional",
        stage="conditional",
        vocabulary_size=conditional.vocabulary.size,
        **facts,
        **summary(report),
        domain_fid=round(domain_fid(classifier, images, free), 3),
        preset=args.preset,
        diversity_weight=config.diversity_weight,
        diversity_ratio=round(diversity(conditional, classifier), 3),
        diversity_ratio_real=None if real_full is None else round(real_full, 3),
        diversity_ratio_one_trait=round(one_trait, 3),
        diversity_ratio_one_trait_real=round(
            real_diversity(classifier, images, traits, _each_trait), 3
        ),
    )

    if not args.skip_unconditional:
        unconditional, facts = train(config, prepared, traits, args.minutes, args.out)
        chance = trait_hit_rate(
            unconditional.generate(seeds), wanted, classifier, vocabulary=conditional.vocabulary
        )
        free = unconditional.generate(list(range(len(images))))
        emit(
            bench="conditional",
            stage="unconditional",
            **facts,
            **summary(chance),
            domain_fid=round(domain_fid(classifier, images, free), 3),
        )


if __name__ == "__main__":
    main()
