"""Collection analytics: prices, trait statistics, rarity ranks, chart data.

Computed on a worker (``tasks.compute_analytics``) after every ingest and on demand, never on a
page request. The result is cached in ``Collection.analytics`` together with the data version it
was computed from (``analytics_version``); ranks and scores go to the Token rows.
See ``docs/analytics.md`` for the cache layout.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import warnings
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone
from scipy.stats import spearmanr

from nftsite.jobs import dispatch_after_commit

from ..models import Collection, IngestJob, Sale, Token, TokenTrait, Trait
from . import charts, rarity

logger = logging.getLogger(__name__)

SCHEMA = 1
COMPUTE_TASK = "collections_app.tasks.compute_analytics"
TOP_TRAITS = 20
SCATTER_MAX_POINTS = 2000  # enough to see the shape; keeps the cached JSON and the page small
SCATTER_KEEP_EXTREMES = 100  # the priciest and rarest tokens are always on the chart
PRICE_SAMPLE_MAX = 1000  # per collection, for the compare page's strip plot
EXTREME_PRICE_FACTOR = Decimal(10) ** 4  # "absurd": 10,000x above or below the median
NATIVE_PLACES = 18
USD_PLACES = 6


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


def compute(collection: Collection, progress=None) -> dict | None:
    """Compute and store analytics for the collection's current data.

    Returns the stored analytics, or None when a newer result was stored meanwhile.
    ``progress(step)`` is called as each step starts (the command shows it as a bar).
    """
    step = progress or (lambda name: None)
    started = time.monotonic()
    version = Collection.objects.values_list("data_version", flat=True).get(pk=collection.pk)
    step("load")
    data = load(collection)
    step("rarity")
    pairs = rarity.TraitPairs.from_codes(
        data.tokens.index,
        data.pair_tokens,
        data.pair_traits,
        data.traits.index,
        data.traits["trait_type"].tolist(),
        data.traits["value"].tolist(),
    )
    scores = rarity.score_collection(pairs)
    step("statistics")
    result = build(data, pairs, scores)
    step("charts")
    result["figures"] = charts.collection_figures(result)
    scatter = result.pop("scatter")  # the figure holds the points; keep the cache lean
    result["scatter"] = {"total": scatter["total"], "shown": scatter["shown"]}
    result.update(
        schema=SCHEMA,
        data_version=version,
        computed_at=timezone.now().isoformat(),
        seconds=round(time.monotonic() - started, 3),
    )
    step("save")
    if not store(collection, version, scores, data, result):
        return None
    return result


def build(data: CollectionData, pairs, scores: pd.DataFrame) -> dict:
    """The analytics dict (without figures) from loaded data and rarity scores."""
    tokens = data.tokens.drop(columns=SCORE_COLUMNS).join(scores)
    alerts = Alerts()
    summary = summarise(tokens, data.sales, alerts)
    trait_stats = trait_statistics(data, pairs, alerts)
    summary["trait_types"] = len(trait_stats["types"])
    summary["trait_values"] = len(data.traits)
    summary["tokens_without_traits"] = trait_stats.pop("tokens_without_traits")
    prices = price_data(tokens, summary, alerts)
    return {
        "summary": summary,
        "traits": trait_stats,
        "rarity": {
            "multi_valued_types": sorted(pairs.multi_valued_types()),
            "entropy": _finite(rarity.TraitFrequencies.from_pairs(pairs).entropy())
            if pairs.token_count
            else None,
        },
        "prices": prices,
        "scatter": scatter_points(tokens),
        "sales_over_time": sales_over_time(data.sales, alerts),
        "warnings": alerts.items,
    }


class Alerts:
    """What a page must tell the reader is missing or odd, as {code, message}."""

    def __init__(self):
        self.items = []

    def add(self, code, message):
        self.items.append({"code": code, "message": message})


def summarise(tokens: pd.DataFrame, sales: pd.DataFrame, alerts: Alerts) -> dict:
    n = len(tokens)
    sold = tokens[tokens["last_sale_amount"].notna()]
    owners = tokens["owner_address"].replace("", np.nan).dropna().str.lower().nunique()
    symbols = sold["last_sale_symbol"].replace("", "?").value_counts()
    native = {
        str(symbol): decimal_stats(
            sold.loc[sold["last_sale_symbol"].replace("", "?") == symbol, "last_sale_amount"],
            NATIVE_PLACES,
        )
        for symbol in symbols.index
    }
    usd_values = sold["last_sale_usd"].dropna()
    usd = decimal_stats(usd_values, USD_PLACES)

    if n == 0:
        alerts.add("no_tokens", "This collection has no tokens yet.")
    elif n == 1:
        alerts.add("single_token", "Only one token: rarity ranks and correlations say little.")
    if n and sold.empty:
        alerts.add("no_sales", "No token has a recorded sale, so there are no price statistics.")
    if len(symbols) > 1:
        listed = ", ".join(f"{s} ({c})" for s, c in symbols.items())
        alerts.add(
            "mixed_payment_tokens",
            f"Sales were paid in {len(symbols)} payment tokens: {listed}. Native prices are "
            "shown per payment token; USD figures combine them.",
        )
    elif len(symbols) == 1 and symbols.index[0] not in {"ETH", "WETH"}:
        alerts.add("non_eth_payment_token", f"Sales were paid in {symbols.index[0]}, not ETH.")
    missing_usd = len(sold) - len(usd_values)
    if missing_usd:
        alerts.add(
            "missing_usd",
            f"{missing_usd} sold token(s) have no USD price (no USD rate for their payment "
            "token); they are left out of USD statistics and charts.",
        )

    return {
        "tokens": n,
        "sold_tokens": len(sold),
        "owners": int(owners),
        "sales": len(sales),
        "payment_symbols": {str(k): int(v) for k, v in symbols.items()},
        "primary_symbol": str(symbols.index[0]) if len(symbols) else None,
        "price_native": native,
        "price_usd": usd,
        "sales_volume_usd": _plain(_decimal_sum(sales["usd"].dropna())) if len(sales) else None,
        "spearman": {
            "rarity_score": spearman(sold, "rarity_score"),
            "ic_score": spearman(sold, "ic_score"),
        },
    }


def decimal_stats(values, places: int) -> dict | None:
    """count/mean/median/min/max/sum of Decimals, exact up to ``places`` decimals."""
    ordered = _sorted_decimals(values)
    if not ordered:
        return None
    n = len(ordered)
    with localcontext() as ctx:
        ctx.prec = 120  # 60-digit amounts summed over millions of rows stay exact
        total = sum(ordered, Decimal(0))
        middle = n // 2
        median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        quantum = Decimal(1).scaleb(-places)
        return {
            "count": n,
            "mean": _plain((total / n).quantize(quantum)),
            "median": _plain(median.quantize(quantum)),
            "min": _plain(ordered[0]),
            "max": _plain(ordered[-1]),
            "sum": _plain(total),
        }


def _sorted_decimals(values) -> list[Decimal]:
    """Decimals in exact order; floats order them fast, a Decimal sort settles any doubt."""
    decimals = [v if isinstance(v, Decimal) else Decimal(v) for v in values]
    order = np.argsort(np.array([float(v) for v in decimals]), kind="stable")
    ordered = [decimals[i] for i in order]
    # Values closer than a float can tell apart may come out swapped: check, and fall back.
    if any(a > b for a, b in itertools.pairwise(ordered)):
        ordered.sort()
    return ordered


def spearman(sold: pd.DataFrame, score_column: str) -> dict:
    """Spearman's rho between a rarity score and the USD price of the sold tokens."""
    frame = sold[["last_sale_usd", score_column]].dropna()
    n = len(frame)
    if n < 3:
        return {"rho": None, "p_value": None, "n": n, "reason": "needs 3 or more priced sales"}
    prices = frame["last_sale_usd"].map(float).to_numpy()
    scores = frame[score_column].to_numpy(dtype=float)
    if np.ptp(prices) == 0 or np.ptp(scores) == 0:
        return {"rho": None, "p_value": None, "n": n, "reason": "prices or scores are all equal"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spearmanr(scores, prices)
    return {
        "rho": _finite(result.statistic),
        "p_value": _finite(result.pvalue),
        "n": n,
        "reason": None,
    }


def trait_statistics(data: CollectionData, pairs, alerts: Alerts) -> dict:
    """Counts and frequencies per trait as stored (not normalised), per type, top rarest."""
    n = len(data.tokens)
    traits = data.traits.copy()
    trait_pos = traits.index.get_indexer(data.pair_traits)
    token_pos = data.tokens.index.get_indexer(data.pair_tokens)
    keep = (trait_pos >= 0) & (token_pos >= 0)
    trait_pos, token_pos = trait_pos[keep], token_pos[keep]
    # TokenTrait rows are unique per (token, trait), so a bincount is the number of holders.
    counts = np.bincount(trait_pos, minlength=len(traits))
    traits["count"] = counts
    traits["frequency"] = counts / n if n else 0.0

    type_codes, type_names = pd.factorize(traits["trait_type"], sort=True)
    width = max(len(type_names), 1)
    pair_type = type_codes[trait_pos]
    holders = rarity.unique_ints(token_pos.astype(np.int64) * width + pair_type) % width
    tokens_with = np.bincount(holders, minlength=len(type_names))
    pairs_per_type = np.bincount(pair_type, minlength=len(type_names))
    values_per_type = np.bincount(type_codes[counts > 0], minlength=len(type_names))
    types = [
        {
            "trait_type": str(name),
            "values": int(values_per_type[i]),
            "tokens_with": int(tokens_with[i]),
            "tokens_missing": n - int(tokens_with[i]),
            "missing_frequency": (n - int(tokens_with[i])) / n if n else 0.0,
            "multi_valued": bool(pairs_per_type[i] > tokens_with[i]),
        }
        for i, name in enumerate(type_names)
    ]

    present = traits[traits["count"] > 0].reset_index()
    rarest = present.sort_values(["count", "trait_type", "value"], kind="stable")
    common = present.sort_values(
        ["count", "trait_type", "value"], ascending=[False, True, True], kind="stable"
    )
    trait_count = pairs.trait_counts() if pairs.token_count else np.empty(0, np.int64)
    without = int((np.bincount(pairs.pos, minlength=pairs.token_count) == 0).sum())
    if n and not keep.any():
        alerts.add("no_traits", "No token has traits, so every token is equally rare.")
    elif without:
        alerts.add("tokens_without_traits", f"{without} token(s) have no traits.")
    distribution = np.bincount(trait_count) if len(trait_count) else np.empty(0, np.int64)
    return {
        "types": types,
        "rarest": _trait_rows(rarest.head(TOP_TRAITS)),
        "most_common": _trait_rows(common.head(TOP_TRAITS)),
        "trait_counts": [
            {"trait_count": int(k), "tokens": int(c)} for k, c in enumerate(distribution) if c
        ],
        "counts": {int(pk): int(c) for pk, c in traits["count"].items()},
        "tokens_without_traits": without,
    }


def _trait_rows(frame: pd.DataFrame) -> list[dict]:
    return [
        {
            "id": int(row.pk),
            "trait_type": str(row.trait_type),
            "value": str(row.value),
            "count": int(row.count),
            "frequency": float(row.frequency),
        }
        for row in frame.itertuples(index=False)
    ]


def price_data(tokens: pd.DataFrame, summary: dict, alerts: Alerts) -> dict:
    """Log10 price histogram bins and a sample for the compare page.

    USD when any sale has a USD value; otherwise the main payment token's own unit.
    """
    sold = tokens[tokens["last_sale_amount"].notna()]
    usd = sold["last_sale_usd"].dropna()
    if len(usd):
        currency, values = "USD", usd
    elif summary["primary_symbol"]:
        currency = summary["primary_symbol"]
        values = sold.loc[sold["last_sale_symbol"] == currency, "last_sale_amount"]
    else:
        return {"currency": None, "histogram": None, "zero_prices": 0, "extreme_prices": 0}

    positive = values[_positive(values)]
    zero = len(values) - len(positive)
    if zero:
        alerts.add(
            "zero_prices", f"{zero} sale(s) at a price of 0 are left out of log-scale charts."
        )
    extreme = _count_extreme(positive)
    if extreme:
        alerts.add(
            "extreme_prices",
            f"{extreme} price(s) are over 10,000x away from the median; they are kept but may "
            "be data errors.",
        )
    if positive.empty:
        return {"currency": currency, "histogram": None, "zero_prices": zero, "extreme_prices": 0}

    logs = np.log10(positive.map(float).to_numpy())
    low, high = math.floor(logs.min() * 10) / 10, math.ceil(logs.max() * 10) / 10
    bins = min(60, max(1, round((high - low) / 0.1)))
    counts, edges = np.histogram(logs, bins=bins, range=(low, max(high, low + 0.1)))
    rng = np.random.default_rng(0)  # a fixed seed: the same data always gives the same sample
    sample = logs if len(logs) <= PRICE_SAMPLE_MAX else rng.choice(logs, PRICE_SAMPLE_MAX, False)
    return {
        "currency": currency,
        "histogram": {
            "edges": [round(float(e), 6) for e in edges],
            "counts": [int(c) for c in counts],
        },
        "zero_prices": zero,
        "extreme_prices": extreme,
        "sample_log10": [round(float(v), 4) for v in np.sort(sample)],
    }


def _count_extreme(values: pd.Series) -> int:
    if len(values) < 3:
        return 0
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    with localcontext() as ctx:
        ctx.prec = 120
        high, low = median * EXTREME_PRICE_FACTOR, median / EXTREME_PRICE_FACTOR
        return sum(1 for v in ordered if v > high or v < low)


def scatter_points(tokens: pd.DataFrame) -> dict:
    """Rarity score vs log10 USD price of sold tokens, downsampled deterministically."""
    sold = tokens[tokens["last_sale_usd"].notna() & tokens["rarity_score"].notna()]
    sold = sold[_positive(sold["last_sale_usd"])]
    total = len(sold)
    if total > SCATTER_MAX_POINTS:
        keep = set(sold["last_sale_usd"].map(float).nlargest(SCATTER_KEEP_EXTREMES).index)
        keep |= set(sold["rarity_score"].nlargest(SCATTER_KEEP_EXTREMES).index)
        rest = sold.index.difference(list(keep))
        rng = np.random.default_rng(0)
        keep |= set(rng.choice(rest, SCATTER_MAX_POINTS - len(keep), replace=False))
        sold = sold.loc[sold.index.isin(list(keep))]
    return {
        "total": total,
        "shown": len(sold),
        "x": [round(float(v), 4) for v in sold["rarity_score"]],
        "y": [round(math.log10(v), 4) for v in sold["last_sale_usd"]],
        "token_id": [str(v) for v in sold["token_id"]],
        "name": [
            name or f"#{tid}" for name, tid in zip(sold["name"], sold["token_id"], strict=True)
        ],
        "usd": [_cents(v) for v in sold["last_sale_usd"]],
    }


def sales_over_time(sales: pd.DataFrame, alerts: Alerts) -> dict | None:
    """Sales per day, week or month (by the span covered) with count and USD median/volume."""
    if sales.empty:
        alerts.add("no_sale_history", "No sale events are recorded, so there is no sales history.")
        return None
    frame = sales.copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["usd"] = frame["usd"].map(lambda d: float(d) if d is not None else np.nan)
    span = frame["timestamp"].max() - frame["timestamp"].min()
    period, fmt = (
        ("day", "%Y-%m-%d")
        if span <= pd.Timedelta(days=120)
        else ("week", "%Y-%m-%d")
        if span <= pd.Timedelta(days=730)
        else ("month", "%Y-%m")
    )
    freq = {"day": "D", "week": "W-MON", "month": "M"}[period]
    naive = frame["timestamp"].dt.tz_localize(None)
    frame["period"] = naive.dt.to_period(freq).dt.start_time
    grouped = frame.groupby("period").agg(
        sales=("usd", "size"), median_usd=("usd", "median"), volume_usd=("usd", "sum")
    )
    grouped["priced"] = frame.groupby("period")["usd"].count()
    return {
        "period": period,
        "rows": [
            {
                "period": start.strftime(fmt),
                "sales": int(row.sales),
                "median_usd": _finite(row.median_usd),
                "volume_usd": _finite(row.volume_usd) if row.priced else None,
            }
            for start, row in grouped.iterrows()
        ],
    }


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


# --- Jobs: what the task and the admin action call -------------------------------------------


def request(collection: Collection, force: bool = False) -> IngestJob | None:
    """Queue a recompute once the current transaction commits.

    ``force`` (the admin action) creates the job row now so the admin sees it queued; the
    automatic path after an ingest only sends the task, which skips work when analytics are
    already fresh, so repeated signals cost nothing.
    """
    job = None
    if force:
        job = IngestJob.objects.create(
            collection=collection, kind=IngestJob.Kind.ANALYTICS, params={"force": True}
        )
    job_id = job.pk if job else None
    # A broker outage must not fail the ingest that has just committed (the kernel logs it);
    # the page then says analytics are stale, and the admin action or the command catches up.
    dispatch_after_commit(COMPUTE_TASK, [collection.pk], {"force": force, "job_id": job_id})
    return job


def claim_job(collection_id, task_id="", force=False, job_id=None) -> IngestJob | None:
    """The job a task delivery should run, or None when there is nothing to do.

    Nothing to do: the collection is gone, analytics are fresh (unless forced), or the job
    already ended (a second delivery). A redelivered task finds its own job by task id.
    """
    collection = Collection.objects.filter(pk=collection_id).first()
    if collection is None:
        return None
    if job_id is not None:
        job = IngestJob.objects.filter(pk=job_id, kind=IngestJob.Kind.ANALYTICS).first()
    else:
        if is_fresh(collection) and not force:
            return None
        job = IngestJob.objects.filter(
            collection=collection, kind=IngestJob.Kind.ANALYTICS, task_id=task_id or "-"
        ).first() or IngestJob.objects.create(
            collection=collection, kind=IngestJob.Kind.ANALYTICS, params={"force": force}
        )
    if job is None or not job.claim(task_id):
        return None
    return job


def run_job(job: IngestJob) -> None:
    """Compute analytics for the job's collection and record the outcome on the job."""
    collection = job.collection
    try:
        result = compute(collection)
    except Exception as exc:
        logger.exception("analytics failed for collection %s", collection.pk)
        job.fail(f"{type(exc).__name__}: {exc}")
        return
    if result is None:
        job.finish("A newer result was stored meanwhile; nothing written.")
        return
    summary = result["summary"]
    job.items_expected = job.items_done = summary["tokens"]
    job.save(update_fields=["items_expected", "items_done"])
    job.finish(
        f"{summary['tokens']} tokens, {summary['sold_tokens']} sold, data version "
        f"{result['data_version']}, {result['seconds']:.2f} s"
    )


def ensure_fresh(collection: Collection, progress=None) -> dict:
    """The collection's analytics, computed here and now if they are stale (commands only)."""
    collection.refresh_from_db()
    if not is_fresh(collection):
        compute(collection, progress=progress)
        collection.refresh_from_db()
    return collection.analytics


def is_fresh(collection: Collection) -> bool:
    """Analytics match the collection's data and this code's cache layout."""
    return collection.analytics_fresh and collection.analytics.get("schema") == SCHEMA


def report(collection: Collection, data: dict) -> dict:
    """What ``manage.py analytics --json`` prints: the cache's headline parts and every rank."""
    summary = dict(data["summary"])
    prices = {
        "native": summary.pop("price_native"),
        "usd": summary.pop("price_usd"),
        "sales_volume_usd": summary.pop("sales_volume_usd"),
    }
    ranks = Token.objects.filter(collection=collection).order_by("token_number", "token_id")
    return {
        "collection": collection.slug,
        "name": collection.name,
        "data_version": data["data_version"],
        "computed_at": data["computed_at"],
        "summary": summary,
        "prices": prices,
        "top_traits": {
            "rarest": data["traits"]["rarest"],
            "most_common": data["traits"]["most_common"],
        },
        "trait_types": data["traits"]["types"],
        "warnings": data["warnings"],
        "ranks": {
            token_id: {"rarity_rank": rarity_rank, "ic_rank": ic_rank}
            for token_id, rarity_rank, ic_rank in ranks.values_list(
                "token_id", "rarity_rank", "ic_rank"
            )
        },
    }


def format_report(report: dict, top: int = 10) -> str:
    """``report`` as readable text tables."""
    s = report["summary"]
    lines = [
        f"{report['name']} ({report['collection']}), data version {report['data_version']}",
        f"  tokens {s['tokens']}, sold {s['sold_tokens']}, owners {s['owners']}, "
        f"sales recorded {s['sales']}",
        f"  trait types {s['trait_types']}, trait values {s['trait_values']}, "
        f"tokens without traits {s['tokens_without_traits']}",
    ]
    for key, label in (("rarity_score", "rarity.tools"), ("ic_score", "OpenRarity")):
        sp = s["spearman"][key]
        shown = f"{sp['rho']:+.3f} (n={sp['n']})" if sp["rho"] is not None else sp["reason"]
        lines.append(f"  Spearman {label} score vs USD price: {shown}")
    lines += [
        "",
        "Prices",
        f"  {'':10} {'count':>7} {'median':>20} {'mean':>20} {'min':>20} {'max':>20}",
    ]
    rows = [("USD", report["prices"]["usd"]), *list(report["prices"]["native"].items())]
    for label, st in rows:
        if st:
            lines.append(
                f"  {label:10} {st['count']:>7} {st['median']:>20} {st['mean']:>20} "
                f"{st['min']:>20} {st['max']:>20}"
            )
    if not report["prices"]["usd"] and not report["prices"]["native"]:
        lines.append("  no sales")
    for key, label in (("rarest", "Rarest traits"), ("most_common", "Most common traits")):
        lines += ["", label]
        for t in report["top_traits"][key][:top]:
            lines.append(
                f"  {t['trait_type'] + ': ' + t['value']:40.40} {t['count']:>7} "
                f"{100 * t['frequency']:7.2f}%"
            )
    ranked = sorted(
        ((r["rarity_rank"] or 10**12, tid, r) for tid, r in report["ranks"].items()),
        key=lambda item: item[0],
    )
    lines += ["", f"Rarest {min(top, len(ranked))} tokens (all ranks: --json)"]
    lines.append(f"  {'token_id':>20} {'rarity.tools':>12} {'OpenRarity':>10}")
    for _, token_id, r in ranked[:top]:
        lines.append(f"  {token_id:>20} {r['rarity_rank'] or '-':>12} {r['ic_rank'] or '-':>10}")
    if report["warnings"]:
        lines += ["", "Notes"] + [f"  - {w['message']}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"


def _cents(value: Decimal) -> str:
    with localcontext() as ctx:
        ctx.prec = 120  # absurd prices (10^30 USD) must not overflow the default 28 digits
        return _plain(value.quantize(Decimal("0.01")))


def _positive(values: pd.Series) -> np.ndarray:
    """Boolean mask of Decimals above zero (a plain array, so an empty one still indexes rows)."""
    return np.array([v > 0 for v in values], dtype=bool)


def _decimal_sum(values) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 120
        return sum((Decimal(v) for v in values), Decimal(0))


def _plain(value: Decimal) -> str:
    """A Decimal as plain digits, no exponent, no trailing zeros ("25", "0.5")."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None
