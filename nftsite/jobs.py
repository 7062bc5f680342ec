"""The job kernel every kind of background job shares: fields, lifecycle, lease, dispatch.

Ground floor: imports Django and Celery, never an app (nor the parts of ``nftsite`` that do), so
every stage can build on it. A job kind (IngestJob, TrainingRun, GenerationRequest, ...) is a
concrete model inheriting :class:`Job` and naming its Celery task (``task_name``, ``task_args``).

- ``claim`` / ``heartbeat`` / ``finish`` / ``fail`` / ``cancel`` are conditional updates: a job
  cancelled in the admin stays cancelled whatever its runner does afterwards.
- One lease policy: a running job whose heartbeat is older than its kind's lease
  (``settings.JOB_LEASE_SECONDS[lease_kind]``) has lost its runner; the watchdog
  (:func:`resend_stale`, run by celery beat) puts it back in the queue under a new task id.
- One way to send: :func:`dispatch_after_commit`, by task name (a service never imports its own
  tasks module), and one broker-down policy: the send is logged and dropped, the job keeps its
  row, and the watchdog re-sends it once its lease has run out (or an admin re-sends it).
"""

import logging
import uuid
from datetime import timedelta

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

log = logging.getLogger(__name__)

QUEUED, RUNNING, FAILED, CANCELLED = "queued", "running", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)
DEFAULT_LEASE_SECONDS = 300


def new_task_id() -> str:
    return str(uuid.uuid4())


def dispatch_after_commit(
    task_name, args=(), kwargs=None, *, queue=None, task_id=None, from_worker=False
):
    """Send ``task_name`` once the current transaction commits (at once outside one).

    Returns the task id. A broker that is down is logged, never raised: the caller's
    transaction has committed, and the job it describes is re-sent by the watchdog.
    ``from_worker``: see :func:`dispatch_now`.
    """
    task_id = task_id or new_task_id()
    options = {"queue": queue, "task_id": task_id, "from_worker": from_worker}
    transaction.on_commit(lambda: dispatch_now(task_name, args, kwargs, **options))
    return task_id


# A worker sending a job's next step may wait out a broker restart (about two minutes) rather
# than leave the job to the watchdog; a web request keeps Celery's quick default retries.
WORKER_RETRY_POLICY = {
    "max_retries": 60,
    "interval_start": 0.5,
    "interval_step": 0.5,
    "interval_max": 2.0,
}


def dispatch_now(task_name, args=(), kwargs=None, *, queue=None, task_id=None, from_worker=False):
    """Send ``task_name`` now, for a job whose row is already committed (or was just swapped
    by a conditional update); the same broker-down policy as :func:`dispatch_after_commit`.
    ``from_worker``: a task sending its job's next step, which can afford to wait for the
    broker (WORKER_RETRY_POLICY) before the watchdog has to step in."""
    task_id = task_id or new_task_id()
    options = {"task_id": task_id, **({"queue": queue} if queue else {})}
    if from_worker:
        options.update(retry=True, retry_policy=WORKER_RETRY_POLICY)
    args, kwargs = list(args), kwargs or {}
    try:
        if current_app.conf.task_always_eager:
            # Eager mode (tests, one-process runs) needs the task itself to run it in place.
            current_app.loader.import_default_modules()  # autodiscovery of the tasks modules
            current_app.tasks[task_name].apply_async(args=args, kwargs=kwargs, **options)
        else:
            current_app.send_task(task_name, args=args, kwargs=kwargs, **options)
    except Exception as exc:  # the broker is away: the watchdog re-sends the job later
        log.error("task %s%s not sent (%s): %s", task_name, tuple(args), type(exc).__name__, exc)
    return task_id


def lease_seconds(lease_kind: str) -> float:
    return float(getattr(settings, "JOB_LEASE_SECONDS", {}).get(lease_kind, DEFAULT_LEASE_SECONDS))


class Job(models.Model):
    """Fields and lifecycle shared by every job kind. Status values are the kind's own
    ``Status`` choices, which all spell queued / running / failed / cancelled alike."""

    task_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Set by each kind.
    lease_kind = "default"
    task_name = ""
    done_status = "succeeded"
    message_field = "message"

    class Meta:
        abstract = True

    # --- What the kind tells the kernel ---------------------------------------------------------

    def task_args(self) -> tuple[list, dict]:
        """(args, kwargs) of the task that runs this job."""
        return [self.pk], {}

    def task_queue(self) -> str | None:
        return None  # the route in settings

    def final_status(self) -> str:
        return self.done_status

    # --- Lifecycle ------------------------------------------------------------------------------

    @property
    def is_active(self):
        return self.status in ACTIVE

    def _rows(self):
        return type(self)._default_manager.filter(pk=self.pk)

    def claim(self, task_id: str = "") -> bool:
        """queued (or redelivered running) -> running, once; False if the job ended meanwhile."""
        now = timezone.now()
        fields = {"status": RUNNING, "heartbeat_at": now, "task_id": task_id or self.task_id}
        fields["started_at"] = self.started_at or now
        if any(f.name == "attempts" for f in self._meta.fields):
            fields["attempts"] = F("attempts") + 1
        claimed = self._rows().filter(status__in=ACTIVE).update(**fields)
        self.refresh_from_db()
        return claimed == 1

    def heartbeat(self, **fields) -> bool:
        """Renew the lease (and write ``fields``) while the job runs; False once it ended."""
        fields["heartbeat_at"] = timezone.now()
        return self._rows().filter(status__in=ACTIVE).update(**fields) == 1

    def finish(self, message: str = "", status: str | None = None) -> bool:
        """Record success unless the job was cancelled (or ended) meanwhile."""
        return self._end(status or self.final_status(), message)

    def fail(self, message: str) -> bool:
        return self._end(FAILED, message)

    def cancel(self) -> bool:
        """Cancel a queued or running job; its runner stops at its next check."""
        return self._end(CANCELLED, "")

    def _end(self, status, message) -> bool:
        fields = {"status": status, "finished_at": timezone.now()}
        if message:
            fields[self.message_field] = message[:5000]
        ended = self._rows().filter(status__in=ACTIVE).update(**fields) == 1
        self.refresh_from_db()
        return ended

    # --- Lease and watchdog ---------------------------------------------------------------------

    def job_lease_kind(self) -> str:
        return self.lease_kind

    def lease(self) -> timedelta:
        return timedelta(seconds=lease_seconds(self.job_lease_kind()))

    def is_stale(self) -> bool:
        return not self.heartbeat_at or timezone.now() - self.heartbeat_at > self.lease()

    @classmethod
    def stale_running(cls):
        cutoff = timezone.now() - timedelta(seconds=lease_seconds(cls.lease_kind))
        return cls._default_manager.filter(status=RUNNING, heartbeat_at__lt=cutoff)

    def dispatch(self, task_id: str | None = None) -> str:
        args, kwargs = self.task_args()
        return dispatch_after_commit(
            self.task_name, args, kwargs, queue=self.task_queue(), task_id=task_id
        )

    def resend(self) -> bool:
        """Release a lost runner's lease (back to queued, under a new task id) and send the
        task again. The swap is a conditional update, so two watchdogs cannot both send it,
        and a runner that was only slow finds the job no longer its own."""
        task_id = new_task_id()
        swapped = (
            self._rows()
            .filter(status=RUNNING, task_id=self.task_id, heartbeat_at=self.heartbeat_at)
            .update(status=QUEUED, task_id=task_id, heartbeat_at=None)
        )
        if swapped:
            log.warning("%s: lease ran out, task %s sent again", self, self.task_name)
            self.dispatch(task_id)
        return bool(swapped)


def job_models():
    return [m for m in apps.get_models() if issubclass(m, Job)]


def resend_stale() -> int:
    """The watchdog: re-send every running job of every kind whose lease ran out."""
    sent = 0
    for model in job_models():
        for job in model.stale_running():
            sent += job.resend()
    return sent
