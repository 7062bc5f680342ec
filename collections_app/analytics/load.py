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
        cursor.execute(
            f"SELECT tt.token_id, tt.trait_id FROM {TokenTrait._meta.db_table} tt "  # noqa: S608
            f"JOIN {Token._meta.db_table} t ON t.id = tt.token_id WHERE t.collection_id = %s",
            [collection.pk],
        )
        rows = cursor.fetchall()
        pairs = np.fromiter(
            itertools.chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows)
        ).reshape(-1, 2)
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
    return CollectionData(tokens, pairs[:, 0], pairs[:, 1], traits, sales)


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
