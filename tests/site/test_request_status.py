"""GET /generate/r/<id>.json (long poll), the result page, and the batch ZIP."""

import asyncio
import io
import json
import os
import threading
import time
import zipfile

import pytest
from django.db import connection
from django.urls import reverse
from PIL import Image

from gan_app.generation import polls, render
from gan_app.generation import requests as generation
from gan_app.models import GenerationRequest

pytestmark = pytest.mark.django_db


def queued(generator, seeds, kind="batch", **params):
    return GenerationRequest.objects.create(
        generator=generator, kind=kind, seeds=seeds, params=params
    )


def status_url(req, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("gan:request_status", args=[req.public_id]) + (f"?{query}" if query else "")


def test_it_reports_a_queued_request_without_waiting(client, generator):
    req = queued(generator, [1], kind="single")

    response = client.get(status_url(req))

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    assert (body["status"], body["seeds"], body["generator"]) == ("queued", [1], generator.slug)
    assert "images" not in body


def test_it_lists_permalinks_and_the_zip_once_done(client, generator):
    req = queued(generator, [5, 6])
    render.process(req.pk)

    body = client.get(status_url(req)).json()

    assert body["status"] == "done"
    assert body["elapsed_ms"] >= 0
    assert [i["png"] for i in body["images"]] == [f"/g/{generator.slug}/{s}.png" for s in (5, 6)]
    assert body["images"][0]["json"] == f"/g/{generator.slug}/5.json"
    assert body["images"][0]["page"] == f"/g/{generator.slug}/5/"
    assert body["zip_url"] == reverse("gan:request_zip", args=[req.public_id])


def finish_in_a_while(req, delay=0.3):
    def finish():
        time.sleep(delay)
        render.process(req.pk)
        connection.close()

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["redis", "other"])
def test_it_answers_a_long_poll_as_soon_as_the_image_is_ready(client, generator, settings, broker):
    if broker == "other":  # no Redis to publish on: the wait re-reads the row
        settings.CELERY_BROKER_URL = "filesystem://"
    req = queued(generator, [9], kind="single")
    started = time.monotonic()
    thread = finish_in_a_while(req)

    body = client.get(status_url(req, since="queued,running", wait=10)).json()

    waited = time.monotonic() - started
    thread.join()
    assert body["status"] == "done"
    assert 0.3 <= waited < 3


def test_it_gives_up_a_long_poll_after_the_wait(client, generator):
    req = queued(generator, [9], kind="single")
    started = time.monotonic()

    body = client.get(status_url(req, since="queued", wait="0.2")).json()

    assert body["status"] == "queued"
    assert 0.2 <= time.monotonic() - started < 2


def test_it_answers_404_for_an_unknown_request(client):
    assert client.get("/generate/r/00000000-0000-4000-8000-000000000000.json").status_code == 404
    assert client.get("/generate/r/00000000-0000-4000-8000-000000000000/").status_code == 404


def test_it_shows_the_result_page_with_downloads(client, generator):
    req = queued(generator, [3], kind="single")
    render.process(req.pk)

    response = client.get(reverse("gan:request", args=[req.public_id]))

    html = response.content.decode()
    assert response.status_code == 200
    assert f"/g/{generator.slug}/3.png?download=1" in html
    assert f"/g/{generator.slug}/3.json?download=1" in html
    assert 'http-equiv="refresh"' not in html


def test_it_asks_a_page_without_javascript_to_refresh_while_queued(client, generator, monkeypatch):
    from gan_app import views

    monkeypatch.setattr(views, "NO_JS_WAIT", 0.05)
    req = queued(generator, [3], kind="single")

    response = client.get(reverse("gan:request", args=[req.public_id]))

    assert response.status_code == 200
    assert b'<meta http-equiv="refresh" content="1">' in response.content
    assert b"Queued" in response.content


def test_it_zips_a_batch_with_png_and_erc721_metadata(client, generator):
    req = queued(generator, [20, 21, 22])
    render.process(req.pk)

    response = client.get(reverse("gan:request_zip", args=[req.public_id]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert (
        f'filename="{generator.slug}-batch-{req.public_id}.zip"' in response["Content-Disposition"]
    )
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        names = sorted(zf.namelist())
        assert names == sorted(
            [f"tiny-v1-{s}.png" for s in (20, 21, 22)] + [f"tiny-v1-{s}.json" for s in (20, 21, 22)]
        )
        assert Image.open(io.BytesIO(zf.read("tiny-v1-21.png"))).size == (32, 32)
        meta = json.loads(zf.read("tiny-v1-21.json"))
    assert meta["name"] == "Tiny Fakes v1 #21"
    assert meta["image"] == "http://testserver/g/tiny-v1/21.png"
    assert meta["external_url"] == "http://testserver/g/tiny-v1/21/"
    assert "Tiny Fakes" in meta["description"]
    traits = {a["trait_type"]: a["value"] for a in meta["attributes"]}
    assert traits == {
        "collection": "Tiny Fakes",
        "generator": "tiny-v1",
        "generator_version": 1,
        "seed": 21,
        "resolution": "32x32",
        "epoch": 3,
    }
    served = client.get("/g/tiny-v1/21.png")
    assert served.content == zipfile.ZipFile(io.BytesIO(response.content)).read("tiny-v1-21.png")


def test_it_has_no_zip_before_the_batch_is_done(client, generator):
    req = queued(generator, [1, 2])

    assert client.get(reverse("gan:request_zip", args=[req.public_id])).status_code == 404


def test_it_wakes_a_waiter_with_a_notice_instead_of_polling():
    from gan_app.generation import notify

    state = {"reads": 0, "status": "queued"}

    async def read():
        state["reads"] += 1
        return state["status"]

    async def finish():
        await asyncio.sleep(0.2)
        state["status"] = "done"
        await asyncio.to_thread(notify.publish, [424242], "done")

    async def main():
        finishing = asyncio.create_task(finish())
        status = await notify.wait(424242, read, lambda s: s == "done", timeout=10)
        await finishing
        return status

    started = time.monotonic()
    status = asyncio.run(main())

    assert status == "done"
    assert time.monotonic() - started < 2
    assert state["reads"] <= 3  # polling every 10 ms would have read about 20 times


class Row:
    """A request row as ``notify.wait`` sees it: counts its reads."""

    def __init__(self, status="queued"):
        self.status, self.reads = status, 0

    async def read(self):
        self.reads += 1
        return self.status


async def subscribed_listener():
    from gan_app.generation import notify

    hub = notify.listener()
    await asyncio.wait_for(hub.subscribed.wait(), 5)
    return hub


async def notice(pk, hub):
    """Publish a notice of ``pk`` and wait until the listener has heard it."""
    from gan_app.generation import notify

    heard = hub.heard
    await asyncio.to_thread(notify.publish, [pk], "done")
    while hub.heard == heard:
        await asyncio.sleep(0.01)


def test_a_wait_marked_before_its_request_was_sent_reads_the_row_once():
    """The Generate POST's path: no notice since the mark means the row is as written, so the
    wait sleeps at once and reads only when woken."""
    from gan_app.generation import notify

    row = Row()

    async def main():
        hub = await subscribed_listener()
        mark = notify.mark()

        async def finish():
            await asyncio.sleep(0.2)
            row.status = "done"
            await asyncio.to_thread(notify.publish, [424243], "done")

        finishing = asyncio.create_task(finish())
        status = await notify.wait(424243, row.read, lambda s: s == "done", 10, mark)
        await finishing
        return hub, mark, status

    started = time.monotonic()
    hub, mark, status = asyncio.run(main())

    assert (status, row.reads) == ("done", 1)  # unmarked, it reads before it sleeps too
    assert mark.subscription == hub.subscription
    assert time.monotonic() - started < 2


def test_a_marked_wait_reads_at_once_when_the_notice_came_before_it_began():
    from gan_app.generation import notify

    row = Row()

    async def main():
        hub = await subscribed_listener()
        mark = notify.mark()
        row.status = "done"  # the worker was quicker than the web thread
        await notice(424244, hub)
        return await notify.wait(424244, row.read, lambda s: s == "done", 5, mark)

    started = time.monotonic()
    status = asyncio.run(main())

    assert (status, row.reads) == ("done", 1)
    assert time.monotonic() - started < 2  # not asleep until the 5 s timeout


def test_a_marked_wait_reads_at_once_when_the_subscription_was_lost_since():
    """A notice sent while the listener was away is lost: the mark no longer vouches."""
    import redis
    from django.conf import settings

    from gan_app.generation import notify

    row = Row()

    def drop_subscription():
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        name = f"{notify.CLIENT_NAME}-{os.getpid()}"
        for entry in client.client_list():
            if entry["name"] == name:
                client.client_kill_filter(_id=entry["id"])
        client.close()

    async def main():
        hub = await subscribed_listener()
        mark = notify.mark()
        await asyncio.to_thread(drop_subscription)
        while hub.subscribed.is_set():
            await asyncio.sleep(0.01)
        row.status = "done"  # changed while nobody listened
        await asyncio.wait_for(hub.subscribed.wait(), 5)
        return hub, mark, await notify.wait(424245, row.read, lambda s: s == "done", 10, mark)

    started = time.monotonic()
    hub, mark, status = asyncio.run(main())

    assert hub.subscription > mark.subscription
    assert (status, row.reads) == ("done", 1)
    assert time.monotonic() - started < 5


def test_the_listener_remembers_a_bounded_number_of_notices(monkeypatch):
    from gan_app.generation import notify

    monkeypatch.setattr(notify, "RECENT_KEPT", 3)

    async def main():
        hub = await subscribed_listener()
        mark = notify.mark()
        for pk in range(424250, 424255):
            await notice(pk, hub)
        return hub, mark

    hub, mark = asyncio.run(main())

    assert list(hub.recent) == [424252, 424253, 424254]
    # Five notices since the mark, more than it remembers: it vouches for nobody.
    assert not hub.silent_since(mark, 999999)


def test_an_event_loop_closes_at_once_while_its_listener_connects():
    """A loop closing while its listener is still connecting (the test client's request, a
    server shutting down) closes at once: the listener stops rather than going on listening
    after the Redis client turned its cancellation into a connection error."""
    from gan_app.generation import notify

    assert notify.uses_redis()

    async def briefly(delay):
        notify.listener()
        await asyncio.sleep(delay)

    def open_and_close_loops():
        for i in range(40):
            asyncio.run(briefly(i * 0.0005))

    thread = threading.Thread(target=open_and_close_loops, daemon=True)
    thread.start()
    thread.join(20)

    assert not thread.is_alive()  # before: stuck in the second or third loop, for ever


def test_it_sends_the_task_again_for_a_request_stuck_in_the_queue(client, generator):
    from datetime import timedelta

    from celery.signals import before_task_publish
    from django.utils import timezone

    req = queued(generator, [8], kind="single")
    GenerationRequest.objects.filter(pk=req.pk).update(
        task_id="lost", created_at=timezone.now() - timedelta(seconds=60)
    )
    sent = []

    def capture(sender=None, body=None, **kwargs):
        sent.append(body[0])

    before_task_publish.connect(capture, weak=False)
    try:
        first = client.get(status_url(req)).json()
        second = client.get(status_url(req)).json()  # within the next 30 s: not again
    finally:
        before_task_publish.disconnect(capture)

    req.refresh_from_db()
    assert first["status"] == second["status"] == "queued"
    assert sent == [[req.pk]]
    assert req.task_id != "lost" and "sent_again_at" in req.params
    render.process(req.pk)  # the resent task renders it like the first would have
    req.refresh_from_db()
    assert req.status == "done"


def test_it_leaves_a_freshly_queued_request_alone(client, generator):
    req = queued(generator, [8], kind="single")

    assert generation.requeue_if_stuck(req) is False


@pytest.mark.django_db(transaction=True)
@pytest.mark.shared_media  # a session worker, when one runs, may render it from its own root
def test_a_post_that_asks_to_wait_answers_with_the_image(client, generator):
    """What the Generate button sends: ``?wait=`` on the POST, so one request brings the
    result; without ``wait`` the POST answers 202 at once, as before."""
    finished = []

    def render_when_queued():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not finished:
            req = GenerationRequest.objects.filter(status="queued").first()
            if req is not None:
                time.sleep(0.2)
                render.process(req.pk)
                finished.append(req.pk)
            time.sleep(0.02)
        connection.close()

    thread = threading.Thread(target=render_when_queued)
    thread.start()
    started = time.monotonic()
    waited = client.post(
        reverse("gan:generate") + "?wait=10",
        {"generator": generator.slug, "seed": "77"},
        HTTP_ACCEPT="application/json",
    )
    elapsed = time.monotonic() - started
    thread.join()
    at_once = client.post(
        reverse("gan:generate"),
        {"generator": generator.slug, "seed": "78"},
        HTTP_ACCEPT="application/json",
    )

    assert waited.status_code == 200, waited.content
    body = waited.json()
    assert body["status"] == "done" and body["images"][0]["png"] == f"/g/{generator.slug}/77.png"
    # Answered once made, well before the 10 s wait ran out (a session worker that renders
    # it instead loads the generator first).
    assert elapsed < 8
    assert at_once.status_code == 202 and at_once.json()["status"] == "queued"


def test_a_post_that_asks_to_wait_over_the_cap_answers_at_once(client, generator, settings):
    settings.LONG_POLL_MAX_WAITERS = 1
    with polls.hold("someone else"):
        started = time.monotonic()
        response = client.post(
            reverse("gan:generate") + "?wait=10",
            {"generator": generator.slug, "seed": "79"},
            HTTP_ACCEPT="application/json",
        )

    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert time.monotonic() - started < 2
