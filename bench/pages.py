"""Page-timing benchmark: public pages in headless Chromium on a cold cache.

Builds a throwaway site (SQLite in a temporary folder, the demo collection with its analytics,
collected static files as deployed), starts gunicorn on it and opens each page in a fresh
browser context (no cache). Prints one JSON line per page and run:

    {"page": ..., "dom_content_loaded_ms": ..., "charts_drawn_ms": ..., "bytes": ...}

``charts_drawn_ms``: when every chart container ([data-figure]) holds plotly's SVG.

    python bench/pages.py [--size 1000] [--runs 3] [--url http://127.0.0.1:8000]

With --url it measures a site already running (with demo data) instead of building one.
Targets: DOMContentLoaded <= 300 ms, charts drawn <= 1 s.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM_ARGS  # noqa: E402

PAGES = ["/", "/c/{demo}/", "/compare/", "/gallery/"]
CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-figure]')]
    .every(el => el.querySelector('.main-svg'))"""


def emit(**figures):
    print(json.dumps(figures), flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env, *args):
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def start_site(folder, size, slug):
    """A fresh site in ``folder``; returns (url, gunicorn process)."""
    env = {
        **os.environ,
        "NFF_VAR_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": f"filesystem://{folder / 'broker'}",
    }
    env.pop("STATIC_ROOT", None)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "make_demo_collection", "--slug", slug, "--size", str(size), "-v", "0")
    manage(env, "analytics", slug, "-v", "0")
    manage(env, "collectstatic", "--noinput", "-v", "0")
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "nftsite.asgi", "-k", "asgi"),
            *("-b", f"127.0.0.1:{port}", "-w", "2"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_up(url)
    return url, server


def wait_up(url, timeout=60):
    """Until the home page answers. Not /healthz: with no worker running it answers 503
    (degraded), and the pages are all this bench needs. An HTTP error page fails at once."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=5)
            return
        except urllib.error.HTTPError:
            raise
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def measure(browser, url):
    """One cold load: a new context has an empty cache."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sizes = []
    page.on("response", lambda r: sizes.append(int(r.headers.get("content-length") or 0)))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(CHARTS_DRAWN, timeout=30000)
    timing = page.evaluate(
        """() => {
            const nav = performance.getEntriesByType('navigation')[0];
            return {dcl: nav.domContentLoadedEventEnd, now: performance.now(),
                    charts: document.querySelectorAll('[data-figure]').length};
        }"""
    )
    context.close()
    return {
        "dom_content_loaded_ms": round(timing["dcl"]),
        "charts_drawn_ms": round(timing["now"]) if timing["charts"] else None,
        "charts": timing["charts"],
        "bytes_on_wire": sum(sizes),
    }


def medians(results):
    dcl = statistics.median(r["dom_content_loaded_ms"] for r in results)
    charts = [r["charts_drawn_ms"] for r in results if r["charts_drawn_ms"] is not None]
    return {
        "dom_content_loaded_ms": dcl,
        "charts_drawn_ms": statistics.median(charts) if charts else None,
    }


def run(base, runs, demo_slug):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for path in PAGES:
            path = path.format(demo=demo_slug)
            results = [measure(browser, base + path) for _ in range(runs)]
            for result in results:
                emit(page=path, **result)
            emit(page=path, summary="median", **medians(results))
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000, help="demo collection size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--url", default="", help="measure this running site instead")
    parser.add_argument("--demo-slug", default="pixel-fakes")
    args = parser.parse_args()
    if args.url:
        run(args.url.rstrip("/"), args.runs, args.demo_slug)
        return
    with tempfile.TemporaryDirectory(prefix="nff-bench-pages-") as tmp:
        url, server = start_site(Path(tmp), args.size, args.demo_slug)
        try:
            run(url, args.runs, args.demo_slug)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
