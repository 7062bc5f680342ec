"""Site-wide tasks: queue probes for the health checks, and the stale-job watchdog."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import jobs
from .models import QueueProbe

QUEUES = settings.JOB_QUEUES


@shared_task(name="nftsite.tasks.resend_stale_jobs", soft_time_limit=60, time_limit=90)
def resend_stale_jobs():
    """The watchdog celery beat runs every WATCHDOG_SECONDS: re-send every job, of any kind,
    whose runner let its lease run out (a killed worker), so it resumes without an admin."""
    return jobs.resend_stale()


@shared_task(name="nftsite.tasks.answer_probe", soft_time_limit=20, time_limit=30)
def answer_probe(probe_id):
    """Mark a probe answered; sent to each queue by `manage.py ping_workers` and /healthz?deep=1."""
    hostname = answer_probe.request.hostname or ""
    QueueProbe.objects.filter(pk=probe_id, answered_at=None).update(
        answered_at=timezone.now(), answered_by=hostname
    )


def send_probes(queues=QUEUES):
    probes = []
    for queue in queues:
        probe = QueueProbe.objects.create(queue=queue)
        answer_probe.apply_async(args=[probe.pk], queue=queue)
        probes.append(probe)
    return probes
