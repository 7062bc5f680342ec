"""The ASGI handler runs each request's synchronous code on a thread that later requests use
again, instead of making (and joining) threads per request."""

import asyncio
import threading

import pytest
from django.core import signals

from nftsite import asgi_handler


async def _get(handler, path):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    messages = []
    sent = asyncio.Event()

    async def receive():
        if not sent.is_set():
            sent.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected

    async def send(message):
        messages.append(message)

    await handler(scope, receive, send)
    return messages[0]["status"]


def test_requests_use_the_same_thread_one_after_another():
    handler = asgi_handler.ReusedThreadsASGIHandler()
    threads = []  # the thread each request's synchronous code ran on (Django's own handler
    # gives each request a new executor, whose thread has a new name)

    def started(**kwargs):
        threads.append(threading.current_thread().name)

    async def three():
        return [await _get(handler, "/no-such-page/") for _ in range(3)]

    signals.request_started.connect(started)
    try:
        answers = asyncio.run(three())
    finally:
        signals.request_started.disconnect(started)
    assert answers == [404, 404, 404]
    assert len(handler.idle) == 1  # one executor, given back after each request
    assert len(threads) == 3 and len(set(threads)) == 1


def test_concurrent_requests_get_threads_of_their_own_and_a_burst_is_not_all_kept(monkeypatch):
    monkeypatch.setattr(asgi_handler, "IDLE_KEPT", 2)
    handler = asgi_handler.ReusedThreadsASGIHandler()

    async def burst():
        return await asyncio.gather(*(_get(handler, "/no-such-page/") for _ in range(4)))

    answers = asyncio.run(burst())
    assert answers == [404] * 4
    assert len(handler.idle) == 2


def test_it_refuses_what_django_refuses():
    handler = asgi_handler.ReusedThreadsASGIHandler()
    with pytest.raises(ValueError, match="only handle ASGI/HTTP"):
        asyncio.run(handler({"type": "websocket"}, None, None))
