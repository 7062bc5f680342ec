"""When analytics are recomputed: on the admin's request or after an ingest (a job on the
``default`` queue, sent by task name after commit), and on demand by the commands."""

from __future__ import annotations

import logging

from nftsite.jobs import dispatch_after_commit

from ..models import Collection, IngestJob
from . import compute

logger = logging.getLogger(__name__)


COMPUTE_TASK = "collections_app.tasks.compute_analytics"


def request(collection: Collection, force: bool = False) -> IngestJob | None:
    """Queue a recompute once the current transaction commits.

    ``force`` (the admin action) creates the job row now so the admin sees it queued; the
    automatic path after an ingest only sends the task, which skips work when analytics are
    already fresh, so repeated signals cost nothing.
    """
    job = None
    if force:
        job = IngestJob.objects.create(
            collection=collection, kind=IngestJob.Kind.ANALYTICS, params={"force": True}
        )
    job_id = job.pk if job else None
    # A broker outage must not fail the ingest that has just committed (the kernel logs it);
    # the page then says analytics are stale, and the admin action or the command catches up.
    dispatch_after_commit(COMPUTE_TASK, [collection.pk], {"force": force, "job_id": job_id})
    return job


def claim_job(collection_id, task_id="", force=False, job_id=None) -> IngestJob | None:
    """The job a task delivery should run, or None when there is nothing to do.

    Nothing to do: the collection is gone, analytics are fresh (unless forced), or the job
    already ended (a second delivery). A redelivered task finds its own job by task id.
    """
    collection = Collection.objects.filter(pk=collection_id).first()
    if collection is None:
        return None
    if job_id is not None:
        job = IngestJob.objects.filter(pk=job_id, kind=IngestJob.Kind.ANALYTICS).first()
    else:
        if is_fresh(collection) and not force:
            return None
        job = IngestJob.objects.filter(
            collection=collection, kind=IngestJob.Kind.ANALYTICS, task_id=task_id or "-"
        ).first() or IngestJob.objects.create(
            collection=collection, kind=IngestJob.Kind.ANALYTICS, params={"force": force}
        )
    if job is None or not job.claim(task_id):
        return None
    return job


def run_job(job: IngestJob) -> None:
    """Compute analytics for the job's collection and record the outcome on the job."""
    collection = job.collection
    try:
        result = compute.compute(collection)
    except Exception as exc:
        logger.exception("analytics failed for collection %s", collection.pk)
        job.fail(f"{type(exc).__name__}: {exc}")
        return
    if result is None:
        job.finish("A newer result was stored meanwhile; nothing written.")
        return
    summary = result["summary"]
    job.items_expected = job.items_done = summary["tokens"]
    job.save(update_fields=["items_expected", "items_done"])
    job.finish(
        f"{summary['tokens']} tokens, {summary['sold_tokens']} sold, data version "
        f"{result['data_version']}, {result['seconds']:.2f} s"
    )


def ensure_fresh(collection: Collection, progress=None) -> dict:
    """The collection's analytics, computed here and now if they are stale (commands only)."""
    collection.refresh_from_db()
    if not is_fresh(collection):
        compute.compute(collection, progress=progress)
        collection.refresh_from_db()
    return collection.analytics


def is_fresh(collection: Collection) -> bool:
    """Analytics match the collection's data and this code's cache layout."""
    return collection.analytics_fresh and collection.analytics.get("schema") == compute.SCHEMA
