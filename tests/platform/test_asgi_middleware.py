"""The middleware stack under ASGI (what gunicorn's asgi worker runs): the hooks of
nftsite.middleware run on the event loop, and what may touch the database still works."""

import re

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import AsyncClient

from nftsite.middleware import EventLoopHooks

pytestmark = pytest.mark.django_db


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_it_sends_the_same_security_headers_as_the_synchronous_stack(client):
    asgi = async_to_sync(AsyncClient().get)("/")
    wsgi = client.get("/")

    assert asgi.status_code == wsgi.status_code == 200
    for header in ("X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
        assert asgi[header] == wsgi[header], header
    # The same policy; only the per-request nonce differs.
    nonce = re.compile(r"'nonce-[^']+'")
    policy = asgi["Content-Security-Policy"]
    assert nonce.sub("", policy) == nonce.sub("", wsgi["Content-Security-Policy"])
    assert "script-src 'self'" in policy


def test_it_logs_in_saves_the_session_and_shows_a_message():
    """A login saves a session row and the admin's "added" notice is a message: both reach
    the database or the session from hooks that must not run on the event loop."""
    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = AsyncClient()

    async def visit():
        login = await client.get("/admin/login/")
        logged_in = await client.post(
            "/admin/login/?next=/admin/",
            {
                "username": "boss",
                "password": "pw",
                "csrfmiddlewaretoken": csrf_token(login.content.decode()),
            },
        )
        form = await client.get("/admin/auth/group/add/")
        added = await client.post(
            "/admin/auth/group/add/",
            {"name": "moderators", "csrfmiddlewaretoken": csrf_token(form.content.decode())},
        )
        listing = await client.get(added["Location"])
        again = await client.get(added["Location"])
        return logged_in, added, listing, again

    logged_in, added, listing, again = async_to_sync(visit)()

    assert logged_in.status_code == 302 and logged_in["Location"] == "/admin/"
    assert added.status_code == 302
    assert listing.status_code == 200 and "moderators" in listing.content.decode()
    assert "was added successfully" in listing.content.decode()
    assert "was added successfully" not in again.content.decode()  # shown once


def test_its_event_loop_middleware_are_all_in_the_stack(settings):
    from django.utils.module_loading import import_string

    loop_run = [p for p in settings.MIDDLEWARE if issubclass(import_string(p), EventLoopHooks)]

    assert loop_run == [
        "nftsite.middleware.CommonMiddleware",
        "nftsite.middleware.AuthenticationMiddleware",
        "nftsite.middleware.MessageMiddleware",
        "nftsite.middleware.CSPMiddleware",
    ]
