"""How long a status long poll may wait and how many a process holds (gan_app.generation.polls);
the real server under many of them is tested in tests/production/test_long_polls.py."""

import time

import pytest
from django.urls import reverse

from gan_app.generation import polls
from gan_app.models import GenerationRequest


def test_it_reads_the_wait_within_zero_and_the_longest_allowed(settings):
    settings.LONG_POLL_MAX_WAIT = 25.0

    read = {raw: polls.wait_seconds(raw) for raw in ("2.5", "100", "-3", "", None, "soon")}
    refused = {raw: polls.wait_seconds(raw) for raw in ("inf", "-inf", "nan", "Infinity", "1e999")}

    assert read == {"2.5": 2.5, "100": 25.0, "-3": 0.0, "": 0.0, None: 0.0, "soon": 0.0}
    assert set(refused.values()) == {0.0}


def test_it_holds_a_few_waits_per_client_and_a_few_in_all(settings):
    settings.LONG_POLL_PER_CLIENT, settings.LONG_POLL_MAX_WAITERS = 2, 3

    with polls.hold("a") as first, polls.hold("a") as second, polls.hold("a") as third:
        assert (first, second, third) == (True, True, False)
        assert (polls.held("a"), polls.held()) == (2, 2)
        with polls.hold("b") as other, polls.hold("c") as over_total:
            assert (other, over_total) == (True, False)
    with polls.hold("a") as again:
        assert again is True
    assert polls.held() == 0


def test_it_gives_a_wait_back_when_the_waiter_fails(settings):
    with pytest.raises(RuntimeError), polls.hold("a"):
        raise RuntimeError("client went away")

    assert polls.held("a") == polls.held() == 0


@pytest.mark.django_db
def test_it_answers_a_status_request_at_once_for_a_wait_it_cannot_read(client, generator):
    req = GenerationRequest.objects.create(generator=generator, kind="single", seeds=[1])
    url = reverse("gan:request_status", args=[req.public_id])
    started = time.monotonic()

    bodies = [client.get(f"{url}?since=queued&wait={w}").json() for w in ("inf", "nan", "x")]

    assert [body["status"] for body in bodies] == ["queued"] * 3
    assert time.monotonic() - started < 2


@pytest.mark.django_db
def test_it_refuses_a_wait_over_the_cap_with_429(client, generator, settings):
    settings.LONG_POLL_MAX_WAITERS = 1
    req = GenerationRequest.objects.create(generator=generator, kind="single", seeds=[1])
    url = reverse("gan:request_status", args=[req.public_id])

    with polls.hold("someone else"):
        refused = client.get(f"{url}?since=queued&wait=10")
        page = client.get(reverse("gan:request", args=[req.public_id]))
        plain = client.get(url)

    assert refused.status_code == 429
    assert refused["Retry-After"] == str(polls.RETRY_AFTER)
    assert refused.json()["retry_after"] == polls.RETRY_AFTER
    # The page without JavaScript shows the state at once and refreshes; no wait, no wait cap.
    assert page.status_code == 200 and b'http-equiv="refresh"' in page.content
    assert plain.status_code == 200 and plain.json()["status"] == "queued"
