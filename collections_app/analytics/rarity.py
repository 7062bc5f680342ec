"""Rarity scores and ranks for NFT collections: rarity.tools and OpenRarity.

Pure numpy/pandas, no Django: the GAN evaluation code uses it to score generated tokens against
a collection's trait frequencies, and analytics uses it to score the collection itself.

Input
-----
A collection is N tokens plus (token, trait_type, value) pairs (`TraitPairs`). A token may have
no pairs at all; it still counts in N.

- **Normalisation.** Types and values compare lower-cased with surrounding whitespace removed
  (``"Hat "`` == ``"hat"``), as OpenRarity does. A pair that repeats after normalisation counts
  once.
- **Missing types.** A token without any value for a trait type falls in that type's *missing*
  category, whose frequency is the share of tokens without the type. An explicit value such as
  ``"None"`` stays an ordinary value, separate from missing (OpenRarity's rule).
- **Trait count.** The number of the token's pairs whose value is not ``"none"`` or empty. It
  is scored as one more trait (OpenRarity's ``meta_trait:trait_count``).
- **Multi-valued types.** A type is multi-valued in a collection when some token holds two or
  more of its values (CryptoPunks' ``accessory``).

  * rarity.tools: every value a token holds adds ``1 / frequency(type, value)``; a token that
    holds none of the type's values adds ``1 / frequency(missing)``, like any missing type.
  * OpenRarity allows one value per type, so a multi-valued type ``T`` becomes one binary
    attribute per value, named ``T[value]``: present (with that value) on tokens that hold it,
    absent (OpenRarity's Null) on the others. The token's information content is then the
    surprise of its whole set of values, value by value, and nothing is dropped (OpenRarity's own
    OpenSea loader keeps only the last value of a repeated type). `open_rarity_attributes` gives
    this mapping; the parity test feeds the same mapping to the ``open-rarity`` package.

Scores (higher is rarer)
------------------------
- ``rarity_score`` (rarity.tools): ``sum(N / count)`` over the token's traits, missing types and
  trait count.
- ``ic_score`` (OpenRarity): ``sum(-log2(count / N))`` over the same attributes (Null for absent
  ones), divided by the collection entropy ``-sum(p * log2 p)`` over every attribute value,
  Null included (1 when the entropy is 0, e.g. a single token).

Ranks (1 is rarest)
-------------------
Competition ranking (1, 2, 2, 4): a score within a relative 1e-9 of the previous score in rank
order shares its rank (OpenRarity's ``math.isclose`` rule), so ranks never depend on the order
the tokens were given in. OpenRarity ranks sort first by the number of *unique* attributes (held
by exactly one token, trait count included), then by score, exactly as the package does; like
the package, the tie test looks at the score only, so a token whose score equals the previous
one's shares its rank even when it has fewer unique attributes. rarity.tools ranks sort by
score only. Callers list tokens within a shared rank by their own key
(analytics uses token number, then token id).

Scoring other tokens (`TraitFrequencies.score`)
------------------------------------------------
Generated tokens are scored against a reference collection's frequencies. A value, type or trait
count the reference never saw counts as seen once (as rare as the reference allows, but finite).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from collections_app.traits import is_no_trait

TRAIT_COUNT_ATTRIBUTE = "meta_trait:trait_count"  # OpenRarity's name for the trait-count trait
RANK_REL_TOL = 1e-9  # math.isclose's default, as OpenRarity uses it


def normalize(text) -> str:
    """How trait types and values compare: lower-cased, surrounding whitespace removed."""
    return str(text).lower().strip()


def one_hot_name(trait_type: str, value: str) -> str:
    """The OpenRarity attribute name of one value of a multi-valued trait type."""
    return f"{trait_type}[{value}]"


@dataclass(frozen=True)
class TraitPairs:
    """Tokens and their normalised, de-duplicated (type, value) pairs, integer coded.

    ``pos[i]`` is the position in ``tokens`` of pair i, ``code[i]`` indexes ``trait_type`` and
    ``value`` (one entry per distinct normalised pair). Pairs are sorted by (pos, code) so tokens
    with the same traits sum their scores in the same order and tie exactly.
    """

    tokens: pd.Index
    pos: np.ndarray
    code: np.ndarray
    trait_type: np.ndarray
    value: np.ndarray

    @property
    def token_count(self) -> int:
        return len(self.tokens)

    @classmethod
    def from_frame(cls, tokens: Sequence[Hashable], traits: pd.DataFrame) -> TraitPairs:
        """From all token ids and a frame with columns ``token``, ``trait_type``, ``value``
        (its rows as ``from_records``' tuples)."""
        columns = traits[["token", "trait_type", "value"]]
        return cls.from_records(tokens, columns.itertuples(index=False, name=None))

    @classmethod
    def from_records(
        cls, tokens: Sequence[Hashable], records: Iterable[tuple[Hashable, str, str]]
    ) -> TraitPairs:
        """From all token ids and (token, trait_type, value) tuples; types and values compare
        as ``str`` gives them (None: "none"). Pairs naming a token that is not in ``tokens``
        raise ValueError.

        Plain Python up to ``_build``: the generate worker scores one new image at a time, and
        a DataFrame and three factorize calls cost it more than the scoring itself (1.6 ms for
        one image against 0.3 ms)."""
        records = list(records)
        index = _token_index(tokens)
        named = [token for token, _, _ in records]
        pos = index.get_indexer(named) if records else np.empty(0, np.int64)
        if (pos < 0).any():
            unknown = list(dict.fromkeys(t for t, p in zip(named, pos, strict=True) if p < 0))
            raise ValueError(f"traits name tokens that are not in the collection: {unknown[:5]}")
        distinct: dict[tuple[str, str], int] = {}
        raw_code = [distinct.setdefault((str(t), str(v)), len(distinct)) for _, t, v in records]
        types = [t for t, _ in distinct]
        values = [v for _, v in distinct]
        return cls._build(index, pos, np.asarray(raw_code, np.int64), types, values)

    @classmethod
    def from_codes(
        cls,
        tokens: Sequence[Hashable],
        pair_tokens: np.ndarray,
        pair_traits: np.ndarray,
        trait_ids: Sequence[Hashable],
        trait_types: Sequence[str],
        trait_values: Sequence[str],
    ) -> TraitPairs:
        """From database-shaped input: pairs of (token id, trait id) plus the trait table.

        Fast path for large collections: strings are normalised once per distinct trait. Pairs
        whose token or trait is unknown are dropped (they belong to another collection).
        """
        index = _token_index(tokens)
        trait_index = pd.Index(trait_ids)
        pos = index.get_indexer(np.asarray(pair_tokens))
        trait_pos = trait_index.get_indexer(np.asarray(pair_traits))
        keep = (pos >= 0) & (trait_pos >= 0)
        return cls._build(index, pos[keep], trait_pos[keep], list(trait_types), list(trait_values))

    @classmethod
    def _build(cls, index, pos, raw_code, raw_types, raw_values) -> TraitPairs:
        """Normalise strings, merge codes that normalise alike, drop repeats, sort.

        ``raw_types``/``raw_values`` hold one entry per distinct raw pair (a collection's
        trait table, not its tokens), so plain Python sorts them faster than a DataFrame."""
        norm = [(normalize(t), normalize(v)) for t, v in zip(raw_types, raw_values, strict=True)]
        ordered = sorted(set(norm))
        number = {pair: i for i, pair in enumerate(ordered)}
        remap = np.fromiter((number[pair] for pair in norm), np.int64, len(norm))
        types = np.array([t for t, _ in ordered], dtype=object)
        values = np.array([v for _, v in ordered], dtype=object)
        pos = np.asarray(pos, np.int64)
        code = remap[np.asarray(raw_code, np.int64)] if len(pos) else np.empty(0, np.int64)
        key = unique_ints(pos * max(len(types), 1) + code)  # sorted by (pos, code), repeats gone
        width = max(len(types), 1)
        return cls(index, key // width, key % width, types, values)

    def type_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(type code per distinct pair, distinct type names)."""
        codes, uniques = pd.factorize(pd.Series(self.trait_type, dtype=object), sort=True)
        return codes.astype(np.int64), np.asarray(uniques, dtype=object)

    def multi_valued_types(self) -> frozenset[str]:
        """Types some token holds two or more values of."""
        tcode, types = self.type_codes()
        if not len(self.pos):
            return frozenset()
        per_pair = tcode[self.code]
        # Pairs are sorted by (pos, code) and codes sort by type, so a token's values of one
        # type are adjacent: a repeat is a pair with the same token and type as the one before.
        repeated = (np.diff(self.pos) == 0) & (np.diff(per_pair) == 0)
        return frozenset(types[np.unique(per_pair[1:][repeated])])

    def trait_counts(self) -> np.ndarray:
        """Per token: pairs whose value is a real trait (not "none" or empty)."""
        real = np.array([not is_no_trait(v) for v in self.value], dtype=np.int64)
        weights = real[self.code] if len(self.code) else np.empty(0, np.int64)
        return np.bincount(self.pos, weights=weights, minlength=self.token_count).astype(np.int64)


@dataclass(frozen=True)
class TraitFrequencies:
    """A reference collection's trait frequencies: what a token is scored against.

    ``values`` has columns trait_type, value, count (normalised); ``missing`` maps every type to
    the number of tokens without it; ``trait_counts`` maps a trait count to its tokens.
    Serialisable with ``to_dict``/``from_dict`` (JSON-safe).
    """

    token_count: int
    values: pd.DataFrame
    missing: dict[str, int]
    multi_valued: frozenset[str]
    trait_counts: dict[int, int]
    _lookup: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        lookup = {
            (t, v): int(c)
            for t, v, c in zip(
                self.values["trait_type"], self.values["value"], self.values["count"], strict=True
            )
        }
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def from_pairs(cls, pairs: TraitPairs) -> TraitFrequencies:
        n = pairs.token_count
        counts = np.bincount(pairs.code, minlength=len(pairs.trait_type))
        tcode, types = pairs.type_codes()
        per_pair_type = tcode[pairs.code] if len(pairs.code) else np.empty(0, np.int64)
        holders = unique_ints(pairs.pos * max(len(types), 1) + per_pair_type) % max(len(types), 1)
        with_type = np.bincount(holders, minlength=len(types))
        trait_count_tokens = np.bincount(pairs.trait_counts())
        trait_count_values = np.nonzero(trait_count_tokens)[0]
        trait_count_tokens = trait_count_tokens[trait_count_values]
        return cls(
            token_count=n,
            values=pd.DataFrame(
                {"trait_type": pairs.trait_type, "value": pairs.value, "count": counts}
            ),
            missing={str(t): int(n - w) for t, w in zip(types, with_type, strict=True)},
            multi_valued=pairs.multi_valued_types(),
            trait_counts={
                int(k): int(c) for k, c in zip(trait_count_values, trait_count_tokens, strict=True)
            },
        )

    def count(self, trait_type: str, value: str) -> int:
        """Tokens holding (type, value); 0 when the reference never saw it."""
        return self._lookup.get((normalize(trait_type), normalize(value)), 0)

    def frequency(self, trait_type: str, value: str) -> float:
        return self.count(trait_type, value) / self.token_count if self.token_count else 0.0

    def entropy(self) -> float:
        """OpenRarity's collection entropy (bits) over every attribute value, Null included."""
        n = self.token_count
        if n == 0:
            return 0.0
        counts = [int(c) for c in self.values["count"]]
        multi = self.values["trait_type"].isin(self.multi_valued).to_numpy()
        nulls = [n - c for c, m in zip(counts, multi, strict=True) if m]
        nulls += [m for t, m in self.missing.items() if t not in self.multi_valued]
        probs = np.array(
            [c for c in counts + nulls + list(self.trait_counts.values()) if c > 0], dtype=float
        )
        probs /= n
        return float(-np.dot(probs, np.log2(probs)))

    def score(self, pairs: TraitPairs) -> pd.DataFrame:
        """Scores of ``pairs``' tokens against these frequencies (no ranks).

        Columns: trait_count, unique_traits, rarity_score, ic_score; index: the tokens.
        """
        n = self.token_count
        m = pairs.token_count
        if n == 0:
            raise ValueError("cannot score against an empty collection")
        nf = float(n)

        # Per distinct pair in `pairs`: its reference count and how OpenRarity names it.
        ref_count = np.array(
            [self._lookup.get(k, 0) for k in zip(pairs.trait_type, pairs.value, strict=True)],
            dtype=np.int64,
        )
        effective = np.maximum(ref_count, 1).astype(float)
        code = pairs.code
        pos = pairs.pos

        trait_count = pairs.trait_counts()
        k_count = pd.Series(trait_count).map(self.trait_counts).fillna(0).to_numpy(float)
        k_effective = np.maximum(k_count, 1.0)

        # rarity.tools: each held pair, then each missing type, then the trait count.
        rarity = _sum_by(pos, (nf / effective)[code], m)
        rarity += self._missing_part(pairs, lambda missing: nf / missing, open_rarity=False)
        rarity += nf / k_effective

        # OpenRarity information content: held attributes, Null for the absent ones.
        surprise = np.log2(nf / effective)
        ic = _sum_by(pos, surprise[code], m)
        ic += self._missing_part(pairs, lambda missing: math.log2(nf / missing), open_rarity=True)
        ic += np.log2(nf / k_effective)
        entropy = self.entropy()
        ic /= entropy if entropy > 0 else 1.0

        unique = _sum_by(pos, (effective == 1)[code].astype(float), m)
        unique += k_effective == 1
        return pd.DataFrame(
            {
                "trait_count": trait_count,
                "unique_traits": unique.astype(np.int64),
                "rarity_score": rarity,
                "ic_score": ic,
            },
            index=pairs.tokens,
        )

    def _missing_part(self, pairs: TraitPairs, weight, open_rarity: bool) -> np.ndarray:
        """Per token, the summed weight of the reference categories it lacks.

        rarity.tools has one category per type: a token lacks it when it holds no value of the
        type. OpenRarity (``open_rarity=True``) has one attribute per
        single-valued type and one per value of a multi-valued type (Null where not held).
        Computed as (all categories) minus (those the token holds) so the cost stays linear in
        the pairs; categories no reference token lacks weigh as if lacked once.
        """
        n = self.token_count
        m = pairs.token_count
        # Category of each distinct pair of `pairs` in the reference, -1 when it has none.
        categories: dict[object, int] = {}
        null_counts: list[int] = []
        for t, missing in self.missing.items():
            if open_rarity and t in self.multi_valued:
                continue
            categories[t] = len(null_counts)
            null_counts.append(missing)
        if open_rarity:
            for t, v, c in zip(
                self.values["trait_type"], self.values["value"], self.values["count"], strict=True
            ):
                if t in self.multi_valued:
                    categories[(t, v)] = len(null_counts)
                    null_counts.append(n - int(c))
        pair_category = np.array(
            [
                categories.get((t, v) if (open_rarity and t in self.multi_valued) else t, -1)
                for t, v in zip(pairs.trait_type, pairs.value, strict=True)
            ],
            dtype=np.int64,
        )
        nulls = np.array(null_counts, dtype=np.int64)
        weights = np.array([weight(max(int(x), 1)) for x in nulls], dtype=float)
        lacked_by_some = nulls > 0

        result = np.full(m, float(weights[lacked_by_some].sum()))
        held_category = pair_category[pairs.code] if len(pairs.code) else np.empty(0, np.int64)
        keep = held_category >= 0
        width = max(len(nulls), 1)
        held = unique_ints(pairs.pos[keep] * width + held_category[keep])  # each category once
        held_pos, held_cat = held // width, held % width
        positive = lacked_by_some[held_cat]
        result -= _sum_by(held_pos[positive], weights[held_cat[positive]], m)
        # Categories every reference token holds: only tokens from elsewhere can lack them.
        always = int((~lacked_by_some).sum())
        if always:
            held_always = np.bincount(held_pos[~positive], minlength=m)
            result += (always - held_always) * float(weight(1))
        return result

    def to_dict(self) -> dict:
        return {
            "token_count": self.token_count,
            "values": [
                [t, v, int(c)]
                for t, v, c in zip(
                    self.values["trait_type"],
                    self.values["value"],
                    self.values["count"],
                    strict=True,
                )
            ],
            "missing": dict(self.missing),
            "multi_valued": sorted(self.multi_valued),
            "trait_counts": {str(k): c for k, c in self.trait_counts.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> TraitFrequencies:
        values = pd.DataFrame(data["values"], columns=["trait_type", "value", "count"])
        return cls(
            token_count=int(data["token_count"]),
            values=values.astype({"trait_type": object, "value": object, "count": np.int64}),
            missing={str(k): int(v) for k, v in data["missing"].items()},
            multi_valued=frozenset(data["multi_valued"]),
            trait_counts={int(k): int(v) for k, v in data["trait_counts"].items()},
        )


def rank_scores(scores, unique_counts=None, rel_tol: float = RANK_REL_TOL) -> np.ndarray:
    """Competition ranks (1 = rarest) of ``scores``; see the module docstring for ties.

    With ``unique_counts`` tokens sort by it first (descending), as OpenRarity does.
    """
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if n == 0:
        return np.empty(0, np.int64)
    if unique_counts is None:
        order = np.argsort(-scores, kind="stable")
    else:
        order = np.lexsort((-scores, -np.asarray(unique_counts, dtype=float)))
    ordered = scores[order]
    gap = np.abs(np.diff(ordered))
    scale = np.maximum(np.abs(ordered[1:]), np.abs(ordered[:-1]))
    starts = np.concatenate(([True], ~(gap <= rel_tol * scale)))
    position = np.arange(1, n + 1)
    ranks = np.empty(n, np.int64)
    ranks[order] = np.maximum.accumulate(np.where(starts, position, 0))
    return ranks


def score_collection(pairs: TraitPairs) -> pd.DataFrame:
    """Scores and ranks of every token against its own collection.

    Columns: trait_count, unique_traits, rarity_score, rarity_rank, ic_score, ic_rank; index: the
    tokens, in the order given.
    """
    columns = ["trait_count", "unique_traits", "rarity_score", "rarity_rank", "ic_score", "ic_rank"]
    if pairs.token_count == 0:
        return pd.DataFrame(columns=columns, index=pairs.tokens)
    frame = TraitFrequencies.from_pairs(pairs).score(pairs)
    frame["rarity_rank"] = rank_scores(frame["rarity_score"].to_numpy())
    frame["ic_rank"] = rank_scores(frame["ic_score"].to_numpy(), frame["unique_traits"].to_numpy())
    return frame[columns]


def open_rarity_attributes(
    pairs: TraitPairs, multi_valued: frozenset[str] | None = None
) -> dict[Hashable, dict[str, str]]:
    """Each token's attributes as OpenRarity models them (one value per name).

    Single-valued types keep their name; each value of a multi-valued type becomes its own
    attribute ``type[value]`` (see the module docstring). The trait count is not included: the
    package adds it itself.
    """
    multi = pairs.multi_valued_types() if multi_valued is None else multi_valued
    result: dict[Hashable, dict[str, str]] = {token: {} for token in pairs.tokens}
    for p, c in zip(pairs.pos, pairs.code, strict=True):
        t, v = pairs.trait_type[c], pairs.value[c]
        name = one_hot_name(t, v) if t in multi else t
        result[pairs.tokens[p]][name] = v
    return result


def _sum_by(positions: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Per-token float sums of ``weights`` (np.bincount, but float even when empty)."""
    return np.bincount(positions, weights=weights, minlength=size).astype(float, copy=False)


def unique_ints(values: np.ndarray) -> np.ndarray:
    """np.unique for int arrays via one sort (numpy 2's hash-based unique is far slower here)."""
    if len(values) == 0:
        return np.asarray(values, dtype=np.int64)
    ordered = np.sort(values, kind="stable")
    keep = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    return ordered[keep]


def _token_index(tokens) -> pd.Index:
    index = pd.Index(list(tokens) if not isinstance(tokens, pd.Index) else tokens)
    if index.has_duplicates:
        raise ValueError("token ids must be unique")
    return index


def score_records(records) -> list[dict]:
    """Rarity of each token of a new collection given as records ``{"token_id", "traits":
    [{"trait_type", "value"}, ...]}`` (a fabricated collection before it has rows)."""
    tokens = [r["token_id"] for r in records]
    pairs = TraitPairs.from_records(
        tokens,
        [(r["token_id"], t["trait_type"], t["value"]) for r in records for t in r["traits"]],
    )
    frame = score_collection(pairs)
    return [
        {
            "rarity_score": round(float(row.rarity_score), 6),
            "rarity_rank": int(row.rarity_rank),
            "ic_score": round(float(row.ic_score), 6),
            "ic_rank": int(row.ic_rank),
        }
        for row in frame.itertuples()
    ]
