"""Analytics benchmark: full analytics and the collection page at 100,000 tokens.

Prints JSON lines. Uses its own PostgreSQL database (created and dropped here, default
``nff_bench_analytics`` on 127.0.0.1:5432), so no other database is touched.

    python bench/analytics.py [--tokens 100000] [--requests 60] [--keep]

Targets: full analytics <= 2.5 s; collection page p95 <= 50 ms.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def emit(**figures):
    print(json.dumps(figures), flush=True)


def admin_dsn(url):
    import psycopg

    return psycopg.conninfo.make_conninfo(url.rsplit("/", 1)[0] + "/postgres")


def recreate_database(url, name, drop_only=False):
    import psycopg

    with psycopg.connect(admin_dsn(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def configure(args):
    scratch = Path(tempfile.mkdtemp(prefix="nff-bench-analytics-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "nftsite.settings",
            "DATABASE_URL": f"{args.server}/{args.database}",
            "NFF_VAR_DIR": str(scratch / "var"),
            "MEDIA_ROOT": str(scratch / "media"),
            "STATIC_ROOT": str(scratch / "static"),
            "CELERY_BROKER_URL": "memory://",
            "DEBUG": "false",
            "SECRET_KEY": "bench-not-secret-0123456789abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "testserver,localhost",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)


def build_collection(n, seed=0):
    """A synthetic collection through COPY: 8 trait types (one multi-valued), 40% sold."""
    import numpy as np
    from django.db import connection

    from collections_app.models import Collection, Sale, Token, TokenTrait, Trait

    rng = np.random.default_rng(seed)
    collection = Collection.objects.create(slug="bench", name="Bench 100k", supply=n)
    trait_rows, pairs = [], []
    next_id = Trait.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    types = [(f"type_{i}", int(rng.integers(4, 80))) for i in range(7)]
    for name, k in types:
        probs = rng.dirichlet(np.full(k, 0.4))
        ids = np.arange(next_id + 1, next_id + k + 1)
        next_id += k
        trait_rows += [(int(i), name, f"{name}-value-{j}") for j, i in enumerate(ids)]
        holders = np.nonzero(rng.random(n) < 0.92)[0]
        pairs.append(np.stack([holders, ids[rng.choice(k, len(holders), p=probs)]], 1))
    accessory_ids = np.arange(next_id + 1, next_id + 61)
    trait_rows += [(int(i), "accessory", f"accessory-{j}") for j, i in enumerate(accessory_ids)]
    weights = rng.dirichlet(np.full(60, 0.6))
    for slot in range(3):
        holders = np.nonzero(rng.random(n) < 0.6 - 0.2 * slot)[0]
        pairs.append(np.stack([holders, accessory_ids[rng.choice(60, len(holders), p=weights)]], 1))
    pairs = np.unique(np.concatenate(pairs), axis=0)

    sold = rng.random(n) < 0.4
    usd = np.round(10 ** rng.normal(3.5, 0.7, n), 2)
    start = time.time() - 3 * 365 * 86400
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            f"COPY {Trait._meta.db_table} (id, collection_id, trait_type, value, display_type, "
            "count, is_excluded, excluded_reason) FROM STDIN"
        ) as copy:
            for pk, trait_type, value in trait_rows:
                copy.write_row((pk, collection.pk, trait_type, value, "", 0, False, ""))
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{Trait._meta.db_table}', 'id'), %s)",
            [next_id],
        )
        columns = (
            "collection_id, token_id, token_number, name, description, image, image_url, "
            "image_sha256, image_format, owner_address, metadata, trait_count, last_sale_amount, "
            "last_sale_symbol, last_sale_usd, last_sale_at, created_at, updated_at"
        )
        with raw.copy(f"COPY {Token._meta.db_table} ({columns}) FROM STDIN") as copy:
            for i in range(n):
                price = (
                    (f"{usd[i] / 2000:.18f}", "ETH", f"{usd[i]:.2f}") if sold[i] else (None,) * 3
                )
                copy.write_row(
                    (
                        collection.pk,
                        str(i),
                        i,
                        f"Bench #{i}",
                        "",
                        "",
                        "",
                        "",
                        "",
                        f"0x{rng.integers(0, 20000):06x}",
                        "{}",
                        0,
                        price[0],
                        price[1] or "",
                        price[2],
                        "2022-01-01T00:00:00Z" if sold[i] else None,
                        "2022-01-01T00:00:00Z",
                        "2022-01-01T00:00:00Z",
                    )
                )
        cursor.execute(
            f"SELECT id FROM {Token._meta.db_table} WHERE collection_id = %s "  # noqa: S608
            "ORDER BY token_number",
            [collection.pk],
        )
        token_pks = np.array([r[0] for r in cursor.fetchall()])
        with raw.copy(f"COPY {TokenTrait._meta.db_table} (token_id, trait_id) FROM STDIN") as copy:
            for token_pos, trait_pk in pairs:
                copy.write_row((int(token_pks[token_pos]), int(trait_pk)))
        sold_positions = np.nonzero(sold)[0]
        with raw.copy(
            f"COPY {Sale._meta.db_table} (collection_id, token_id, source_key, amount, symbol, "
            "usd, quantity, timestamp, tx_hash, buyer, seller) FROM STDIN"
        ) as copy:
            for i in sold_positions:
                moment = time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + rng.random() * 3 * 365 * 86400)
                )
                copy.write_row(
                    (
                        collection.pk,
                        int(token_pks[i]),
                        f"last_sale:{i}",
                        f"{usd[i] / 2000:.18f}",
                        "ETH",
                        f"{usd[i]:.2f}",
                        1,
                        moment,
                        "",
                        "",
                        "",
                    )
                )
        cursor.execute("ANALYZE")
    collection.bump_data_version()
    return collection, len(pairs), int(sold.sum())


def timed_compute(collection):
    from collections_app.analytics import compute as analytics

    marks = []
    started = time.perf_counter()
    cpu = time.process_time()
    analytics.compute(collection, progress=lambda step: marks.append((step, time.perf_counter())))
    total = time.perf_counter() - started
    marks.append(("end", started + total))
    steps = {name: round(marks[i + 1][1] - at, 3) for i, (name, at) in enumerate(marks[:-1])}
    return total, time.process_time() - cpu, steps


def clear_scores(collection):
    from collections_app.models import Token

    Token.objects.filter(collection=collection).update(
        rarity_score=None, rarity_rank=None, ic_score=None, ic_rank=None
    )
    vacuum()


def vacuum():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk change


def bench_compute(collection, repeats, pairs, sold):
    """Three situations: first run after an ingest (every rank written), a rerun on unchanged
    data (nothing to write), and a run after a change that moves every rank."""
    common = {
        "bench": "analytics_compute",
        "tokens": collection.tokens.count(),
        "trait_pairs": pairs,
    }
    common["sold"] = sold
    for case in ("first_run", "unchanged", "every_rank_changed"):
        runs = []
        for _ in range(1 if case == "first_run" else repeats):
            if case == "every_rank_changed":
                clear_scores(collection)  # outside the timing
            runs.append(timed_compute(collection))
        best = min(runs, key=lambda r: r[0])
        yield {
            **common,
            "case": case,
            "runs": len(runs),
            "seconds_median": round(statistics.median(r[0] for r in runs), 3),
            "seconds_best": round(best[0], 3),
            "cpu_seconds_best": round(best[1], 3),
            "steps_best": best[2],
            "loadavg_1m": round(os.getloadavg()[0], 2),
            "target_seconds": 2.5,
        }


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def bench_page(collection, requests):
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    trait = collection.traits.order_by("-count").first()
    variants = {
        "default": "",
        "trait_filter": f"?trait={trait.pk}",
        "price_sort": "?sort=price_desc",
        "price_range_rank": "?min_usd=1000&max_usd=5000&max_rank=20000",
        "deep_page": "?page=1500",
        "trait_search": "?trait_q=accessory-1",
    }
    client = Client()
    url = f"/c/{collection.slug}/"
    for name, query in variants.items():
        client.get(url + query)  # warm: templates, connection
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url + query)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        with CaptureQueriesContext(connection) as queries:
            client.get(url + query)
        yield {
            "bench": "collection_page",
            "variant": name,
            "tokens": collection.analytics["summary"]["tokens"],
            "requests": requests,
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(percentile(timings, 95), 1),
            "max_ms": round(max(timings), 1),
            "queries": len(queries),
            "html_kb": round(len(response.content) / 1024, 1),
            "target_p95_ms": 50,
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--database", default="nff_bench_analytics")
    parser.add_argument("--keep", action="store_true", help="Keep the bench database afterwards.")
    args = parser.parse_args()

    recreate_database(f"{args.server}/{args.database}", args.database)
    try:
        configure(args)
        started = time.perf_counter()
        collection, pairs, sold = build_collection(args.tokens)
        emit(
            bench="build_synthetic_collection",
            tokens=args.tokens,
            trait_pairs=pairs,
            sold=sold,
            seconds=round(time.perf_counter() - started, 2),
        )
        for figures in bench_compute(collection, args.repeats, pairs, sold):
            emit(**figures)
        emit(
            bench="analytics_cache",
            cache_kb=round(len(json.dumps(collection.analytics)) / 1024, 1),
            scatter_points=collection.analytics["scatter"]["shown"],
        )
        vacuum()
        for figures in bench_page(collection, args.requests):
            emit(**figures)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(f"{args.server}/{args.database}", args.database, drop_only=True)


if __name__ == "__main__":
    main()
