"""Generation speed of a published generator, through the serving path (``load_generator``).

    python bench/generate.py --raw [--resolution 64] [--batch 64] [--seconds 10]
    python bench/generate.py --e2e [--resolution 64] [--requests 120] [--clients 1,8] [--tokens N]

``--raw``: the generator alone, from an exported artifact loaded as the generation worker loads
it: throughput in images/s at a batch size, and single-image latency (p50/p95, seed to pixels).
Weights are freshly initialised: speed does not depend on what a network learned.

``--e2e``: what a visitor waits for. A real web server (gunicorn, as ``make run`` starts it), a
real generate worker over Redis and PostgreSQL, a published 64 px generator; each request is
POST /generate/?wait=10 (a new random seed; the answer comes once the image is made, as the
page's Generate button asks) -> GET the PNG permalink, timed from the POST to the last byte of
the PNG. Runs sequentially (``--clients 1``, target p95 <= 50 ms) and with concurrent clients
(requests batched by the worker; 8 clients: p95 <= 150 ms, >= 60 requests/s). Each line also
gives the model's own limits (``model_images_per_second``, ``model_latency_ms_p50``, measured
first in this process) and the ratios to them. Uses its own database (``nff_bench_generate``,
created and dropped), its own Redis key prefix and a scratch media folder, all removed
afterwards. ``--tokens 1000``: the generator's collection holds 1,000 demo tokens with their
analytics and its stored trait classifier, so each image is also labelled (traits, rarity) and
checked against the training images (near-copies), and every query that loads the collection
row meets its analytics cache, as on a real collection whose generator passed the quality gate
(publishing evaluates, which stores the classifier). The classifier is trained for one epoch:
its forward pass costs the same whatever it learned.

Prints one JSON object per line.
"""

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from gan_app.gan import GANConfig, build_generator, export_generator, load_generator
from gan_app.gan.runtime import resolve_runtime

ROOT = Path(__file__).resolve().parent.parent


def fresh_generator(resolution: int):
    """A default-width generator for ``resolution``, exported and loaded like a published one."""
    config = GANConfig(resolution=resolution)
    artifact = io.BytesIO()
    export_generator(build_generator(config), artifact, config=config.to_dict(), epoch=0)
    return load_generator(artifact.getvalue()), config


def bench_raw(args) -> list[dict]:
    generator, config = fresh_generator(args.resolution)
    base = {
        "bench": "generate",
        "mode": "raw",
        "resolution": args.resolution,
        "g_width": config.g_width,
        "parameters": generator.model.count_params(),
        "device": resolve_runtime(config).device,
        # The CPU is shared: a load average above the core count means the figures are low.
        "load_average": round(os.getloadavg()[0], 2),
        "cpu_cores": os.cpu_count(),
    }
    seeds = list(range(args.batch))
    generator.generate(seeds)  # traces the inference graph
    done, started, cpu = 0, time.monotonic(), time.process_time()
    while time.monotonic() - started < args.seconds:
        generator.generate([s + done for s in seeds])
        done += args.batch
    throughput = done / (time.monotonic() - started)
    cpu_seconds = time.process_time() - cpu

    latencies = []
    generator.generate([10**9])
    for seed in range(args.latency_samples):
        started = time.perf_counter()
        generator.generate([seed])
        latencies.append(time.perf_counter() - started)
    p50, p95 = np.percentile(latencies, [50, 95]) * 1000
    return [
        {
            **base,
            "batch": args.batch,
            "images_per_second": round(throughput, 1),
            "images_per_cpu_second": round(done / cpu_seconds, 1),
            "target": 500,
        },
        {
            **base,
            "batch": 1,
            "samples": len(latencies),
            "latency_ms_p50": round(float(p50), 2),
            "latency_ms_p95": round(float(p95), 2),
        },
    ]


# --- End to end --------------------------------------------------------------------------------

E2E_DATABASE = "nff_bench_generate"


def _recreate_database(server, name, drop_only=False):
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def _drop_redis_keys(url, prefix):
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Services:
    """gunicorn + one generate worker in their own process groups, on scratch resources."""

    def __init__(self, args, scratch):
        import secrets

        self.args = args
        self.scratch = scratch
        self.prefix = f"nffbench-{os.getpid()}-{secrets.token_hex(3)}:"
        self.port = _free_port()
        self.overrides = {
            "DJANGO_SETTINGS_MODULE": "nftsite.settings",
            "DATABASE_URL": f"{args.pg_server}/{E2E_DATABASE}",
            "CELERY_BROKER_URL": args.redis_url,
            "CELERY_BROKER_KEY_PREFIX": self.prefix,
            "NFF_VAR_DIR": str(scratch / "var"),
            "MEDIA_ROOT": str(scratch / "media"),
            "STATIC_ROOT": str(scratch / "static"),
            "DEBUG": "false",
            "SECRET_KEY": "bench-not-secret-0123456789abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "GENERATION_RATE_LIMIT": "1000000/m",
            "LOG_LEVEL": "WARNING",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        self.env = {**os.environ, **self.overrides}
        self.procs = []

    def start(self, command, log_name):
        import subprocess

        log = open(self.scratch / log_name, "ab")  # noqa: SIM115 (the child writes to it)
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def start_worker(self, queues, name, concurrency=1, pool="prefork"):
        """A Celery worker (log: worker.log)."""
        return self.start(
            [
                *(sys.executable, "-m", "celery", "-A", "nftsite", "worker", "-Q", queues),
                *("-c", str(concurrency), "-P", pool, "-n", f"{name}@%h"),
                *("--without-gossip", "--without-mingle", "-l", "INFO"),
            ],
            "worker.log",
        )

    def start_web(self, workers, keep_alive=None):
        """gunicorn's asyncio (ASGI) worker on ``self.port``, as ``make run`` starts it (log:
        web.log)."""
        options = ["--keep-alive", str(keep_alive)] if keep_alive else []
        return self.start(
            [
                *(sys.executable, "-m", "gunicorn", "nftsite.asgi", "-k", "asgi"),
                *("-b", f"127.0.0.1:{self.port}", "-w", str(workers)),
                *options,
                *("--error-logfile", "-"),
            ],
            "web.log",
        )

    def wait_for(self, log_name, text, timeout=120):
        deadline = time.monotonic() + timeout
        path = self.scratch / log_name
        while time.monotonic() < deadline:
            if path.exists() and text in path.read_text(errors="replace"):
                return
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a service exited:\n{path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{log_name} never said {text!r}")

    def stop(self):
        import signal
        import subprocess

        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _group_cpu_seconds(pgid) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, ...; utime and stime are fields 14 and 15.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _publish_bench_generator(resolution, tokens=0):
    """A published generator at ``resolution`` (default width, fresh weights) in the bench DB.

    ``tokens``: its collection is that many demo tokens (images, traits, sales) with their
    analytics and trait classifier, as a real collection's generator is; each image is then
    labelled and checked against the training images for near-copies, and the collection row
    carries its analytics cache.
    0: a collection with no tokens (the figures of earlier runs)."""
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from collections_app.models import Collection
    from gan_app.models import Generator

    config = GANConfig(resolution=resolution)
    artifact = io.BytesIO()
    sha = export_generator(build_generator(config), artifact, config=config.to_dict(), epoch=0)
    if tokens:
        from collections_app.analytics.compute import compute
        from collections_app.demo.build import build_demo_collection
        from gan_app.evaluation import reports

        collection, _ = build_demo_collection("bench", tokens)
        compute(collection)
        reports.classifier_for(collection, epochs=1)
    else:
        collection = Collection.objects.create(slug="bench", name="Bench")
    generator = Generator(
        slug=f"bench-{resolution}",
        name=f"Bench {resolution} px",
        collection=collection,
        resolution=resolution,
        latent_dim=config.latent_dim,
        epoch=0,
        model_sha256=sha,
        is_published=True,
        is_listed=True,
        published_at=timezone.now(),
    )
    generator.model_file.save("bench.zip", ContentFile(artifact.getvalue()), save=False)
    generator.save()
    return generator, config


def _one_request(session, base, slug, seed, csrf):
    """Seconds from the POST to the last byte of the PNG, and the server's own figure."""
    started = time.perf_counter()
    # As the page's Generate button asks: the POST answers once the image is made.
    response = session.post(
        f"{base}/generate/?wait=10",
        data={"generator": slug, "seed": str(seed)},
        headers={"Accept": "application/json", "X-CSRFToken": csrf, "Referer": f"{base}/"},
        timeout=30,
    )
    if response.status_code not in (200, 202):
        raise RuntimeError(f"POST answered {response.status_code}: {response.text[:300]}")
    body = response.json()
    while body["status"] in ("queued", "running"):
        body = session.get(
            f"{base}{body['status_url']}",
            params={"since": "queued,running", "wait": 10},
            headers={"Accept": "application/json"},
            timeout=30,
        ).json()
    if body["status"] != "done":
        raise RuntimeError(f"request {body['id']} {body['status']}: {body.get('error')}")
    png = session.get(f"{base}{body['images'][0]['png']}", timeout=30)
    if png.status_code != 200 or not png.content.startswith(b"\x89PNG"):
        raise RuntimeError(f"permalink answered {png.status_code}")
    return time.perf_counter() - started, body.get("elapsed_ms")


def _client_session(base):
    import secrets
    import string

    import requests

    session = requests.Session()
    # A CSRF secret of our own: Django accepts the unmasked secret as the token.
    csrf = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    session.cookies.set("csrftoken", csrf, domain="127.0.0.1")
    return session, csrf


def _run_clients(base, slug, clients, total, seeds):
    from concurrent.futures import ThreadPoolExecutor

    def worker(index):
        session, csrf = _client_session(base)
        return [
            _one_request(session, base, slug, next(seeds), csrf)
            for _ in range(index, total, clients)
        ]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for chunk in pool.map(worker, range(clients)) for r in chunk]
    return results, time.perf_counter() - started


def model_limits(resolution: int, seconds: float = 3.0, samples: int = 100) -> dict:
    """What the model alone allows at ``resolution`` (the physical limit of the e2e figures):
    images/s in 64-seed batches, and one seed's latency (p50)."""
    generator, _ = fresh_generator(resolution)
    generator.generate(list(range(64)))
    done, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        generator.generate(list(range(done, done + 64)))
        done += 64
    throughput = done / (time.monotonic() - started)
    latencies = []
    for seed in range(samples):
        begun = time.perf_counter()
        generator.generate([seed])
        latencies.append(time.perf_counter() - begun)
    return {
        "model_images_per_second": round(throughput, 1),
        "model_latency_ms_p50": round(float(np.percentile(latencies, 50)) * 1000, 2),
    }


def bench_e2e(args) -> list[dict]:
    import random
    import shutil
    import tempfile

    limits = model_limits(args.resolution)  # before the services start, on a quiet CPU

    scratch = Path(tempfile.mkdtemp(prefix="nff-bench-generate-"))
    services = Services(args, scratch)
    os.environ.update(services.overrides)  # this process sets up Django on them too
    _recreate_database(args.pg_server, E2E_DATABASE)
    figures = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        generator, config = _publish_bench_generator(args.resolution, args.tokens)
        from django.db import connection

        connection.close()
        worker = services.start_worker(
            "generate", "bench", concurrency=args.worker_concurrency, pool=args.pool
        )
        web = services.start_web(args.web_workers)
        services.wait_for("worker.log", f"generator cache: warmed {generator.slug}")
        services.wait_for("web.log", "Booting worker")
        base = f"http://127.0.0.1:{services.port}"
        rng = random.Random(args.seed)
        seeds = iter(lambda: rng.randrange(2**53), None)
        _run_clients(base, generator.slug, 2, 10, seeds)  # warm: web workers, connections
        common = {
            "bench": "generate",
            "mode": "e2e",
            "resolution": args.resolution,
            "g_width": config.g_width,
            "worker_pool": args.pool,
            "worker_concurrency": args.worker_concurrency,
            "web_workers": args.web_workers,
            "web_server": "gunicorn asgi",
            "collection_tokens": args.tokens,
            "database": "postgresql",
            "broker": "redis",
            "cpu_cores": os.cpu_count(),
        }
        for clients in args.clients:
            load_before = os.getloadavg()[0]
            cpu_before = [_group_cpu_seconds(p.pid) for p in (worker, web)]
            results, wall = _run_clients(base, generator.slug, clients, args.requests, seeds)
            cpu = [
                _group_cpu_seconds(p.pid) - b
                for p, b in zip((worker, web), cpu_before, strict=True)
            ]
            latencies = np.array([r[0] for r in results]) * 1000
            server = np.array([r[1] for r in results if r[1] is not None], dtype=float)
            p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
            figures.append(
                {
                    **common,
                    "clients": clients,
                    "requests": len(results),
                    "latency_ms_p50": round(float(p50), 1),
                    "latency_ms_p95": round(float(p95), 1),
                    "latency_ms_p99": round(float(p99), 1),
                    "latency_ms_max": round(float(latencies.max()), 1),
                    "server_ms_p50": round(float(np.percentile(server, 50)), 1)
                    if len(server)
                    else None,
                    "requests_per_second": round(len(results) / wall, 1),
                    # Work done per request, which other processes' load does not inflate much.
                    "worker_cpu_ms_per_request": round(cpu[0] * 1000 / len(results), 1),
                    "web_cpu_ms_per_request": round(cpu[1] * 1000 / len(results), 1),
                    **limits,
                    # Ratios to the model alone: how much of the hardware the path leaves.
                    "throughput_over_model": round(
                        len(results) / wall / limits["model_images_per_second"], 4
                    ),
                    "latency_p50_over_model": round(float(p50) / limits["model_latency_ms_p50"], 1),
                    "target_p95_ms": 50 if clients == 1 else 150,
                    "load_average_before": round(load_before, 2),
                    "load_average_after": round(os.getloadavg()[0], 2),
                }
            )
            print(json.dumps(figures[-1]), flush=True)
        # The same seed again: served from storage, no rendering.
        session, csrf = _client_session(base)
        seed = next(seeds)
        _one_request(session, base, generator.slug, seed, csrf)
        again = [_one_request(session, base, generator.slug, seed, csrf)[0] for _ in range(30)]
        figures.append(
            {
                **common,
                "clients": 1,
                "requests": len(again),
                "case": "seed already made",
                "latency_ms_p50": round(float(np.percentile(again, 50) * 1000), 1),
                "latency_ms_p95": round(float(np.percentile(again, 95) * 1000), 1),
                "load_average_after": round(os.getloadavg()[0], 2),
            }
        )
        print(json.dumps(figures[-1]), flush=True)
    finally:
        services.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: S110 (Django may not be set up when start-up failed)
            pass
        _recreate_database(args.pg_server, E2E_DATABASE, drop_only=True)
        _drop_redis_keys(args.redis_url, services.prefix)
        if args.keep_logs:
            print(f"# logs kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return []


MODES = {"raw": bench_raw, "e2e": bench_e2e}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--raw", dest="mode", action="store_const", const="raw")
    modes.add_argument("--e2e", dest="mode", action="store_const", const="e2e")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--requests", type=int, default=120, help="e2e: requests per round")
    parser.add_argument(
        "--clients",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[1, 8],
        help="e2e: concurrent clients per round, comma separated",
    )
    parser.add_argument(
        "--tokens",
        type=int,
        default=0,
        help="e2e: demo tokens in the generator's collection (0: none, as earlier runs)",
    )
    parser.add_argument("--pool", default="prefork", help="e2e: the worker's pool")
    parser.add_argument("--worker-concurrency", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    for figures in MODES[args.mode or "raw"](args):
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
