"""Who is asking (a hashed client key) and whether they may generate again yet.

The limit counts images, not requests: a batch of 16 costs 16, a walk costs its steps, so
``30/m`` means 30 images a minute, never 30 x 16 = 480.

The limit is counted over ``GenerationRequest`` rows (index ``genreq_client_created``), so every
web process and node sees the same count without a shared cache. The raw address is never
stored: the key is an HMAC of it under SECRET_KEY, so the table cannot be reversed by hashing
all 2^32 IPv4 addresses.
"""

import hashlib
import hmac
import ipaddress
import math
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from ..models import GenerationRequest

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """``30/m`` -> Rate(30, 60); ``100/5m`` -> Rate(100, 300)."""
        match = re.fullmatch(r"([1-9]\d*)/(\d*)([smhd])", text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a rate such as 30/m or 100/5m")
        count, multiplier, unit = match.groups()
        return cls(int(count), int(multiplier or 1) * UNIT_SECONDS[unit])

    def describe(self) -> str:
        units = [(86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")]
        for size, name in units:
            if self.seconds % size == 0:
                n = self.seconds // size
                per = name if n == 1 else f"{n} {name}s"
                return f"{self.count} images per {per}"
        return f"{self.count} images per {self.seconds} seconds"


class RateLimited(Exception):
    def __init__(self, rate: Rate, retry_after: int):
        super().__init__(f"rate limit {rate.describe()} reached; retry in {retry_after} s")
        self.rate = rate
        self.retry_after = retry_after


def current_rate() -> Rate:
    return Rate.parse(settings.GENERATION_RATE_LIMIT)


def client_address(request) -> str:
    """The visitor's address: the trusted proxy's header when configured, else the socket's."""
    header = settings.TRUSTED_PROXY_HEADER
    if header:
        raw = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
        # X-Forwarded-For grows to the right; the last entry is the one our proxy added.
        candidate = raw.split(",")[-1].strip()
        if candidate:
            return candidate
    return request.META.get("REMOTE_ADDR", "")


def client_key(request) -> str:
    """64 hex characters identifying the client's network address, never the address itself."""
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
        # One IPv6 subscriber gets a whole /64: keying on it stops address rotation.
        if ip.version == 6 and not ip.ipv4_mapped:
            address = str(ipaddress.ip_network(f"{ip}/64", strict=False))
        elif ip.version == 6:
            address = str(ip.ipv4_mapped)
    except ValueError:
        address = address or "unknown"
    return hmac.new(
        settings.SECRET_KEY.encode(), f"client:{address}".encode(), hashlib.sha256
    ).hexdigest()


def lock_client(key: str) -> None:
    """Serialise concurrent requests of one client (PostgreSQL) so a burst cannot overshoot.

    Held until the surrounding transaction ends. SQLite serialises writers anyway.
    """
    if connection.vendor == "postgresql":
        lock_id = int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def images_of(kind: str, seeds: list, params: dict) -> int:
    """Images a request renders: a walk its steps (always stored by submit), others one a seed."""
    if kind == GenerationRequest.Kind.WALK:
        return max(1, int(params.get("steps") or len(seeds)))
    return max(1, len(seeds))


def check(key: str, rate: Rate | None = None, now=None, images: int = 1) -> None:
    """Raise RateLimited when ``images`` more would take ``key`` over ``rate`` images in the window.

    A request larger than the whole allowance is let through on an empty window, so a strict
    limit (3/m) still allows one batch of 4 instead of refusing it for ever.
    """
    rate = rate or current_rate()
    now = now or timezone.now()
    since = now - timedelta(seconds=rate.seconds)
    recent = GenerationRequest.objects.filter(client_key=key, created_at__gt=since)
    used = recent.aggregate(used=Sum("image_count"))["used"] or 0
    allowed = rate.count - min(images, rate.count)
    if used <= allowed:
        return
    # Room appears once enough of the oldest requests age out of the window.
    freed = 0
    for created_at, cost in recent.order_by("created_at").values_list("created_at", "image_count"):
        freed += cost
        if used - freed <= allowed:
            raise RateLimited(rate, max(1, math.ceil((created_at - since).total_seconds())))
    raise RateLimited(rate, rate.seconds)  # the rows aged out meanwhile: a window from now


def check_rows(rows, key: str, rate: Rate, now=None) -> None:
    """Raise RateLimited when ``key`` already has ``rate.count`` of ``rows`` (a queryset with
    client_key and created_at, one action a row, e.g. image reports) in the window."""
    now = now or timezone.now()
    since = now - timedelta(seconds=rate.seconds)
    recent = rows.filter(client_key=key, created_at__gt=since).order_by("-created_at")
    times = list(recent.values_list("created_at", flat=True)[: rate.count])
    if len(times) < rate.count:
        return
    # A slot frees when the oldest of the last rate.count ages out of the window.
    raise RateLimited(rate, max(1, math.ceil((times[-1] - since).total_seconds())))
