"""Analytics, step 2: prices, trait statistics, rarity ranks, chart data from loaded data.

``compute`` runs the steps: ``load`` -> rarity scores and statistics (here) -> ``store``; the
report is ``report``. Computed on a worker (``refresh``, ``tasks.compute_analytics``) after
every ingest and on demand, never on a page request. The result is cached in
``Collection.analytics`` together with the data version it was computed from
(``analytics_version``); ranks and scores go to the Token rows.
See ``docs/analytics.md`` for the cache layout.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, localcontext

import numpy as np
import pandas as pd
from django.utils import timezone
from scipy.stats import spearmanr

from .. import hooks
from ..models import Collection
from . import charts, rarity
from .load import SCORE_COLUMNS, CollectionData, load
from .store import changed_scores, store

logger = logging.getLogger(__name__)

SCHEMA = 1
TOP_TRAITS = 20
SCATTER_MAX_POINTS = 2000  # enough to see the shape; keeps the cached JSON and the page small
SCATTER_KEEP_EXTREMES = 100  # the priciest and rarest tokens are always on the chart
PRICE_SAMPLE_MAX = 1000  # per collection, for the compare page's strip plot
EXTREME_PRICE_FACTOR = Decimal(10) ** 4  # "absurd": 10,000x above or below the median
NATIVE_PLACES = 18
USD_PLACES = 6


def compute(collection: Collection, progress=None) -> dict | None:
    """Compute and store analytics for the collection's current data.

    Returns the stored analytics, or None when a newer result was stored meanwhile.
    ``progress(step)`` is called as each step starts (the command shows it as a bar); the
    statistics and charts are computed during ``save``, on a thread.
    """
    step = progress or (lambda name: None)
    started = time.monotonic()
    version = Collection.objects.values_list("data_version", flat=True).get(pk=collection.pk)
    step("load")
    data = load(collection)
    step("rarity")
    pairs = trait_pairs(data)
    scores = rarity.score_collection(pairs)
    changed = changed_scores(scores, data.tokens)  # before the thread: no frame is shared
    step("save")
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Writing 10^5 changed ranks keeps the database busy for seconds (each row enters
        # every index of the token table) while this process only waits; the statistics and
        # charts read nothing from the database, so a thread computes them meanwhile.
        building = pool.submit(analytics_result, data, pairs, scores, version, started)
        if not store(collection, version, changed, building.result):
            return None
    step("images")
    profile_images(collection, version)
    return building.result()


def analytics_result(data: CollectionData, pairs, scores, version: int, started: float) -> dict:
    """What the cache holds: statistics, figures, and what they were computed from."""
    result = build(data, pairs, scores)
    result["figures"] = charts.collection_figures(result)
    scatter = result.pop("scatter")  # the figure holds the points; keep the cache lean
    result["scatter"] = {"total": scatter["total"], "shown": scatter["shown"]}
    result.update(
        schema=SCHEMA,
        data_version=version,
        computed_at=timezone.now().isoformat(),
        seconds=round(time.monotonic() - started, 3),
    )
    return result


def profile_images(collection: Collection, version: int) -> dict:
    """What the collection's images are (pixel art: grid and palette), once per data version,
    stored on ``Collection.image_profile``; the readers are the ``hooks.IMAGE_PROFILE``
    functions (none: nothing is read). A reader's failure is logged, never fatal: the
    analytics above are stored already."""
    stored = collection.image_profile or {}
    if not hooks.IMAGE_PROFILE or stored.get("data_version") == version:
        return stored
    profile = {}
    for read in hooks.IMAGE_PROFILE:
        try:
            profile.update(read(collection))
        except Exception:
            logger.exception("image profile of collection %s failed", collection.pk)
            return stored
    profile["data_version"] = version
    Collection.objects.filter(pk=collection.pk, data_version=version).update(image_profile=profile)
    collection.image_profile = profile
    return profile


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
    """Decimals in exact order (sorting Decimals directly beats ordering them by float)."""
    return sorted(v if isinstance(v, Decimal) else Decimal(v) for v in values)


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
    # Sorted, the values past either bound are the two ends of the list.
    return len(ordered) - bisect.bisect_right(ordered, high) + bisect.bisect_left(ordered, low)


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
    frame["usd"] = frame["usd"].astype(float)  # Decimal or None -> float or NaN
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


# --- Jobs: what the task and the admin action call -------------------------------------------


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


def trait_pairs(data) -> rarity.TraitPairs:
    """The loaded collection's (token, trait) pairs, as rarity scoring takes them."""
    return rarity.TraitPairs.from_codes(
        data.tokens.index,
        data.pair_tokens,
        data.pair_traits,
        data.traits.index,
        data.traits["trait_type"].tolist(),
        data.traits["value"].tolist(),
    )
