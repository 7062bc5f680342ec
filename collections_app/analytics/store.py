"""Analytics, step 3: write ranks and scores to the tokens, counts to the traits and the result
to the collection's cache, unless a newer result was stored meanwhile."""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from ..models import Collection, Token, Trait
from .load import SCORE_COLUMNS, CollectionData


def store(collection, version: int, scores: pd.DataFrame, data: CollectionData, result) -> bool:
    """Write ranks to the tokens and the cache to the collection, unless a newer one is there."""
    with transaction.atomic():
        current = Collection.objects.select_for_update().get(pk=collection.pk)
        if current.analytics_version is not None and current.analytics_version > version:
            return False
        write_token_scores(changed_scores(scores, data.tokens))
        write_trait_counts(result["traits"].pop("counts"))
        current.analytics = result
        current.analytics_version = version
        current.analytics_computed_at = timezone.now()
        current.save(update_fields=["analytics", "analytics_version", "analytics_computed_at"])
    collection.refresh_from_db(fields=["analytics", "analytics_version", "analytics_computed_at"])
    return True


def changed_scores(scores: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``scores`` that differ from what the tokens hold (a rerun writes few)."""
    if scores.empty:
        return scores
    old = stored[SCORE_COLUMNS].reindex(scores.index)
    differs = np.zeros(len(scores), dtype=bool)
    for column in SCORE_COLUMNS:
        new_values = scores[column].to_numpy(dtype=float)
        old_values = old[column].to_numpy(dtype=float, na_value=np.nan)
        differs |= ~((new_values == old_values) | (np.isnan(new_values) & np.isnan(old_values)))
    return scores[differs]


def write_token_scores(scores: pd.DataFrame) -> None:
    """Scores and ranks to Token rows: one statement on PostgreSQL, batches elsewhere."""
    if scores.empty:
        return
    ids = scores.index.to_numpy(dtype=np.int64).tolist()
    columns = {
        "rarity_score": scores["rarity_score"].to_numpy(dtype=float).tolist(),
        "rarity_rank": scores["rarity_rank"].to_numpy(dtype=np.int64).tolist(),
        "ic_score": scores["ic_score"].to_numpy(dtype=float).tolist(),
        "ic_rank": scores["ic_rank"].to_numpy(dtype=np.int64).tolist(),
    }
    if connection.vendor == "postgresql":
        table = Token._meta.db_table
        changed = " OR ".join(f"t.{c} IS DISTINCT FROM v.{c}" for c in columns)
        # Arrays travel as one text literal each: adapting 10^5 Python numbers one by one
        # costs more than the whole UPDATE. repr() round-trips a float exactly.
        literals = [_array_literal(ids, str)] + [
            _array_literal(values, repr if isinstance(values[0], float) else str)
            for values in columns.values()
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS t SET rarity_score = v.rarity_score, "  # noqa: S608
                "rarity_rank = v.rarity_rank, ic_score = v.ic_score, ic_rank = v.ic_rank "
                "FROM unnest(%s::bigint[], %s::float8[], %s::integer[], %s::float8[], "
                "%s::integer[]) AS v(id, rarity_score, rarity_rank, ic_score, ic_rank) "
                f"WHERE t.id = v.id AND ({changed})",
                literals,
            )
        return
    objs = [
        Token(pk=pk, **{c: values[i] for c, values in columns.items()}) for i, pk in enumerate(ids)
    ]
    Token.objects.bulk_update(objs, list(columns), batch_size=500)


def _array_literal(values, fmt) -> str:
    return "{" + ",".join(map(fmt, values)) + "}"


def write_trait_counts(counts: dict[int, int]) -> None:
    """Trait.count from the token-trait rows actually present (only the rows that differ)."""
    if not counts:
        return
    stale = [
        Trait(pk=pk, count=counts[pk])
        for pk, count in Trait.objects.filter(pk__in=list(counts)).values_list("pk", "count")
        if count != counts[pk]
    ]
    Trait.objects.bulk_update(stale, ["count"], batch_size=500)
