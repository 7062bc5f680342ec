"""Collecting a collection from the OpenSea API v2: resumable, exact, overlapped.

The job walks two cursor-paged lists: the collection's NFTs (200 a page), then its sale
events. For every NFT on a page, the detail call (traits, owner) and the image download run
on bounded thread pools while the next page is already being fetched; a page is committed in
one transaction together with the job's cursor, so a killed worker or command resumes at the
first uncommitted page and the (collection, token_id) upsert makes redoing a page harmless.
Per-token failures (a 404 detail, an image that stays broken) are recorded with their reason
and the rest of the page lands. A detail call that still fails after every retry (server errors,
timeouts) is no verdict on its token: the page is not committed and the job stops with a
resumable failure, so no token is ever written off for a passing outage. At the end the stored
count is reconciled with the supply OpenSea reports.

The rate limit, not round trips, sets the pace: the collection, its stats and the first NFT page
are asked for at once, and the sale-event pages are read and parsed during the last NFT pages,
so what is left after the last detail call is the writing of the last page and of the sales.

``IngestJob.cursor`` reads ``nfts:<api cursor>``, ``sales:<api cursor>`` or ``done:``.
"""

import gc
import logging
import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from collections_app import prices
from collections_app.models import Collection, Sale, Token

from .images import ImageRejected, check_image, save_image
from .importer import write_batch
from .jobs import (
    Deadline,
    JobCancelled,
    check_cancelled,
    commit_progress,
    fail,
    finish,
    heartbeat,
    set_expected,
)
from .opensea import NFT_PAGE_LIMIT, OpenSeaClient, OpenSeaError
from .records import (
    ItemError,
    SaleRecord,
    TokenRecord,
    canonical_token_id,
    clean_json,
    parse_timestamp,
    parse_traits,
    text,
)
from .upsert import TokenUpserter, finalize_collection, write_metadata, write_sales

log = logging.getLogger(__name__)

PAGES_IN_FLIGHT = 2
SALES_BATCH = 2000  # events per commit: fewer, larger transactions; a resume redoes at most this
SALES_PREFETCH_PAGES = 40  # event pages read ahead of the sales commits (2,000 events at most)
# The event walk starts this many NFT pages before the end: their detail calls (200 slots a
# page) leave it time to read SALES_PREFETCH_PAGES pages, and a chunk whose deadline passes
# earlier than that has not spent any request on events it will drop.
EVENTS_LEAD_PAGES = 2
NFTS, SALES, DONE = "nfts", "sales", "done"


def parse_cursor(value):
    """``(phase, api_cursor)`` from IngestJob.cursor; an empty cursor starts at the NFTs."""
    phase, _, cursor = (value or "").partition(":")
    if phase not in {NFTS, SALES, DONE}:
        return NFTS, None
    return phase, cursor or None


def format_cursor(phase, cursor=None):
    return f"{phase}:{cursor or ''}"


# --- Shapes ----------------------------------------------------------------------------------
@dataclass
class CollectionInfo:
    slug: str
    name: str
    chain: str
    contract: str
    total_supply: int | None
    rates: dict = field(default_factory=dict)  # payment symbol -> USD rate (Decimal)
    sales_reported: int | None = None
    image_url: str = ""


def collection_info(data, stats=None):
    """The parts of ``/collections/{slug}`` (+ ``/stats``) an ingest needs."""
    contracts = [c for c in data.get("contracts") or [] if isinstance(c, dict)]
    rates = {}
    for token in data.get("payment_tokens") or []:
        if not isinstance(token, dict) or not token.get("symbol"):
            continue
        try:
            rate = prices.parse_rate(token.get("usd_price"))
        except prices.PriceError:
            continue
        if rate is not None:
            rates.setdefault(str(token["symbol"]).upper(), rate)
    supply = data.get("total_supply")
    total = (stats or {}).get("total") if isinstance(stats, dict) else None
    sales = total.get("sales") if isinstance(total, dict) else None
    return CollectionInfo(
        slug=str(data.get("collection") or ""),
        name=text(data.get("name"), 300),
        chain=str(contracts[0].get("chain") or "ethereum") if contracts else "ethereum",
        contract=str(contracts[0].get("address") or "") if contracts else "",
        total_supply=supply if isinstance(supply, int) and supply >= 0 else None,
        rates=rates,
        sales_reported=sales if isinstance(sales, int) else None,
        image_url=text(data.get("image_url")),
    )


def record_from_v2_nft(nft, *, collection_name=""):
    """An API v2 NFT (the detail object) as a TokenRecord with OpenSea v1-style metadata.

    Metadata is stored in the v1 asset shape every other source uses, so exports of an API
    ingest are ordinary seed archives.
    """
    if not isinstance(nft, dict):
        raise ItemError("?", "the NFT is not an object")
    token_id = canonical_token_id(nft.get("identifier"))
    traits = parse_traits(nft.get("traits"), token_id)
    owners = [o for o in nft.get("owners") or [] if isinstance(o, dict)]
    owner = text(owners[0].get("address"), 64) if owners else ""
    image_url = text(nft.get("image_url") or nft.get("display_image_url"))
    metadata = clean_json(
        {
            "token_id": token_id,
            "name": nft.get("name"),
            "description": nft.get("description"),
            "image_url": image_url or None,
            "background_color": None,
            "external_link": None,
            "asset_contract": {
                "address": nft.get("contract"),
                "schema_name": str(nft.get("token_standard") or "").upper(),
                "name": collection_name,
            },
            "owner": {"address": owner} if owner else None,
            "traits": nft.get("traits") or [],
            "last_sale": None,
            "permalink": nft.get("opensea_url"),
            "token_metadata": nft.get("metadata_url"),
            "rarity": nft.get("rarity"),
        }
    )
    return TokenRecord(
        token_id=token_id,
        name=text(nft.get("name"), 300),
        description=text(nft.get("description")),
        image_url=image_url if image_url.startswith(("http://", "https://")) else "",
        owner_address=owner,
        traits=traits,
        metadata=metadata,
        contract_address=text(nft.get("contract"), 64),
        contract_name=collection_name,
        schema_name=str(nft.get("token_standard") or "").upper()[:32],
    )


def sale_from_v2_event(event, rates):
    """``(token_id, SaleRecord)`` from a v2 sale event; raises PriceError/ValueError/ItemError.

    v2 events carry no USD price, so the USD value uses the collection's payment-token rate
    as OpenSea reports it now (``rates``).
    """
    if not isinstance(event, dict):
        raise ValueError("sale event is not an object")
    nft = event.get("nft") if isinstance(event.get("nft"), dict) else {}
    token_id = canonical_token_id(nft.get("identifier"), "sale event")
    payment = event.get("payment")
    if not isinstance(payment, dict):
        raise ValueError("sale event has no payment")
    price = prices.convert_payment(payment.get("quantity"), payment, fallback_rates=rates)
    moment = parse_timestamp(event.get("closing_date") or event.get("event_timestamp"))
    tx = text(event.get("transaction"), 80)
    order = text(event.get("order_hash"), 80)
    if not tx and not order:
        raise ValueError("sale event has neither a transaction nor an order hash")
    try:
        quantity = max(1, int(event.get("quantity") or 1))
    except (TypeError, ValueError):
        raise ValueError(f"sale quantity {event.get('quantity')!r} is not a number") from None
    v1 = {
        "total_price": str(prices.parse_smallest_units(payment.get("quantity"))),
        "quantity": str(quantity),
        "event_timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S"),
        "payment_token": {
            "symbol": price.symbol,
            "decimals": price.decimals,
            "usd_price": str(price.usd_rate) if price.usd_rate is not None else None,
            "address": payment.get("token_address"),
        },
        "transaction": {"transaction_hash": tx or None},
    }
    return token_id, SaleRecord(
        source_key=(f"tx:{tx}:{token_id}" if tx else f"order:{order}:{token_id}")[:200],
        amount=price.amount,
        symbol=price.symbol,
        timestamp=moment,
        usd=price.usd,
        usd_rate=price.usd_rate,
        quantity=quantity,
        tx_hash=tx,
        buyer=text(event.get("buyer"), 64),
        seller=text(event.get("seller"), 64),
        v1=v1,
    )


def parse_sale_events(events, rates):
    """``(sales, failures)`` for a page of v2 events: ``[(token_id, SaleRecord)]``, job errors."""
    sales, failures = [], []
    for event in events:
        if isinstance(event, dict) and event.get("event_type", "sale") != "sale":
            continue
        try:
            sales.append(sale_from_v2_event(event, rates))
        except (prices.PriceError, ValueError, ItemError) as exc:
            where = event.get("transaction") if isinstance(event, dict) else None
            failures.append({"item": f"sale {where or '?'}", "reason": str(exc), "imported": False})
    return sales, failures


# --- The run ---------------------------------------------------------------------------------
@dataclass
class PendingPage:
    next_cursor: str | None
    tokens: list  # [(listed nft, detail future, image future or None, failure or None)]


class OpenSeaIngest:
    """One chunk of work on an OpenSea ingest job; ``run()`` says whether the job is done."""

    def __init__(self, job, client, *, deadline=None, on_progress=None, max_workers=None):
        self.job = job
        self.client = client
        self.collection = job.collection
        self.deadline = deadline or Deadline()
        self.on_progress = on_progress
        self.max_workers = max_workers or settings.OPENSEA_MAX_WORKERS
        self.fetch_sales = job.params.get("sales", True)
        self.info = None
        self.upserter = TokenUpserter(self.collection)
        self.events = None  # EventPrefetch, once the sale events are being read

    def run(self):
        phase, cursor = parse_cursor(self.job.cursor)
        slug = self.collection.slug
        # The collection, its stats and the first NFT page do not depend on each other: asked
        # for together, they take the rate limit's first slots instead of three round trips.
        with ThreadPoolExecutor(3, thread_name_prefix="os-start") as start:
            data = start.submit(self.client.collection, slug)
            stats = start.submit(self.client.collection_stats, slug)
            first = start.submit(self.client.nfts_page, slug, cursor) if phase == NFTS else None
            self.info = self.sync_collection(data.result(), stats)
        try:
            if phase == NFTS and not self.collect_nfts(cursor, first):
                return False
            phase, cursor = parse_cursor(self.job.cursor)
            return phase != SALES or self.collect_sales(cursor)
        finally:
            if self.events:
                self.events.close()

    def start_events(self, cursor=None):
        """Begin reading sale-event pages ahead from ``cursor`` (once per run).

        Event pages name each other, so reading them is bound by the API's answer time, not by
        the rate limit. Started near the end of the NFT pass, the walk runs during the last
        pages' detail calls (same requests, same bucket, so nothing extra is asked of the API).
        """
        if self.events is None:
            self.events = EventPrefetch(self.client, self.collection.slug, cursor, self.info.rates)
        return self.events

    # -- collection ----------------------------------------------------------------------------
    def sync_collection(self, data, stats):
        """Store the collection's details (``data``); ``stats`` is the future of its stats."""
        slug = self.collection.slug
        try:
            stats = stats.result()
        except OpenSeaError as exc:  # stats only feed the final reconciliation
            log.warning("no stats for %s: %s", slug, exc)
            stats = None
        info = collection_info(data, stats)
        fields = {
            "name": info.name or self.collection.name or slug,
            "description": text(data.get("description")),
            "chain": info.chain[:32],
            "contract_address": info.contract[:64],
            "supply": info.total_supply,
        }
        url = text(data.get("project_url") or data.get("opensea_url"))
        if url.startswith(("http://", "https://")) and len(url) <= 500:
            fields["external_url"] = url
        Collection.objects.filter(pk=self.collection.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.collection, name, value)
        if info.total_supply is not None:
            set_expected(self.job, info.total_supply)
        if not self.collection.cover_image and info.image_url:
            self.save_cover(info.image_url)
        return info

    def save_cover(self, url):
        from .archives import save_cover

        try:
            save_cover(self.collection, check_image(self.client.download(url)).png)
        except (OpenSeaError, ImageRejected) as exc:
            log.warning("no cover for %s: %s", self.collection.slug, exc)

    # -- NFTs ----------------------------------------------------------------------------------
    def collect_nfts(self, cursor, first=None):
        """Page through the NFTs; True when the last page is committed.

        ``first`` is the future of the page at ``cursor`` when it has already been asked for.
        """
        pending = deque()
        more, committed = True, 0
        listed = self.collection.tokens.count()  # tells when the end is near (a guess: enough)
        with (
            ThreadPoolExecutor(self.max_workers, thread_name_prefix="os-api") as api_pool,
            ThreadPoolExecutor(self.max_workers, thread_name_prefix="os-img") as image_pool,
        ):
            try:
                while more or pending:
                    # Every chunk commits at least one page, however short its time.
                    stop = self.deadline.passed and committed > 0
                    if more and not stop and len(pending) < PAGES_IN_FLIGHT:
                        if first is not None:
                            page, first = first.result(), None
                        else:
                            page = self.client.nfts_page(self.collection.slug, cursor)
                        pending.append(self.submit_page(page, api_pool, image_pool))
                        cursor, more = page.next, bool(page.next)
                        listed += len(page.items)
                        if self.fetch_sales and (not more or self.nearly_listed(listed)):
                            self.start_events()
                        continue
                    if stop and not pending:
                        return False
                    self.commit_page(pending.popleft())
                    committed += 1
            except BaseException:
                for page in pending:  # uncommitted pages are redone on resume
                    for _, detail, image, _ in page.tokens:
                        for future in (detail, image):
                            if future:
                                future.cancel()
                raise
        return True

    def nearly_listed(self, listed):
        """True when at most EVENTS_LEAD_PAGES NFT pages remain, by the supply OpenSea reports."""
        supply = self.info.total_supply
        return supply is not None and supply - listed <= EVENTS_LEAD_PAGES * NFT_PAGE_LIMIT

    def submit_page(self, page, api_pool, image_pool):
        tokens, seen = [], set()
        for nft in page.items:
            if not isinstance(nft, dict):
                tokens.append(
                    (
                        nft,
                        None,
                        None,
                        {"item": "?", "reason": "listed NFT is not an object", "imported": False},
                    )
                )
                continue
            try:
                token_id = canonical_token_id(nft.get("identifier"), "listed NFT")
            except ItemError as exc:
                tokens.append((nft, None, None, exc.as_dict()))
                continue
            if token_id in seen:
                continue
            seen.add(token_id)
            contract = str(nft.get("contract") or self.info.contract)
            detail = api_pool.submit(self.client.nft, self.info.chain, contract, token_id)
            url = text(nft.get("image_url") or nft.get("display_image_url"))
            image = image_pool.submit(self.fetch_image, url) if url else None
            tokens.append((nft, detail, image, None))
        return PendingPage(page.next, tokens)

    def fetch_image(self, url):
        return save_image(self.client.download(url))

    def commit_page(self, page):
        records, failures = [], []
        for nft, detail, image, failure in page.tokens:
            if failure:
                failures.append(failure)
                continue
            token_id = str(nft.get("identifier"))
            try:
                record = record_from_v2_nft(detail.result(), collection_name=self.collection.name)
            except OpenSeaError as exc:
                if exc.transient:
                    # Not a verdict on the token: stop before committing, resume redoes the page.
                    raise
                failures.append({"item": token_id, "reason": f"details: {exc}", "imported": False})
                if image:
                    image.cancel()
                continue
            except ItemError as exc:
                failures.append(exc.as_dict())
                continue
            if image is None:
                record.warnings.append("no image_url")
            else:
                try:
                    record.image = image.result()
                except (OpenSeaError, ImageRejected) as exc:
                    record.warnings.append(f"image: {exc}")
            records.append(record)
        self.keep_known_last_sales(records)
        next_phase = (
            format_cursor(NFTS, page.next_cursor)
            if page.next_cursor
            else format_cursor(SALES if self.fetch_sales else DONE)
        )
        write_batch(self.upserter, records, job=self.job, failures=failures, cursor=next_phase)
        if self.on_progress:
            self.on_progress(self.job)

    def keep_known_last_sales(self, records):
        """A re-ingest keeps each token's metadata ``last_sale`` until the sales pass updates it."""
        known = dict(
            Token.objects.filter(
                collection=self.collection, token_id__in=[r.token_id for r in records]
            ).values_list("token_id", "metadata__last_sale")
        )
        for record in records:
            if known.get(record.token_id):
                record.metadata["last_sale"] = known[record.token_id]

    # -- Sales ---------------------------------------------------------------------------------
    def collect_sales(self, cursor):
        """Page through the sale events, committing every SALES_BATCH events or so.

        Pages come from an :class:`EventPrefetch` (started during the last NFT page, or
        here), which reads ahead while batches commit.
        """
        events = self.start_events(cursor)
        try:
            return self._commit_event_pages(events)
        finally:
            events.close()

    def _commit_event_pages(self, events):
        parsed, failures, listed, pages = [], [], 0, 0
        while True:
            page = events.next_page()
            stop = self.deadline.passed
            parsed += page.sales
            failures += page.failures
            listed += page.listed
            pages += 1
            if not page.next or stop or listed >= SALES_BATCH:
                next_cursor = format_cursor(SALES, page.next) if page.next else format_cursor(DONE)
                self.commit_sales(parsed, failures, next_cursor, pages)
                parsed, failures, listed, pages = [], [], 0, 0
            if not page.next:
                return True
            if stop:
                return False

    def commit_sales(self, parsed, failures, next_cursor, pages=1):
        """Write ``[(token_id, SaleRecord)]`` and the events' failures with the job's cursor."""
        token_pks = dict(
            Token.objects.filter(
                collection=self.collection, token_id__in={t for t, _ in parsed}
            ).values_list("token_id", "pk")
        )
        sales = [(token_pks[t], s) for t, s in parsed if t in token_pks]
        with transaction.atomic():
            if sales:
                write_sales(self.collection, sales)
                self.describe_last_sales(sales)
                self.collection.bump_data_version()
            commit_progress(self.job, cursor=next_cursor, failures=failures, failed=0, pages=pages)
        check_cancelled(self.job)
        if self.on_progress:
            self.on_progress(self.job)

    def describe_last_sales(self, sales):
        """Put each token's latest sale into its metadata as a v1 ``last_sale`` (for exports)."""
        by_key = {s.source_key: s for _, s in sales}
        pks = {pk for pk, _ in sales}
        latest = {}
        for token_pk, key in (
            Sale.objects.filter(token_id__in=pks)
            .order_by("token_id", "-timestamp", "-pk")
            .values_list("token_id", "source_key")
        ):
            latest.setdefault(token_pk, key)
        changed = []
        for token in Token.objects.filter(pk__in=pks).only("pk", "metadata"):
            sale = by_key.get(latest.get(token.pk))
            if sale and token.metadata.get("last_sale") != sale.v1:
                token.metadata["last_sale"] = sale.v1
                changed.append(token)
        write_metadata(changed)


@dataclass
class EventPage:
    next: str | None
    listed: int  # events the API listed on the page
    sales: list  # [(token_id, SaleRecord)]
    failures: list  # job errors for the events that could not be read


class EventPrefetch:
    """Reads sale-event pages in order on its own thread, up to SALES_PREFETCH_PAGES ahead.

    Requests go through the client, so the rate limiter stays the one gate for API calls and
    429/5xx handling is unchanged. Pages are parsed here too (with the collection's payment
    ``rates``), while the NFT pass waits on the API, so the sales commit that follows the last
    NFT page only writes. A request that fails for good is handed to the reader in the page's
    place and ends the walk. ``close()`` stops it: pages not yet committed are simply dropped
    (the job's cursor says where a resume reads them again).
    """

    def __init__(self, client, slug, cursor, rates, depth=None):
        self.client, self.slug, self.cursor, self.rates = client, slug, cursor, rates
        self.pages = queue.Queue(depth or SALES_PREFETCH_PAGES)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._walk, name="os-events", daemon=True)
        self.thread.start()

    def _walk(self):
        cursor = self.cursor
        while not self.stopped.is_set():
            try:
                page = self.client.sale_events_page(self.slug, cursor)
                item = EventPage(
                    page.next, len(page.items), *parse_sale_events(page.items, self.rates)
                )
            except Exception as exc:  # handed over: the reader raises it where it reads
                item = exc
            if not self._hand_over(item) or isinstance(item, Exception) or not item.next:
                return
            cursor = item.next

    def _hand_over(self, item):
        while not self.stopped.is_set():
            try:
                self.pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next_page(self):
        item = self.pages.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        self.stopped.set()


# --- Entry point -----------------------------------------------------------------------------
def reconcile(job, info):
    """The closing message: what OpenSea says exists against what we stored, and why not."""
    collection = job.collection
    stored = collection.tokens.count()
    without_image = collection.tokens.filter(image="").count()
    failed_tokens = {e["item"] for e in job.errors if not e.get("imported") and e["item"].isdigit()}
    failed_tokens -= set(
        collection.tokens.filter(token_id__in=failed_tokens).values_list("token_id", flat=True)
    )
    parts = [f"{stored} tokens stored"]
    supply = collection.supply
    if supply is not None:
        if stored == supply:
            parts.append(f"matching the supply of {supply} OpenSea reports")
        else:
            unlisted = supply - stored - len(failed_tokens)
            parts.append(
                f"for a reported supply of {supply}: {len(failed_tokens)} could not be fetched"
                + (f", {unlisted} were never listed by the API" if unlisted > 0 else "")
            )
    parts.append(f"{without_image} without an image")
    sales = collection.sales.count()
    reported = info.sales_reported if info else None
    parts.append(
        f"{sales} sales stored" + (f" (OpenSea reports {reported})" if reported is not None else "")
    )
    return "; ".join(parts) + "."


@contextmanager
def old_objects_frozen():
    """Keep the objects alive before the run (modules, Django: most of the heap) out of GC.

    A full collection walks every tracked object and holds the GIL while it does: with the
    whole heap in it, one takes a fifth of a second, long enough for the detail threads to
    miss rate-limit slots. Frozen objects are skipped; unfreezing hands them back afterwards.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_opensea_job(job, *, api_key, deadline=None, on_progress=None, client=None):
    """Work on an OpenSea ingest job until it is done or ``deadline`` passes.

    Returns True when the job has reached an end (succeeded, partial, failed or cancelled) and
    False when it stopped at the deadline and should be continued (from its cursor). A
    ``client`` may be passed in (benches read its counters); by default one is made here.
    """
    api_url = job.params.get("api_url") or settings.OPENSEA_API_URL
    with old_objects_frozen(), client or OpenSeaClient(api_key, api_url) as client:
        ingest = OpenSeaIngest(job, client, deadline=deadline, on_progress=on_progress)
        try:
            done = ingest.run()
        except JobCancelled:
            finalize_collection(job.collection)
            return True
        except OpenSeaError as exc:
            fail(
                job,
                client.redact(
                    f"OpenSea API: {exc}; resume to continue from page {job.pages_done + 1}"
                ),
            )
            finalize_collection(job.collection)
            return True
        except Exception as exc:
            fail(job, client.redact(f"{type(exc).__name__}: {exc}"))
            raise
    if not done:
        heartbeat(job)
        return False
    finalize_collection(job.collection)
    traffic = (
        f" This run made {client.api_requests} API requests and {client.downloads} image "
        f"downloads ({client.retries} retried)."
    )
    finish(job, reconcile(job, ingest.info) + traffic)
    return True
