"""Starting ingest work from the web side (admin) and running it on a worker.

``queue_*`` create the IngestJob and send its task after the transaction commits; the task
gets the job's primary key only. ``run_*`` are what the tasks call: they turn the job's params
into a service call and record the outcome on the job.
"""

import os
import tempfile
import uuid

from django.core.files import File
from django.core.files.storage import default_storage

from collections_app.models import Collection, IngestJob
from nftsite.storage import private_storage

from .archives import ArchiveError, archive_names, export_archive, import_archive
from .jobs import JobBusy, JobCancelled, fail, finish

UPLOAD_PREFIX = "uploads/archives"


def _send_after_commit(job):
    """Send the job's task by name once the job's row is committed (``nftsite.jobs``)."""
    task_id = job.dispatch()
    IngestJob.objects.filter(pk=job.pk, task_id="").update(task_id=task_id)
    return job


def queue_opensea_ingest(collection, *, api_url="", sales=True):
    """Queue an ingest; JobBusy if one is already under way for this collection."""
    active = IngestJob.objects.filter(
        kind=IngestJob.Kind.OPENSEA, collection=collection, status__in=IngestJob.ACTIVE
    ).first()
    if active:
        raise JobBusy(f"job #{active.pk} is already ingesting {collection.slug}")
    params = {"api_url": api_url, "sales": sales}
    job = IngestJob.objects.create(
        kind=IngestJob.Kind.OPENSEA, collection=collection, params=params
    )
    return _send_after_commit(job)


def queue_archive_import(images_source, metadata_source, slug=""):
    collection = Collection.objects.filter(slug=slug).first() if slug else None
    params = {"images": images_source, "metadata": metadata_source, "slug": slug}
    job = IngestJob.objects.create(
        kind=IngestJob.Kind.ARCHIVE_IMPORT, collection=collection, params=params
    )
    return _send_after_commit(job)


def queue_archive_export(collection):
    job = IngestJob.objects.create(kind=IngestJob.Kind.ARCHIVE_EXPORT, collection=collection)
    return _send_after_commit(job)


def queue_demo_build(slug, size, seed):
    params = {"slug": slug, "size": size, "seed": seed}
    job = IngestJob.objects.create(kind=IngestJob.Kind.DEMO, params=params)
    return _send_after_commit(job)


def queue_reingest(collection):
    """A fresh job that fetches the collection again from where it came from; None if unknown."""
    last = collection.ingest_jobs.exclude(kind=IngestJob.Kind.ARCHIVE_EXPORT).first()
    if collection.source == Collection.Source.OPENSEA:
        params = last.params if last and last.kind == IngestJob.Kind.OPENSEA else {}
        return queue_opensea_ingest(
            collection, api_url=params.get("api_url", ""), sales=params.get("sales", True)
        )
    if collection.source == Collection.Source.DEMO and last and last.kind == IngestJob.Kind.DEMO:
        return queue_demo_build(collection.slug, last.params["size"], last.params["seed"])
    if last and last.kind == IngestJob.Kind.ARCHIVE_IMPORT:
        sources = [last.params.get("images", ""), last.params.get("metadata", "")]
        if all(s.startswith("s3://") for s in sources):
            return queue_archive_import(*sources, slug=collection.slug)
    return None


def queue_resume(job):
    """Send a stopped or failed job's task again; it continues from the job's cursor."""
    resumable = job.kind in (IngestJob.Kind.OPENSEA, IngestJob.Kind.ARCHIVE_IMPORT)
    if not resumable or job.status not in (*IngestJob.ACTIVE, IngestJob.Status.FAILED):
        return False
    IngestJob.objects.filter(pk=job.pk).update(
        status=IngestJob.Status.QUEUED, finished_at=None, task_id=""
    )
    _send_after_commit(job)
    return True


def store_upload(uploaded):
    """Save an uploaded archive in the private storage; returns the ``storage:`` source."""
    name = f"{UPLOAD_PREFIX}/{uuid.uuid4().hex}/{os.path.basename(uploaded.name) or 'archive.zip'}"
    return "storage:" + private_storage().save(name, uploaded)


# --- What the tasks run ----------------------------------------------------------------------
def run_archive_import(job):
    params = job.params
    try:
        summary = import_archive(
            params["images"], params["metadata"], slug=params.get("slug") or None, job=job
        )
    except ArchiveError as exc:
        fail(job, str(exc))
        return
    except JobCancelled:
        return
    except Exception as exc:
        fail(job, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        # However the job ends, an uploaded archive is not left lying around (an admin starts
        # a new import with a new upload). Archives named by s3:// URL are the owner's and stay.
        _delete_uploads(params)
    finish(job, summary.message)


def _delete_uploads(params):
    for source in (params["images"], params["metadata"]):
        if source.startswith(f"storage:{UPLOAD_PREFIX}/"):
            private_storage().delete(source.removeprefix("storage:"))


def run_archive_export(job):
    collection = job.collection
    IngestJob.objects.filter(pk=job.pk).update(items_expected=collection.tokens.count())
    try:
        with tempfile.TemporaryDirectory(prefix="nff-export-") as tmp:
            summary = export_archive(collection, tmp)
            folder = f"exports/{collection.slug}/{job.pk}"
            saved = []
            for path, name in zip(
                (summary.images_path, summary.metadata_path),
                archive_names(collection.slug),
                strict=True,
            ):
                with open(path, "rb") as fh:
                    saved.append(default_storage.save(f"{folder}/{name}", File(fh)))
    except Exception as exc:
        fail(job, f"{type(exc).__name__}: {exc}")
        raise
    job.result_file.name = saved[0]
    job.items_done = summary.tokens
    job.save(update_fields=["result_file", "items_done"])
    finish(job, f"{summary.tokens} tokens exported: {saved[0]} and {saved[1]}")
