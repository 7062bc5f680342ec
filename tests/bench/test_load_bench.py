"""bench/load.py against a real local HTTP server: token discovery and spread client addresses."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.bench import load_bench

PAGE = (
    '<a href="/c/punks/t/7/">7</a><a href="/c/punks/t/12/">12</a>'
    '<div data-token-url="/c/punks/t/__id__/"></div>'
)


@pytest.fixture(scope="module")
def load():
    return load_bench("load")


@pytest.fixture
def site():
    """A page with token links; remembers which address each request came from."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.client_address[0])
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_it_does_not_take_the_link_template_for_a_token(load, site):
    base, _seen = site

    assert load.discover(base, "punks", "gen") == ["12", "7"]


def test_it_spreads_clients_over_loopback_addresses(load, site):
    base, seen = site
    sources = [load.client_address(i, 3) for i in range(4)]

    for source in sources:
        session = requests.Session()
        load.bind_source_address(session, source)
        assert session.get(base + "/c/punks/", timeout=5).status_code == 200

    assert sources == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2"]
    assert seen == sources
    assert load.client_address(0, 0) is None
