"""Collection tasks: ingest (queue ``ingest``) and analytics (queue ``default``).

Each takes a job's primary key, never a secret.

The OpenSea key is read here from settings, on the worker. A task claims its job once (a
redelivered message finds the job running and continues from the stored cursor; a finished
job is left alone), works for at most INGEST_CHUNK_SECONDS, and re-queues itself to continue.
"""

from celery import shared_task
from django.conf import settings

from nftsite import jobs

from .analytics import refresh
from .demo.build import run_demo_build
from .ingest import launch
from .ingest.collector import run_opensea_job
from .ingest.jobs import Deadline
from .models import IngestJob


def _claim(task, job_id):
    job = IngestJob.objects.select_related("collection").filter(pk=job_id).first()
    return job if job is not None and job.claim(task_id=task.request.id or "") else None


@shared_task(bind=True, name="collections_app.tasks.ingest_opensea")
def ingest_opensea(self, job_id):
    job = _claim(self, job_id)
    if job is None:
        return
    deadline = Deadline(settings.INGEST_CHUNK_SECONDS)
    if not run_opensea_job(job, api_key=settings.OPENSEA_API_KEY, deadline=deadline):
        # On the queue this chunk came from, so a job sent to a dedicated queue stays there.
        # The kernel's broker-down policy: the worker waits out a broker restart, and a
        # continuation that still cannot be sent leaves the job to the watchdog (its lease).
        queue = (self.request.delivery_info or {}).get("routing_key") or None
        jobs.dispatch_now(job.task_name, *job.task_args(), queue=queue, from_worker=True)


@shared_task(bind=True, name="collections_app.tasks.import_archive")
def import_archive(self, job_id):
    job = _claim(self, job_id)
    if job is not None:
        launch.run_archive_import(job)


@shared_task(bind=True, name="collections_app.tasks.export_archive")
def export_archive(self, job_id):
    job = _claim(self, job_id)
    if job is not None:
        launch.run_archive_export(job)


@shared_task(bind=True, name="collections_app.tasks.build_demo")
def build_demo(self, job_id):
    job = _claim(self, job_id)
    if job is not None:
        run_demo_build(job)


@shared_task(
    bind=True, name="collections_app.tasks.compute_analytics", soft_time_limit=900, time_limit=960
)
def compute_analytics(self, collection_id, force=False, job_id=None):
    """Recompute a collection's analytics (queue: default). Skips when already fresh."""
    job = refresh.claim_job(collection_id, self.request.id or "", force=force, job_id=job_id)
    if job is not None:
        refresh.run_job(job)
