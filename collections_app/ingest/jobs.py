"""IngestJob bookkeeping shared by every source: progress commits, ownership, the final word.

Progress is written in the same transaction as the batch it describes, so after a crash the
job's cursor and counts always match what is in the database: resuming from the cursor can
neither skip nor double-count a page.
"""

import os
import socket
import time

from django.db import transaction
from django.utils import timezone

from collections_app.models import IngestJob

MAX_ERRORS_KEPT = 5000


class JobCancelled(Exception):
    """Someone cancelled the job in the admin; the runner stops after its current batch."""


def commit_progress(job, *, cursor=None, done=0, failures=(), failed=None, pages=1):
    """Record one committed batch. Call inside the batch's own ``transaction.atomic()``.

    ``failures`` are dicts ``{item, reason, imported}``: every one counts as a failed item
    (``imported`` says whether the token landed anyway, e.g. without its image), unless
    ``failed`` gives another count (sale events are listed but are not token items).
    Sets ``job.status`` from the row, so the runner sees a cancellation after the commit.
    """
    row = IngestJob.objects.select_for_update().get(pk=job.pk)
    if cursor is not None:
        row.cursor = cursor
    row.pages_done += pages
    row.items_done += done
    row.items_failed += len(failures) if failed is None else failed
    if failures:
        row.errors = (list(row.errors) + list(failures))[-MAX_ERRORS_KEPT:]
    row.heartbeat_at = timezone.now()
    row.save(
        update_fields=[
            "cursor",
            "pages_done",
            "items_done",
            "items_failed",
            "errors",
            "heartbeat_at",
        ]
    )
    for name in ("cursor", "pages_done", "items_done", "items_failed", "errors", "heartbeat_at"):
        setattr(job, name, getattr(row, name))
    job.status = row.status


def check_cancelled(job):
    """Raise JobCancelled once the batch is committed if the admin cancelled the job."""
    if job.status == IngestJob.Status.CANCELLED:
        raise JobCancelled()


def set_expected(job, count):
    IngestJob.objects.filter(pk=job.pk).update(items_expected=count)
    job.items_expected = count


def heartbeat(job, message=None):
    job.heartbeat(**({"message": message[:5000]} if message is not None else {}))


def this_process():
    """The runner id a management command writes into ``task_id`` while it owns a job."""
    return f"cli:{socket.gethostname()}:{os.getpid()}"


def owner_is_alive(job):
    """True/False for a command on this host (checked by pid), None when we cannot tell."""
    parts = job.task_id.split(":")
    if len(parts) != 3 or parts[0] != "cli" or parts[1] != socket.gethostname():
        return None
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def describe_owner(job):
    age = (timezone.now() - job.heartbeat_at).total_seconds() if job.heartbeat_at else None
    seen = f"last heartbeat {age:.0f}s ago" if age is not None else "no heartbeat yet"
    return f"{job.task_id or 'a worker'} ({seen})"


class JobBusy(Exception):
    """Another live runner holds the job this command would continue."""


def start_job(kind, params, collection=None, resume_failed=False):
    """(job, resumed): continue an unfinished job with the same params, or create one.

    Used by the management commands: a command killed mid-run and started again with the
    same arguments picks up the job where its last committed batch left it. With
    ``resume_failed``, a job that failed (the API was down past every retry) continues too.
    """
    statuses = [*IngestJob.ACTIVE, *([IngestJob.Status.FAILED] if resume_failed else [])]
    candidates = IngestJob.objects.filter(kind=kind, status__in=statuses)
    if collection is not None:
        candidates = candidates.filter(collection=collection)
    for candidate in candidates.order_by("-created_at"):
        if candidate.params != params:
            continue
        job = take_over(candidate)
        if job is None:
            raise JobBusy(
                f"job #{candidate.pk} with these arguments is running in "
                f"{describe_owner(candidate)}; wait for it or cancel it in the admin"
            )
        return job, True
    job = IngestJob.objects.create(kind=kind, collection=collection, params=params)
    job.claim(task_id=this_process())
    return job, False


def take_over(job):
    """Claim ``job`` for this process unless another live runner holds it.

    A job whose runner died (a killed command on this host, or any runner silent for
    its lease, ``IngestJob.is_stale``) is taken over and continues from its cursor.
    """
    with transaction.atomic():
        job = IngestJob.objects.select_for_update().get(pk=job.pk)
        if job.status == IngestJob.Status.FAILED:
            job.status, job.finished_at = IngestJob.Status.QUEUED, None
            job.save(update_fields=["status", "finished_at"])
        if job.status == IngestJob.Status.RUNNING:
            alive = owner_is_alive(job)
            stale = job.is_stale()
            if alive or (alive is None and not stale):
                return None
        if not job.claim(task_id=this_process()):
            return None
    return job


def finish(job, message):
    """Mark the job done (partial when any item failed) unless it was cancelled meanwhile."""
    job.finish(message)
    return job


def fail(job, message):
    job.fail(message)
    return job


class Deadline:
    """When a task chunk should stop taking new work (None: never)."""

    def __init__(self, seconds=None):
        self.at = time.monotonic() + seconds if seconds else None

    @property
    def passed(self):
        return self.at is not None and time.monotonic() >= self.at
