"""bench/pages.py waits for the site it built against a real local HTTP server."""

import importlib.util
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PAGES = Path(__file__).resolve().parents[2] / "bench" / "pages.py"


@pytest.fixture(scope="module")
def pages():
    spec = importlib.util.spec_from_file_location("bench_pages", PAGES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve(statuses):
    """A server answering each path with its status from ``statuses`` (404 for others)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(statuses.get(self.path, 404))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_it_takes_a_site_without_workers_as_up(pages):
    """/healthz says 503 (degraded) while no worker listens: the pages still answer."""
    server, url = serve({"/": 200, "/healthz": 503})
    try:
        started = time.monotonic()
        pages.wait_up(url, timeout=10)
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()


def test_it_fails_at_once_on_an_error_page(pages):
    server, url = serve({"/": 500})
    try:
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError):
            pages.wait_up(url, timeout=10)
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()
