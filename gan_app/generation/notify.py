"""Wake the web request that waits on a generation request the moment its status changes.

With a Redis broker the worker publishes on a channel per request (under the broker's key
prefix, so deployments and test runs sharing a Redis stay apart) and a long-poll subscribes to
it: no polling, and the answer leaves as soon as the row is written. Other brokers (the
filesystem broker of one-machine installs) fall back to re-reading the row every few ms.
"""

import logging
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings

log = logging.getLogger(__name__)
_client = None
_client_lock = threading.Lock()


def redis_client():
    """A shared Redis client for the broker's server, or None when the broker is not Redis."""
    global _client
    if not urlsplit(settings.CELERY_BROKER_URL).scheme.startswith("redis"):
        return None
    with _client_lock:
        if _client is None:
            import redis

            _client = redis.Redis.from_url(
                settings.CELERY_BROKER_URL, socket_timeout=30, health_check_interval=30
            )
        return _client


def channel(pk) -> str:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return f"{prefix}nff:generation:{pk}"


def publish(pks, status: str) -> None:
    """Tell waiters that these requests changed (after the change is committed)."""
    client = redis_client()
    if client is None:
        return
    try:
        with client.pipeline(transaction=False) as pipe:
            for pk in pks:
                pipe.publish(channel(pk), status)
            pipe.execute()
    except Exception as exc:  # waiters still notice at the end of their wait
        log.warning("generation notice not published: %s", exc)


def wait(pk, read, changed, timeout: float):
    """``read()`` until ``changed(value)`` or ``timeout`` seconds; returns the last value.

    Subscribes before the first read, so a change between the read and the wait is never
    missed.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    client = redis_client() if timeout > 0 else None
    if client is None:
        return _poll(read, changed, deadline)
    try:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel(pk))
    except Exception as exc:
        log.warning("generation notices unavailable, polling: %s", exc)
        return _poll(read, changed, deadline)
    try:
        value = read()
        while not changed(value):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # A notice, or a second without one: a notice lost to a Redis hiccup costs a second.
            pubsub.get_message(timeout=min(left, 1.0))
            value = read()
        return value
    finally:
        pubsub.close()


def _poll(read, changed, deadline):
    started = time.monotonic()
    value = read()
    while not changed(value) and time.monotonic() < deadline:
        waited = time.monotonic() - started
        # A render takes tens of ms and the visitor is watching: look often at first.
        time.sleep(0.01 if waited < 1 else 0.05 if waited < 5 else 0.2)
        value = read()
    return value
