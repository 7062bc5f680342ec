"""A real HTTP server that imitates the OpenSea API v2 for one collection (tests and benches).

It serves the endpoints the collector uses, in the shapes the real API returns::

    GET /api/v2/collections/{slug}                        collection, total_supply, payment_tokens
    GET /api/v2/collections/{slug}/stats                  {"total": {...}, "intervals": [...]}
    GET /api/v2/collection/{slug}/nfts?limit=&next=       {"nfts": [...], "next": cursor}
    GET /api/v2/chain/{chain}/contract/{addr}/nfts/{id}   {"nft": {... traits, owners ...}}
    GET /api/v2/events/collection/{slug}?event_type=sale  {"asset_events": [...], "next": cursor}
    GET /api/v2/traits/{slug}                             {"categories": ..., "counts": ...}
    GET /images/{slug}/{id}.png                           the image bytes

with opaque, tamper-checked cursors, an optional required ``X-API-KEY``, and faults to inject:
random 5xx (``error_rate``), random 429 with ``Retry-After`` (``throttle_rate``), a server-side
rate limit answered with 429, bursts of 503s, slow answers, broken images, details that are
missing (404) or keep failing (503).

The data comes from the synthetic demo collection, so nothing outside the repository is
needed. Usage::

    with FakeOpenSea(FakeCollection.from_demo(size=300), error_rate=0.05) as api:
        ingest(api.url, ...)
        api.stats["api_requests"]
"""

import base64
import contextlib
import hashlib
import hmac
import json
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from collections_app.demo import build as demo

ETH_USD = "3000.000000"
NFT_PAGE_MAX = 200
EVENT_PAGE_MAX = 50


@dataclass
class FakeCollection:
    """One collection's data, held the way the API would produce it."""

    slug: str
    name: str
    contract: str
    tokens: list  # demo.DemoToken, in token order
    events: list = field(default_factory=list)  # sale events, newest first
    chain: str = "ethereum"

    @classmethod
    def from_demo(cls, size=200, seed=3, slug="fake-punks", extra_sales=True):
        tokens = demo.demo_tokens(size, seed, slug)
        collection = cls(
            slug=slug,
            name=demo.collection_name(slug),
            contract=demo.contract_address(slug, seed),
            tokens=tokens,
        )
        collection.events = collection._sale_events(random.Random(seed), extra_sales)
        return collection

    def _sale_events(self, rng, extra_sales):
        events = []
        for token in self.tokens:
            last = token.metadata.get("last_sale")
            if not last:
                continue
            moment = int(
                datetime.fromisoformat(last["event_timestamp"]).replace(tzinfo=UTC).timestamp()
            )
            history = [(moment, last["total_price"])]
            for back in range(rng.randint(0, 2) if extra_sales else 0):
                older_price = str(int(last["total_price"]) * rng.randint(40, 95) // 100)
                history.append((moment - (back + 1) * rng.randint(86400, 86400 * 90), older_price))
            for when, wei in history:
                events.append(self._sale_event(token, when, wei))
        events.sort(key=lambda e: (-e["event_timestamp"], e["transaction"]))
        return events

    def _sale_event(self, token, when, wei):
        tx = "0x" + hashlib.sha256(f"{self.slug}:{token.token_id}:{when}".encode()).hexdigest()
        return {
            "event_type": "sale",
            "order_hash": "0x" + hashlib.md5(tx.encode(), usedforsecurity=False).hexdigest(),
            "chain": self.chain,
            "protocol_address": "0x0000000000000068f116a894984e2db1123eb395",
            "closing_date": when,
            "nft": self.nft_summary(token, base_url="", with_image=False),
            "quantity": 1,
            "seller": "0x" + tx[2:42],
            "buyer": "0x" + tx[-40:],
            "payment": {
                "quantity": wei,
                "token_address": "0x0000000000000000000000000000000000000000",
                "decimals": 18,
                "symbol": "ETH",
            },
            "transaction": tx,
            "event_timestamp": when,
        }

    def token(self, token_id):
        index = int(token_id) if token_id.isdigit() else -1
        return self.tokens[index] if 0 <= index < len(self.tokens) else None

    def nft_summary(self, token, base_url, with_image=True):
        image = f"{base_url}/images/{self.slug}/{token.token_id}.png" if with_image else None
        return {
            "identifier": token.token_id,
            "collection": self.slug,
            "contract": self.contract,
            "token_standard": "erc721",
            "name": token.metadata["name"],
            "description": None,
            "image_url": image,
            "display_image_url": image,
            "display_animation_url": None,
            "metadata_url": f"ipfs://bafyfake/{token.token_id}",
            "opensea_url": f"https://opensea.io/assets/{self.chain}/{self.contract}/{token.token_id}",
            "updated_at": "2024-01-01T00:00:00.000000",
            "is_disabled": False,
            "is_nsfw": False,
        }

    def nft_detail(self, token, base_url):
        return {
            **self.nft_summary(token, base_url),
            "animation_url": None,
            "is_suspicious": False,
            "creator": self.contract,
            "traits": [
                {
                    "trait_type": t["trait_type"],
                    "display_type": None,
                    "max_value": None,
                    "value": t["value"],
                }
                for t in token.metadata["traits"]
            ],
            "owners": [{"address": token.metadata["owner"]["address"], "quantity": 1}],
            "rarity": None,
        }

    def collection_object(self, base_url):
        return {
            "collection": self.slug,
            "name": self.name,
            "description": f"{self.name}, served by the fake OpenSea API.",
            "image_url": f"{base_url}/images/{self.slug}/0.png",
            "banner_image_url": "",
            "owner": self.contract,
            "safelist_status": "verified",
            "category": "pfps",
            "is_disabled": False,
            "is_nsfw": False,
            "trait_offers_enabled": True,
            "collection_offers_enabled": True,
            "opensea_url": f"https://opensea.io/collection/{self.slug}",
            "project_url": "https://example.invalid/project",
            "wiki_url": "",
            "discord_url": "",
            "telegram_url": "",
            "twitter_username": "",
            "instagram_username": "",
            "contracts": [{"address": self.contract, "chain": self.chain}],
            "editors": [],
            "fees": [],
            "rarity": None,
            "payment_tokens": [
                {
                    "symbol": "ETH",
                    "address": "0x0000000000000000000000000000000000000000",
                    "chain": self.chain,
                    "image": "",
                    "name": "Ether",
                    "decimals": 18,
                    "eth_price": "1.000000000000000",
                    "usd_price": ETH_USD,
                },
                {
                    "symbol": "WETH",
                    "address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
                    "chain": self.chain,
                    "image": "",
                    "name": "Wrapped Ether",
                    "decimals": 18,
                    "eth_price": "1.000000000000000",
                    "usd_price": ETH_USD,
                },
            ],
            "total_supply": len(self.tokens),
            "created_date": "2021-06-01",
        }

    def stats_object(self):
        volume = sum(int(e["payment"]["quantity"]) for e in self.events) / 10**18
        sales = len(self.events)
        return {
            "total": {
                "volume": volume,
                "sales": sales,
                "average_price": volume / sales if sales else 0,
                "num_owners": len(self.tokens),
                "market_cap": 0,
                "floor_price": 0.1,
                "floor_price_symbol": "ETH",
            },
            "intervals": [
                {
                    "interval": name,
                    "volume": 0,
                    "volume_diff": 0,
                    "volume_change": 0,
                    "sales": 0,
                    "sales_diff": 0,
                    "average_price": 0,
                }
                for name in ("one_day", "seven_day", "thirty_day")
            ],
        }

    def traits_object(self):
        counts = {}
        for token in self.tokens:
            for t in token.metadata["traits"]:
                counts.setdefault(t["trait_type"], Counter())[t["value"]] += 1
        return {
            "categories": dict.fromkeys(counts, "string"),
            "counts": {name: dict(values) for name, values in counts.items()},
        }


class FakeOpenSea:
    """The server. Start with ``with FakeOpenSea(...) as api`` or ``start()``/``stop()``."""

    def __init__(
        self,
        collection,
        *,
        api_key=None,
        error_rate=0.0,
        throttle_rate=0.0,
        retry_after="1",
        rate_limit=None,
        bursts=(),
        throttle_first=0,
        slow_first=0,
        slow_rate=0.0,
        slow_seconds=0.0,
        latency=0.0,
        image_error_rate=0.0,
        corrupt_images=(),
        missing_details=(),
        failing_details=(),
        failing_events=False,
        seed=1,
    ):
        self.collection = collection
        self.api_key = api_key
        self.error_rate = error_rate
        self.throttle_rate = throttle_rate
        self.retry_after = retry_after
        self.rate_limit = rate_limit
        self.bursts = list(bursts)  # (first API request number, how many 503s in a row)
        self.throttle_first = throttle_first  # the first N API requests get a 429
        self.slow_first = slow_first  # the first N API requests take slow_seconds
        self.slow_rate = slow_rate
        self.slow_seconds = slow_seconds
        self.latency = latency
        self.image_error_rate = image_error_rate
        self.corrupt_images = {str(t) for t in corrupt_images}
        self.missing_details = {str(t) for t in missing_details}  # 404, for good
        self.failing_details = {str(t) for t in failing_details}  # 503, for as long as it runs
        self.failing_events = failing_events  # every sale-event page answers 503 while True
        self._rng = random.Random(seed)
        self._secret = hashlib.sha256(f"cursor-secret-{seed}".encode()).digest()
        self._lock = threading.Lock()
        self._recent = deque()
        self.stats = Counter()
        self.api_times = []  # monotonic time of every API request, answered or not
        self.keys_seen = Counter()
        self.nft_cursors = []  # the ``next`` of every NFT page request (None: the first page)
        self.server = None
        self.thread = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self):
        handler = type("Handler", (_Handler,), {"api": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    # --- cursors ------------------------------------------------------------------------------
    def make_cursor(self, kind, offset):
        payload = json.dumps({"k": kind, "o": offset}).encode()
        tag = hmac.new(self._secret, payload, "sha256").digest()[:8]
        return base64.urlsafe_b64encode(tag + payload).decode().rstrip("=")

    def read_cursor(self, kind, cursor):
        if not cursor:
            return 0
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            tag, payload = raw[:8], raw[8:]
            if not hmac.compare_digest(tag, hmac.new(self._secret, payload, "sha256").digest()[:8]):
                return None
            data = json.loads(payload)
        except ValueError:
            return None
        return data["o"] if data.get("k") == kind else None

    # --- fault injection ----------------------------------------------------------------------
    def api_fault(self):
        """(status, headers, body) to answer instead of the real thing, or None."""
        with self._lock:
            number = self.stats["api_requests"]
            self.stats["api_requests"] += 1
            now = time.monotonic()
            self.api_times.append(now)
            if self.rate_limit:
                self._recent.append(now)
                while self._recent and now - self._recent[0] > 1.0:
                    self._recent.popleft()
                if len(self._recent) > self.rate_limit:
                    self.stats["rate_limited"] += 1
                    return 429, {"Retry-After": "1"}, {"detail": "Request was throttled."}
            if number < self.throttle_first:
                self.stats["injected_429"] += 1
                return 429, {"Retry-After": self.retry_after}, {"detail": "Request was throttled."}
            for first, length in self.bursts:
                if first <= number < first + length:
                    self.stats["burst_503"] += 1
                    return 503, {}, {"detail": "Service Unavailable"}
            roll = self._rng.random()
            if roll < self.error_rate:
                self.stats["injected_5xx"] += 1
                status = self._rng.choice([500, 502, 503, 504])
                return status, {}, {"detail": "injected server error"}
            if roll < self.error_rate + self.throttle_rate:
                self.stats["injected_429"] += 1
                return 429, {"Retry-After": self.retry_after}, {"detail": "Request was throttled."}
            slow = number < self.slow_first or self._rng.random() < self.slow_rate
        if slow:
            self.stats["slow"] += 1
            time.sleep(self.slow_seconds)
        return None

    def image_fault(self):
        with self._lock:
            self.stats["image_requests"] += 1
            if self._rng.random() < self.image_error_rate:
                self.stats["image_5xx"] += 1
                return True
        return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    # Headers and body go out in two writes; with Nagle's algorithm the second one waits for
    # the client's delayed ACK, adding 40 ms to every answer that no real server adds.
    disable_nagle_algorithm = True
    api = None  # set per server

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        api = self.api
        parts = urlsplit(self.path)
        segments = [s for s in parts.path.split("/") if s]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        base = f"http://{self.headers.get('Host')}"
        if segments[:1] == ["images"]:
            return self.serve_image(segments)
        if segments[:2] != ["api", "v2"]:
            return self.send_json(404, {"errors": ["Not found"]})
        key = self.headers.get("X-API-KEY")
        api.keys_seen[key] += 1
        if api.latency:
            time.sleep(api.latency)
        if api.api_key and key != api.api_key:
            return self.send_json(401, {"detail": "Invalid API key"})
        fault = api.api_fault()
        if fault:
            status, headers, body = fault
            return self.send_json(status, body, headers)
        self.route(segments[2:], query, base)

    def route(self, rest, query, base):
        api, c = self.api, self.api.collection
        if rest[:1] == ["collections"] and len(rest) >= 2 and rest[1] == c.slug:
            if len(rest) == 2:
                return self.send_json(200, c.collection_object(base))
            if rest[2:] == ["stats"]:
                return self.send_json(200, c.stats_object())
        if rest == ["collection", c.slug, "nfts"]:
            return self.page(
                query, "nfts", NFT_PAGE_MAX, c.tokens, lambda t: c.nft_summary(t, base)
            )
        if rest == ["events", "collection", c.slug]:
            if api.failing_events:
                return self.send_json(503, {"detail": "Service Unavailable"})
            if query.get("event_type", "sale") != "sale":
                return self.send_json(200, {"asset_events": [], "next": None})
            return self.page(query, "asset_events", EVENT_PAGE_MAX, c.events, lambda e: e)
        if len(rest) == 6 and rest[0] == "chain" and rest[2] == "contract" and rest[4] == "nfts":
            token = c.token(rest[5]) if rest[3].lower() == c.contract else None
            if token is None or rest[5] in api.missing_details:
                return self.send_json(404, {"errors": [f"NFT {rest[5]} not found"]})
            if rest[5] in api.failing_details:
                return self.send_json(503, {"detail": "Service Unavailable"})
            api.stats["detail_requests"] += 1
            return self.send_json(200, {"nft": c.nft_detail(token, base)})
        if rest == ["traits", c.slug]:
            return self.send_json(200, c.traits_object())
        return self.send_json(404, {"errors": ["Not found"]})

    def page(self, query, key, maximum, items, render):
        try:
            limit = int(query.get("limit", 50))
        except ValueError:
            return self.send_json(400, {"errors": ["limit must be an integer"]})
        if not 1 <= limit <= maximum:
            return self.send_json(400, {"errors": [f"limit must be between 1 and {maximum}"]})
        offset = self.api.read_cursor(key, query.get("next"))
        if offset is None:
            return self.send_json(400, {"errors": ["invalid cursor"]})
        chunk = items[offset : offset + limit]
        more = offset + limit < len(items)
        self.api.stats[f"{key}_pages"] += 1
        if key == "nfts":
            self.api.nft_cursors.append(query.get("next"))
        next_cursor = self.api.make_cursor(key, offset + limit) if more else None
        return self.send_json(200, {key: [render(i) for i in chunk], "next": next_cursor})

    def serve_image(self, segments):
        api = self.api
        if len(segments) != 3 or segments[1] != api.collection.slug:
            return self.send_bytes(404, b"not found", "text/plain")
        token_id = segments[2].removesuffix(".png")
        token = api.collection.token(token_id)
        if token is None:
            return self.send_bytes(404, b"not found", "text/plain")
        if api.image_fault():
            return self.send_bytes(503, b"try again", "text/plain")
        data = token.png
        if token_id in api.corrupt_images:
            data = data[: len(data) // 2]  # a truncated PNG: always broken, not transient
        return self.send_bytes(200, data, "image/png")

    def send_json(self, status, body, headers=None):
        self.send_bytes(status, json.dumps(body).encode(), "application/json", headers)

    def send_bytes(self, status, data, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)  # unless the client timed out and left


def main():
    """Serve a fake collection until interrupted: ``python -m tests.fake_opensea --size 500``."""
    import argparse
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nftsite.settings")
    django.setup()
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--slug", default="fake-punks")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=None, help="answer 429 above it")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API answer")
    args = parser.parse_args()
    collection = FakeCollection.from_demo(size=args.size, seed=args.seed, slug=args.slug)
    options = {
        "error_rate": args.error_rate,
        "rate_limit": args.rate_limit,
        "latency": args.latency,
    }
    with FakeOpenSea(collection, **options) as api:
        print(f"Fake OpenSea API for {args.slug} at {api.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
