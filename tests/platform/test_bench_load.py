"""bench/load.py's own plumbing: which token links it follows, which address it sends from."""

import http.server
import importlib.util
import threading
from pathlib import Path

import pytest

from collections_app import analytics
from tests.analytics.factory import punks_like

LOAD = Path(__file__).resolve().parents[2] / "bench" / "load.py"


@pytest.fixture(scope="module")
def load():
    spec = importlib.util.spec_from_file_location("bench_load", LOAD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
def test_it_follows_token_links_but_not_the_chart_url_template(client, load):
    collection = punks_like(n=12)
    analytics.compute(collection)
    html = client.get(f"/c/{collection.slug}/").content.decode()
    assert "/t/__id__/" in html  # the charts' template is on the page

    ids = load.token_ids_in(html, collection.slug)

    assert ids and "__id__" not in ids
    assert set(ids) <= set(collection.tokens.values_list("token_id", flat=True))


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_it_spreads_clients_over_loopback_addresses(load):
    import requests

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        seen = set()
        for index in range(6):
            session = load.bind_session(requests.Session(), load.source_address(index, 3))
            seen.add(session.get(url, timeout=10).text)
    finally:
        server.shutdown()

    assert seen == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
    assert load.source_address(5, 0) is None
