"""Long polls through the real web server: many waiting visitors hold no thread, no database
connection and no slot a page needs; a finished image wakes them by a push from the worker;
each client and each process holds a capped number of waits."""

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.urls import reverse

from collections_app.models import Collection
from gan_app.generation import render
from gan_app.models import GenerationRequest

from .conftest import tiny_generator

pytestmark = pytest.mark.services
POLLS = 40  # on main (2 gunicorn processes x 8 threads) 16 of them held every slot
QUICK = 2.0  # seconds: what a page may take beside them on a busy 2-core machine
POOL = 4  # database connections the server may hold, 10 times fewer than the waiters


class Poll:
    """A long poll in flight from ``source`` (a loopback address: a client of its own);
    ``answer()`` reads the response."""

    def __init__(self, base, path, source="127.0.0.1", form=""):
        """``form``: POST this urlencoded body (with a CSRF cookie and token) instead of a GET."""
        parts = urlsplit(base)
        self.sock = socket.create_connection(
            (parts.hostname, parts.port), timeout=60, source_address=(source, 0)
        )
        head = f"GET {path} HTTP/1.1\r\n"
        if form:
            token = "t" * 32
            head = (
                f"POST {path} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(form)}\r\nCookie: csrftoken={token}\r\n"
                f"X-CSRFToken: {token}\r\nReferer: {base}/\r\n"
            )
        self.sock.sendall(
            f"{head}Host: {parts.hostname}\r\nAccept: application/json\r\n"
            f"Connection: close\r\n\r\n{form}".encode()
        )
        self.sent = time.monotonic()

    def answer(self):
        """(status, Retry-After, JSON body, seconds since sent)."""
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        body = json.loads(response.read())
        self.close()
        return response.status, response.getheader("Retry-After"), body, self.took()

    def took(self):
        return time.monotonic() - self.sent

    def close(self):
        self.sock.close()


def status_path(req, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("gan:request_status", args=[req.public_id]) + f"?{query}"


def timed_get(url):
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
    except urllib.error.HTTPError as error:  # /healthz answers 503 without workers
        error.read()
    return time.monotonic() - started


def database_connections():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def answered_after(polls, pks):
    """Render the requests ``pks`` as the worker does, then read every poll's answer:
    (answers, seconds from the end of the rendering to the last answer)."""
    for pk in list(pks):
        render.process(pk)
    finished = time.monotonic()
    answers = [poll.answer() for poll in polls]
    return answers, time.monotonic() - finished


@pytest.fixture
def queued_request(transactional_db):
    collection = Collection.objects.create(slug="polls", name="Polls")
    generator = tiny_generator(collection, slug="polls-v1")
    return GenerationRequest.objects.create(generator=generator, kind="single", seeds=[7])


def test_it_serves_pages_at_once_while_many_long_polls_wait(web_servers, queued_request):
    base = web_servers(workers=1, DATABASE_POOL_SIZE=str(POOL))
    timed_get(base + "/")  # the first page of a process loads templates
    idle_connections = database_connections()
    path = status_path(queued_request, since="queued,running", wait=25)
    polls = [Poll(base, path, source=f"127.0.0.{2 + i % 20}") for i in range(POLLS)]
    try:
        time.sleep(1.5)  # every poll is in and waiting

        took = {page: timed_get(base + page) for page in ("/healthz", "/", "/gallery/")}
        waiting_connections = database_connections()

        assert {page: s for page, s in took.items() if s > QUICK} == {}
        # Sleeping waiters hold no database connection: the server's pool never grew past
        # its few, and the pages above got one at once.
        assert waiting_connections - idle_connections <= POOL
        # What the worker does; its notice wakes them.
        answers, woken_in = answered_after(polls, [queued_request.pk])
    finally:
        for poll in polls:
            poll.close()

    assert {status for status, _, _, _ in answers} == {200}
    assert {body["status"] for _, _, body, _ in answers} == {"done"}
    assert woken_in < 5  # woken by the push, not by the end of the 25 s wait


def test_generate_posts_that_wait_hold_no_database_connection(
    web_servers, transactional_db, settings
):
    """The Generate button's POST ?wait= gives its connection back before it sleeps, like a
    status long poll (it skips the look a status poll takes first, so it must say so itself)."""
    collection = Collection.objects.create(slug="posts", name="Posts")
    tiny_generator(collection, slug="posts-v1")
    # Broker keys no worker reads (the session's worker would render the requests at once):
    # they stay queued until this test renders them, and its notices reach the server.
    prefix = f"{os.environ['CELERY_BROKER_KEY_PREFIX']}no-worker:"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": prefix,
    }
    base = web_servers(workers=1, DATABASE_POOL_SIZE=str(POOL), CELERY_BROKER_KEY_PREFIX=prefix)
    timed_get(base + "/")
    # A first wait starts the process's notice listener, so the posts below take its mark.
    assert Poll(base, "/generate/?wait=1", "127.0.0.99", "generator=posts-v1&seed=99").answer()[0]
    idle_connections = database_connections()
    posts = [
        Poll(base, "/generate/?wait=25", f"127.0.0.{2 + i}", f"generator=posts-v1&seed={100 + i}")
        for i in range(POOL * 4)
    ]
    try:
        deadline = time.monotonic() + 20
        while GenerationRequest.objects.count() <= len(posts) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        waiting_connections = database_connections()
        took = timed_get(base + "/gallery/")

        assert GenerationRequest.objects.filter(status="queued").count() == len(posts) + 1
        assert waiting_connections - idle_connections <= POOL
        assert took < QUICK
        pks = GenerationRequest.objects.values_list("pk", flat=True)
        answers, woken_in = answered_after(posts, pks)
    finally:
        for post in posts:
            post.close()

    assert {status for status, _, _, _ in answers} == {200}
    assert sorted(body["seeds"][0] for _, _, body, _ in answers) == list(range(100, 116))
    assert {len(body["images"]) for _, _, body, _ in answers} == {1}
    assert woken_in < 5


def test_it_refuses_waits_over_the_caps_at_once(web_servers, queued_request):
    base = web_servers(workers=1, LONG_POLL_PER_CLIENT="2", LONG_POLL_MAX_WAITERS="3")
    path = status_path(queued_request, since="queued,running", wait=20)
    held = [Poll(base, path, source="127.0.0.2") for _ in range(2)]
    try:
        time.sleep(0.5)
        status, retry_after, body, took = Poll(base, path, source="127.0.0.2").answer()
        assert (status, retry_after, body["retry_after"]) == (429, "2", 2)
        assert took < QUICK

        held.append(Poll(base, path, source="127.0.0.3"))  # the process's third wait
        time.sleep(0.5)
        status, _, _, took = Poll(base, path, source="127.0.0.4").answer()
        assert (status, took < QUICK) == (429, True)

        # Asking without waiting is never refused.
        status, _, body, _ = Poll(base, status_path(queued_request), "127.0.0.2").answer()
        assert (status, body["status"]) == (200, "queued")
    finally:
        for poll in held:
            poll.close()

    # Clients that went away gave their waits back.
    time.sleep(1.0)
    again = status_path(queued_request, since="queued", wait=1)
    status, _, body, took = Poll(base, again, source="127.0.0.2").answer()
    assert (status, body["status"]) == (200, "queued")
    assert took >= 1


def test_it_cuts_a_wait_to_the_longest_allowed(web_servers, queued_request):
    base = web_servers(workers=1, LONG_POLL_MAX_WAIT="1")
    path = status_path(queued_request, since="queued", wait=1e9)

    status, _, body, took = Poll(base, path).answer()

    assert (status, body["status"]) == (200, "queued")
    assert 1 <= took < 1 + QUICK
