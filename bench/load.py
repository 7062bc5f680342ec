"""Load: N concurrent visitors browsing the site and pressing Generate, for a bounded time.

    python bench/load.py [--clients 50] [--seconds 30] [--think 1.0] [--generate-share 0.1]
                         [--spread-addresses 50]
    python bench/load.py --url http://127.0.0.1:8000 --collection SLUG --generator SLUG

Without ``--url`` it starts what ``make run`` starts, on scratch resources (the helpers of
``bench/generate.py --e2e``): gunicorn (``--web-workers`` asyncio workers, as bin/run) and a
real Celery worker (queues generate and default) over Redis (its own key prefix) and
PostgreSQL (its own database, ``nff_bench_load``, created and dropped), a demo collection of
``--size`` tokens with analytics, and a published 32 px generator (fresh weights).

Each client is a thread with its own session (cookies, CSRF token) that loops until the time is
up: it opens the home page, a collection page (sometimes filtered or sorted), a token page, the
generator page or the gallery, or presses Generate (a new random seed; the POST waits for the
image, as the page's button asks, and the request is long-polled if it is not done by then) and
downloads the PNG; between two actions it waits ``--think`` seconds on average (uniform
0.5x..1.5x; 0 for a closed loop with no pause). A page counts as an error unless it
answers 200 (Generate: 200/202, then done); 429s are counted apart.

Prints one JSON object per route kind (count, errors, p50/p95/p99/max in ms) and a summary line
(throughput, error rate, page p95 against the 150 ms target).
"""

import argparse
import json
import os
import random
import re
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

LOAD_DATABASE = "nff_bench_load"
PAGE_KINDS = ("home", "collection", "token", "generator", "gallery")
PAGE_TARGET_P95_MS = 150


# --- The site under load -----------------------------------------------------------------------


def start_site(args, scratch):
    """gunicorn + a worker on scratch resources (bench/generate.py's Services); returns
    (services, base URL, collection slug, generator slug, token ids)."""
    import generate as e2e  # bench/generate.py: Services, scratch database, Redis keys

    args.pg_server = args.pg_server.rstrip("/")
    services = e2e.Services(args, scratch)
    services.overrides["DATABASE_URL"] = f"{args.pg_server}/{LOAD_DATABASE}"
    services.env.update(services.overrides)
    os.environ.update(services.overrides)
    e2e._recreate_database(args.pg_server, LOAD_DATABASE)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from collections_app.models import Collection, Token
    from gan_app.models import Generator

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    call_command(
        "make_demo_collection", "--slug", "load-fakes", "--size", str(args.size), verbosity=0
    )
    call_command("analytics", "load-fakes", stdout=open(os.devnull, "w"))  # noqa: SIM115
    generator, _config = e2e._publish_bench_generator(32)
    collection = Collection.objects.get(slug="load-fakes")
    Generator.objects.filter(pk=generator.pk).update(collection=collection)
    Collection.objects.filter(slug="bench").delete()
    tokens = list(Token.objects.filter(collection=collection).values_list("token_id", flat=True))
    connection.close()

    services.start_worker("generate,default", "load")
    # Keep-alive longer than a visitor's pause: a kept-alive connection the server has just
    # closed would otherwise meet the next click (a reset; browsers retry, scripts do not).
    services.start_web(args.web_workers, keep_alive=5)
    services.wait_for("worker.log", f"generator cache: warmed {generator.slug}")
    services.wait_for("web.log", "Booting worker")
    return services, f"http://127.0.0.1:{services.port}", "load-fakes", generator.slug, tokens


def stop_site(args, services, scratch):
    import shutil

    import generate as e2e

    services.stop()
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: S110 (Django may not be set up when start-up failed)
        pass
    e2e._recreate_database(args.pg_server, LOAD_DATABASE, drop_only=True)
    e2e._drop_redis_keys(args.redis_url, services.prefix)
    if args.keep_logs:
        print(f"# logs kept in {scratch}", file=sys.stderr)
    else:
        shutil.rmtree(scratch, ignore_errors=True)


def discover(base, collection, generator):
    """Token ids of a running site (``--url``), read from the collection page's links."""
    import requests

    page = requests.get(f"{base}/c/{collection}/", timeout=30)
    page.raise_for_status()
    # Digits only: the page also carries the chart's link template (``/t/__id__/``), which is
    # no token, and visiting it counted as errors.
    ids = sorted(set(re.findall(rf"/c/{re.escape(collection)}/t/([0-9]+)/", page.text)))
    if not ids:
        raise SystemExit(f"no token links on {base}/c/{collection}/")
    return ids


# --- Clients -----------------------------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = defaultdict(list)  # kind -> [ms]
        self.errors = defaultdict(int)
        self.throttled = defaultdict(int)
        self.samples = defaultdict(list)  # kind -> a few error descriptions

    def add(self, kind, ms, ok, detail="", throttled=False):
        with self.lock:
            self.latencies[kind].append(ms)
            if throttled:
                self.throttled[kind] += 1
            elif not ok:
                self.errors[kind] += 1
                if len(self.samples[kind]) < 3:
                    self.samples[kind].append(detail[:200])


class Visitor:
    """One browsing visitor: a session with cookies and a CSRF token of its own."""

    def __init__(self, base, collection, generator, tokens, recorder, rng, source=None):
        import requests
        from generate import _client_session

        self.base, self.collection, self.generator, self.tokens = (
            base,
            collection,
            generator,
            tokens,
        )
        self.recorder, self.rng = recorder, rng
        self.session, self.csrf = _client_session(base)
        if source:
            bind_source_address(self.session, source)
        self.session.headers["Accept-Encoding"] = "gzip"
        self.requests = requests

    def timed(self, kind, method, url, ok_codes=(200,), **kwargs):
        started = time.perf_counter()
        try:
            response = method(url, timeout=30, **kwargs)
            _ = response.content
        except self.requests.RequestException as exc:
            ms = (time.perf_counter() - started) * 1000
            self.recorder.add(kind, ms, False, f"{type(exc).__name__}: {exc}")
            return None
        ms = (time.perf_counter() - started) * 1000
        ok = response.status_code in ok_codes
        detail = f"{response.status_code} {url}: {response.text[:120]}" if not ok else ""
        self.recorder.add(kind, ms, ok, detail, throttled=response.status_code == 429)
        return response if ok else None

    def page(self, kind, path):
        self.timed(kind, self.session.get, self.base + path)

    def browse_once(self, generate_share):
        roll = self.rng.random()
        if roll < generate_share:
            return self.generate()
        roll = self.rng.random()
        if roll < 0.2:
            return self.page("home", "/")
        if roll < 0.5:
            query = self.rng.choice(["", "", "?sort=price_desc", "?sold=on", "?page=2"])
            return self.page("collection", f"/c/{self.collection}/{query}")
        if roll < 0.85:
            return self.page("token", f"/c/{self.collection}/t/{self.rng.choice(self.tokens)}/")
        if roll < 0.95:
            return self.page("generator", f"/gen/{self.generator}/")
        return self.page("gallery", "/gallery/")

    def generate(self):
        started = time.perf_counter()
        response = self.timed(
            "generate_post",
            self.session.post,
            # As the page's Generate button asks: the answer comes once the image is made.
            f"{self.base}/generate/?wait=10",
            ok_codes=(200, 202),
            data={"generator": self.generator},
            headers={
                "Accept": "application/json",
                "X-CSRFToken": self.csrf,
                "Referer": f"{self.base}/",
            },
        )
        if response is None:
            return
        body = response.json()
        while body["status"] in ("queued", "running"):
            poll = self.timed(
                "generate_poll",
                self.session.get,
                f"{self.base}{body['status_url']}",
                params={"since": "queued,running", "wait": 10},
                headers={"Accept": "application/json"},
            )
            if poll is None:
                return
            body = poll.json()
        done_ms = (time.perf_counter() - started) * 1000
        ok = body["status"] == "done"
        self.recorder.add("generate_done", done_ms, ok, f"request {body['id']} {body['status']}")
        if ok:
            self.timed("image", self.session.get, self.base + body["images"][0]["png"])


def bind_source_address(session, address):
    """Send this session's requests from ``address`` (e.g. 127.0.0.7).

    The rate limit keys clients by their address (the socket's, since a proxy header is only
    trusted when TRUSTED_PROXY_HEADER is set, and never by default), so visitors spread over
    loopback addresses are seen as distinct clients, as on the internet.
    """
    from requests.adapters import HTTPAdapter

    class SourceAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["source_address"] = (address, 0)
            super().init_poolmanager(*args, **kwargs)

    session.mount("http://", SourceAdapter())


def client_address(index, spread):
    """127.0.0.2 .. 127.0.0.(spread + 1) in turn, or None (the default route) for spread 0."""
    if not spread:
        return None
    if not 1 <= spread <= 250:
        raise SystemExit("--spread-addresses takes 1 to 250 loopback addresses")
    return f"127.0.0.{2 + index % spread}"


def run_clients(args, base, collection, generator, tokens, seconds, recorder):
    stop_at = time.monotonic() + seconds

    def client(index):
        rng = random.Random(args.seed * 1000 + index)
        source = client_address(index, args.spread_addresses)
        visitor = Visitor(base, collection, generator, tokens, recorder, rng, source)
        time.sleep(rng.uniform(0, max(args.think, 0.2)))  # visitors do not arrive in lockstep
        while time.monotonic() < stop_at:
            visitor.browse_once(args.generate_share)
            if args.think:
                time.sleep(args.think * rng.uniform(0.5, 1.5))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def cpu_seconds(services):
    """CPU seconds used so far by this process (the clients) and, when we started them, by the
    web server and the worker: per-request figures that other load on the machine inflates
    far less than latencies."""
    used = {"clients": time.process_time()}
    if services is not None:
        import generate as e2e

        web, worker = services.procs[1], services.procs[0]
        used["web"] = e2e._group_cpu_seconds(web.pid)
        used["worker"] = e2e._group_cpu_seconds(worker.pid)
    return used


def percentiles(values):
    import numpy as np

    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "latency_ms_p50": round(float(p50), 1),
        "latency_ms_p95": round(float(p95), 1),
        "latency_ms_p99": round(float(p99), 1),
        "latency_ms_max": round(float(max(values)), 1),
    }


def report(args, recorder, wall, common, cpu):
    lines = []
    for kind in sorted(recorder.latencies):
        values = recorder.latencies[kind]
        line = {
            **common,
            "kind": kind,
            "requests": len(values),
            "errors": recorder.errors[kind],
            "throttled_429": recorder.throttled[kind],
            **percentiles(values),
        }
        if recorder.samples[kind]:
            line["error_samples"] = recorder.samples[kind]
        lines.append(line)
    pages = [ms for kind in PAGE_KINDS for ms in recorder.latencies.get(kind, [])]
    http = {k: v for k, v in recorder.latencies.items() if k != "generate_done"}
    total = sum(len(v) for v in http.values())
    errors = sum(n for k, n in recorder.errors.items() if k != "generate_done")
    summary = {
        **common,
        "kind": "summary",
        "requests": total,
        "errors": errors,
        "error_rate": round(errors / total, 5) if total else None,
        "throttled_429": sum(recorder.throttled.values()),
        "generations_done": len(recorder.latencies.get("generate_done", []))
        - recorder.errors.get("generate_done", 0),
        "requests_per_second": round(total / wall, 1),
        "page_requests": len(pages),
        "page_latency_ms_p95": percentiles(pages)["latency_ms_p95"] if pages else None,
        "target_page_p95_ms": PAGE_TARGET_P95_MS,
        **{f"{k}_cpu_ms_per_request": round(v * 1000 / max(total, 1), 2) for k, v in cpu.items()},
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    lines.append(summary)
    for line in lines:
        print(json.dumps(line), flush=True)
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="", help="a running site (else one is started)")
    parser.add_argument("--collection", default="", help="with --url: a collection's slug")
    parser.add_argument("--generator", default="", help="with --url: a published generator")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between actions")
    parser.add_argument("--generate-share", type=float, default=0.1)
    parser.add_argument("--size", type=int, default=300, help="demo collection size")
    parser.add_argument(
        "--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2))
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--spread-addresses",
        type=int,
        default=0,
        help="spread clients over this many loopback addresses (127.0.0.2...) so that the "
        "per-client rate limit sees distinct visitors; 0: all from 127.0.0.1",
    )
    parser.add_argument("--pg-server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()

    services = scratch = None
    if args.url:
        if not (args.collection and args.generator):
            parser.error("--url needs --collection and --generator")
        base, collection, generator = args.url.rstrip("/"), args.collection, args.generator
        tokens = discover(base, collection, generator)
    else:
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="nff-bench-load-"))
        services, base, collection, generator, tokens = start_site(args, scratch)
    try:
        common = {
            "bench": "load",
            "clients": args.clients,
            "spread_addresses": args.spread_addresses,
            "seconds": args.seconds,
            "think_s": args.think,
            "generate_share": args.generate_share,
            "web_workers": None if args.url else args.web_workers,
            "web_server": None if args.url else "gunicorn asgi",
            "cpu_cores": os.cpu_count(),
            "load_average_before": round(os.getloadavg()[0], 2),
        }
        if args.warmup_seconds:
            run_clients(args, base, collection, generator, tokens, args.warmup_seconds, Recorder())
        recorder = Recorder()
        cpu_before = cpu_seconds(services)
        wall = run_clients(args, base, collection, generator, tokens, args.seconds, recorder)
        cpu = {k: v - cpu_before[k] for k, v in cpu_seconds(services).items()}
        report(args, recorder, wall, common, cpu)
    finally:
        if services is not None:
            stop_site(args, services, scratch)


if __name__ == "__main__":
    main()
