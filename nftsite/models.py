"""Operational state shared by every node: worker heartbeats."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """Written by each Celery worker every few seconds; /healthz reads it."""

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    pid = models.PositiveIntegerField(null=True)
    last_seen = models.DateTimeField()
    started_at = models.DateTimeField()

    class Meta:
        ordering = ["hostname"]

    def __str__(self):
        return self.hostname


class QueueProbe(models.Model):
    """A round trip through one queue: the web side creates it, a worker marks it answered."""

    queue = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"probe {self.pk} on {self.queue}"

    @property
    def round_trip_ms(self):
        if not self.answered_at:
            return None
        return (self.answered_at - self.created_at).total_seconds() * 1000
