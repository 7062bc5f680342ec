"""Celery tasks of the collections app: thin wrappers around the services."""

from celery import shared_task

from . import analytics


@shared_task(
    bind=True, name="collections_app.tasks.compute_analytics", soft_time_limit=900, time_limit=960
)
def compute_analytics(self, collection_id, force=False, job_id=None):
    """Recompute a collection's analytics (queue: default). Skips when already fresh."""
    job = analytics.claim_job(collection_id, self.request.id or "", force=force, job_id=job_id)
    if job is not None:
        analytics.run_job(job)
