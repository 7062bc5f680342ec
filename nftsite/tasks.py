from celery import shared_task
from django.utils import timezone

from .models import QueueProbe

QUEUES = ("ingest", "train", "generate", "default")


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
