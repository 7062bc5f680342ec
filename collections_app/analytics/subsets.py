"""Training subsets: choose a collection's tokens by price, rarity and traits, then freeze them.

Filters apply in this order, each to what the previous ones left (the *pool*):

1. ``include_traits``: values of one trait type are alternatives (``type=Alien`` or
   ``type=Ape``), different types must all match (``type=Male`` and ``accessory=Earring``).
2. ``exclude_traits``: a token holding any of them is dropped; and, unless
   ``leave_out_excluded`` is off, a token holding a trait value an admin excluded as offensive
   (``Trait.is_excluded``, the content safeguard).
3. ``sold_only``: tokens with a recorded last sale.
4. ``min_rarity_rank`` / ``max_rarity_rank``: an inclusive rank range (1 = rarest) on the
   chosen metric (rarity.tools ``rarity`` or OpenRarity ``openrarity``).
5. ``top_price_pct``: the top P% **of the sold tokens in the pool** by last-sale USD price
   (the original project's "top 15%"); ``top_rarity_pct``: the top P% of the pool by rank.
   Both given: tokens in both. The count is P% of the candidates rounded half up (at least
   one); ties at the cut-off go to the lower token number.

The chosen token list is frozen on the TrainingSet with the collection's data version, next to
statistics of the subset and of the whole collection.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from itertools import groupby

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from ..models import Collection, Token, TokenTrait, TrainingSet, Trait

# GANs trained on a few thousand images or fewer tend to collapse onto a handful of outputs.
COLLAPSE_RISK_BELOW = 3000
RANK_FIELDS = {"rarity": "rarity_rank", "openrarity": "ic_rank"}
PREVIEW_THUMBNAILS = 24
# The build form lists this many trait values at most (the CLI takes any TYPE=VALUE).
PICKER_MAX_VALUES = 2000


class SubsetError(ValueError):
    """A subset that cannot be built; the message says why, for the admin or the terminal."""


@dataclass
class SubsetSpec:
    top_price_pct: float | None = None
    top_rarity_pct: float | None = None
    rarity_metric: str = "rarity"
    min_rarity_rank: int | None = None
    max_rarity_rank: int | None = None
    include_traits: list[tuple[str, str]] = field(default_factory=list)
    exclude_traits: list[tuple[str, str]] = field(default_factory=list)
    sold_only: bool = False
    # Content safeguard: leave out tokens carrying a trait value an admin excluded.
    leave_out_excluded: bool = True

    def validate(self) -> None:
        for label, pct in (("top price", self.top_price_pct), ("top rarity", self.top_rarity_pct)):
            if pct is not None and not (0 < pct <= 100):
                raise SubsetError(f"{label} percentage must be above 0 and at most 100, got {pct}")
        if self.rarity_metric not in RANK_FIELDS:
            raise SubsetError(
                f"rarity metric must be one of {', '.join(RANK_FIELDS)}, got {self.rarity_metric!r}"
            )
        for label, rank in (("minimum", self.min_rarity_rank), ("maximum", self.max_rarity_rank)):
            if rank is not None and rank < 1:
                raise SubsetError(f"{label} rarity rank must be 1 or more, got {rank}")
        if (
            self.min_rarity_rank is not None
            and self.max_rarity_rank is not None
            and self.min_rarity_rank > self.max_rarity_rank
        ):
            raise SubsetError(
                f"minimum rarity rank {self.min_rarity_rank} is above the maximum "
                f"{self.max_rarity_rank}"
            )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["include_traits"] = [f"{t}={v}" for t, v in self.include_traits]
        data["exclude_traits"] = [f"{t}={v}" for t, v in self.exclude_traits]
        return data

    def describe(self) -> str:
        parts = [f"{t}={v}" for t, v in self.include_traits]
        parts += [f"not {t}={v}" for t, v in self.exclude_traits]
        if not self.leave_out_excluded:
            parts.append("excluded traits kept")
        if self.sold_only:
            parts.append("sold")
        if self.min_rarity_rank or self.max_rarity_rank:
            parts.append(
                f"{self.rarity_metric} rank {self.min_rarity_rank or 1}.."
                f"{self.max_rarity_rank or 'last'}"
            )
        if self.top_price_pct:
            parts.append(f"top {self.top_price_pct:g}% of sold by price")
        if self.top_rarity_pct:
            parts.append(f"top {self.top_rarity_pct:g}% by {self.rarity_metric} rank")
        return ", ".join(parts) or "all tokens"


def parse_trait(text: str) -> tuple[str, str]:
    """``TYPE=VALUE`` (split at the first ``=``) as a (type, value) pair."""
    trait_type, sep, value = str(text).partition("=")
    if not sep or not trait_type.strip():
        raise SubsetError(f"trait {text!r} is not TYPE=VALUE (for example accessory=Earring)")
    return trait_type.strip(), value.strip()


def resolve_traits(collection: Collection, wanted: list[tuple[str, str]]) -> dict[str, list[int]]:
    """Trait ids per normalised type for (type, value) pairs, matched case-insensitively."""
    from .rarity import normalize  # numpy/pandas: not loaded by every page that imports this

    if not wanted:
        return {}
    by_key: dict[tuple[str, str], list[int]] = {}
    for pk, trait_type, value in collection.traits.values_list("pk", "trait_type", "value"):
        by_key.setdefault((normalize(trait_type), normalize(value)), []).append(pk)
    result: dict[str, list[int]] = {}
    for trait_type, value in wanted:
        key = (normalize(trait_type), normalize(value))
        if key not in by_key:
            types = sorted({t for t, _ in by_key})
            known = ", ".join(types[:12]) + (" ..." if len(types) > 12 else "")
            raise SubsetError(
                f"collection {collection.slug} has no trait {trait_type}={value} "
                f"(trait types: {known or 'none'})"
            )
        result.setdefault(key[0], []).extend(by_key[key])
    return result


def filter_by_traits(queryset, include: dict[str, list[int]], exclude: list[int] = ()):
    """Tokens holding one of each type's trait ids (and none of ``exclude``)."""
    for trait_ids in include.values():
        holders = TokenTrait.objects.filter(token=OuterRef("pk"), trait_id__in=trait_ids)
        queryset = queryset.filter(Exists(holders))
    if exclude:
        holders = TokenTrait.objects.filter(token=OuterRef("pk"), trait_id__in=list(exclude))
        queryset = queryset.exclude(Exists(holders))
    return queryset


def top_count(candidates: int, pct: float) -> int:
    """P% of the candidates, rounded half up, at least one when there are any."""
    if candidates == 0:
        return 0
    exact = Decimal(candidates) * Decimal(str(pct)) / 100
    return max(1, int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)))


@dataclass
class Selection:
    token_ids: list[int]  # Token pks, in token order
    funnel: list[dict]  # [{step, remaining}] after each filter
    cutoffs: dict
    warnings: list[str]


def select(collection: Collection, spec: SubsetSpec) -> Selection:
    spec.validate()
    rank_field = RANK_FIELDS[spec.rarity_metric]
    queryset = Token.objects.filter(collection=collection)
    funnel = [{"step": "all tokens", "remaining": queryset.count()}]
    warnings: list[str] = []

    def narrow(queryset, step):
        funnel.append({"step": step, "remaining": queryset.count()})
        return queryset

    if spec.include_traits:
        include = resolve_traits(collection, spec.include_traits)
        queryset = narrow(
            filter_by_traits(queryset, include),
            "with " + " and ".join(f"{t}={v}" for t, v in spec.include_traits),
        )
    if spec.exclude_traits:
        exclude = [
            i for ids in resolve_traits(collection, spec.exclude_traits).values() for i in ids
        ]
        queryset = narrow(
            filter_by_traits(queryset, {}, exclude),
            "without " + " or ".join(f"{t}={v}" for t, v in spec.exclude_traits),
        )
    excluded = list(
        Trait.objects.filter(collection=collection, is_excluded=True).values_list("pk", flat=True)
    )
    if spec.leave_out_excluded and excluded:
        queryset = narrow(filter_by_traits(queryset, {}, excluded), "without excluded traits")
    if spec.sold_only:
        queryset = narrow(queryset.filter(last_sale_amount__isnull=False), "sold")
    if spec.min_rarity_rank is not None:
        queryset = queryset.filter(**{f"{rank_field}__gte": spec.min_rarity_rank})
    if spec.max_rarity_rank is not None:
        queryset = queryset.filter(**{f"{rank_field}__lte": spec.max_rarity_rank})
    if spec.min_rarity_rank is not None or spec.max_rarity_rank is not None:
        queryset = narrow(
            queryset,
            f"{spec.rarity_metric} rank {spec.min_rarity_rank or 1} to "
            f"{spec.max_rarity_rank or 'last'}",
        )

    rows = list(
        queryset.order_by("token_number", "token_id").values_list(
            "pk", "last_sale_amount", "last_sale_usd", rank_field
        )
    )
    chosen = [pk for pk, *_ in rows]
    cutoffs: dict = {}
    if spec.top_price_pct is not None:
        sold = [r for r in rows if r[1] is not None]
        priced = [r for r in sold if r[2] is not None]
        if len(priced) < len(sold):
            warnings.append(
                f"{len(sold) - len(priced)} sold token(s) have no USD price and were not ranked "
                "by price."
            )
        # rows are in token order and sorted() is stable: equal prices keep token order.
        by_price = sorted(priced, key=lambda r: r[2], reverse=True)
        keep = by_price[: top_count(len(priced), spec.top_price_pct)]
        cutoffs["price_usd_at_least"] = str(keep[-1][2]) if keep else None
        cutoffs["sold_candidates"] = len(priced)
        kept = {r[0] for r in keep}
        chosen = [pk for pk in chosen if pk in kept]
        funnel.append(
            {"step": f"top {spec.top_price_pct:g}% of sold by price", "remaining": len(chosen)}
        )
    if spec.top_rarity_pct is not None:
        ranked = sorted((r for r in rows if r[3] is not None), key=lambda r: r[3])
        keep = ranked[: top_count(len(ranked), spec.top_rarity_pct)]
        cutoffs["rank_at_most"] = keep[-1][3] if keep else None
        kept = {r[0] for r in keep}
        chosen = [pk for pk in chosen if pk in kept]
        funnel.append(
            {
                "step": f"top {spec.top_rarity_pct:g}% by {spec.rarity_metric} rank",
                "remaining": len(chosen),
            }
        )
    return Selection(chosen, funnel, cutoffs, warnings)


def token_stats(collection: Collection, token_ids=None) -> dict:
    """Statistics shown for a subset and, with ``token_ids=None``, for the whole collection."""
    import numpy as np

    # pandas/scipy: loaded where subsets are built, not by every page
    from . import compute as analytics

    queryset = Token.objects.filter(collection=collection)
    if token_ids is not None:
        queryset = queryset.filter(pk__in=token_ids)
    rows = list(queryset.values_list("last_sale_amount", "last_sale_usd", "rarity_score"))
    usd = [r[1] for r in rows if r[1] is not None]
    scores = np.array([r[2] for r in rows if r[2] is not None], dtype=float)
    return {
        "tokens": len(rows),
        "sold_tokens": sum(1 for r in rows if r[0] is not None),
        "price_usd": analytics.decimal_stats(usd, analytics.USD_PLACES),
        "rarity_score": {
            "mean": _round(scores.mean()),
            "median": _round(np.median(scores)),
            "min": _round(scores.min()),
            "max": _round(scores.max()),
        }
        if len(scores)
        else None,
    }


def build_training_set(
    collection: Collection, name: str, spec: SubsetSpec, progress=None
) -> tuple[TrainingSet, list[str]]:
    """Select, check and freeze a subset; returns it with warnings for the person building it.

    Raises SubsetError for bad filters, a taken name or an empty result.
    """
    step = progress or (lambda label: None)
    name = (name or "").strip()
    if not name:
        raise SubsetError("a training set needs a name")
    if TrainingSet.objects.filter(collection=collection, name=name).exists():
        raise SubsetError(f"collection {collection.slug} already has a training set named {name!r}")
    spec.validate()
    step("analytics")
    from . import refresh

    refresh.ensure_fresh(collection)
    step("select")
    selection = select(collection, spec)
    if not selection.token_ids:
        trail = " -> ".join(f"{s['step']}: {s['remaining']}" for s in selection.funnel)
        raise SubsetError(f"no tokens match {spec.describe()} ({trail})")
    count = len(selection.token_ids)
    warnings = [*selection.warnings, *_size_warnings(count)]
    step("freeze")
    stats = {
        "subset": token_stats(collection, selection.token_ids),
        "collection": token_stats(collection),
        "funnel": selection.funnel,
        "cutoffs": selection.cutoffs,
        "warnings": warnings,
        "analytics_version": collection.analytics_version,
    }
    stats["subset"]["share_of_collection"] = _round(count / stats["collection"]["tokens"])
    try:
        with transaction.atomic():
            training_set = TrainingSet.objects.create(
                collection=collection,
                name=name,
                filter_spec=spec.to_dict(),
                token_count=count,
                stats=stats,
                data_version=collection.data_version,
            )
            through = TrainingSet.tokens.through
            through.objects.bulk_create(
                [through(trainingset=training_set, token_id=pk) for pk in selection.token_ids],
                batch_size=5000,
            )
    except IntegrityError:
        raise SubsetError(
            f"collection {collection.slug} already has a training set named {name!r}"
        ) from None
    return training_set, warnings


def _size_warnings(count: int) -> list[str]:
    if not count or count >= COLLAPSE_RISK_BELOW:
        return []
    return [
        f"Only {count} token(s): GANs trained on a few thousand images or fewer tend to "
        "collapse onto a handful of outputs. Consider a looser filter or augmentation."
    ]


@dataclass
class Preview:
    count: int
    total: int
    funnel: list[dict]
    warnings: list[str]
    thumbnails: list[Token]  # spread evenly over the chosen tokens, in token order


def preview(collection: Collection, spec: SubsetSpec, thumbnails=PREVIEW_THUMBNAILS) -> Preview:
    """What ``build_training_set`` would freeze, seen before it does: the count, the funnel and
    a strip of thumbnails. Writes nothing and never computes analytics (a page asks for this
    as the filters change), so with stale analytics it says the ranks may still move."""
    selection = select(collection, spec)
    ids = selection.token_ids
    picks = [ids[i * len(ids) // thumbnails] for i in range(min(thumbnails, len(ids)))]
    found = Token.objects.only("pk", "token_id", "name", "image").in_bulk(picks)
    warnings = [*selection.warnings, *_size_warnings(len(ids))]
    ranked = spec.top_rarity_pct or spec.min_rarity_rank or spec.max_rarity_rank
    if ranked and not collection.analytics_fresh:
        warnings.append(
            "The collection's analytics are out of date: rarity ranks are recomputed when the "
            "set is built, so its count may differ from this preview."
        )
    return Preview(
        count=len(ids),
        total=selection.funnel[0]["remaining"],
        funnel=selection.funnel,
        warnings=warnings,
        thumbnails=[found[pk] for pk in picks if pk in found],
    )


def trait_groups(collection: Collection, limit=PICKER_MAX_VALUES) -> tuple[list[dict], int]:
    """The collection's trait values by type, most held first, for the build form's picker:
    ([{trait_type, values: [{value, count, excluded}]}], values left out by ``limit``)."""
    traits = collection.traits.order_by("trait_type", "-count", "value")
    rows = list(traits.values_list("trait_type", "value", "count", "is_excluded")[: limit + 1])
    left_out = collection.traits.count() - limit if len(rows) > limit else 0
    groups = [
        {
            "trait_type": trait_type,
            "values": [
                {"value": value, "count": count, "excluded": excluded}
                for _type, value, count, excluded in members
            ],
        }
        for trait_type, members in groupby(rows[:limit], key=lambda row: row[0])
    ]
    return groups, left_out


def _round(value):
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None
