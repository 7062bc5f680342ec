"""A small CNN that reads a collection's traits off its images (multi-label).

Trained once per collection on its own real images (no downloaded weights), it gives:
- domain features (the penultimate layer) for a domain FID/KID that works offline,
- trait predictions for generated images: their trait distribution vs the real one, and the
  trait list that goes into a generated token's metadata.

Traits per image are given as any of (one item per image):
- a mapping ``{trait_type: value}`` or ``{trait_type: [values]}``,
- an iterable of ``(trait_type, value)`` pairs,
- an iterable of OpenSea-style dicts ``{"trait_type": ..., "value": ...}``.
Values are compared as stripped strings; ``None``, ``""`` and ``"none"`` (any case) mean the
image has no value of that type.

Trait types are *single-valued* (at most one value per image in the training data, e.g. a
CryptoPunk's ``type``) or *multi-valued* (several per image, e.g. ``accessory``). The network has
one sigmoid unit per (type, value); a single-valued type that some images lack also gets a
``"none"`` unit, so its prediction is an argmax over values + none. A multi-valued type
predicts every value whose probability reaches the threshold (0.5); none reaching it means the
image has no value of that type.
"""

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import keras
import numpy as np

from gan_app.gan.features import check_images, resize_images
from gan_app.gan.runtime import fixed_shape_batches

# The label of a trait type a token lacks: written as a value (any case) or as None in trait
# sets, and the unit a single-valued type's absence gets. The catalog's wider set of such
# values ("null", blank) is mapped before its pairs reach this package (TokenTrait.pairs_for).
NONE = "none"
FILE_FORMAT = "nff-trait-classifier"
FILE_VERSION = 1
# Images per forward pass, always (see ``_forward``). One: the generation worker labels one
# image per visitor's request, and a batch of 16 made it pay for 16 (8.3 ms of CPU at 32 px,
# 15.9 ms at 48 px, against 1.4 and 2.4 ms alone); a full batch saved only ~0.6 ms an image.
PREDICT_BATCH = 1
MIN_INPUT = 32  # the network's input side: images are shrunk to it, pixel art enlarged past it


def input_size(side):
    """The network's input side for square images ``side`` px wide.

    Larger images are shrunk to ``MIN_INPUT``. Smaller ones (pixel art on its native grid) are
    enlarged by the smallest whole factor that reaches it, pixel for pixel: 24 px punks are
    read at 48 px. Three stride-2 stages leave 6x6 cells of features there, where a 32 px
    bilinear copy left 4x4 blurred ones. On the CryptoPunks sample (three seeds) the held-out
    exact match went 0.675 -> 0.705, the held-out tokens read sure 0.65 -> 0.72, and those
    read right 0.78 -> 0.82 (docs/training.md); training costs twice the CPU.
    """
    return side * -(-MIN_INPUT // side) if side < MIN_INPUT else MIN_INPUT


class TraitDataError(ValueError):
    """Trait labels that cannot be used (malformed, unknown, mismatched with the images)."""


def normalize_traits(item, index=None):
    """One image's traits as ``{trait_type: frozenset(values)}``; a type whose value is None
    or ``NONE`` is absent and left out."""
    where = f"image {index}: " if index is not None else ""
    if isinstance(item, Mapping):
        pairs = []
        for trait_type, value in item.items():
            if isinstance(value, str) or value is None:
                pairs.append((trait_type, value))
            elif isinstance(value, Iterable):
                pairs.extend((trait_type, v) for v in value)
            else:
                pairs.append((trait_type, value))
    elif isinstance(item, Iterable) and not isinstance(item, str | bytes):
        pairs = []
        for entry in item:
            if isinstance(entry, Mapping) and "trait_type" in entry:
                pairs.append((entry["trait_type"], entry.get("value")))
            elif isinstance(entry, tuple | list) and len(entry) == 2:
                pairs.append(tuple(entry))
            else:
                raise TraitDataError(
                    f"{where}a trait must be a (trait_type, value) pair or a dict with "
                    f"'trait_type' and 'value', got {entry!r}"
                )
    else:
        raise TraitDataError(f"{where}traits must be a mapping or a list of traits, got {item!r}")
    traits = {}
    for trait_type, value in pairs:
        if not isinstance(trait_type, str) or not trait_type.strip():
            raise TraitDataError(f"{where}trait type must be a non-empty string: {trait_type!r}")
        if isinstance(value, Mapping | list | tuple | set):
            raise TraitDataError(f"{where}trait value must be a scalar, got {value!r}")
        if value is None or str(value).strip().lower() == NONE:
            continue
        text = str(value).strip()
        if not text:
            raise TraitDataError(
                f"{where}trait {trait_type!r} has a blank value (write None or {NONE!r} for a "
                "trait the token lacks)"
            )
        traits.setdefault(trait_type.strip(), set()).add(text)
    return {trait_type: frozenset(values) for trait_type, values in traits.items()}


@dataclass(frozen=True)
class TraitType:
    name: str
    values: tuple  # sorted real values, then NONE when this single-valued type may be absent
    multi: bool

    @property
    def has_none_unit(self):
        return bool(self.values) and self.values[-1] == NONE and not self.multi


class TraitVocabulary:
    """The (type, value) labels of a collection, fixed at training time."""

    def __init__(self, types):
        self.types = tuple(types)
        self.labels = [(t.name, v) for t in self.types for v in t.values]
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.by_name = {t.name: t for t in self.types}

    @classmethod
    def from_traits(cls, trait_sets):
        counts, absent = {}, Counter()
        sets = [normalize_traits(item, i) for i, item in enumerate(trait_sets)]
        for traits in sets:
            for trait_type, values in traits.items():
                entry = counts.setdefault(trait_type, [set(), 0])
                entry[0].update(values)
                entry[1] = max(entry[1], len(values))
        if not counts:
            raise TraitDataError("no traits at all: cannot train a trait classifier")
        for traits in sets:
            absent.update(t for t in counts if t not in traits)
        types = []
        for name in sorted(counts):
            values, most = counts[name]
            multi = most > 1
            if NONE in values:
                raise TraitDataError(f"trait type {name!r} has a value spelled {NONE!r}")
            extra = (NONE,) if absent[name] and not multi else ()
            types.append(TraitType(name, (*sorted(values), *extra), multi))
        return cls(types)

    def to_json(self):
        return [{"name": t.name, "values": list(t.values), "multi": t.multi} for t in self.types]

    @classmethod
    def from_json(cls, data):
        return cls(TraitType(d["name"], tuple(d["values"]), bool(d["multi"])) for d in data)

    def encode(self, trait_sets):
        """Multi-hot targets ``(N, len(labels))``; unknown types/values raise TraitDataError."""
        targets = np.zeros((len(trait_sets), len(self.labels)), dtype=np.float32)
        for row, item in enumerate(trait_sets):
            traits = normalize_traits(item, row)
            unknown = set(traits) - set(self.by_name)
            if unknown:
                raise TraitDataError(f"image {row}: unknown trait types {sorted(unknown)}")
            for trait_type in self.types:
                values = traits.get(trait_type.name, frozenset())
                if not values and trait_type.has_none_unit:
                    values = {NONE}
                if len(values) > 1 and not trait_type.multi:
                    raise TraitDataError(
                        f"image {row}: {trait_type.name!r} is single-valued "
                        f"but got {sorted(values)}"
                    )
                for value in values:
                    if (trait_type.name, value) not in self.index:
                        raise TraitDataError(
                            f"image {row}: unknown value {value!r} for trait type "
                            f"{trait_type.name!r}"
                        )
                    targets[row, self.index[(trait_type.name, value)]] = 1.0
        return targets

    def decode(self, probabilities, threshold=0.5):
        """Per image ``{trait_type: [(value, confidence), ...]}``; an empty list = no value."""
        decoded = []
        for row in np.asarray(probabilities, dtype=np.float64):
            traits = {}
            for trait_type in self.types:
                idx = [self.index[(trait_type.name, v)] for v in trait_type.values]
                probs = row[idx]
                if trait_type.multi:
                    chosen = [(trait_type.values[i], float(probs[i])) for i in np.argsort(-probs)]
                    traits[trait_type.name] = [(v, p) for v, p in chosen if p >= threshold]
                else:
                    best = int(np.argmax(probs))
                    value = trait_type.values[best]
                    traits[trait_type.name] = [] if value == NONE else [(value, float(probs[best]))]
            decoded.append(traits)
        return decoded

    def value_sets(self, trait_sets):
        """Normalised ``{trait_type: frozenset}`` per image, covering every vocabulary type."""
        sets = []
        for i, item in enumerate(trait_sets):
            traits = normalize_traits(item, i)
            sets.append({t.name: traits.get(t.name, frozenset()) for t in self.types})
        return sets


def trait_distributions(vocabulary, value_sets):
    """``{trait_type: {value: share}}`` over images, with ``"none"`` for images lacking the type.

    Single-valued types: the share of images with each value (sums to 1). Multi-valued types:
    the share of all occurrences (each value an image carries counts once; an image with no
    value counts once as ``"none"``), so it also sums to 1 and total variation stays in [0, 1].
    """
    result = {}
    for trait_type in vocabulary.types:
        counts = Counter()
        for traits in value_sets:
            values = traits.get(trait_type.name) or {NONE}
            counts.update(values)
        total = sum(counts.values())
        result[trait_type.name] = {v: c / total for v, c in sorted(counts.items())}
    return result


def count_distributions(vocabulary, value_sets):
    """For multi-valued types: ``{trait_type: {"0": share, "1": share, ...}}`` of value counts."""
    result = {}
    for trait_type in vocabulary.types:
        if trait_type.multi:
            counts = Counter(str(len(traits.get(trait_type.name, ()))) for traits in value_sets)
            result[trait_type.name] = {k: c / len(value_sets) for k, c in sorted(counts.items())}
    return result


def to_attributes(prediction):
    """One ``predict_traits`` entry as ERC-721 ``attributes``: a flat list of
    ``{"trait_type", "value", "confidence"}`` (types the image lacks are left out)."""
    return [
        {"trait_type": trait_type, "value": entry["value"], "confidence": entry["confidence"]}
        for trait_type, entries in prediction.items()
        for entry in entries
    ]


def traits_fingerprint(trait_sets):
    """sha256 of the trait sets in order: names the labelled set a classifier was trained on.

    Images are left out on purpose so the same collection at another resolution (a 24 px
    original vs the 32 px copy a generator trained on) still matches.
    """
    digest = hashlib.sha256()
    for i, item in enumerate(trait_sets):
        traits = normalize_traits(item, i)
        digest.update(json.dumps({k: sorted(v) for k, v in sorted(traits.items())}).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def build_trait_network(
    image_size, num_labels, width=32, feature_dim=128, dropout=0.0, batch_norm=False
):
    """Three conv stages (each halves the size) → flatten → features → sigmoid per label.

    Flatten, not global pooling: in pixel art a trait is often *where* pixels are (an earring
    is a few pixels at one spot), which pooling would throw away. ``batch_norm`` normalises
    every convolution (what ``fit`` trains; files saved before it load without).
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for stage, filters in enumerate((width, width * 2, width * 4)):
        for strides, name in ((1, None), (2, f"down{stage}")):
            if batch_norm:
                x = keras.layers.Conv2D(filters, 3, strides, padding="same", use_bias=False)(x)
                # Momentum 0.9, not Keras' 0.99: a small collection trains for a few hundred
                # steps, too few for 0.99's running statistics to forget their initial values.
                x = keras.layers.BatchNormalization(momentum=0.9)(x)
                x = keras.layers.ReLU(name=name)(x)
            else:
                x = keras.layers.Conv2D(
                    filters, 3, strides, padding="same", activation="relu", name=name
                )(x)
    x = keras.layers.Flatten()(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    features = keras.layers.Dense(feature_dim, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(num_labels, activation="sigmoid", name="traits")(features)
    return keras.Model(inputs, [features, outputs], name="trait_classifier")


class TraitClassifier:
    """A trained trait network with its vocabulary, settings and held-out metrics."""

    def __init__(self, vocabulary, model, config, metrics=None, fingerprint=""):
        self.vocabulary = vocabulary
        self.model = model
        self.config = dict(config)
        self.metrics = metrics or {}
        self.fingerprint = fingerprint

    @property
    def image_size(self):
        return self.config["image_size"]

    @property
    def threshold(self):
        return self.config["threshold"]

    @classmethod
    def fit(
        cls,
        images,
        trait_sets,
        *,
        image_size=None,
        epochs=None,
        batch_size=32,
        holdout_fraction=0.2,
        learning_rate=2e-3,
        width=32,
        feature_dim=128,
        dropout=0.4,
        batch_norm=True,
        threshold=0.5,
        seed=0,
        callbacks=None,
    ):
        """Train on ``1 - holdout_fraction`` of the images; ``metrics`` are on the rest.

        ``image_size=None`` reads the images at ``input_size`` of their side, enlarging pixel
        art by whole factors (nearest neighbour). Deterministic for a given seed (same split,
        initial weights and batch order). ``epochs=None`` gives about 30k image presentations,
        clamped to 10..60 epochs (60 for 500 training images, 10 from 3,000). ``callbacks``
        are Keras callbacks (e.g. progress).
        """
        images = check_images(images)
        trait_sets = list(trait_sets)
        if len(trait_sets) != len(images):
            raise TraitDataError(f"{len(images)} images but {len(trait_sets)} trait sets")
        if not 0 <= holdout_fraction < 1:
            raise TraitDataError("holdout_fraction must be in [0, 1)")
        if image_size is None:
            image_size = input_size(max(images.shape[1:3]))
        vocabulary = TraitVocabulary.from_traits(trait_sets)
        targets = vocabulary.encode(trait_sets)
        order = np.random.default_rng(seed).permutation(len(images))
        held = round(len(images) * holdout_fraction)
        if held and len(images) - held < 1:
            raise TraitDataError("too few images to hold some out")
        heldout, train = order[:held], order[held:]
        if epochs is None:
            epochs = int(np.clip(round(30000 / len(train)), 10, 60))
        config = {
            "image_size": image_size,
            # How smaller images reach image_size (files saved before it enlarged bilinearly).
            "enlarge": "nearest",
            "width": width,
            "feature_dim": feature_dim,
            "dropout": dropout,
            "batch_norm": batch_norm,
            "threshold": threshold,
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "holdout_fraction": holdout_fraction,
        }
        keras.utils.set_random_seed(seed)
        model = build_trait_network(
            image_size, len(vocabulary.labels), width, feature_dim, dropout, batch_norm
        )
        # Trained through the trait output only; the feature output shares its layers.
        trainer = keras.Model(model.input, model.outputs[1])
        trainer.compile(
            optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.BinaryCrossentropy()
        )
        pixels = resize_images(images[train], image_size, "nearest")
        trainer.fit(
            pixels,
            targets[train],
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        classifier = cls(vocabulary, model, config)
        classifier.fingerprint = traits_fingerprint(trait_sets)
        metrics = {"train_count": len(train), "heldout_count": len(heldout)}
        if len(heldout):
            metrics.update(classifier.evaluate(images[heldout], [trait_sets[i] for i in heldout]))
            metrics["majority_per_type_accuracy"] = _majority_accuracy(
                vocabulary, [trait_sets[i] for i in train], [trait_sets[i] for i in heldout]
            )
        metrics["train_per_type_accuracy"] = classifier.evaluate(
            images[train], [trait_sets[i] for i in train]
        )["per_type_accuracy"]
        classifier.metrics = metrics
        return classifier

    def _forward(self, images):
        images = check_images(images)

        def predict(batch):
            # The compiled predict function: an eager call costs ~10x more per small batch,
            # and the generation worker labels one image at a time.
            pixels = resize_images(batch, self.image_size, self.config.get("enlarge", "bilinear"))
            return tuple(self.model.predict_on_batch(pixels))

        # One shape for every call: an image's traits (and their confidences, written into
        # exports) must not depend on how many images were labelled with it.
        features, probs = fixed_shape_batches(predict, [images], PREDICT_BATCH)
        return features.astype(np.float64), probs.astype(np.float64)

    def features(self, images):
        """Penultimate activations ``(N, feature_dim)`` float64: the domain features."""
        return self._forward(images)[0]

    def probabilities(self, images):
        """Sigmoid outputs ``(N, len(vocabulary.labels))``, columns in ``vocabulary.labels``."""
        return self._forward(images)[1]

    def features_and_traits(self, images):
        """One pass: ``(features, value_sets)`` where value_sets are the predicted traits."""
        features, probs = self._forward(images)
        return features, self._value_sets(probs)

    def read_values(self, images):
        """The predicted traits alone: one ``{trait_type: frozenset of values}`` per image
        (equal readings compare equal: the near-copy rule's reader)."""
        return self._value_sets(self.probabilities(images))

    def _value_sets(self, probs):
        return [
            {t: frozenset(v for v, _ in values) for t, values in traits.items()}
            for traits in self.vocabulary.decode(probs, self.threshold)
        ]

    def type_confidences(self, images=None, *, probabilities=None):
        """``{trait_type: (N,) confidence}``: how sure the classifier is of each type's reading.

        Every unit (one value of the type) is a yes/no call with confidence ``max(p, 1 - p)``;
        a type is as sure as its least sure unit, so "no headwear" is confident only when no
        headwear value is half-seen. Feeds ``metrics.valid_token_rate``.
        """
        probs = self.probabilities(images) if probabilities is None else probabilities
        sure = np.maximum(probs, 1.0 - probs)
        return {
            t.name: sure[:, [self.vocabulary.index[(t.name, v)] for v in t.values]].min(axis=1)
            for t in self.vocabulary.types
        }

    def predict_traits(self, images):
        """Per image ``{trait_type: [{"value": str, "confidence": float}, ...]}``.

        Every vocabulary type is present; an empty list means the image has no value of that
        type. Single-valued types have at most one entry; confidences are sigmoid outputs.
        """
        decoded = self.vocabulary.decode(self.probabilities(images), self.threshold)
        return [
            {
                t: [{"value": v, "confidence": round(p, 4)} for v, p in values]
                for t, values in traits.items()
            }
            for traits in decoded
        ]

    def evaluate(self, images, trait_sets):
        """Accuracy of the predictions against known traits (use held-out images).

        - ``per_type_accuracy``: share of images whose predicted value set for the type equals
          the true one; ``exact_match``: every type right.
        - ``per_trait``: per (type, value) unit, binary ``accuracy`` (present/absent decided
          right), ``support`` (true positives available), ``recall`` and ``precision``.
        - ``label_accuracy``: mean binary accuracy over all units (dominated by easy negatives;
          read the per-type figures first).
        """
        truth = self.vocabulary.value_sets(trait_sets)
        predicted = self._value_sets(self.probabilities(images))
        if len(truth) != len(predicted):
            raise TraitDataError(f"{len(predicted)} images but {len(truth)} trait sets")
        pairs = list(zip(predicted, truth, strict=True))
        per_type = {
            t.name: float(np.mean([p[t.name] == g[t.name] for p, g in pairs]))
            for t in self.vocabulary.types
        }
        exact = float(np.mean([p == g for p, g in pairs]))
        per_trait, binary = {}, []
        for trait_type in self.vocabulary.types:
            for value in trait_type.values:
                true = np.array([_has(g, trait_type, value) for g in truth])
                pred = np.array([_has(p, trait_type, value) for p in predicted])
                hits = int((true & pred).sum())
                accuracy = float((true == pred).mean())
                binary.append(accuracy)
                per_trait.setdefault(trait_type.name, {})[value] = {
                    "accuracy": accuracy,
                    "support": int(true.sum()),
                    "recall": hits / int(true.sum()) if true.any() else None,
                    "precision": hits / int(pred.sum()) if pred.any() else None,
                }
        return {
            "per_type_accuracy": per_type,
            "exact_match": exact,
            "label_accuracy": float(np.mean(binary)),
            "per_trait": per_trait,
        }

    def save(self, destination):
        """Write one zip file (path or binary file object): ``classifier.json`` +
        ``model.weights.h5``. Loading rebuilds the network from the JSON, so no pickled code."""
        manifest = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "config": self.config,
            "vocabulary": self.vocabulary.to_json(),
            "metrics": self.metrics,
            "fingerprint": self.fingerprint,
            "keras_version": keras.__version__,
        }
        with tempfile.TemporaryDirectory() as tmp:
            weights = os.path.join(tmp, "model.weights.h5")
            self.model.save_weights(weights)
            with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("classifier.json", json.dumps(manifest, indent=1))
                archive.write(weights, "model.weights.h5")

    @classmethod
    def load(cls, source):
        """Read a file written by ``save`` (path or binary file object)."""
        try:
            with zipfile.ZipFile(source) as archive:
                manifest = json.loads(archive.read("classifier.json"))
                weights_bytes = archive.read("model.weights.h5")
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
            raise TraitDataError(f"not a trait classifier file: {error}") from error
        if manifest.get("format") != FILE_FORMAT or manifest.get("version") != FILE_VERSION:
            raise TraitDataError(
                f"not a trait classifier file of version {FILE_VERSION}: "
                f"{manifest.get('format')!r} v{manifest.get('version')!r}"
            )
        vocabulary = TraitVocabulary.from_json(manifest["vocabulary"])
        config = manifest["config"]
        model = build_trait_network(
            config["image_size"],
            len(vocabulary.labels),
            config["width"],
            config["feature_dim"],
            config.get("dropout", 0.0),
            config.get("batch_norm", False),
        )
        with tempfile.TemporaryDirectory() as tmp:
            weights = os.path.join(tmp, "model.weights.h5")
            with open(weights, "wb") as handle:
                handle.write(weights_bytes)
            model.load_weights(weights)
        return cls(vocabulary, model, config, manifest["metrics"], manifest["fingerprint"])

    def to_bytes(self):
        buffer = io.BytesIO()
        self.save(buffer)
        return buffer.getvalue()


def _has(value_set, trait_type, value):
    values = value_set[trait_type.name]
    return (not values) if value == NONE else value in values


def _majority_accuracy(vocabulary, train_sets, heldout_sets):
    """Per-type accuracy of always answering the commonest training value set: the floor."""
    train = vocabulary.value_sets(train_sets)
    heldout = vocabulary.value_sets(heldout_sets)
    result = {}
    for t in vocabulary.types:
        commonest = Counter(s[t.name] for s in train).most_common(1)[0][0]
        result[t.name] = float(np.mean([s[t.name] == commonest for s in heldout]))
    return result
