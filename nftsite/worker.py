"""Worker-side hooks: a heartbeat row per worker, so /healthz can tell who is alive; database
connections kept from task to task."""

import logging
import os
import threading

from celery.signals import task_prerun, worker_ready, worker_shutdown

HEARTBEAT_SECONDS = 10
log = logging.getLogger(__name__)
_stop = threading.Event()


def _beat(hostname, queues, started_at):
    from django.db import close_old_connections
    from django.utils import timezone

    from .models import WorkerHeartbeat

    while not _stop.is_set():
        try:
            WorkerHeartbeat.objects.update_or_create(
                hostname=hostname,
                defaults={
                    "queues": queues,
                    "pid": os.getpid(),
                    "last_seen": timezone.now(),
                    "started_at": started_at,
                },
            )
        except Exception as exc:  # the database may be briefly away; the next beat retries
            log.warning("heartbeat not written: %s", exc)
        finally:
            close_old_connections()
        _stop.wait(HEARTBEAT_SECONDS)


@worker_ready.connect
def start_heartbeat(sender, **kwargs):
    from django.utils import timezone

    queues = sorted(q.name for q in sender.app.amqp.queues.consume_from.values())
    thread = threading.Thread(
        target=_beat, args=(sender.hostname, queues, timezone.now()), daemon=True
    )
    thread.start()


@worker_shutdown.connect
def stop_heartbeat(sender, **kwargs):
    _stop.set()
    try:
        from .models import WorkerHeartbeat

        WorkerHeartbeat.objects.filter(hostname=sender.hostname).delete()
    except Exception as exc:  # shutting down anyway; the row just goes stale
        log.warning("heartbeat not removed: %s", exc)


@task_prerun.connect
def check_database_connections(task=None, **kwargs):
    """What Django does as a web request starts: a connection past CONN_MAX_AGE, or broken
    (CONN_HEALTH_CHECKS: it is pinged before its first use), is closed, so the task opens a new
    one. With CELERY_DB_REUSE_MAX the others are kept from task to task. An eager task runs in
    its caller's process, maybe inside its transaction: its connections are the caller's."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
