"""What the queues and workers are doing: the admin's Operations page reads this."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .health import WORKER_STALE_AFTER, broker_connection
from .tasks import QUEUES


def queue_depths():
    """Messages waiting per queue, straight from the broker ({queue: count})."""
    depths = {}
    with broker_connection() as conn:
        channel = conn.default_channel
        for queue in QUEUES:
            depths[queue] = _size(conn, channel, queue)
    return depths


def _size(conn, channel, queue):
    # kombu's virtual transports (Redis, filesystem) count messages with _size: their passive
    # queue_declare ignores Redis key prefixes. AMQP brokers answer queue_declare themselves.
    if hasattr(channel, "_size"):
        return channel._size(queue)
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except conn.channel_errors:
        return 0  # never declared: nothing was ever sent to it


def active_tasks(timeout=1.0):
    """Tasks workers are executing now, by worker; None where the broker can't broadcast."""
    if settings.CELERY_BROKER_URL.startswith(("filesystem", "memory")):
        return None
    from .celery import app

    with broker_connection() as conn:
        replies = app.control.inspect(timeout=timeout, connection=conn).active() or {}
    return {
        worker: [
            {
                "name": task.get("name", ""),
                "id": task.get("id", ""),
                "started": task.get("time_start"),
            }
            for task in tasks
        ]
        for worker, tasks in sorted(replies.items())
    }


def running_work():
    """Our own rows for long work in progress, newest first."""
    from collections_app.models import IngestJob
    from gan_app.models import GenerationRequest, TrainingRun

    recent = timezone.now() - timedelta(hours=1)
    return {
        "ingest_jobs": list(
            IngestJob.objects.filter(status__in=IngestJob.ACTIVE).select_related("collection")[:50]
        ),
        "training_runs": list(
            TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE).select_related(
                "training_set__collection"
            )[:50]
        ),
        "generation": {
            status: GenerationRequest.objects.filter(status=status, created_at__gte=recent).count()
            for status in GenerationRequest.Status.values
        },
    }


def workers():
    from .models import WorkerHeartbeat

    fresh_after = timezone.now() - WORKER_STALE_AFTER
    return [
        {
            "hostname": w.hostname,
            "queues": w.queues,
            "last_seen": w.last_seen,
            "alive": w.last_seen >= fresh_after,
            "started_at": w.started_at,
        }
        for w in WorkerHeartbeat.objects.all()
    ]


def snapshot():
    """Everything the Operations page shows; broker trouble is reported, not raised."""
    data = {"workers": workers(), "work": running_work(), "broker_error": ""}
    try:
        data["queues"] = queue_depths()
        data["active"] = active_tasks()
    except Exception as exc:  # the page must still load while the broker is down
        data["queues"], data["active"] = {}, None
        data["broker_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return data
