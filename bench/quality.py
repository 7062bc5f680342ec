"""The seed DCGAN recipe against ours, at the same CPU budget, measured by the evaluation code.

    python bench/quality.py [--minutes 20] [--datasets demo,punks] [--recipes seed-dcgan,nff]
                            [--resolution 32] [--tokens 1000] [--out var/bench/quality]

A recipe is a preset name with optional overrides, e.g. ``seed-dcgan+ema_decay=0.999+loss=hinge``
(what the ablation table in docs/training.md was measured with). A trait-conditioned recipe
(``conditional=true``) trains on the tokens' traits and is evaluated as the site's Generate
button draws it: each seed's traits a new combination of real values (``conditioning``).

For each data set (the synthetic demo collection; the CryptoPunks 1k sample when
``../shared/data/`` has it) the collection's trait classifier is trained once, then every
recipe trains from scratch until it has used ``--minutes`` of **process CPU time** (all threads;
so other load on the machine does not shorten or lengthen a run) and is evaluated through the
production path: the generator is exported, loaded with ``load_generator`` and draws tokens
from seeds exactly as the site does (pixel-art generators render onto the grid and palette).

The seed recipe prepares images as the seed project did (resized to the model, nearest
neighbour); ours lets ``resize="auto"`` train pixel art cell for cell. Prints one JSON line per
(data set, recipe), then one line of ratios per data set, and saves each recipe's 8x8 sample
grid as PNG under ``--out``, beside its exported generator (``.nffgen.zip``).
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
from PIL import Image

from collections_app.demo import build as demo
from gan_app.gan import GANConfig, Trainer, load_generator, prepare_images
from gan_app.gan.evaluation import evaluate_generator
from gan_app.gan.memorisation import NearCopyIndex
from gan_app.gan.metrics import collection_palette
from gan_app.gan.pixelart import MAX_PALETTE
from gan_app.gan.sampling import make_grid, to_png
from gan_app.gan.trait_classifier import TraitClassifier

ROOT = Path(__file__).resolve().parent.parent
PUNKS = ROOT.parent / "shared" / "data" / "cryptopunks-1k"
EVALUATION_SEEDS = 1_000_000  # seeds from here on are drawn for evaluation (as the site does)
LEGACY_RESIZE = {"seed-dcgan": "nearest"}  # the seed project resized every image to the model
BACKGROUND = "#ffffff"


def demo_set(tokens):
    named, traits = [], []
    for token in demo.demo_tokens(tokens):
        named.append((f"demo {token.token_id}", token.png))
        traits.append([(t["trait_type"], t["value"]) for t in token.metadata["traits"]])
    return named, traits


def punks_set():
    images_zip = Path(f"{PUNKS}_archive.zip")
    metadata_zip = Path(f"{PUNKS}_metadata_archive.zip")
    if not images_zip.exists() or not metadata_zip.exists():
        return None
    with zipfile.ZipFile(images_zip) as zf:
        pngs = {Path(n).stem: zf.read(n) for n in zf.namelist() if n.endswith(".png")}
    with zipfile.ZipFile(metadata_zip) as zf:
        metadata = {
            Path(n).stem: json.loads(zf.read(n)) for n in zf.namelist() if n.endswith(".json")
        }
    ids = sorted(set(pngs) & set(metadata), key=int)
    named = [(f"punk {i}", pngs[i]) for i in ids]
    traits = [[(t["trait_type"], t["value"]) for t in metadata[i]["traits"]] for i in ids]
    return named, traits


def real_pixels(named):
    """The tokens as a visitor sees them: composited on the background, at their own size."""
    out = []
    for _, data in named:
        rgba = Image.open(io.BytesIO(data)).convert("RGBA")
        flat = Image.new("RGBA", rgba.size, BACKGROUND)
        out.append(np.asarray(Image.alpha_composite(flat, rgba).convert("RGB")))
    return np.stack(out)


def train_for(config, named, traits, cpu_seconds):
    images = prepare_images(named, config)
    # A trait-conditioned recipe learns the tokens' traits; drawn "any", a seed's traits are
    # chosen as on the site's Generate button.
    trainer = Trainer(config, images, traits=traits if config.conditional else None)
    started = time.process_time()
    while time.process_time() - started < cpu_seconds:
        trainer.train_epoch()
    used = time.process_time() - started
    rate = np.mean([h["images_per_second"] for h in trainer.history[1:]] or [0.0])
    return trainer, images, used, float(rate)


def generate(trainer, count):
    buffer = io.BytesIO()
    trainer.export_generator(buffer)
    generator = load_generator(buffer.getvalue())
    seeds = range(EVALUATION_SEEDS, EVALUATION_SEEDS + count)
    generator.generate([0])  # warm the compiled forward pass before timing
    started = time.perf_counter()
    pixels = generator.generate(seeds)
    return generator, pixels, count / (time.perf_counter() - started), buffer.getvalue()


def figures(report):
    domain, quality, baseline = report["domain"], report["quality"], report["baseline"]
    picked = {
        "domain_fid": domain["fid"],
        "domain_kid": domain["kid_mean"],
        "trait_tv": report["traits"]["tv_mean"],
        **{k: domain.get(k) for k in ("precision", "recall", "density", "coverage")},
        "valid_token_rate": quality["valid_token_rate"],
        "palette_conformity": quality.get("palette_conformity"),
        "near_copy_share": report["memorisation"]["pixel"]["near_copy_share"],
        "real_vs_real": {
            "domain_fid": baseline["domain"]["fid"],
            "domain_kid": baseline["domain"]["kid_mean"],
            "trait_tv": baseline["traits"]["tv_mean"],
            "valid_token_rate": baseline["quality"]["valid_token_rate"],
        },
    }
    picked["fid_over_real_vs_real"] = domain["fid"] / max(baseline["domain"]["fid"], 1e-9)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in picked.items()}


def parse_recipe(text):
    """ "seed-dcgan+ema_decay=0.999+loss=\"hinge\"": a preset and hyperparameter overrides."""
    preset, *changes = text.split("+")
    overrides = {}
    for change in changes:
        key, _, value = change.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value  # a bare word: a string setting such as loss=hinge
    return preset, overrides


def bench_dataset(name, named, traits, args, out):
    real = real_pixels(named)
    started = time.process_time()
    classifier = TraitClassifier.fit(real, traits)
    classifier_cpu = time.process_time() - started
    index = NearCopyIndex.fit(real)
    palette = collection_palette(real, MAX_PALETTE + 1)
    palette = palette if len(palette) <= MAX_PALETTE else None
    rows = {}
    for recipe in args.recipes:
        preset, overrides = parse_recipe(recipe)
        config = GANConfig.from_preset(
            preset,
            **{
                "resolution": args.resolution,
                "epochs": 1_000_000,
                "seed": args.seed,
                "background": BACKGROUND,
                "resize": LEGACY_RESIZE.get(preset, "auto"),
                **overrides,
            },
        )
        trainer, images, used, train_rate = train_for(config, named, traits, args.minutes * 60)
        generator, pixels, generate_rate, artifact = generate(trainer, len(real) // 2)
        # The artifact as the site would publish it: look at its downloads, or re-evaluate it.
        (out / f"{name}-{recipe}.nffgen.zip").write_bytes(artifact)
        report = evaluate_generator(
            real, traits, pixels, classifier, near_copy_index=index, palette=palette
        )
        grid = make_grid(generator.generate(range(64)), columns=8, scale=4)
        (out / f"{name}-{recipe}.png").write_bytes(to_png(grid))
        row = {
            "bench": "quality",
            "dataset": name,
            "recipe": recipe,
            "tokens": len(real),
            "resolution": args.resolution,
            "resize": images.resize,
            "cpu_minutes": round(used / 60, 2),
            "epochs": trainer.epoch,
            "train_images_per_second": round(train_rate, 1),
            "generate_images_per_second": round(generate_rate, 1),
            **figures(report),
            "classifier_cpu_seconds": round(classifier_cpu, 1),
            "load_average": os.getloadavg()[0],
        }
        rows[recipe] = row
        print(json.dumps(row), flush=True)
    if len(args.recipes) == 2:
        seed, ours = (rows[r] for r in args.recipes)
        print(
            json.dumps(
                {
                    "bench": "quality",
                    "dataset": name,
                    "ratios": f"{args.recipes[1]} / {args.recipes[0]}",
                    "domain_fid": round(ours["domain_fid"] / seed["domain_fid"], 3),
                    "domain_kid": round(ours["domain_kid"] / max(seed["domain_kid"], 1e-9), 3),
                    "trait_tv": round(ours["trait_tv"] / max(seed["trait_tv"], 1e-9), 3),
                    "valid_token_rate": [seed["valid_token_rate"], ours["valid_token_rate"]],
                    "generate_images_per_second": round(
                        ours["generate_images_per_second"] / seed["generate_images_per_second"], 3
                    ),
                    "train_images_per_second": round(
                        ours["train_images_per_second"] / seed["train_images_per_second"], 3
                    ),
                }
            ),
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="CPU minutes per recipe")
    parser.add_argument("--datasets", default="demo,punks")
    parser.add_argument("--recipes", default="seed-dcgan,nff")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=1000, help="demo collection size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "quality")
    args = parser.parse_args()
    args.recipes = args.recipes.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.datasets.split(","):
        if name == "demo":
            data = demo_set(args.tokens)
        elif name == "punks":
            data = punks_set()
            if data is None:
                print(json.dumps({"bench": "quality", "dataset": name, "skipped": "no data"}))
                continue
        else:
            parser.error(f"unknown data set {name!r}; choose demo or punks")
        bench_dataset(name, *data, args, args.out)


if __name__ == "__main__":
    main()
