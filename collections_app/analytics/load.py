"""Analytics, step 1: load everything a collection's analytics read, in a handful of queries."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import connection

from ..models import Collection, Sale, Token, TokenTrait, Trait


@dataclass
class CollectionData:
    """Everything analytics reads, loaded in a handful of queries."""

    tokens: pd.DataFrame  # index: Token pk, in token order
    pair_tokens: np.ndarray  # TokenTrait rows: token pk ...
    pair_traits: np.ndarray  # ... and trait pk
    traits: pd.DataFrame  # index: Trait pk; trait_type, value
    sales: pd.DataFrame  # timestamp, usd (Decimal or None)


TOKEN_COLUMNS = [
    "id",
    "token_id",
    "name",
    "owner_address",
    "last_sale_amount",
    "last_sale_symbol",
    "last_sale_usd",
]


SCORE_COLUMNS = ["rarity_score", "rarity_rank", "ic_score", "ic_rank"]


def load(collection: Collection) -> CollectionData:
    # Plain SQL throughout: 10^5 tokens and 10^6 token-trait pairs through the ORM (model
    # converters, timezone-aware datetimes) would dominate the run time.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(TOKEN_COLUMNS + SCORE_COLUMNS)} "  # noqa: S608
            f"FROM {Token._meta.db_table} WHERE collection_id = %s ORDER BY token_number, token_id",
            [collection.pk],
        )
        tokens = pd.DataFrame(cursor.fetchall(), columns=TOKEN_COLUMNS + SCORE_COLUMNS)
        pair_tokens, pair_traits = _pairs(cursor, collection)
        cursor.execute(
            f"SELECT {_epoch_sql('timestamp')}, usd FROM {Sale._meta.db_table} "  # noqa: S608
            "WHERE collection_id = %s",
            [collection.pk],
        )
        sales = pd.DataFrame(cursor.fetchall(), columns=["epoch", "usd"])
    if connection.vendor != "postgresql":  # PostgreSQL hands numerics back as Decimal already
        for column in ("last_sale_amount", "last_sale_usd"):
            tokens[column] = tokens[column].map(_decimal_or_none).astype(object)
        sales["usd"] = sales["usd"].map(_decimal_or_none).astype(object)
    tokens = tokens.rename(columns={"id": "pk"}).set_index("pk")
    sales["timestamp"] = _epoch_to_datetime(sales.pop("epoch"))
    trait_rows = Trait.objects.filter(collection=collection).values_list(
        "pk", "trait_type", "value"
    )
    traits = pd.DataFrame(list(trait_rows), columns=["pk", "trait_type", "value"]).set_index("pk")
    return CollectionData(tokens, pair_tokens, pair_traits, traits, sales)


def _pairs(cursor, collection: Collection) -> tuple[np.ndarray, np.ndarray]:
    """(token pk, trait pk) of the TokenTrait rows of the collection's traits.

    Filtered by trait: a scan of the pairs against a few hundred trait ids is cheaper than a
    join with 10^5 tokens. A pair whose token is not the collection's is dropped by its
    readers, as one whose trait is not.
    """
    pairs_sql = (
        f"FROM {TokenTrait._meta.db_table} WHERE trait_id IN "  # noqa: S608
        f"(SELECT id FROM {Trait._meta.db_table} WHERE collection_id = %s)"
    )
    if connection.vendor == "postgresql":
        # PostgreSQL packs each column into one string of big-endian int8s: one row to
        # transfer instead of 10^6, and no Python object per number.
        cursor.execute(
            "SELECT string_agg(int8send(token_id), ''), string_agg(int8send(trait_id), '') "
            + pairs_sql,
            [collection.pk],
        )
        packed = cursor.fetchone()
        return tuple(np.frombuffer(p or b"", dtype=">i8").astype(np.int64) for p in packed)
    cursor.execute("SELECT token_id, trait_id " + pairs_sql, [collection.pk])
    rows = cursor.fetchall()
    pairs = np.fromiter(
        itertools.chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows)
    ).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _epoch_sql(column: str) -> str:
    """Seconds since 1970 of a timestamp column: far cheaper to load than datetimes."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    if connection.vendor == "sqlite":
        return f"(julianday({column}) - 2440587.5) * 86400.0"
    return column


def _epoch_to_datetime(values: pd.Series) -> pd.Series:
    if len(values) and not isinstance(values.iloc[0], int | float):
        return pd.to_datetime(values, utc=True)  # a backend without an epoch expression
    return pd.to_datetime(values.astype(float), unit="s", utc=True)


def _decimal_or_none(value):
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))  # backends that hand numbers back as float or text
