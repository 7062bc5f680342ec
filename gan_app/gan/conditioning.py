"""Trait conditioning: the trait vocabulary of a conditional run, requests, and the hit rate.

A ``ConditionVocabulary`` is built once from the training tokens' traits and frozen with the
run (it travels in every checkpoint and in the published generator). It turns one token's
traits into a multi-hot vector, one unit per (trait type, value):

- every trait type gets a ``"none"`` value when some tokens lack it (as rarity.tools counts
  "missing" as a value of its own), so "no headwear" can be asked for like any other value;
- values carried by fewer than ``min_count`` tokens are *rare*: with ``rare="other"`` they are
  grouped into one ``"other"`` value of their type, with ``rare="exclude"`` they are left out
  (a token whose only values of a type are excluded has that type's units all zero, which the
  generator learns as "unspecified"); a real value spelled "other" joins the group;
- single-valued types (at most one value per token, e.g. ``type``) set exactly one unit;
  multi-valued types (e.g. ``accessory``) set one unit per value the token carries.

A *request* is ``{trait_type: value}`` (a list of values for a multi-valued type); a type left
out, or given as ``"any"``/``None``, is filled in per seed with ``PCG64([seed, ANY_SALT])``
from the training tokens that match every requested type exactly (all tokens when none do):

- ``draw="novel"`` (vocabularies built since version 2): the *anchor* type (the single-valued
  type that tells most about the others, by mutual information over the training tokens; e.g.
  a punk's ``type``) is drawn first, then each other free type takes its values from its own
  draw among the tokens that share the anchor's value, and the whole combination is drawn again
  (up to ``NOVEL_TRIES`` times) while it is one a training token has. In collections whose
  traits decide the picture, a training token's own combination asks the generator for a copy
  of that token (on the demo collection 29% of such images were near-copies); new combinations
  of real values give new tokens. Drawing every type on its own would break the pairs that
  belong together (on the CryptoPunks sample, accessories of another type: domain FID 2.2 ->
  8.9); sharing the anchor's value keeps them, and where no new combination keeps them the
  last draw, a real one, stands.
- ``draw="joint"`` (version 1 vocabularies, kept so that their images do not change): one
  matching token is drawn and all its values are used for the free types.

So generator + request + seed always give the same conditions, and the same latent (the seed
alone picks it).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .trait_classifier import NONE, normalize_traits

OTHER = "other"
ANY = "any"
ANY_SALT = 0x616E79  # "any": keeps the trait draw independent of the latent drawn from the seed
VOCABULARY_VERSION = 2  # 2: "any" draws new combinations ("draw": "novel"); 1: joint draws
DRAWS = ("novel", "joint")
NOVEL_TRIES = 32
MAX_KEY_LENGTH = 500  # GeneratedImage.condition_key's column


class ConditionError(ValueError):
    """A trait request (or trait data) that the vocabulary cannot encode; says what is valid."""


@dataclass(frozen=True)
class ConditionType:
    name: str
    values: tuple  # kept values (sorted), then OTHER when rare ones are grouped, then NONE
    multi: bool
    rare: tuple = ()  # the values grouped into OTHER (rare="other") or left out ("exclude")


@dataclass(frozen=True)
class ResolvedConditions:
    """What a batch of seeds is conditioned on: multi-hot rows and the same as trait dicts."""

    labels: np.ndarray  # float32 (N, vocabulary.size)
    traits: list[dict]  # per seed {trait_type: value | [values]} (multi-valued types: lists)


class ConditionVocabulary:
    """The (type, value) units of a conditional run, plus the training tokens' joint
    distribution over them (for "any")."""

    def __init__(
        self,
        types,
        joint,
        *,
        min_count: int = 1,
        rare: str = OTHER,
        draw: str = "novel",
        anchor: str | object | None = ...,
    ):
        if draw not in DRAWS:
            raise ConditionError(f"draw must be one of {list(DRAWS)}, got {draw!r}")
        self.types = tuple(types)
        self.min_count = min_count
        self.rare = rare
        self.draw = draw
        self.labels = [(t.name, v) for t in self.types for v in t.values]
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.by_name = {t.name: t for t in self.types}
        self.slices = {}
        start = 0
        for t in self.types:
            self.slices[t.name] = slice(start, start + len(t.values))
            start += len(t.values)
        # joint: [(count, (label indices...)), ...] — distinct rows of the training tokens.
        self.joint = [(int(count), tuple(int(i) for i in row)) for count, row in joint]
        self._joint_rows = np.zeros((len(self.joint), self.size), dtype=bool)
        for r, (_, row) in enumerate(self.joint):
            self._joint_rows[r, list(row)] = True
        self._joint_counts = np.array([c for c, _ in self.joint], dtype=np.float64)
        self._known = {row.tobytes() for row in self._joint_rows}
        if anchor is ...:  # a new vocabulary: chosen from its tokens (then frozen in its JSON)
            anchor = _anchor_type(self) if draw == "novel" else None
        self.anchor = anchor

    @property
    def size(self) -> int:
        return len(self.labels)

    def joint_rows(self) -> np.ndarray:
        """float32 (R, size): the distinct multi-hot rows of the training tokens."""
        return self._joint_rows.astype(np.float32)

    # --- Building from a collection ---------------------------------------------------------
    @classmethod
    def from_traits(
        cls, trait_sets: Iterable, *, min_count: int = 1, rare: str = OTHER
    ) -> ConditionVocabulary:
        """The vocabulary of a set of tokens (one trait set per token, any form
        ``trait_classifier.normalize_traits`` takes)."""
        if rare not in (OTHER, "exclude"):
            raise ConditionError(f"rare must be {OTHER!r} or 'exclude', got {rare!r}")
        sets = [normalize_traits(item, i) for i, item in enumerate(trait_sets)]
        if not sets:
            raise ConditionError("no tokens: cannot build a trait vocabulary")
        counts: dict[str, Counter] = {}
        widest: Counter = Counter()
        for traits in sets:
            for name, values in traits.items():
                counts.setdefault(name, Counter()).update(values)
                widest[name] = max(widest[name], len(values))
        if not counts:
            raise ConditionError("the tokens have no traits: nothing to condition on")
        types = []
        for name in sorted(counts):
            if any(v.lower() == NONE for v in counts[name]):
                raise ConditionError(f"trait type {name!r} has a value spelled {NONE!r}")
            kept = sorted(
                v for v, n in counts[name].items() if n >= min_count and v.lower() != OTHER
            )
            rare_values = tuple(sorted(set(counts[name]) - set(kept)))
            values = list(kept)
            if rare_values and rare == OTHER:
                values.append(OTHER)
            if any(name not in traits for traits in sets):
                values.append(NONE)
            if values:
                types.append(ConditionType(name, tuple(values), widest[name] > 1, rare_values))
        vocabulary = cls(types, [], min_count=min_count, rare=rare)
        rows = Counter(vocabulary._row(traits) for traits in sets)
        joint = sorted(((n, row) for row, n in rows.items()), key=lambda e: (-e[0], e[1]))
        return cls(types, joint, min_count=min_count, rare=rare)

    def _row(self, traits: Mapping) -> tuple[int, ...]:
        """Label indices of one normalised token."""
        row = []
        for t in self.types:
            values = traits.get(t.name, frozenset())
            if not values:
                mapped = {NONE} if NONE in t.values else set()
            else:
                mapped = {self._map_value(t, v) for v in values} - {None}
            row.extend(self.index[(t.name, v)] for v in mapped)
        return tuple(sorted(row))

    def _map_value(self, t: ConditionType, value: str) -> str | None:
        if value in t.values and value not in (OTHER, NONE):
            return value
        if value in t.rare or value.lower() == OTHER:
            return OTHER if self.rare == OTHER else None
        return None  # a value this vocabulary never saw: unspecified

    def encode(self, trait_sets: Sequence) -> np.ndarray:
        """float32 (N, size): the multi-hot rows of tokens (unseen values are left unset)."""
        rows = np.zeros((len(trait_sets), self.size), dtype=np.float32)
        for r, item in enumerate(trait_sets):
            rows[r, list(self._row(normalize_traits(item, r)))] = 1.0
        return rows

    # --- Requests ---------------------------------------------------------------------------
    def check(self, traits: Mapping | None) -> dict[str, tuple[str, ...]]:
        """A request as ``{type: (values...)}`` with free ("any") types left out; unknown
        types or values raise ``ConditionError`` naming the valid ones."""
        if traits is None:
            return {}
        if not isinstance(traits, Mapping):
            raise ConditionError(f"traits must be a mapping of trait type to value, got {traits!r}")
        request = {}
        for name, wanted in traits.items():
            t = self._type(name)
            if wanted is None or (isinstance(wanted, str) and wanted.strip().lower() == ANY):
                continue
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            if not values or not all(isinstance(v, str) for v in values):
                raise ConditionError(f"trait {t.name!r}: a value must be a string, got {wanted!r}")
            chosen = tuple(sorted({self._value(t, v) for v in values}))
            if len(chosen) > 1 and not t.multi:
                raise ConditionError(
                    f"trait {t.name!r} takes one value, got {', '.join(map(repr, chosen))}"
                )
            if len(chosen) > 1 and NONE in chosen:
                raise ConditionError(f"trait {t.name!r}: {NONE!r} cannot go with other values")
            request[t.name] = chosen
        return request

    def _type(self, name) -> ConditionType:
        if isinstance(name, str) and name in self.by_name:
            return self.by_name[name]
        lowered = {t.name.lower(): t for t in self.types}
        if isinstance(name, str) and name.strip().lower() in lowered:
            return lowered[name.strip().lower()]
        raise ConditionError(
            f"unknown trait type {name!r}; this generator knows "
            + ", ".join(repr(t.name) for t in self.types)
        )

    def _value(self, t: ConditionType, value: str) -> str:
        text = value.strip()
        for known in t.values:
            if known.lower() == text.lower():
                return known
        if text in t.rare or text.lower() in {r.lower() for r in t.rare}:
            how = f"grouped as {OTHER!r}" if self.rare == OTHER else "left out"
            raise ConditionError(
                f"{t.name!r} value {text!r} is too rare in the training set to ask for "
                f"(fewer than {self.min_count} tokens; {how}); valid values: "
                + ", ".join(repr(v) for v in t.values)
            )
        raise ConditionError(
            f"unknown value {text!r} for trait {t.name!r}; valid values: "
            + ", ".join(repr(v) for v in t.values)
            + f", or {ANY!r}"
        )

    def resolve(self, traits: Mapping | None, seeds: Sequence[int]) -> ResolvedConditions:
        """Conditions per seed: requested types as asked, free types drawn from the training
        tokens that match them (see the module docstring). Deterministic in (vocabulary,
        traits, seed)."""
        request = self.check(traits)
        fixed = np.zeros(self.size, dtype=bool)
        mask = np.zeros(self.size, dtype=bool)
        for name, values in request.items():
            mask[self.slices[name]] = True
            fixed[[self.index[(name, v)] for v in values]] = True
        rows = self._joint_rows
        matching = np.all(rows[:, mask] == fixed[mask], axis=1) if len(rows) else rows[:, 0]
        labels = np.zeros((len(seeds), self.size), dtype=np.float32)
        free = [t for t in self.types if t.name not in request]
        weights = self._joint_counts * matching if matching.any() else self._joint_counts
        cumulative = np.cumsum(weights)
        sharing_anchor = {}  # anchor value -> cumulative weights of the tokens that share it
        for i, seed in enumerate(seeds):
            rng = np.random.Generator(np.random.PCG64([int(seed), ANY_SALT]))
            row = fixed.copy()
            if free and len(rows) and self.draw == "novel":
                for _ in range(NOVEL_TRIES):
                    among = cumulative
                    if self.anchor is not None:
                        part = self.slices[self.anchor]
                        if self.anchor not in request:
                            row[part] = rows[_pick(rng, cumulative)][part]
                        key = row[part].tobytes()
                        if key not in sharing_anchor:
                            sharing = weights * np.all(rows[:, part] == row[part], axis=1)
                            summed = np.cumsum(sharing) if sharing.any() else cumulative
                            sharing_anchor[key] = summed
                        among = sharing_anchor[key]
                    for t in free:
                        if t.name != self.anchor:
                            row[self.slices[t.name]] = rows[_pick(rng, among)][self.slices[t.name]]
                    if row.tobytes() not in self._known:
                        break
            elif free and len(rows):
                if matching.any():
                    drawn = rows[_draw(rng, self._joint_counts * matching)]
                    for t in free:
                        row[self.slices[t.name]] = drawn[self.slices[t.name]]
                else:
                    for t in free:
                        drawn = rows[_draw(rng, self._joint_counts)]
                        row[self.slices[t.name]] = drawn[self.slices[t.name]]
            labels[i] = row
        return ResolvedConditions(labels, [self.describe(row) for row in labels])

    def describe(self, row) -> dict:
        """One multi-hot row as ``{type: value}`` (multi-valued types: a sorted list)."""
        result = {}
        for t in self.types:
            on = [t.values[j] for j, bit in enumerate(np.asarray(row)[self.slices[t.name]]) if bit]
            if t.multi:
                result[t.name] = sorted(on)
            elif on:
                result[t.name] = on[0]
        return result

    def condition_key(self, traits: Mapping | None) -> str:
        """The canonical text of a request ("" when every type is free): with the seed it
        names an image uniquely, e.g. ``"eyes=Laser;headwear=Cap"``."""
        request = self.check(traits)
        key = ";".join(f"{name}={'+'.join(values)}" for name, values in sorted(request.items()))
        if len(key) > MAX_KEY_LENGTH:
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        return key

    def grid_conditions(self, rows: int) -> ResolvedConditions:
        """The fixed trait combinations of a sample grid's rows: the first distinct draws
        from the joint distribution with seeds 0, 1, 2, ..., so every checkpoint's grid shows
        the same ones (repeats only when the collection has fewer combinations than rows)."""
        candidates = self.resolve({}, list(range(rows * 20)))
        chosen, seen = [], set()
        for i, row in enumerate(candidates.labels):
            if row.tobytes() not in seen:
                seen.add(row.tobytes())
                chosen.append(i)
            if len(chosen) == rows:
                break
        chosen += [chosen[i % len(chosen)] for i in range(rows - len(chosen))]
        return ResolvedConditions(candidates.labels[chosen], [candidates.traits[i] for i in chosen])

    def choices(self) -> dict[str, list[str]]:
        """``{type: [values]}`` a visitor can pick from (besides "any")."""
        return {t.name: list(t.values) for t in self.types}

    # --- Serialisation ----------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "version": VOCABULARY_VERSION if self.draw == "novel" else 1,
            "draw": self.draw,
            "anchor": self.anchor,
            "min_count": self.min_count,
            "rare": self.rare,
            "types": [
                {"name": t.name, "values": list(t.values), "multi": t.multi, "rare": list(t.rare)}
                for t in self.types
            ],
            "joint": [[count, list(row)] for count, row in self.joint],
        }

    @classmethod
    def from_json(cls, data: Mapping) -> ConditionVocabulary:
        if not isinstance(data, Mapping) or data.get("version") not in (1, VOCABULARY_VERSION):
            raise ConditionError(f"not a trait vocabulary of version 1 to {VOCABULARY_VERSION}")
        types = [
            ConditionType(t["name"], tuple(t["values"]), bool(t["multi"]), tuple(t["rare"]))
            for t in data["types"]
        ]
        return cls(
            types,
            data["joint"],
            min_count=data["min_count"],
            rare=data["rare"],
            draw=data.get("draw", "joint"),  # version 1 drew joint combinations
            anchor=data.get("anchor"),
        )

    def __eq__(self, other):
        return isinstance(other, ConditionVocabulary) and self.to_json() == other.to_json()

    __hash__ = None


def _anchor_type(vocabulary: ConditionVocabulary) -> str | None:
    """The single-valued type with the most mutual information with the other types, over the
    training tokens (their distinct rows, weighted by count); None with fewer than two types."""
    rows, counts = vocabulary._joint_rows, vocabulary._joint_counts
    if len(vocabulary.types) < 2 or not len(rows):
        return None
    codes = {}  # each type's values per row, as small integers
    for t in vocabulary.types:
        part = rows[:, vocabulary.slices[t.name]]
        codes[t.name] = np.unique(part, axis=0, return_inverse=True)[1].reshape(-1)
    p = counts / counts.sum()

    def information(a, b):
        joint = np.zeros((a.max() + 1, b.max() + 1))
        np.add.at(joint, (a, b), p)
        outer = joint.sum(1, keepdims=True) @ joint.sum(0, keepdims=True)
        nz = joint > 0
        return float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())

    scores = {
        t.name: sum(information(codes[t.name], codes[o.name]) for o in vocabulary.types if o != t)
        for t in vocabulary.types
        if not t.multi
    }
    return max(scores, key=lambda name: (scores[name], name)) if scores else None


def _draw(rng: np.random.Generator, weights: np.ndarray) -> int:
    """Index drawn with probability proportional to ``weights`` from one uniform number
    (explicit, so the draw cannot change with NumPy's ``choice`` implementation)."""
    return _pick(rng, np.cumsum(weights))


def _pick(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    """``_draw`` from weights already summed (``np.cumsum``): the same index."""
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


# --- Trait hit rate -----------------------------------------------------------------------------
def trait_hit_rate(
    generated_images,
    requested: Sequence[Mapping],
    classifier,
    *,
    vocabulary: ConditionVocabulary | None = None,
    recognised_at: float = 0.95,
    min_support: int = 5,
) -> dict:
    """The share of requested traits that the trait classifier finds in the generated images.

    ``requested``: per image ``{type: value | [values]}`` (what that image was asked to show;
    types not asked about are left out). A requested value is *hit* when the classifier's
    predicted value set for its type contains it; ``"none"`` is hit when the classifier sees no
    value of the type; ``"other"`` (needs ``vocabulary``) when it sees one of the grouped rare
    values. Every figure sits next to the classifier's own held-out figures on real images:
    ``classifier_recall`` per value, ``classifier_accuracy`` per type. ``recognised`` sums up
    the values the classifier itself recalls at ``recognised_at`` or better (on at least
    ``min_support`` held-out images): the target a generator can be held to.
    """
    requested = list(requested)
    if len(requested) != len(generated_images):
        raise ValueError(f"{len(generated_images)} images but {len(requested)} requests")
    predictions = classifier.predict_traits(generated_images) if len(requested) else []
    metrics = getattr(classifier, "metrics", {}) or {}
    per_trait_real = metrics.get("per_trait", {})
    per_type_real = metrics.get("per_type_accuracy", {})
    tallies: dict[tuple[str, str], list[int]] = {}
    for wanted, predicted in zip(requested, predictions, strict=True):
        for name, values in wanted.items():
            if name not in predicted:
                raise ConditionError(f"the trait classifier does not know trait type {name!r}")
            seen = {entry["value"] for entry in predicted[name]}
            for value in [values] if isinstance(values, str) else values:
                tally = tallies.setdefault((name, value), [0, 0])
                tally[0] += _hit(name, value, seen, vocabulary)
                tally[1] += 1
    per_trait: dict[str, dict] = {}
    per_type: dict[str, list[int]] = {}
    recognised = [0, 0, 0]  # hits, requested, distinct values
    for (name, value), (hits, count) in sorted(tallies.items()):
        real = per_trait_real.get(name, {}).get(value, {})
        recall, support = real.get("recall"), real.get("support", 0)
        per_trait.setdefault(name, {})[value] = {
            "hit_rate": hits / count,
            "requested": count,
            "classifier_recall": recall,
            "classifier_support": support,
        }
        totals = per_type.setdefault(name, [0, 0])
        totals[0] += hits
        totals[1] += count
        if recall is not None and recall >= recognised_at and support >= min_support:
            recognised[0] += hits
            recognised[1] += count
            recognised[2] += 1
    hits = sum(h for h, _ in tallies.values())
    count = sum(n for _, n in tallies.values())
    return {
        "overall": hits / count if count else None,
        "requested": count,
        "per_type": {
            name: {
                "hit_rate": h / n,
                "requested": n,
                "classifier_accuracy": per_type_real.get(name),
            }
            for name, (h, n) in per_type.items()
        },
        "per_trait": per_trait,
        "recognised": {
            "threshold": recognised_at,
            "min_support": min_support,
            "traits": recognised[2],
            "requested": recognised[1],
            "hit_rate": recognised[0] / recognised[1] if recognised[1] else None,
        },
    }


def _hit(name: str, value: str, seen: set[str], vocabulary: ConditionVocabulary | None) -> bool:
    if value == NONE:
        return not seen
    if value == OTHER:
        if vocabulary is None:
            raise ConditionError(f"{OTHER!r} can only be scored with the run's vocabulary")
        return bool(seen & set(vocabulary.by_name[name].rare))
    return value in seen
