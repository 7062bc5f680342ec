"""Analytics, step 3: write ranks and scores to the tokens, counts to the traits and the result
to the collection's cache, unless a newer result was stored meanwhile."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from ..models import Collection, Token, Trait
from .load import SCORE_COLUMNS


def store(collection, version: int, changed: pd.DataFrame, result: Callable[[], dict]) -> bool:
    """Write the changed ranks to the tokens, then ``result()`` (computed meanwhile) to the
    collection's cache, unless a newer result is there already."""
    with transaction.atomic():
        current = Collection.objects.select_for_update().get(pk=collection.pk)
        if current.analytics_version is not None and current.analytics_version > version:
            return False
        write_token_scores(changed)
        analytics = result()
        write_trait_counts(analytics["traits"].pop("counts"))
        current.analytics = analytics
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
    """Scores and ranks to Token rows: one COPY and one UPDATE on PostgreSQL, batches elsewhere."""
    if scores.empty:
        return
    if connection.vendor == "postgresql":
        _copy_and_update(scores)
        return
    ids = scores.index.to_numpy(dtype=np.int64).tolist()
    columns = {
        "rarity_score": scores["rarity_score"].to_numpy(dtype=float).tolist(),
        "rarity_rank": scores["rarity_rank"].to_numpy(dtype=np.int64).tolist(),
        "ic_score": scores["ic_score"].to_numpy(dtype=float).tolist(),
        "ic_rank": scores["ic_rank"].to_numpy(dtype=np.int64).tolist(),
    }
    objs = [
        Token(pk=pk, **{c: values[i] for c, values in columns.items()}) for i, pk in enumerate(ids)
    ]
    Token.objects.bulk_update(objs, list(columns), batch_size=500)


# Scores travel as PostgreSQL's binary COPY format, built by numpy in one go: as text, 10^5
# rows of numbers cost tenths of a second to format here and as much to parse there.
COPY_TYPES = {
    "id": ">i8",
    "rarity_score": ">f8",
    "rarity_rank": ">i4",
    "ic_score": ">f8",
    "ic_rank": ">i4",
}
COPY_ROW = np.dtype(  # a row: its field count, then each field's byte length and value
    [("fields", ">i2")]
    + [field for c, t in COPY_TYPES.items() for field in ((f"{c}_length", ">i4"), (c, t))]
)
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
COPY_TRAILER = b"\xff\xff"


def _copy_and_update(scores: pd.DataFrame) -> None:
    """COPY the scores into a temporary table, then UPDATE the tokens from it in one join."""
    values = {"id": scores.index, **{c: scores[c] for c in SCORE_COLUMNS}}
    rows = np.empty(len(scores), COPY_ROW)
    rows["fields"] = len(COPY_TYPES)
    for column, kind in COPY_TYPES.items():
        rows[f"{column}_length"] = np.dtype(kind).itemsize
        rows[column] = values[column]
    table = Token._meta.db_table
    changed = " OR ".join(f"t.{c} IS DISTINCT FROM v.{c}" for c in SCORE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE new_scores (id bigint, rarity_score float8, rarity_rank integer, "
            "ic_score float8, ic_rank integer)"
        )
        with cursor.cursor.copy("COPY new_scores FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(COPY_HEADER + rows.tobytes() + COPY_TRAILER)
        cursor.execute(
            f"UPDATE {table} AS t SET rarity_score = v.rarity_score, "  # noqa: S608
            "rarity_rank = v.rarity_rank, ic_score = v.ic_score, ic_rank = v.ic_rank "
            f"FROM new_scores AS v WHERE t.id = v.id AND ({changed})"
        )
        cursor.execute("DROP TABLE new_scores")


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
