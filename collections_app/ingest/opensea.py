"""OpenSea API v2 client: paced by a token bucket, patient with 429s, persistent with 5xx.

One ``requests.Session`` is shared by the ingest's threads. API calls take a token from a
client-side bucket first, so a whole ingest stays under ``OPENSEA_RATE_LIMIT`` requests per
second instead of bouncing off the server's limit; when the server still answers 429, its
``Retry-After`` pauses every thread, not just the one that was told. Server errors, timeouts and
dropped connections are retried with exponential backoff and jitter; other 4xx answers are
final. Image downloads go to image hosts, not the API, and are not paced.

The API key lives only in this object's session headers. Every message this module produces
(exceptions, logs) passes through :meth:`OpenSeaClient.redact`, and the key is never part of a
URL, so it cannot leak into job rows, task arguments, logs or error pages.
"""

import base64
import logging
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

RETRY_STATUSES = {500, 502, 503, 504, 520, 522, 524}
MAX_RETRY_AFTER = 300.0
NFT_PAGE_LIMIT = 200  # the v2 maximum for /collection/{slug}/nfts
EVENT_PAGE_LIMIT = 50  # the v2 maximum for /events/...
PERMANENT_REQUEST_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.TooManyRedirects,
)
USER_AGENT = "non-fungible-fakes/1 (+https://github.com/non-fungible-fakes)"


class OpenSeaError(Exception):
    """A request failed; the message is safe to store and show (no key in it).

    ``transient`` is True when the server kept failing or throttling past every retry: the
    request may well work later, so the ingest stops (resumably) rather than writing the
    item off.
    """

    def __init__(self, message, status=None, transient=False):
        super().__init__(message)
        self.status = status
        self.transient = transient


class NotFound(OpenSeaError):
    pass


class TokenBucket:
    """Thread-safe pacing: ``acquire()`` blocks until the caller may send one request.

    Each caller reserves the next free slot, so N waiting threads leave exactly 1/rate seconds
    between their requests (after an idle spell up to ``burst`` may go at once).
    ``hold_off()`` moves the next free slot to a moment the server named.
    """

    def __init__(self, rate, burst=1, clock=time.monotonic, sleep=time.sleep):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self.burst = max(1, int(burst))
        self._clock, self._sleep = clock, sleep
        self._next = clock()
        self._lock = threading.Lock()

    def acquire(self):
        with self._lock:
            now = self._clock()
            slot = max(self._next, now - (self.burst - 1) * self.interval)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def hold_off(self, seconds):
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)


@dataclass
class Page:
    items: list
    next: str | None


class OpenSeaClient:
    def __init__(
        self,
        api_key,
        base_url=None,
        *,
        rate=None,
        pool_size=None,
        timeout=(5.0, 30.0),
        max_retries=None,
        max_throttles=30,
        backoff_base=None,
        backoff_cap=30.0,
        max_image_bytes=None,
    ):
        self.base_url = (base_url or settings.OPENSEA_API_URL).rstrip("/")
        if urlsplit(self.base_url).scheme not in {"http", "https"}:
            raise ValueError(f"OpenSea API URL must be http(s): {self.base_url!r}")
        self._api_key = api_key or ""
        self.bucket = TokenBucket(rate or settings.OPENSEA_RATE_LIMIT)
        self.timeout = timeout
        self.max_retries = settings.OPENSEA_MAX_RETRIES if max_retries is None else max_retries
        self.max_throttles = max_throttles
        self.backoff_base = backoff_base or settings.OPENSEA_BACKOFF_SECONDS
        self.backoff_cap = backoff_cap
        self.max_image_bytes = max_image_bytes or settings.INGEST_MAX_IMAGE_BYTES
        self.api_requests = 0  # paced calls to the API, retries included
        self.downloads = 0  # image downloads, retries included
        self.retries = 0
        self._count_lock = threading.Lock()
        size = pool_size or settings.OPENSEA_MAX_WORKERS * 2 + 2
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        if self._api_key:
            self.session.headers["X-API-KEY"] = self._api_key

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.session.close()

    def redact(self, text):
        text = str(text)
        return text.replace(self._api_key, "[redacted]") if self._api_key else text

    # --- Endpoints ------------------------------------------------------------------------
    def collection(self, slug):
        return self.get_json(f"/api/v2/collections/{quote(slug)}")

    def collection_stats(self, slug):
        return self.get_json(f"/api/v2/collections/{quote(slug)}/stats")

    def nfts_page(self, slug, next_cursor=None, limit=NFT_PAGE_LIMIT):
        params = {"limit": limit, **({"next": next_cursor} if next_cursor else {})}
        data = self.get_json(f"/api/v2/collection/{quote(slug)}/nfts", params)
        return Page(_list(data, "nfts"), data.get("next") or None)

    def nft(self, chain, contract, identifier):
        path = f"/api/v2/chain/{quote(chain)}/contract/{quote(contract)}/nfts/{quote(identifier)}"
        data = self.get_json(path)
        if not isinstance(data.get("nft"), dict):
            raise OpenSeaError(f"{path}: the answer has no 'nft' object")
        return data["nft"]

    def sale_events_page(self, slug, next_cursor=None, limit=EVENT_PAGE_LIMIT, after=None):
        params = {"event_type": "sale", "limit": limit}
        if next_cursor:
            params["next"] = next_cursor
        if after:
            params["after"] = int(after)
        data = self.get_json(f"/api/v2/events/collection/{quote(slug)}", params)
        return Page(_list(data, "asset_events"), data.get("next") or None)

    # --- Transport ------------------------------------------------------------------------
    def get_json(self, path, params=None):
        response = self._send(self.base_url + path, params=params, paced=True)
        try:
            data = response.json()
        except ValueError:
            raise OpenSeaError(f"{path}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise OpenSeaError(f"{path}: expected a JSON object, got {type(data).__name__}")
        return data

    def download(self, url):
        """The bytes at ``url`` (http(s), ipfs:// via a gateway, or a data: URL), size-capped."""
        if url.startswith("data:"):
            return _data_url_bytes(url, self.max_image_bytes)
        if url.startswith("ipfs://"):
            url = "https://ipfs.io/ipfs/" + url.removeprefix("ipfs://").removeprefix("ipfs/")
        if urlsplit(url).scheme not in {"http", "https"}:
            raise OpenSeaError(f"cannot download {url[:100]!r}: not an http(s) URL")
        response = self._send(url, paced=False, stream=True)
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > self.max_image_bytes:
                    raise OpenSeaError(f"image is over the {self.max_image_bytes:,}-byte limit")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise OpenSeaError(self.redact(f"image download broke off: {exc}")) from None
        finally:
            response.close()
        return b"".join(chunks)

    def _send(self, url, params=None, paced=True, stream=False):
        failures = throttles = 0
        label = urlsplit(url).path
        while True:
            if paced:
                self.bucket.acquire()
            with self._count_lock:
                if paced:
                    self.api_requests += 1
                else:
                    self.downloads += 1
            try:
                response = self.session.get(url, params=params, timeout=self.timeout, stream=stream)
            except PERMANENT_REQUEST_ERRORS as exc:
                raise OpenSeaError(self.redact(f"{label}: {type(exc).__name__}: {exc}")) from None
            except requests.RequestException as exc:  # timeouts, resets, broken chunking
                failures += 1
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code < 400:
                    return response
                if response.status_code == 429:
                    throttles += 1
                    delay = _retry_after(response.headers.get("Retry-After"))
                    response.close()
                    if throttles > self.max_throttles:
                        raise OpenSeaError(
                            f"{label}: still throttled after {throttles} tries", 429, transient=True
                        )
                    delay = delay if delay is not None else self._backoff(throttles)
                    log.debug("OpenSea throttled %s; waiting %.2fs", label, delay)
                    if paced:
                        self.bucket.hold_off(delay)
                    else:
                        time.sleep(delay)
                    self._count_retry()
                    continue
                status, body = response.status_code, _excerpt(response)
                response.close()
                if status not in RETRY_STATUSES:
                    error = NotFound if status == 404 else OpenSeaError
                    raise error(self.redact(f"{label}: HTTP {status} {body}".strip()), status)
                failures += 1
                problem = f"HTTP {status}"
            if failures > self.max_retries:
                raise OpenSeaError(
                    self.redact(f"{label}: {problem} after {failures} attempts"), transient=True
                )
            delay = self._backoff(failures)
            log.debug("OpenSea %s on %s; retry %d in %.2fs", problem, label, failures, delay)
            self._count_retry()
            time.sleep(delay)

    def _backoff(self, attempt):
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _count_retry(self):
        with self._count_lock:
            self.retries += 1


def _list(data, key):
    items = data.get(key)
    if not isinstance(items, list):
        raise OpenSeaError(f"the answer has no '{key}' list")
    return items


def _retry_after(value):
    """Seconds from a Retry-After header (delta seconds or an HTTP date), capped; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _excerpt(response):
    try:
        return response.text[:200].replace("\n", " ")
    except Exception:  # an undecodable error body is not worth another error
        return ""


def _data_url_bytes(url, limit):
    header, _, payload = url.partition(",")
    if len(payload) > limit * 2:
        raise OpenSeaError(f"data: URL is over the {limit:,}-byte limit")
    if header.endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=False)
        except ValueError:
            raise OpenSeaError("data: URL is not valid base64") from None
    return unquote_to_bytes(payload)
