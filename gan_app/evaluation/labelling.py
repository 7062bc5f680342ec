"""Labelling generated images (``label_pixels``): traits read by the collection's classifier, an
OpenRarity-style score against the collection's trait frequencies and the near-copy check, for
every image the generate worker stores. The worker never trains a classifier (that takes
minutes): without a stored one, images get no traits until ``label_missing`` runs.

TensorFlow is imported inside functions only: web processes import this module.
"""

from dataclasses import dataclass

from django.db import transaction

from collections_app.models import TokenTrait, Trait

from ..models import GeneratedImage
from .reports import (
    EvaluationError,
    _frequencies,  # cleared with the other caches by reports.clear_caches
    classifier_for,
    generator_real_set,
    near_copy_index_for,
)


@dataclass
class Label:
    traits: dict  # {trait_type: [{"value", "confidence"}]}; {} when no classifier yet
    rarity_score: float | None  # OpenRarity-style information content vs the collection
    nearest_distance: float | None  # RMS pixel distance to the nearest training image
    is_near_copy: bool
    excluded: list = ()  # "type: value" of read traits an admin excluded (content safeguard)


def trait_frequencies(collection):
    """The collection's trait frequencies (``collections_app.rarity``), cached per version."""
    from collections_app.analytics import rarity

    def make():
        tokens = list(collection.tokens.values_list("pk", flat=True))
        if not tokens:
            return None
        records = TokenTrait.objects.filter(token__collection=collection).values_list(
            "token_id", "trait__trait_type", "trait__value"
        )
        return rarity.TraitFrequencies.from_pairs(
            rarity.TraitPairs.from_records(tokens, list(records))
        )

    return _frequencies.get((collection.pk, collection.data_version), make)


def rarity_scores(collection, trait_lists):
    """OpenRarity-style ``ic_score`` of each predicted trait dict against the collection."""
    from collections_app.analytics import rarity

    frequencies = trait_frequencies(collection)
    if frequencies is None:
        return [None] * len(trait_lists)
    names = list(range(len(trait_lists)))
    records = [
        (i, trait_type, entry["value"])
        for i, traits in enumerate(trait_lists)
        for trait_type, entries in traits.items()
        for entry in entries
    ]
    scores = frequencies.score(rarity.TraitPairs.from_records(names, records))
    return [round(float(s), 6) for s in scores["ic_score"]]


def label_pixels(generator, pixels):
    """A ``Label`` per generated image (uint8 (N, R, R, 3)), in one batch.

    Uses only what is already trained: the classifier when stored, the near-copy index (built
    from the training images on first use in this process, then stored).
    """
    collection = generator.collection
    classifier = classifier_for(collection, train=False)
    traits = classifier.predict_traits(pixels) if classifier is not None else [{}] * len(pixels)
    scores = rarity_scores(collection, traits) if classifier is not None else [None] * len(pixels)
    try:
        _, index = near_copy_index_for(generator_real_set(generator), collection)
    except EvaluationError:
        index = None  # a collection without token images has nothing to copy
    if index is not None:
        read = classifier.read_values if classifier is not None else None
        distances, flags = index.check(pixels, read)  # a close image that reads alike
    else:
        distances, flags = [None] * len(pixels), [False] * len(pixels)
    banned = Trait.excluded_pairs(collection)
    return [
        Label(t, s, None if d is None else float(d), bool(f), excluded_read(t, banned))
        for t, s, d, f in zip(traits, scores, distances, flags, strict=True)
    ]


def excluded_read(traits: dict, banned: set) -> list[str]:
    """The excluded (type, value) pairs among the traits a classifier read, as "type: value"."""
    return sorted(
        f"{trait_type}: {entry['value']}"
        for trait_type, entries in (traits or {}).items()
        for entry in entries
        if (trait_type, entry["value"]) in banned
    )


def label_attributes(label):
    """ERC-721 attributes for a label: the read traits and the rarity score."""
    attributes = [
        {"trait_type": trait_type, "value": entry["value"]}
        for trait_type, entries in sorted(label.traits.items())
        for entry in entries
    ]
    if label.rarity_score is not None:
        attributes.append(
            {
                "trait_type": "rarity_score",
                "value": round(label.rarity_score, 4),
                "display_type": "number",
            }
        )
    return attributes


def apply_label(image, label):
    """Set an image row's label fields and metadata attributes (not saved)."""
    image.traits = label.traits
    image.rarity_score = label.rarity_score
    image.nearest_distance = label.nearest_distance
    image.is_near_copy = label.is_near_copy
    image.excluded_traits = list(label.excluded)
    metadata = dict(image.metadata or {})
    own = {"collection", "generator", "generator_version", "seed", "resolution", "epoch"}
    kept = [a for a in metadata.get("attributes", []) if a.get("trait_type") in own]
    metadata["attributes"] = kept + label_attributes(label)
    image.metadata = metadata
    return image


def label_missing(generator, batch=256):
    """Label stored images of ``generator`` that have no traits yet (after a classifier was
    trained); returns how many were labelled."""
    import numpy as np
    from PIL import Image

    done = 0
    while True:
        rows = list(
            GeneratedImage.objects.filter(generator=generator, traits={}).order_by("pk")[:batch]
        )
        if not rows:
            return done
        pixels = []
        for row in rows:
            with row.image.open("rb") as handle:
                pixels.append(np.asarray(Image.open(handle).convert("RGB")))
        labels = label_pixels(generator, np.stack(pixels))
        if not any(label.traits for label in labels):
            return done  # no classifier yet: nothing to add
        with transaction.atomic():
            for row, label in zip(rows, labels, strict=True):
                apply_label(row, label).save(
                    update_fields=[
                        "traits",
                        "rarity_score",
                        "nearest_distance",
                        "is_near_copy",
                        "excluded_traits",
                        "metadata",
                    ]
                )
        done += len(rows)


# --- Public comparison -------------------------------------------------------------------------
