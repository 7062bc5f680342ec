"""Wake the web requests that wait on a generation request the moment its status changes.

With a Redis broker the worker publishes ``<pk> <status>`` on one channel (under the broker's
key prefix, so deployments and test runs sharing a Redis stay apart) once the change is
committed. Each event loop of a web process holds one subscription to that channel
(``Listener``) and wakes the waiters of that request: a waiter holds no thread and no database
connection while it sleeps, and a thousand of them cost one Redis connection. Other brokers
(the filesystem broker of one-machine installs) fall back to re-reading the row, often at
first and then less often.
"""

import asyncio
import logging
import os
import threading
import weakref
from collections import OrderedDict, defaultdict
from contextlib import suppress
from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings

log = logging.getLogger(__name__)
_client = None
_client_lock = threading.Lock()
_listeners: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Listener]" = (
    weakref.WeakKeyDictionary()
)
# While the subscription is down (Redis restarting) a notice can be lost: look again this often.
UNSUBSCRIBED_RECHECK = 1.0
# An idle subscription pings Redis this often, so a connection that died silently is noticed.
IDLE_PING = 30.0
# The listener remembers the requests of this many latest notices (see ``Mark``).
RECENT_KEPT = 4096
_UNREAD = object()
CLIENT_NAME = "nff-generation-notices"


def uses_redis() -> bool:
    return urlsplit(settings.CELERY_BROKER_URL).scheme.startswith("redis")


def redis_client():
    """A shared Redis client for the broker's server, or None when the broker is not Redis."""
    global _client
    if not uses_redis():
        return None
    with _client_lock:
        if _client is None:
            import redis

            _client = redis.Redis.from_url(
                settings.CELERY_BROKER_URL, socket_timeout=30, health_check_interval=30
            )
        return _client


def channel() -> str:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return f"{prefix}nff:generation"


def publish(pks, status: str) -> None:
    """Tell waiters that these requests changed. Call it once the change is committed
    (``transaction.on_commit``): a waiter woken earlier would read the old row."""
    client = redis_client()
    if client is None:
        return
    try:
        with client.pipeline(transaction=False) as pipe:
            for pk in pks:
                pipe.publish(channel(), f"{pk} {status}")
            pipe.execute()
    except Exception as exc:  # waiters still notice at the end of their wait
        log.warning("generation notice not published: %s", exc)


class Mark(NamedTuple):
    """Where a subscribed listener stood: its subscription and the count of notices heard."""

    listener: "Listener"
    subscription: int
    heard: int


class Listener:
    """One subscription per event loop: hears every notice and sets the events of the waiters
    of that request. Reconnects by itself; each (re)subscription wakes every waiter, since
    notices sent while it was away are lost.

    It also remembers the requests of the latest notices, so a waiter that took a ``mark``
    before its request was sent knows, without reading the row, whether the notice came already.
    """

    def __init__(self, url: str, name: str):
        self.url, self.name = url, name
        self.waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self.subscribed = asyncio.Event()
        self.subscription = 0  # counts (re)subscriptions and losses of one
        self.heard = 0  # notices heard so far
        self.recent: OrderedDict[int, int] = OrderedDict()  # pk -> ``heard`` at its latest notice
        self.task = asyncio.get_running_loop().create_task(self._run(), name="generation-notices")

    def mark(self) -> Mark | None:
        """Where it stands now, or None while it is not subscribed."""
        if not self.subscribed.is_set():
            return None
        return Mark(self, self.subscription, self.heard)

    def silent_since(self, mark: Mark, pk: int) -> bool:
        """True when it has stayed subscribed since ``mark`` and heard no notice of ``pk`` since
        (as far as it remembers): no change of that request was published after the mark."""
        return (
            mark.listener is self
            and self.subscribed.is_set()
            and mark.subscription == self.subscription
            and self.heard - mark.heard <= RECENT_KEPT
            and self.recent.get(pk, -1) < mark.heard
        )

    def hear(self, pk: int) -> None:
        self.recent[pk] = self.heard
        self.recent.move_to_end(pk)
        self.heard += 1
        if len(self.recent) > RECENT_KEPT:
            self.recent.popitem(last=False)
        self.wake(pk)

    def add(self, pk: int) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters[pk].add(event)
        return event

    def remove(self, pk: int, event: asyncio.Event) -> None:
        events = self.waiters.get(pk)
        if events is not None:
            events.discard(event)
            if not events:
                del self.waiters[pk]

    def wake(self, pk: int) -> None:
        for event in self.waiters.get(pk, ()):
            event.set()

    def wake_all(self) -> None:
        for events in self.waiters.values():
            for event in events:
                event.set()

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        # Named, so an operator (or a test) can tell it apart in CLIENT LIST.
        client = aioredis.Redis.from_url(
            self.url, socket_keepalive=True, client_name=f"{CLIENT_NAME}-{os.getpid()}"
        )
        try:
            while True:
                try:
                    await self._listen(client)
                except Exception as exc:  # Redis away: wait, then subscribe again
                    _stop_if_cancelled(exc)
                    if self.subscribed.is_set():
                        log.warning("generation notices interrupted: %s", exc)
                self.subscribed.clear()
                self.subscription += 1
                self.wake_all()  # waiters fall back to re-reading until we are back
                await asyncio.sleep(UNSUBSCRIBED_RECHECK)
        finally:
            self.subscribed.clear()
            await client.aclose()

    async def _listen(self, client) -> None:
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(self.name)
            while True:
                _stop_if_cancelled()
                message = await pubsub.get_message(timeout=IDLE_PING)
                if message is None:
                    await pubsub.ping()
                elif message["type"] == "subscribe":
                    # Subscribed from here on: a notice sent before it may be lost, so
                    # everyone looks again.
                    self.subscription += 1
                    self.subscribed.set()
                    self.wake_all()
                elif message["type"] == "message":
                    with suppress(ValueError, AttributeError):
                        self.hear(int(message["data"].split(b" ", 1)[0]))


def _stop_if_cancelled(cause: BaseException | None = None) -> None:
    """Raise CancelledError when this task was asked to stop (its loop is closing). The Redis
    client may turn a cancellation that lands mid-connect into a ConnectionError, or swallow it,
    and a listener that carried on would keep its loop from closing for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError() from cause


def listener(start: bool = True) -> Listener | None:
    """This event loop's listener (started on first use unless ``start`` is False), or None
    without a Redis broker."""
    if not uses_redis():
        return None
    loop = asyncio.get_running_loop()
    found = _listeners.get(loop)
    if (found is None or found.task.done()) and start:
        found = _listeners[loop] = Listener(settings.CELERY_BROKER_URL, channel())
    return found if found is not None and not found.task.done() else None


def mark() -> Mark | None:
    """Take it before sending a request whose change ``wait`` then waits for (``wait(mark=)``):
    None without a Redis broker, or while this loop has no subscribed listener (the first
    ``wait`` starts it; a mark never does, since the caller may not wait after all)."""
    hub = listener(start=False)
    return None if hub is None else hub.mark()


async def wait(pk: int, read, changed, timeout: float, mark: Mark | None = None):
    """``await read()`` until ``changed(value)`` or ``timeout`` seconds; returns the last value.

    The waiter is registered (and the subscription confirmed) before the first read, so a
    change between that read and the sleep is never missed; every wake-up reads the row again.
    With a ``mark`` taken before the request was sent, the first read is skipped when no
    notice of it came since: the row has not changed since it was written.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, timeout)
    hub = listener() if timeout > 0 else None
    if hub is None:
        return await _poll(read, changed, deadline)
    event = hub.add(pk)
    try:
        if mark is not None and hub.silent_since(mark, pk):
            value = _UNREAD
        else:
            if not hub.subscribed.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(
                        hub.subscribed.wait(), min(timeout, UNSUBSCRIBED_RECHECK)
                    )
            value = await read()
        while value is _UNREAD or not changed(value):
            left = deadline - loop.time()
            if left <= 0:
                break
            step = left if hub.subscribed.is_set() else min(left, UNSUBSCRIBED_RECHECK)
            with suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), step)
            event.clear()
            value = await read()
        return await read() if value is _UNREAD else value
    finally:
        hub.remove(pk, event)


async def _poll(read, changed, deadline):
    loop = asyncio.get_running_loop()
    started = loop.time()
    value = await read()
    while not changed(value) and loop.time() < deadline:
        waited = loop.time() - started
        # A render takes tens of ms and the visitor is watching: look often at first.
        await asyncio.sleep(0.01 if waited < 1 else 0.05 if waited < 5 else 0.2)
        value = await read()
    return value
