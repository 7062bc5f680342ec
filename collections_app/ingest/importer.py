"""Writing items (metadata JSON + image bytes) into a collection: archives and the demo use it.

Each item is checked on its own: malformed JSON or metadata rejects that token; a missing or
broken image is reported but the token's metadata still lands (its traits and sale count in the
analytics); the batch commits with the job's progress in one transaction.
"""

import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import transaction

from .images import ImageRejected, save_image
from .jobs import check_cancelled, commit_progress
from .records import ItemError, record_from_v1_asset
from .upsert import TokenUpserter

PREPARE_THREADS = min(4, (os.cpu_count() or 2) + 1)


@dataclass
class RawItem:
    """One token as a source delivered it, before any checking."""

    token_id: str
    metadata: bytes | dict | None = None  # JSON bytes (archives) or an already parsed object
    image: bytes | None = None
    image_problem: str = ""  # why there is no image, when the source already knows
    metadata_problem: str = ""  # why the metadata could not be read at all


@dataclass
class ImportCounts:
    written: int = 0  # tokens now stored (clean or with problems)
    clean: int = 0
    with_problems: int = 0
    rejected: int = 0
    failures: list = field(default_factory=list)

    def add(self, other):
        self.written += other.written
        self.clean += other.clean
        self.with_problems += other.with_problems
        self.rejected += other.rejected


def parse_metadata(raw, token_id):
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ItemError(token_id, f"metadata is not UTF-8 text: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise ItemError(
            token_id, f"malformed JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise ItemError(token_id, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python will convert
        raise ItemError(token_id, f"malformed JSON: {exc}") from None


def prepare(item):
    """RawItem -> TokenRecord (image checked and stored); raises ItemError if unusable."""
    if item.metadata_problem:
        raise ItemError(item.token_id, item.metadata_problem)
    if item.metadata is None:
        raise ItemError(item.token_id, "image has no metadata file")
    record = record_from_v1_asset(parse_metadata(item.metadata, item.token_id), item.token_id)
    if item.image is not None:
        try:
            record.image = save_image(item.image)
        except ImageRejected as exc:
            record.warnings.append(f"image refused: {exc}")
    else:
        record.warnings.append(item.image_problem or "no image file for this token")
    return record


def write_batch(upserter, records, *, job=None, failures=(), cursor=None):
    """Upsert records and record the job's progress in one transaction."""
    failures = list(failures)
    counts = ImportCounts(rejected=len(failures))
    with transaction.atomic():
        result = upserter.upsert(records)
        written = set(result.written)
        for error in result.failed:
            failures.append(error.as_dict(imported=False))
            counts.rejected += 1
        for record in records:
            if record.token_id not in written:
                continue
            counts.written += 1
            if record.warnings:
                counts.with_problems += 1
                failures.append(
                    {
                        "item": record.token_id,
                        "reason": "; ".join(record.warnings),
                        "imported": True,
                    }
                )
            else:
                counts.clean += 1
        if job is not None:
            commit_progress(job, cursor=cursor, done=counts.clean, failures=failures)
    counts.failures = failures
    if job is not None:
        check_cancelled(job)
    return counts


def _prepare_safely(item):
    try:
        return prepare(item)
    except ItemError as exc:
        return exc


def import_items(collection, batches, *, job=None, on_progress=None, failures=()):
    """Write batches of RawItems; ``failures`` found before reading (bad entries) go first.

    Images are checked and stored on a small thread pool (Pillow and file writes release the
    GIL) while the previous batch is written to the database, so the two costs overlap instead
    of adding up. Each batch commits with ``cursor`` = its last token id, so a resumed import
    can skip what is already in. Returns the totals as :class:`ImportCounts`.
    """
    upserter = TokenUpserter(collection)
    totals = ImportCounts()
    pending = list(failures)
    in_flight = deque()

    def write_oldest():
        nonlocal pending
        batch, futures = in_flight.popleft()
        records, batch_failures = [], pending
        pending = []
        for future in futures:
            result = future.result()
            if isinstance(result, ItemError):
                batch_failures.append(result.as_dict(imported=False))
            else:
                records.append(result)
        cursor = batch[-1].token_id if batch else None
        counts = write_batch(upserter, records, job=job, failures=batch_failures, cursor=cursor)
        totals.add(counts)
        if on_progress:
            on_progress(job, counts)

    with ThreadPoolExecutor(PREPARE_THREADS, thread_name_prefix="prepare") as pool:
        try:
            for batch in batches:
                in_flight.append((batch, [pool.submit(_prepare_safely, item) for item in batch]))
                if len(in_flight) > 1:
                    write_oldest()
            while in_flight:
                write_oldest()
        except BaseException:
            for _, futures in in_flight:
                for future in futures:
                    future.cancel()
            raise
    if pending:
        totals.add(write_batch(upserter, [], job=job, failures=pending))
    return totals
