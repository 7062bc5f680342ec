"""The one write path for tokens: every source hands TokenRecords to :class:`TokenUpserter`.

Rows are keyed on (collection, token_id) for tokens, (collection, trait_type, value) for traits
and (collection, source_key) for sales, and written with bulk INSERT ... ON CONFLICT DO UPDATE
(PostgreSQL and SQLite alike), so writing the same batch twice changes nothing: a resumed or
repeated ingest can never duplicate a token, a trait link or a sale.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from collections_app.models import Collection, Sale, Token, TokenTrait, Trait
from collections_app.signals import collection_data_changed

from .records import ItemError

log = logging.getLogger(__name__)

TOKEN_FIELDS = ["name", "description", "image_url", "owner_address", "metadata", "trait_count"]
IMAGE_FIELDS = [
    "image",
    "image_sha256",
    "image_size",
    "image_width",
    "image_height",
    "image_format",
]
SALE_FIELDS = [
    "token",
    "amount",
    "symbol",
    "usd",
    "usd_rate",
    "quantity",
    "timestamp",
    "tx_hash",
    "buyer",
    "seller",
]


@dataclass
class UpsertResult:
    written: list = field(default_factory=list)  # token ids now in the database
    failed: list = field(default_factory=list)  # ItemError for records the database refused
    token_pks: dict = field(default_factory=dict)  # token_id -> Token.pk


class TokenUpserter:
    """Writes batches of TokenRecords for one collection; keeps trait ids between batches."""

    def __init__(self, collection):
        self.collection = collection
        self._trait_ids = {}

    def upsert(self, records):
        """Write ``records`` in one transaction; returns an :class:`UpsertResult`.

        If the database refuses the batch's data (a value no source should send, say), the
        records are retried one by one so that only the offending token is reported and the rest
        land. Other database errors (a lost connection) are not about a token and propagate.
        """
        result = UpsertResult()
        if not records:
            return result
        try:
            with transaction.atomic():
                result.token_pks = self._write(records)
                result.written = [r.token_id for r in records]
        except (DataError, IntegrityError):
            self._trait_ids.clear()  # ids cached inside the rolled-back savepoint may be gone
            for record in records:
                try:
                    with transaction.atomic():
                        result.token_pks.update(self._write([record]))
                        result.written.append(record.token_id)
                except (DataError, IntegrityError) as exc:
                    self._trait_ids.clear()
                    reason = f"database refused the token: {str(exc).splitlines()[0][:300]}"
                    result.failed.append(ItemError(record.token_id, reason))
        if result.written:
            self.collection.bump_data_version()
        return result

    def _write(self, records):
        records = list({r.token_id: r for r in records}.values())  # last one wins
        token_pks = self._write_tokens(records)
        self._write_traits(records, token_pks)
        sales = [(token_pks[r.token_id], s) for r in records for s in r.sales]
        if sales:
            write_sales(self.collection, sales)
        return token_pks

    def _write_tokens(self, records):
        now = timezone.now()
        with_image, without_image = [], []
        for r in records:
            token = Token(
                collection=self.collection,
                token_id=r.token_id,
                token_number=r.token_number,
                name=r.name,
                description=r.description,
                image_url=r.image_url,
                owner_address=r.owner_address,
                metadata=r.metadata,
                trait_count=len(r.traits),
                created_at=now,
                updated_at=now,
            )
            if r.image:
                token.image = r.image.name
                token.image_sha256 = r.image.sha256
                token.image_size = r.image.size
                token.image_width = r.image.width
                token.image_height = r.image.height
                token.image_format = r.image.format
                with_image.append(token)
            else:
                without_image.append(token)
        # A record without an image (the download failed this time) keeps the image stored
        # by an earlier ingest instead of wiping it.
        for tokens, fields in (
            (with_image, TOKEN_FIELDS + IMAGE_FIELDS),
            (without_image, TOKEN_FIELDS),
        ):
            if tokens:
                Token.objects.bulk_create(
                    tokens,
                    update_conflicts=True,
                    unique_fields=["collection", "token_id"],
                    update_fields=[*fields, "token_number", "updated_at"],
                    batch_size=500,
                )
        return dict(
            Token.objects.filter(
                collection=self.collection, token_id__in=[r.token_id for r in records]
            ).values_list("token_id", "pk")
        )

    def _write_traits(self, records, token_pks):
        wanted = {}
        for r in records:
            for t in r.traits:
                wanted.setdefault((t.trait_type, t.value), t.display_type)
        missing = [key for key in wanted if key not in self._trait_ids]
        if missing:
            Trait.objects.bulk_create(
                [
                    Trait(
                        collection=self.collection,
                        trait_type=k[0],
                        value=k[1],
                        display_type=wanted[k],
                    )
                    for k in missing
                ],
                update_conflicts=True,
                unique_fields=["collection", "trait_type", "value"],
                update_fields=["display_type"],
                batch_size=500,
            )
            self._trait_ids.update(
                ((tt, v), pk)
                for tt, v, pk in Trait.objects.filter(collection=self.collection).values_list(
                    "trait_type", "value", "pk"
                )
            )
        desired = {
            (token_pks[r.token_id], self._trait_ids[(t.trait_type, t.value)])
            for r in records
            for t in r.traits
        }
        existing = {
            (token, trait): pk
            for pk, token, trait in TokenTrait.objects.filter(
                token_id__in=token_pks.values()
            ).values_list("pk", "token_id", "trait_id")
        }
        stale = {pair: pk for pair, pk in existing.items() if pair not in desired}
        if stale:
            TokenTrait.objects.filter(pk__in=stale.values()).delete()
        new = desired.difference(existing)
        if new:
            insert_links(sorted(new))
        # Counts move by what this batch changed, so a batch costs the same however large
        # the collection already is; finalize_collection recounts from scratch at the end.
        delta = Counter(trait for _, trait in new)
        delta.subtract(trait for _, trait in stale)
        by_change = {}
        for trait, change in delta.items():
            if change:
                by_change.setdefault(change, []).append(trait)
        for change, traits in by_change.items():
            Trait.objects.filter(pk__in=traits).update(count=F("count") + change)


def insert_links(pairs, chunk=400):
    """INSERT (token_id, trait_id) link rows, skipping ones that exist.

    A collection has several links per token, so this is the hottest insert of an import;
    a multi-row INSERT built here avoids making (and compiling) a model instance per row,
    which is most of what bulk_create would spend. 400 rows keep under SQLite's 999
    parameters; ON CONFLICT DO NOTHING works on PostgreSQL and SQLite alike.
    """
    table = connection.ops.quote_name(TokenTrait._meta.db_table)  # ours: no input in the SQL
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), chunk):
            rows = pairs[start : start + chunk]
            values = ", ".join(["(%s, %s)"] * len(rows))
            cursor.execute(
                f"INSERT INTO {table} (token_id, trait_id) VALUES {values} ON CONFLICT DO NOTHING",  # noqa: S608
                [value for row in rows for value in row],
            )


def write_metadata(tokens):
    """Store each token's ``metadata`` (pk and metadata loaded) with one executemany.

    bulk_update builds a CASE WHEN per row and compiles it, which costs several times the
    writes themselves; the sales commit at the end of an ingest rewrites every sold token.
    """
    if not tokens:
        return
    field = Token._meta.get_field("metadata")
    table, column, pk = (  # ours: no input in the SQL
        connection.ops.quote_name(name)
        for name in (Token._meta.db_table, field.column, Token._meta.pk.column)
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608
            [(field.get_db_prep_save(t.metadata, connection), t.pk) for t in tokens],
        )


def write_sales(collection, sales):
    """Upsert ``[(token_pk, SaleRecord)]`` and refresh those tokens' last-sale fields."""
    rows = {
        s.source_key: Sale(
            collection=collection,
            token_id=token_pk,
            source_key=s.source_key,
            amount=s.amount,
            symbol=s.symbol,
            usd=s.usd,
            usd_rate=s.usd_rate,
            quantity=s.quantity,
            timestamp=s.timestamp,
            tx_hash=s.tx_hash,
            buyer=s.buyer,
            seller=s.seller,
        )
        for token_pk, s in sales
    }
    Sale.objects.bulk_create(
        list(rows.values()),
        update_conflicts=True,
        unique_fields=["collection", "source_key"],
        update_fields=SALE_FIELDS,
        batch_size=500,
    )
    refresh_last_sales({token_pk for token_pk, _ in sales})


def refresh_last_sales(token_pks):
    """Set each token's last_sale_* from its latest Sale row (all sources agree on one rule)."""
    latest = Sale.objects.filter(token=OuterRef("pk")).order_by("-timestamp", "-pk")
    Token.objects.filter(pk__in=list(token_pks)).update(
        last_sale_amount=Subquery(latest.values("amount")[:1]),
        last_sale_symbol=Coalesce(Subquery(latest.values("symbol")[:1]), Value("")),
        last_sale_usd=Subquery(latest.values("usd")[:1]),
        last_sale_at=Subquery(latest.values("timestamp")[:1]),
    )


def recount_traits(collection):
    """Trait.count = how many of the collection's tokens carry it, from the link rows."""
    counts = (
        TokenTrait.objects.filter(trait=OuterRef("pk"))
        .order_by()
        .values("trait")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Trait.objects.filter(collection=collection).update(
        count=Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))
    )


def finalize_collection(collection):
    """End of an ingest: drop traits no token carries any more, then tell listeners."""
    with transaction.atomic():
        recount_traits(collection)
        Trait.objects.filter(collection=collection, count=0).delete()
        collection.bump_data_version()  # the caller's object carries the new version too
    notify_collection_changed(collection)


def notify_collection_changed(collection):
    """Send ``collection_data_changed`` once the surrounding transaction (if any) commits."""

    def send():
        for receiver, response in collection_data_changed.send_robust(
            sender=Collection, collection=collection
        ):
            if isinstance(response, Exception):
                log.error("collection_data_changed receiver %r failed: %s", receiver, response)

    transaction.on_commit(send)
