"""Long polls: N visitors waiting on unfinished images while others browse the site.

    python bench/poll.py [--pollers 200] [--visitors 20] [--seconds 30] [--wait 20]
                         [--spread-addresses 50] [--finish-every 0.1]

Starts what ``bench/load.py`` starts (gunicorn's asyncio workers and a Celery worker on a
scratch database and Redis prefix), then gives each poller a request of its own that a worker
is "rendering" (status running, as a slow GPU would leave it) and has it long-poll the status
(``?since=queued,running&wait=W``) over and over. Meanwhile ``--visitors`` browse the pages
(home, collection, token, generator, gallery) with ``--think`` seconds between clicks and one
client asks ``/healthz`` every 0.2 s. Every ``--finish-every`` seconds the bench finishes one
poller's request the way the worker does (row updated, then the notice published): the
poller's answer time after the notice is the push latency, and the poller moves on to a new
request. Pollers come from ``--spread-addresses`` loopback addresses, so the per-client cap
(LONG_POLL_PER_CLIENT) sees distinct visitors.

Prints one JSON object per kind (pages, healthz, polls, wake-ups: count, errors, 429s,
p50/p95/p99/max in ms) and a summary line (page and /healthz p95 against the 200 ms target,
the load average).
"""

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import load  # noqa: E402  (bench/load.py: the site, visitors, recorder)

TARGET_P95_MS = 200


class Requests:
    """Unfinished requests handed to pollers, and when each was finished (for wake-ups)."""

    def __init__(self, generator_slug):
        from gan_app.models import Generator

        self.generator = Generator.objects.get(slug=generator_slug)
        self.lock = threading.Lock()
        # One poller at a time makes its row: 200 at once would take 200 of PostgreSQL's
        # connections, which the site under test needs.
        self.db_lock = threading.Lock()
        self.finished_at = {}  # public id -> monotonic time its notice was sent
        self.waiting = []  # public ids pollers wait on

    def new(self):
        """A request a worker has claimed and not finished: it stays so until finish()."""
        from django.db import connection
        from django.utils import timezone

        from gan_app.models import GenerationRequest

        with self.db_lock:
            now = timezone.now()
            req = GenerationRequest.objects.create(
                generator=self.generator,
                kind="single",
                seeds=[random.randrange(2**40)],
                status="running",
                started_at=now,
                heartbeat_at=now,
            )
            connection.close()
        with self.lock:
            self.waiting.append(str(req.public_id))
        return str(req.public_id), req.pk

    def finish_one(self, rng):
        """Finish a waited-on request as the worker does: the row, then the notice."""
        from django.db import connection
        from django.utils import timezone

        from gan_app.generation import render
        from gan_app.models import GenerationRequest

        with self.lock:
            if not self.waiting:
                return
            public_id = self.waiting.pop(rng.randrange(len(self.waiting)))
        pk = GenerationRequest.objects.filter(public_id=public_id).values_list("pk", flat=True)[0]
        GenerationRequest.objects.filter(pk=pk).update(status="done", finished_at=timezone.now())
        with self.lock:
            self.finished_at[public_id] = time.monotonic()
        render.announce([pk], "done")
        connection.close()


def poller(index, args, base, pool, recorder, stop_at):
    import requests

    session = requests.Session()
    source = load.client_address(index, args.spread_addresses)
    if source:
        load.bind_source_address(session, source)
    public_id, _ = pool.new()
    while time.monotonic() < stop_at:
        url = f"{base}/generate/r/{public_id}.json"
        params = {"since": "queued,running", "wait": args.wait}
        started = time.perf_counter()
        try:
            response = session.get(url, params=params, timeout=args.wait + 30)
            ok, status = response.ok, response.status_code
            body = response.json() if ok else {}
        except requests.RequestException as exc:
            ok, status, body = False, str(type(exc).__name__), {}
        ms = (time.perf_counter() - started) * 1000
        recorder.add("poll", ms, ok, f"{status}", throttled=status == 429)
        if status == 429:
            time.sleep(float(response.headers.get("Retry-After", 2)))
        if body.get("status") == "done":
            with pool.lock:
                sent = pool.finished_at.pop(public_id, None)
            if sent is not None:
                recorder.add("wake_after_notice", (time.monotonic() - sent) * 1000, True)
            public_id, _ = pool.new()


def visitor(index, args, base, collection, generator, tokens, recorder, stop_at):
    rng = random.Random(args.seed * 1000 + index)
    source = load.client_address(index + args.pollers, args.spread_addresses)
    visitor = load.Visitor(base, collection, generator, tokens, recorder, rng, source)
    time.sleep(rng.uniform(0, max(args.think, 0.2)))
    while time.monotonic() < stop_at:
        visitor.browse_once(generate_share=0.0)
        time.sleep(args.think * rng.uniform(0.5, 1.5))


def health_prober(base, recorder, stop_at):
    import requests

    session = requests.Session()
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            response = session.get(f"{base}/healthz", timeout=30)
            ok, detail = response.status_code in (200, 503), str(response.status_code)
        except requests.RequestException as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        recorder.add("healthz", (time.perf_counter() - started) * 1000, ok, detail)
        time.sleep(0.2)


def finisher(args, pool, stop_at):
    rng = random.Random(args.seed)
    while time.monotonic() < stop_at:
        time.sleep(args.finish_every)
        pool.finish_one(rng)


def run(args, base, collection, generator, tokens):
    pool = Requests(generator)
    measuring, recorder = load.Recorder(), load.Recorder()
    polls_end = time.monotonic() + args.warmup_seconds + args.seconds
    pollers = [
        threading.Thread(target=poller, args=(i, args, base, pool, recorder, polls_end))
        for i in range(args.pollers)
    ]
    for thread in pollers:
        thread.start()
    time.sleep(args.warmup_seconds)  # every poller is in and waiting
    stop_at = time.monotonic() + args.seconds
    others = [
        threading.Thread(target=health_prober, args=(base, measuring, stop_at)),
        threading.Thread(target=finisher, args=(args, pool, stop_at)),
        *(
            threading.Thread(
                target=visitor,
                args=(i, args, base, collection, generator, tokens, measuring, stop_at),
            )
            for i in range(args.visitors)
        ),
    ]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join()
    load_average = os.getloadavg()
    for thread in pollers:  # each ends with its current wait (at most --wait seconds)
        thread.join()
    for kind, values in recorder.latencies.items():
        measuring.latencies[kind] = values
        measuring.errors[kind] = recorder.errors[kind]
        measuring.throttled[kind] = recorder.throttled[kind]
        measuring.samples[kind] = recorder.samples[kind]
    return measuring, load_average


def report(args, recorder, common, load_average, cpu):
    lines = []
    for kind in sorted(recorder.latencies):
        values = recorder.latencies[kind]
        line = {
            **common,
            "kind": kind,
            "requests": len(values),
            "errors": recorder.errors[kind],
            "throttled_429": recorder.throttled[kind],
            **load.percentiles(values),
        }
        if recorder.samples[kind]:
            line["error_samples"] = recorder.samples[kind]
        lines.append(line)
    pages = [ms for kind in load.PAGE_KINDS for ms in recorder.latencies.get(kind, [])]
    health = recorder.latencies.get("healthz", [])
    p95 = {
        name: load.percentiles(v)["latency_ms_p95"] if v else None
        for name, v in (("page", pages), ("healthz", health))
    }
    lines.append(
        {
            **common,
            "kind": "summary",
            "page_requests": len(pages),
            "page_latency_ms_p95": p95["page"],
            "healthz_latency_ms_p95": p95["healthz"],
            "target_p95_ms": TARGET_P95_MS,
            "met": all(v is not None and v <= TARGET_P95_MS for v in p95.values()),
            "errors": sum(recorder.errors.values()),
            "throttled_429": sum(recorder.throttled.values()),
            "wake_ups": len(recorder.latencies.get("wake_after_notice", [])),
            "cpu_seconds": cpu,
            "load_average_1_5_15": [round(x, 2) for x in load_average],
        }
    )
    for line in lines:
        print(json.dumps(line), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pollers", type=int, default=200)
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--wait", type=float, default=20.0, help="?wait= of each long poll")
    parser.add_argument("--think", type=float, default=1.0, help="visitors' mean pause")
    parser.add_argument("--finish-every", type=float, default=0.1, help="seconds")
    parser.add_argument("--spread-addresses", type=int, default=50)
    parser.add_argument("--size", type=int, default=300, help="demo collection size")
    parser.add_argument(
        "--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2))
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()

    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="nff-bench-poll-"))
    services, base, collection, generator, tokens = load.start_site(args, scratch)
    try:
        common = {
            "bench": "poll",
            "pollers": args.pollers,
            "visitors": args.visitors,
            "wait_s": args.wait,
            "seconds": args.seconds,
            "web_workers": args.web_workers,
            "web_server": "gunicorn asgi",
            "cpu_cores": os.cpu_count(),
            "load_average_before": round(os.getloadavg()[0], 2),
        }
        cpu_before = load.cpu_seconds(services)
        recorder, load_average = run(args, base, collection, generator, tokens)
        cpu = {k: round(v - cpu_before[k], 1) for k, v in load.cpu_seconds(services).items()}
        report(args, recorder, common, load_average, cpu)
    finally:
        load.stop_site(args, services, scratch)


if __name__ == "__main__":
    main()
