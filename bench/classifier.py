"""How well the trait classifier reads held-out CryptoPunks: input size, seed, composed tokens.

    python bench/classifier.py [--inputs 32b,48n] [--seeds 0,1,2] [--compose 0,2] [--epochs N]

Needs ``../shared/data/`` (the CryptoPunks 1k sample). For each (input, compose, seed): the
classifier is trained with the shipped settings on the seed's split (800 tokens) and read on
the 200 held-out ones. Prints one JSON line each: ``exact`` (every trait type read right),
``sure`` (every type read with confidence >= 0.9, what the valid-token rate counts),
``right_when_sure`` and the fit's CPU seconds. The tables in docs/training.md ("The classifier
reads pixel art pixel for pixel") come from here.

``--inputs``: ``<side>b`` enlarges the 24 px punks bilinearly to ``side`` (``32b``: the
classifier before), ``<side>n`` pixel for pixel (``48n``: the shipped one). ``--compose K``
adds K composed tokens per training token: a training punk painted with one more trait layer,
the layers read back from the training punks alone (``TraitLayers``, below). An experiment,
not a product feature: it made the classifier truer but less sure (docs/training.md).
"""

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.quality import punks_set, real_pixels
from gan_app.gan.features import resize_images
from gan_app.gan.metrics import collection_palette
from gan_app.gan.pixelart import _palette_index
from gan_app.gan.trait_classifier import TraitClassifier, TraitVocabulary

HELD_OUT = 200

MAX_COLOURS = 256  # more distinct colours than this: not pixel art, no layers
MIN_SUPPORT = 2  # tokens with a value (in one group) needed to read its layer


class TraitLayers:
    """Trait layers read back from labelled pixel art, and tokens composed from them.

    Layered pixel art draws a trait value as the same cells in the same colours on every token
    of one body (a *group*: the token's single-valued traits, a punk's ``type``). A value's
    layer is the cells where at least ``agree`` of the group's tokens with the value share one
    colour that at most ``elsewhere`` of those without it show there.
    ``layers[(group, (trait_type, value))] = (mask (H, W) bool, colours (H, W, 3) uint8)``.
    """

    def __init__(self, layers, layered_types):
        self.layers = layers
        self.layered_types = tuple(layered_types)

    def __len__(self):
        return len(self.layers)

    @classmethod
    def estimate(cls, images, value_sets, vocabulary, *, agree=0.8, elsewhere=0.2):
        """Layers of every value of a multi-valued type, per group of single-valued values.

        ``value_sets``: ``vocabulary.value_sets(...)`` of the images. Images with more than
        ``MAX_COLOURS`` colours in all give no layers (their traits are not drawn cell for cell).
        """
        palette = collection_palette(images, MAX_COLOURS + 1)
        layered = [t.name for t in vocabulary.types if t.multi]
        if len(palette) > MAX_COLOURS or not layered:
            return cls({}, layered)
        index = _palette_index(np.asarray(images), palette)
        cells = index.shape[1] * index.shape[2]
        singles = [t.name for t in vocabulary.types if not t.multi]
        groups = defaultdict(list)
        for row, traits in enumerate(value_sets):
            groups[_group(traits, singles)].append(row)
        layers = {}
        for group, rows in groups.items():
            rows = np.asarray(rows)
            by_value = defaultdict(list)
            for row in rows:
                for name in layered:
                    for value in value_sets[row][name]:
                        by_value[(name, value)].append(row)
            for label, with_value in sorted(by_value.items()):
                without = np.setdiff1d(rows, with_value)
                if len(with_value) < MIN_SUPPORT or not len(without):
                    continue
                share_with = _colour_shares(index[with_value], len(palette))
                colour = share_with.argmax(axis=1)
                at = np.arange(cells)
                share_without = _colour_shares(index[without], len(palette))[at, colour]
                mask = (share_with[at, colour] >= agree) & (share_without <= elsewhere)
                if mask.any():
                    shape = index.shape[1:]
                    layers[(group, label)] = (
                        mask.reshape(shape),
                        palette[colour].reshape((*shape, 3)),
                    )
        return cls(layers, layered)

    def compose(self, images, value_sets, vocabulary, count, rng):
        """``count`` new ``(images, trait_sets)``: a token of ``images`` with one more layer.

        Each is a random token painted with a random layer of its group that it lacks and that
        does not overlap the layers it has; its traits are the token's plus that value. Fewer
        come back when few tokens can take a layer (none without layers).
        """
        images = np.asarray(images)
        if not self.layers or count <= 0:
            return images[:0], []
        singles = [t.name for t in vocabulary.types if not t.multi]
        by_group = defaultdict(list)
        for group, label in self.layers:
            by_group[group].append(label)
        composed, trait_sets = [], []
        for _ in range(count * 20):  # tries: some tokens take no layer
            if len(composed) == count:
                break
            row = int(rng.integers(len(images)))
            traits = value_sets[row]
            group = _group(traits, singles)
            has = {(name, value) for name in self.layered_types for value in traits[name]}
            labels = [label for label in by_group.get(group, ()) if label not in has]
            if not labels:
                continue
            label = labels[int(rng.integers(len(labels)))]
            mask, colours = self.layers[(group, label)]
            known = [self.layers[(group, own)][0] for own in has if (group, own) in self.layers]
            if any((mask & own).any() for own in known):
                continue
            image = images[row].copy()
            image[mask] = colours[mask]
            composed.append(image)
            pairs = [(name, value) for name, values in traits.items() for value in values]
            trait_sets.append([*pairs, label])
        return np.asarray(composed, dtype=np.uint8).reshape((-1, *images.shape[1:])), trait_sets


def _group(traits, singles):
    """A token's group: its values of the single-valued types (its body)."""
    return tuple(tuple(sorted(traits[name])) for name in singles)


def _colour_shares(index, colours):
    """``(cells, colours)``: the share of the images showing each colour at each cell."""
    count, cells = len(index), index.shape[1] * index.shape[2]
    flat = (np.arange(cells) * colours + index.reshape(count, cells)).ravel()
    return np.bincount(flat, minlength=cells * colours).reshape(cells, colours) / count


def variant(real, traits, side, sharp, compose, seed, epochs):
    """Train one classifier as ``TraitClassifier.fit`` does; read the held-out punks."""
    order = np.random.default_rng(seed).permutation(len(real))
    held, train = order[:HELD_OUT], order[HELD_OUT:]
    vocabulary = TraitVocabulary.from_traits(traits)
    images, trait_sets = real[train], [traits[i] for i in train]
    started = time.process_time()
    if compose:
        sets = vocabulary.value_sets(trait_sets)
        layers = TraitLayers.estimate(images, sets, vocabulary)
        rng = np.random.default_rng(seed)
        extra, extra_traits = layers.compose(
            images, sets, vocabulary, round(compose * len(train)), rng
        )
        images, trait_sets = np.concatenate([images, extra]), trait_sets + extra_traits
    pixels = resize_images(images, side, "nearest" if sharp else "bilinear")
    classifier = TraitClassifier.fit(
        pixels.astype(np.uint8),
        trait_sets,
        image_size=side,
        holdout_fraction=0,
        seed=seed,
        epochs=epochs,
    )
    cpu = time.process_time() - started
    look = resize_images(real[held], side, "nearest" if sharp else "bilinear").astype(np.uint8)
    sure = np.all([c >= 0.9 for c in classifier.type_confidences(look).values()], axis=0)
    truth = classifier.vocabulary.value_sets([traits[i] for i in held])
    right = np.array([p == t for p, t in zip(classifier.read_values(look), truth, strict=True)])
    return {
        "exact": round(float(right.mean()), 3),
        "sure": round(float(sure.mean()), 3),
        "right_when_sure": round(float(right[sure].mean()), 3) if sure.any() else None,
        "composed": len(images) - len(train),
        "layers": len(layers) if compose else None,
        "fit_cpu_seconds": round(cpu, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", default="32b,48n")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--compose", default="0")
    parser.add_argument("--epochs", type=int, default=None, help="default: fit's (30k images)")
    args = parser.parse_args()
    data = punks_set()
    if data is None:
        print(json.dumps({"bench": "classifier", "skipped": "no ../shared/data"}))
        return
    real, traits = real_pixels(data[0]), data[1]
    for text in args.inputs.split(","):
        if not text[:-1].isdigit() or text[-1] not in "bn":
            parser.error(f"input {text!r}: write <side>b (bilinear) or <side>n (pixel for pixel)")
        for compose in map(float, args.compose.split(",")):
            for seed in map(int, args.seeds.split(",")):
                row = variant(
                    real, traits, int(text[:-1]), text[-1] == "n", compose, seed, args.epochs
                )
                print(
                    json.dumps(
                        {
                            "bench": "classifier",
                            "input": text,
                            "compose": compose,
                            "seed": seed,
                            **row,
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
