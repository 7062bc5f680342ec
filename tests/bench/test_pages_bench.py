"""bench/pages.py waits for the site it built against a real local HTTP server."""

import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.bench import load_bench


@pytest.fixture(scope="module")
def pages():
    return load_bench("pages")


@pytest.fixture
def serve():
    """Starts a server answering each path with its status from a dict (404 for others);
    returns its URL. Stopped after the test."""
    servers = []

    def start(statuses):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(statuses.get(self.path, 404))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_it_takes_a_site_without_workers_as_up(pages, serve):
    """/healthz says 503 (degraded) while no worker listens: the pages still answer."""
    url = serve({"/": 200, "/healthz": 503})
    started = time.monotonic()
    pages.wait_up(url, timeout=10)
    assert time.monotonic() - started < 5


def test_it_fails_at_once_on_an_error_page(pages, serve):
    url = serve({"/": 500})
    started = time.monotonic()
    with pytest.raises(urllib.error.HTTPError):
        pages.wait_up(url, timeout=10)
    assert time.monotonic() - started < 5
