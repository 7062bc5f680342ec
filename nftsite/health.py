"""Health checks for /healthz: database, broker, storage and worker heartbeats."""

import time
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone
from kombu import Connection

WORKER_STALE_AFTER = timedelta(seconds=45)


def _timed(check):
    start = time.perf_counter()
    try:
        detail = check() or {}
        ok = True
    except Exception as exc:  # a health check reports failures, it never raises them
        detail, ok = {"error": f"{type(exc).__name__}: {exc}"[:300]}, False
        detail.update(getattr(exc, "detail", {}))
    return {"ok": ok, "ms": round((time.perf_counter() - start) * 1000, 1), **detail}


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}


def broker_connection():
    """A connection of our own (not Celery's pool), made from the settings as they are now."""
    return Connection(
        settings.CELERY_BROKER_URL,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        connect_timeout=2,
    )


def check_broker():
    with broker_connection() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {"transport": conn.transport.driver_name}


def check_storage():
    default_storage.exists("healthz-probe")
    return {"backend": type(default_storage).__name__}


class QueuesWithoutWorker(RuntimeError):
    """Workers are alive, but some queue has none: its jobs would wait for ever."""

    def __init__(self, workers, missing):
        super().__init__(f"no worker serves the queue(s) {', '.join(missing)}")
        self.detail = {"workers": workers, "queues_without_worker": missing}


def check_workers():
    from nftsite.models import WorkerHeartbeat

    fresh = WorkerHeartbeat.objects.filter(last_seen__gte=timezone.now() - WORKER_STALE_AFTER)
    workers = [{"hostname": w.hostname, "queues": w.queues} for w in fresh]
    served = sorted({q for w in workers for q in w["queues"]})
    missing = [q for q in settings.JOB_QUEUES if q not in served]
    if not workers:
        raise RuntimeError("no worker has sent a heartbeat in the last 45 s")
    if missing:  # jobs sent to these queues would wait for ever: degraded, not "ok"
        raise QueuesWithoutWorker(workers, missing)
    return {"workers": workers, "queues_without_worker": missing}


def run_checks(web_only=False):
    """Return (http_status, body): 200 only when everything is ok.

    "degraded" (no worker, or a queue nobody serves) answers 503 too, so that a monitor sees
    it; "fail" means the web node itself cannot serve (database, broker or storage down).
    ``web_only`` (``/healthz?scope=web``, for load balancers) answers 200 unless it is "fail":
    a missing worker is no reason to take a web node out of rotation.
    """
    checks = {
        "database": _timed(check_database),
        "broker": _timed(check_broker),
        "storage": _timed(check_storage),
    }
    checks["workers"] = _timed(check_workers) if checks["database"]["ok"] else {"ok": False}
    core_ok = all(checks[name]["ok"] for name in ("database", "broker", "storage"))
    status = "ok" if core_ok and checks["workers"]["ok"] else ("degraded" if core_ok else "fail")
    body = {"status": status, "checks": checks, "debug": settings.DEBUG}
    healthy = status != "fail" if web_only else status == "ok"
    return (200 if healthy else 503), body
