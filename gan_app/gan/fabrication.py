"""Fabricating a whole collection: N unique new tokens from a published generator.

Django-free: the generate-queue job, the admin form and ``manage.py fabricate`` wrap this.

How candidates are made and judged
----------------------------------
- Candidate ``i`` (0, 1, 2, ...) uses seed ``candidate_seed(S, i)`` (a 63-bit number from
  ``SeedSequence([S, i])``) and, for a conditional generator, conditions drawn from the plan
  with ``PCG64([S, i, PLAN_SALT])``. Nothing depends on the batch a candidate was drawn in,
  so the batch size and the resume point never change the result.
- Candidates are judged strictly in index order. A candidate is rejected as
  ``near_copy`` when the memorisation guard flags it (a near-copy of a training image: close to
  it and, with a classifier, read as the same traits; see ``memorisation``), else as
  ``duplicate`` when an earlier accepted token lies within ``distance`` of it.
- **Perceptual distance.** Each image is shrunk to ``EMBED_SIZE`` x ``EMBED_SIZE`` RGB by area
  averaging (PIL ``BOX``) and rounded to uint8: the *embedding* (768 bytes at 16 px). The distance
  of two images is the root-mean-square difference of their embeddings on a [0, 1] scale (0:
  same, 1: black vs white everywhere). Two tokens are *duplicates* when it is
  ``<= distance`` (default ``DEFAULT_DISTANCE`` = 0.04: on average 10 of 255 levels apart per
  channel after smoothing away single-pixel noise). Distances are computed from integers in
  float64, so they are exact whatever the order of summation: no accepted pair is within the
  distance, checked exactly, and the answer never depends on BLAS blocking.
- **Never forever.** After ``window`` candidates, if fewer than ``min_accept_rate`` of the last
  ``window`` were accepted, the run stops (``status == "exhausted"``) with what it made; it
  also stops after ``max_candidates`` candidates. Both rules look at candidate indices only,
  so they are as deterministic as the rest.

State and streaming
-------------------
``FabricationState`` (next candidate index, accepted embeddings, per-token records without
images, rejection counts) is all a resumed run needs; ``to_bytes``/``from_bytes`` let a job
checkpoint it. Images are never kept: each accepted token is yielded once, with its PNG, for a
writer to stream out (``exports``). Memory grows only by the embedding and a small record per
token.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .conditioning import ConditionError
from .sampling import LATENT_SEED_LIMIT, latent_vectors, to_png

EMBED_SIZE = 16
EMBED_WIDTH = EMBED_SIZE * EMBED_SIZE * 3
DEFAULT_DISTANCE = 0.04
DEFAULT_BATCH = 64
DEFAULT_MAX_COUNT = 10_000
DEFAULT_WINDOW = 200
DEFAULT_MIN_ACCEPT_RATE = 0.02
DEFAULT_MAX_CANDIDATES_FACTOR = 20
PLAN_SALT = 0x706C616E  # "plan": the trait draw is independent of the seed's latent
INDEX_CHUNK = 4096  # accepted embeddings compared per matrix product
REASONS = ("near_copy", "duplicate")
STATE_VERSION = 1


class FabricationError(ValueError):
    """A fabrication request that cannot run (bad count, unknown trait, bad plan)."""


def candidate_seed(seed: int, index: int) -> int:
    """The generator seed of candidate ``index`` of a run with seed ``seed``."""
    words = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, np.uint32)
    return int((int(words[0]) << 32 | int(words[1])) & LATENT_SEED_LIMIT)


def embed(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, EMBED_SIZE * EMBED_SIZE * 3), one image at a time."""
    rows = np.empty((len(images), EMBED_WIDTH), dtype=np.uint8)
    for i, image in enumerate(images):
        small = Image.fromarray(image, "RGB").resize((EMBED_SIZE, EMBED_SIZE), Image.BOX)
        rows[i] = np.asarray(small, dtype=np.uint8).reshape(-1)
    return rows


def squared_limit(distance: float) -> float:
    """The largest sum of squared uint8 differences that is still within ``distance`` (RMS)."""
    return (distance * 255.0) ** 2 * EMBED_WIDTH


def provenance_hash(image_digests) -> str:
    """sha256 of the concatenated per-image sha256 hex digests, in token order (CryptoPunks)."""
    return hashlib.sha256("".join(image_digests).encode("ascii")).hexdigest()


# --- Trait plans ----------------------------------------------------------------------------


class TraitPlan:
    """How a conditional generator's conditions are chosen per candidate.

    ``"source"``: the source collection's joint frequencies (the vocabulary's "any" draw);
    ``"uniform"``: every single-valued type uniformly over its values, the rest from the source;
    a table ``{trait_type: {value: weight}}``: those types drawn by weight, the rest from the
    source. An unknown type or value raises ``FabricationError`` naming it.
    """

    def __init__(self, plan, vocabulary):
        self.vocabulary = vocabulary
        self.kind = plan if isinstance(plan, str) else "table"
        if vocabulary is None:
            if plan not in (None, "source"):
                raise FabricationError(
                    "this generator is not trait-conditioned: a trait plan cannot steer it"
                )
            self.kind, self.table = "none", {}
            return
        if plan is None or plan == "source":
            self.kind, self.table = "source", {}
        elif plan == "uniform":
            self.table = {
                t.name: dict.fromkeys(t.values, 1.0) for t in vocabulary.types if not t.multi
            }
        elif isinstance(plan, Mapping):
            self.table = self._check_table(plan)
        else:
            raise FabricationError(
                f"trait plan must be 'source', 'uniform' or a table, got {plan!r}"
            )

    def _check_table(self, plan):
        table = {}
        for name, weights in plan.items():
            try:
                kind = self.vocabulary._type(name)
            except ConditionError as exc:
                raise FabricationError(f"trait plan: {exc}") from None
            if not isinstance(weights, Mapping) or not weights:
                raise FabricationError(f"trait plan: {name!r} needs a {{value: weight}} table")
            clean = {}
            for value, weight in weights.items():
                try:
                    known = self.vocabulary._value(kind, str(value))
                except ConditionError as exc:
                    raise FabricationError(f"trait plan: {exc}") from None
                if not isinstance(weight, int | float) or not weight >= 0 or math.isinf(weight):
                    raise FabricationError(f"trait plan: weight of {name}={value} is {weight!r}")
                clean[known] = clean.get(known, 0.0) + float(weight)
            if not sum(clean.values()) > 0:
                raise FabricationError(f"trait plan: the weights of {name!r} add up to 0")
            table[kind.name] = clean
        return table

    def to_json(self):
        return {"kind": self.kind, "table": self.table}

    def labels(self, seed: int, indices, seeds) -> tuple[np.ndarray | None, list]:
        """(multi-hot rows or None, conditions per candidate)."""
        if self.vocabulary is None:
            return None, [None] * len(seeds)
        rows, conditions = [], []
        for index, candidate in zip(indices, seeds, strict=True):
            request = {}
            rng = np.random.Generator(np.random.PCG64([int(seed), int(index), PLAN_SALT]))
            for name in sorted(self.table):
                values = list(self.table[name])
                weights = np.array([self.table[name][v] for v in values])
                request[name] = values[int(rng.choice(len(values), p=weights / weights.sum()))]
            resolved = self.vocabulary.resolve(request, [candidate])
            rows.append(resolved.labels[0])
            conditions.append(resolved.traits[0])
        return np.stack(rows), conditions


# --- State ----------------------------------------------------------------------------------


@dataclass
class FabricatedToken:
    """One accepted token. ``png`` travels only in the yielded object, never in the state."""

    token_id: int  # 0..N-1 in acceptance order
    candidate: int
    seed: int
    sha256: str
    traits: list  # [{"trait_type", "value", "confidence"}]; [] without a classifier
    conditions: dict | None  # what a conditional generator was asked for
    png: bytes | None = None

    def record(self) -> dict:
        return {
            "token_id": self.token_id,
            "candidate": self.candidate,
            "seed": self.seed,
            "sha256": self.sha256,
            "traits": self.traits,
            "conditions": self.conditions,
        }


@dataclass
class FabricationState:
    """Everything a resumed run needs (see the module docstring)."""

    next_candidate: int = 0
    records: list = field(default_factory=list)
    embeddings: np.ndarray | None = None  # uint8 (accepted, EMBED_WIDTH); kept in ``index``
    rejected: dict = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    status: str = "running"  # running | done | exhausted

    def __post_init__(self):
        initial = self.embeddings
        if initial is None:
            initial = np.zeros((0, EMBED_WIDTH), np.uint8)
        if len(initial) != len(self.records):
            raise FabricationError("fabrication state: embeddings and records disagree")
        self.index = _Embeddings(initial)
        self.embeddings = None

    @property
    def accepted(self) -> int:
        return len(self.records)

    def accepted_embeddings(self) -> np.ndarray:
        return self.index.rows[: self.index.count].copy()

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        meta = {
            "version": STATE_VERSION,
            "next_candidate": self.next_candidate,
            "records": self.records,
            "rejected": self.rejected,
            "status": self.status,
        }
        np.savez_compressed(
            buffer, embeddings=self.accepted_embeddings(), meta=np.array(json.dumps(meta))
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> FabricationState:
        with np.load(io.BytesIO(data)) as npz:
            meta = json.loads(str(npz["meta"]))
            embeddings = npz["embeddings"]
        if meta.get("version") != STATE_VERSION:
            raise FabricationError(f"fabrication state version {meta.get('version')!r} unknown")
        return cls(
            meta["next_candidate"], meta["records"], embeddings, meta["rejected"], meta["status"]
        )


class _Embeddings:
    """The accepted embeddings (uint8, grown by doubling) with their squared norms.

    Kept as uint8 (768 bytes a token) and widened to float64 one chunk at a time, so the index
    of 10k tokens is about 8 MB.
    """

    def __init__(self, initial: np.ndarray):
        self.count = 0
        self.rows = np.zeros((max(1024, 2 * len(initial)), initial.shape[1]), np.uint8)
        self.norms = np.zeros(len(self.rows), np.float64)
        self.add(initial)

    def add(self, rows: np.ndarray):
        if not len(rows):
            return
        need = self.count + len(rows)
        if need > len(self.rows):
            size = max(need, 2 * len(self.rows))
            grown = np.zeros((size, self.rows.shape[1]), np.uint8)
            grown[: self.count] = self.rows[: self.count]
            self.rows = grown
            self.norms = np.resize(self.norms, size)
        block = rows.astype(np.float64)
        self.rows[self.count : need] = rows
        self.norms[self.count : need] = np.einsum("nd,nd->n", block, block)
        self.count = need

    def any_within(self, queries: np.ndarray, limit: float) -> np.ndarray:
        """bool (Q,): some stored row is within squared distance ``limit`` of each float64
        query row (exact: the values are integers, so float64 sums are exact in any order)."""
        hit = np.zeros(len(queries), bool)
        q_norms = np.einsum("qd,qd->q", queries, queries)
        for start in range(0, self.count, INDEX_CHUNK):
            stop = min(start + INDEX_CHUNK, self.count)
            rows = self.rows[start:stop].astype(np.float64)
            squared = q_norms[:, None] + self.norms[start:stop] - 2 * (queries @ rows.T)
            hit |= (squared <= limit).any(axis=1)
        return hit


# --- The fabricator -------------------------------------------------------------------------


@dataclass
class FabricationOptions:
    count: int
    seed: int = 0
    traits: object = None  # None / "source" / "uniform" / {type: {value: weight}}
    distance: float = DEFAULT_DISTANCE
    batch_size: int = DEFAULT_BATCH
    max_count: int = DEFAULT_MAX_COUNT
    window: int = DEFAULT_WINDOW
    min_accept_rate: float = DEFAULT_MIN_ACCEPT_RATE
    max_candidates: int | None = None  # default: DEFAULT_MAX_CANDIDATES_FACTOR x count

    def check(self):
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise FabricationError(f"count must be a positive whole number, got {self.count!r}")
        if self.count > self.max_count:
            raise FabricationError(
                f"count {self.count:,} is over the maximum of {self.max_count:,} tokens"
            )
        if not 0 <= int(self.seed) <= LATENT_SEED_LIMIT:
            raise FabricationError(
                f"seed must be between 0 and {LATENT_SEED_LIMIT}, got {self.seed}"
            )
        if not self.distance >= 0:
            raise FabricationError(f"distance must be >= 0, got {self.distance!r}")
        if self.batch_size < 1 or self.window < 1:
            raise FabricationError("batch_size and window must be at least 1")

    @property
    def candidate_limit(self) -> int:
        if self.max_candidates is not None:
            return self.max_candidates
        return DEFAULT_MAX_CANDIDATES_FACTOR * self.count


class Fabricator:
    """Streams the accepted tokens of one fabrication run (see the module docstring).

    ``generator``: a ``sampling.LoadedGenerator``; ``guard``: a ``memorisation.NearCopyIndex``
    of its training images (or None: no near-copy check); ``classifier``: a
    ``trait_classifier.TraitClassifier`` (or None: tokens carry no traits, ``notes`` says so).
    """

    def __init__(self, generator, options: FabricationOptions, *, guard=None, classifier=None):
        options.check()
        self.generator = generator
        self.options = options
        self.guard = guard
        self.classifier = classifier
        self.plan = TraitPlan(options.traits, generator.vocabulary)
        self.limit = squared_limit(options.distance)
        self.notes = []
        if classifier is None:
            self.notes.append("no trait classifier: the tokens were fabricated without traits")
        if guard is None:
            self.notes.append("no near-copy guard: training images were not checked")

    def run(self, state: FabricationState | None = None) -> Iterator[FabricatedToken]:
        """Yield accepted tokens in order; ``state`` (new or resumed) is updated in place, and
        is consistent at every yield (checkpoint it after writing the token)."""
        state = state if state is not None else FabricationState()
        index = state.index
        accepted_at = [r["candidate"] for r in state.records]
        options = self.options
        while state.status == "running":
            if state.accepted >= options.count:
                state.status = "done"
                break
            start = state.next_candidate
            size = min(options.batch_size, options.candidate_limit - start)
            if size <= 0:
                state.status = "exhausted"
                break
            batch = self._candidates(start, size)
            yield from self._judge(state, index, accepted_at, batch)

    def _candidates(self, start: int, size: int) -> dict:
        indices = list(range(start, start + size))
        seeds = [candidate_seed(self.options.seed, i) for i in indices]
        rows, conditions = self.plan.labels(self.options.seed, indices, seeds)
        images = self.generator.generate_latents(
            latent_vectors(seeds, self.generator.latent_dim), rows
        )
        if self.guard is not None:
            read = self.classifier.read_values if self.classifier is not None else None
            near = self.guard.check(images, read)[1]
        else:
            near = np.zeros(len(images), bool)
        embeddings = embed(images).astype(np.float64)
        return {
            "indices": indices,
            "seeds": seeds,
            "conditions": conditions,
            "images": images,
            "near": near,
            "embeddings": embeddings,
        }

    def _judge(self, state, index, accepted_at, batch) -> Iterator[FabricatedToken]:
        old_hit = index.any_within(batch["embeddings"], self.limit)
        emb = batch["embeddings"]
        norms = np.einsum("nd,nd->n", emb, emb)
        pairwise = norms[:, None] + norms[None, :] - 2 * (emb @ emb.T)
        taken = []
        verdicts = []
        for j in range(len(emb)):
            if batch["near"][j]:
                verdicts.append("near_copy")
            elif old_hit[j] or any(pairwise[j, k] <= self.limit for k in taken):
                verdicts.append("duplicate")
            else:
                verdicts.append(None)
                taken.append(j)
        keep = [j for j, v in enumerate(verdicts) if v is None]
        traits = self._traits(batch["images"][keep]) if keep else []
        trait_of = dict(zip(keep, traits, strict=True))
        for j, verdict in enumerate(verdicts):
            candidate = batch["indices"][j]
            state.next_candidate = candidate + 1
            if verdict is not None:
                state.rejected[verdict] += 1
            else:
                token = self._accept(state, index, accepted_at, batch, j, trait_of[j])
                yield token
            if state.accepted >= self.options.count:
                state.status = "done"
                return
            if self._exhausted(accepted_at, candidate):
                state.status = "exhausted"
                return

    def _accept(self, state, index, accepted_at, batch, j, traits) -> FabricatedToken:
        png = to_png(batch["images"][j])
        token = FabricatedToken(
            token_id=state.accepted,
            candidate=batch["indices"][j],
            seed=batch["seeds"][j],
            sha256=hashlib.sha256(png).hexdigest(),
            traits=traits,
            conditions=batch["conditions"][j],
            png=png,
        )
        index.add(batch["embeddings"][j : j + 1].astype(np.uint8))
        accepted_at.append(token.candidate)
        state.records.append(token.record())
        return token

    def _traits(self, images) -> list:
        if self.classifier is None:
            return [[] for _ in images]
        from .trait_classifier import to_attributes

        return [to_attributes(p) for p in self.classifier.predict_traits(images)]

    def _exhausted(self, accepted_at, candidate) -> bool:
        """Fewer than ``min_accept_rate`` of the last ``window`` candidates were accepted."""
        window = self.options.window
        if candidate + 1 < window:
            return False
        first = candidate + 1 - window
        recent = len(accepted_at) - _first_at_least(accepted_at, first)
        return recent < self.options.min_accept_rate * window


def _first_at_least(sorted_values, value) -> int:
    return bisect.bisect_left(sorted_values, value)


@dataclass
class FabricationResult:
    """The summary a job stores and shows."""

    requested: int
    made: int
    candidates: int
    rejected: dict
    status: str
    provenance: str
    notes: list
    rarity: list  # per token {"rarity_score", "rarity_rank", "ic_score", "ic_rank"}
    records: list  # per token FabricatedToken.record(), in token order

    @property
    def rejection_rate(self) -> float:
        return (self.candidates - self.made) / self.candidates if self.candidates else 0.0

    def to_json(self) -> dict:
        return {
            "requested": self.requested,
            "made": self.made,
            "candidates": self.candidates,
            "rejected": self.rejected,
            "rejection_rate": round(self.rejection_rate, 6),
            "status": self.status,
            "provenance": self.provenance,
            "notes": self.notes,
        }


def summarise(fabricator: Fabricator, state: FabricationState, rarity=None) -> FabricationResult:
    """``rarity``: records -> one {rarity_score, rarity_rank, ic_score, ic_rank} per token (the
    apps pass ``collections_app.analytics.rarity.score_records``; this package imports no app
    code). Without it the tokens carry no rarity figures."""
    return FabricationResult(
        requested=fabricator.options.count,
        made=state.accepted,
        candidates=state.next_candidate,
        rejected=dict(state.rejected),
        status=state.status,
        provenance=provenance_hash(r["sha256"] for r in state.records),
        notes=list(fabricator.notes),
        rarity=rarity(state.records) if rarity and state.records else [{} for _ in state.records],
        records=list(state.records),
    )


def fabricate(
    fabricator: Fabricator, writers=(), state=None, on_token=None, rarity=None
) -> FabricationResult:
    """Run to the end: every accepted token goes to each writer's ``add``; then rarity is
    scored and each writer's ``close(records, result)`` finishes its files."""
    state = state if state is not None else FabricationState()
    for token in fabricator.run(state):
        for writer in writers:
            writer.add(token)
        if on_token is not None:
            on_token(token, state)
    result = summarise(fabricator, state, rarity)
    for writer in writers:
        writer.close(state.records, result)
    return result
