import time

import pytest

from collections_app.ingest.opensea import NotFound, OpenSeaClient, OpenSeaError, TokenBucket
from tests.fake_opensea import FakeCollection, FakeOpenSea

KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def fake_collection():
    return FakeCollection.from_demo(size=450, seed=2, slug="client-fakes")


def client_for(api, **options):
    options = {"rate": 1000, "backoff_base": 0.01, "max_retries": 4, **options}
    return OpenSeaClient(KEY, api.url, **options)


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_it_spaces_requests_at_the_configured_rate():
    clock = FakeClock()
    bucket = TokenBucket(4, clock=clock, sleep=clock.sleep)

    waits = [bucket.acquire() for _ in range(5)]

    assert waits == [0.0, 0.25, 0.25, 0.25, 0.25]
    assert clock.now == pytest.approx(101.0)


def test_it_reserves_slots_in_order_for_waiting_threads():
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=lambda s: None)  # nobody actually sleeps

    waits = [bucket.acquire() for _ in range(4)]

    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_it_holds_everyone_off_when_the_server_says_so():
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.hold_off(3.0)

    assert bucket.acquire() == pytest.approx(3.0)
    assert bucket.acquire() == pytest.approx(0.1)


def test_it_pages_with_opaque_cursors_through_the_whole_collection(fake_collection):
    with FakeOpenSea(fake_collection) as api, client_for(api) as client:
        seen, cursor, pages = [], None, 0
        while True:
            page = client.nfts_page("client-fakes", cursor)
            seen += [n["identifier"] for n in page.items]
            pages += 1
            if not page.next:
                break
            cursor = page.next
    assert pages == 3
    assert seen == [str(i) for i in range(450)]


def test_it_reports_a_rejected_cursor(fake_collection):
    with (
        FakeOpenSea(fake_collection) as api,
        client_for(api) as client,
        pytest.raises(OpenSeaError, match=r"HTTP 400.*invalid cursor"),
    ):
        client.nfts_page("client-fakes", "bm90LWEtY3Vyc29y")


def test_it_honours_retry_after_on_429(fake_collection):
    with (
        FakeOpenSea(fake_collection, throttle_first=2, retry_after="0.4") as api,
        client_for(api) as client,
    ):
        started = time.monotonic()
        data = client.collection("client-fakes")
        elapsed = time.monotonic() - started
    assert data["total_supply"] == 450
    assert elapsed >= 0.8
    assert api.stats["api_requests"] == 3


def test_it_retries_a_burst_of_server_errors(fake_collection):
    with FakeOpenSea(fake_collection, bursts=[(0, 3)]) as api, client_for(api) as client:
        assert client.collection_stats("client-fakes")["total"]["sales"] > 0
    assert api.stats["burst_503"] == 3
    assert client.retries == 3


def test_it_retries_a_timeout(fake_collection):
    with (
        FakeOpenSea(fake_collection, slow_first=1, slow_seconds=1.0) as api,
        client_for(api, timeout=(2, 0.3)) as client,
    ):
        assert client.collection("client-fakes")["collection"] == "client-fakes"
    assert client.retries == 1


def test_it_gives_up_after_its_retries(fake_collection):
    with (
        FakeOpenSea(fake_collection, error_rate=1.0) as api,
        client_for(api, max_retries=2) as client,
        pytest.raises(OpenSeaError, match="after 3 attempts"),
    ):
        client.collection("client-fakes")
    assert api.stats["api_requests"] == 3


def test_it_does_not_retry_a_missing_nft(fake_collection):
    with (
        FakeOpenSea(fake_collection) as api,
        client_for(api) as client,
        pytest.raises(NotFound, match="HTTP 404"),
    ):
        client.nft("ethereum", fake_collection.contract, "99999")
    assert api.stats["api_requests"] == 1


def test_it_sends_the_key_in_the_header_and_never_in_a_message(fake_collection):
    with (
        FakeOpenSea(fake_collection, api_key="another-key") as api,
        client_for(api) as client,
        pytest.raises(OpenSeaError) as info,
    ):
        client.collection("client-fakes")
    assert info.value.status == 401
    assert KEY not in str(info.value)
    assert api.keys_seen == {KEY: 1}


def test_it_reads_nft_details_and_sale_events(fake_collection):
    with FakeOpenSea(fake_collection) as api, client_for(api) as client:
        nft = client.nft("ethereum", fake_collection.contract, "5")
        events = client.sale_events_page("client-fakes")
    assert nft["identifier"] == "5"
    assert [t["trait_type"] for t in nft["traits"]][:2] == ["background", "type"]
    assert len(events.items) == 50 and events.next
    assert events.items[0]["payment"]["symbol"] == "ETH"


def test_it_downloads_images_with_a_size_cap(fake_collection):
    with FakeOpenSea(fake_collection) as api:
        with client_for(api) as client:
            assert (
                client.download(f"{api.url}/images/client-fakes/3.png")
                == fake_collection.tokens[3].png
            )
        with (
            client_for(api, max_image_bytes=100) as small,
            pytest.raises(OpenSeaError, match="over the 100-byte limit"),
        ):
            small.download(f"{api.url}/images/client-fakes/3.png")


def test_it_reads_data_urls():
    with OpenSeaClient(KEY, "http://127.0.0.1:9") as client:
        assert client.download("data:text/plain;base64,aGVsbG8=") == b"hello"
        assert client.download("data:,a%20b") == b"a b"


def test_it_paces_a_burst_of_requests(fake_collection):
    with FakeOpenSea(fake_collection) as api, client_for(api, rate=25) as client:
        started = time.monotonic()
        for _ in range(11):
            client.collection("client-fakes")
        elapsed = time.monotonic() - started
    # Measured on the client's clock: when the server logs a request depends on scheduling,
    # when the client may send the next one does not. The 11th of a burst at 25/s waits for
    # 10 intervals of 40 ms.
    assert elapsed >= 0.399
    assert len(api.api_times) == 11
