from datetime import UTC, datetime
from decimal import Decimal

import pytest

from collections_app.ingest.records import SaleRecord, TokenRecord, TraitRecord
from collections_app.ingest.upsert import TokenUpserter, finalize_collection
from collections_app.models import Collection, Sale, Token, TokenTrait, Trait
from collections_app.signals import collection_data_changed

pytestmark = pytest.mark.django_db


@pytest.fixture
def collection():
    return Collection.objects.create(slug="c", name="C")


def record(token_id, traits=(("hat", "red"),), sales=(), **fields):
    fields.setdefault("name", f"#{token_id}")
    return TokenRecord(
        token_id=str(token_id),
        traits=[TraitRecord(t, v) for t, v in traits],
        sales=list(sales),
        metadata={"token_id": str(token_id)},
        **fields,
    )


def sale(key, eth, day, usd_rate="1000"):
    amount = Decimal(eth)
    return SaleRecord(
        source_key=key,
        amount=amount,
        symbol="ETH",
        timestamp=datetime(2022, 1, day, tzinfo=UTC),
        usd_rate=Decimal(usd_rate),
        usd=amount * Decimal(usd_rate),
    )


def test_it_writes_tokens_traits_and_counts(collection):
    TokenUpserter(collection).upsert(
        [record(1), record(2, traits=[("hat", "red"), ("eyes", "blue")]), record(3, traits=[])]
    )

    assert Token.objects.filter(collection=collection).count() == 3
    counts = dict(Trait.objects.values_list("value", "count"))
    assert counts == {"red": 2, "blue": 1}
    assert Token.objects.get(token_id="2").trait_count == 2
    assert Token.objects.get(token_id="2").token_number == 2


def test_it_never_duplicates_when_the_same_batch_comes_twice(collection):
    upserter = TokenUpserter(collection)
    batch = [record(i, sales=[sale(f"s{i}", "1.5", 3)]) for i in range(5)]
    upserter.upsert(batch)
    TokenUpserter(collection).upsert(batch)

    assert Token.objects.count() == 5
    assert TokenTrait.objects.count() == 5
    assert Sale.objects.count() == 5
    assert Trait.objects.get().count == 5


def test_it_follows_changed_traits_on_reingest(collection):
    upserter = TokenUpserter(collection)
    upserter.upsert([record(1, traits=[("hat", "red"), ("eyes", "blue")])])
    upserter.upsert([record(1, traits=[("hat", "green")])])
    finalize_collection(collection)

    token = Token.objects.get()
    assert sorted(token.traits.values_list("trait_type", "value")) == [("hat", "green")]
    assert list(Trait.objects.values_list("value", "count")) == [("green", 1)]
    assert token.trait_count == 1


def test_it_takes_the_last_sale_from_the_latest_sale_row(collection):
    upserter = TokenUpserter(collection)
    upserter.upsert([record(1, sales=[sale("new", "2", 20, "3000")])])
    upserter.upsert([record(1, sales=[sale("old", "1", 5)])])  # arrives later, happened earlier

    token = Token.objects.get()
    assert token.sales.count() == 2
    assert token.last_sale_amount == Decimal("2")
    assert token.last_sale_usd == Decimal("6000")
    assert token.last_sale_at == datetime(2022, 1, 20, tzinfo=UTC)


def test_it_keeps_a_stored_image_when_a_later_record_has_none(collection):
    from collections_app.ingest.images import save_image
    from tests.ingest.conftest import png_bytes

    upserter = TokenUpserter(collection)
    upserter.upsert([record(1, image=save_image(png_bytes()))])
    upserter.upsert([record(1, name="renamed")])

    token = Token.objects.get()
    assert token.image and token.image_sha256
    assert token.name == "renamed"


def test_it_isolates_a_token_the_database_refuses(collection):
    bad = record(2)
    bad.name = "x" * 400  # over the column's 300 characters

    result = TokenUpserter(collection).upsert([record(1), bad, record(3)])

    assert sorted(result.written) == ["1", "3"]
    assert [e.item for e in result.failed] == ["2"]
    assert "database refused" in result.failed[0].reason
    assert sorted(Token.objects.values_list("token_id", flat=True)) == ["1", "3"]
    assert Trait.objects.get().count == 2


def test_it_bumps_the_data_version_and_signals_after_commit(
    collection, django_capture_on_commit_callbacks
):
    received = []

    def receiver(sender, collection, **kwargs):
        received.append(collection.pk)

    collection_data_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            TokenUpserter(collection).upsert([record(1)])
            finalize_collection(collection)
            assert received == []  # nothing before the commit
    finally:
        collection_data_changed.disconnect(receiver)

    assert received == [collection.pk]
    collection.refresh_from_db()
    assert collection.data_version >= 2


def test_it_survives_a_failing_signal_receiver(collection, django_capture_on_commit_callbacks):
    def broken(**kwargs):
        raise RuntimeError("analytics is down")

    collection_data_changed.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            finalize_collection(collection)
    finally:
        collection_data_changed.disconnect(broken)
