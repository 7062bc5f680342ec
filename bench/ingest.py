"""Ingest N tokens from the fake OpenSea API at a set rate limit; print JSON lines.

The fake API runs in its own process (so it does not share our GIL) with a per-answer latency,
like a distant server. The figure that matters is ``wall_over_minimum``: wall time divided by
the least time the rate limit allows for the requests made (target <= 1.1).

    python bench/ingest.py [--tokens 1000] [--rate 50] [--latency 0.05]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import ingest_scratch

ingest_scratch.setup()

from collections_app.models import Collection, IngestJob, Sale, Token  # noqa: E402


def start_fake_api(tokens, latency):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_opensea",
            "--size",
            str(tokens),
            "--slug",
            "bench-fakes",
            "--latency",
            str(latency),
        ],
        cwd=ingest_scratch.ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"fake API did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[-1].strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="OPENSEA_RATE_LIMIT, requests/s")
    parser.add_argument("--latency", type=float, default=0.05, help="fake API answer time, s")
    parser.add_argument("--workers", type=int, default=8, help="OPENSEA_MAX_WORKERS")
    args = parser.parse_args()

    from django.conf import settings

    from collections_app.ingest.collector import run_opensea_job
    from collections_app.ingest.opensea import OpenSeaClient

    settings.OPENSEA_MAX_WORKERS = args.workers
    # A worker imports its task modules at boot; without this the end-of-ingest analytics
    # signal would pay that one-off import (seconds) inside the timed run.
    import collections_app.tasks  # noqa: F401

    proc, url = start_fake_api(args.tokens, args.latency)
    try:
        collection = Collection.objects.create(slug="bench-fakes", name="bench")
        job = IngestJob.objects.create(
            kind=IngestJob.Kind.OPENSEA, collection=collection, params={"api_url": url}
        )
        job.claim()
        client = OpenSeaClient("bench-key", url, rate=args.rate)
        started = time.monotonic()
        run_opensea_job(job, api_key="bench-key", client=client)
        wall = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    job.refresh_from_db()
    minimum = (client.api_requests - 1) / args.rate  # the first request waits for nothing
    print(
        json.dumps(
            {
                "bench": "ingest_opensea",
                "database": ingest_scratch.database_label(),
                "tokens": Token.objects.filter(collection=collection).count(),
                "sales": Sale.objects.filter(collection=collection).count(),
                "status": job.status,
                "rate_limit": args.rate,
                "api_latency_s": args.latency,
                "workers": args.workers,
                "api_requests": client.api_requests,
                "image_downloads": client.downloads,
                "wall_s": round(wall, 2),
                "minimum_s": round(minimum, 2),
                "wall_over_minimum": round(wall / minimum, 3),
                "tokens_per_s": round(args.tokens / wall, 1),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
