"""How long and how many long polls a web process holds: the longest wait, and caps on the
waits held at once per client and in all, so pollers cannot crowd out the site.

    seconds = wait_seconds(request.GET.get("wait"))       # 0 .. LONG_POLL_MAX_WAIT
    with hold(client_key) as granted:                      # False: over a cap, answer now
        ...

The counts live in the process: a wait costs nothing elsewhere, and a process that dies takes
its counts with it. With N web processes a client
may hold N x LONG_POLL_PER_CLIENT waits.
"""

import math
import threading
from collections import Counter
from contextlib import contextmanager

from django.conf import settings

# Seconds a refused poller is asked to wait before trying again.
RETRY_AFTER = 2

_held: Counter = Counter()  # client key -> waits held now
_total = 0
_lock = threading.Lock()  # one event loop under ASGI; a loop per request under WSGI


def wait_seconds(raw) -> float:
    """``?wait=`` as seconds within [0, LONG_POLL_MAX_WAIT]; 0 for anything but a finite number."""
    try:
        seconds = float(raw or 0)
    except ValueError:
        return 0.0
    if not math.isfinite(seconds):
        return 0.0
    return min(max(seconds, 0.0), settings.LONG_POLL_MAX_WAIT)


def held(client_key: str = "") -> int:
    """Waits held now: by one client, or in all."""
    return _held[client_key] if client_key else _total


@contextmanager
def hold(client_key: str):
    """Count a wait of ``client_key`` while the block runs; yields False (and counts nothing)
    when the client or the process is at its cap."""
    if not _take(client_key):
        yield False
        return
    try:
        yield True
    finally:
        _give_back(client_key)


def _take(client_key: str) -> bool:
    global _total
    with _lock:
        full = _total >= settings.LONG_POLL_MAX_WAITERS
        if full or _held[client_key] >= settings.LONG_POLL_PER_CLIENT:
            return False
        _held[client_key] += 1
        _total += 1
        return True


def _give_back(client_key: str) -> None:
    global _total
    with _lock:
        _total -= 1
        _held[client_key] -= 1
        if not _held[client_key]:
            del _held[client_key]
