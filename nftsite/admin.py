"""Admin of the platform's own rows (worker heartbeats, queue probes): written by the system,
so nothing here can be added by hand."""

from django.contrib import admin

from .models import QueueProbe, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "queues", "pid", "last_seen", "started_at")
    readonly_fields = ("hostname", "queues", "pid", "last_seen", "started_at")

    def has_add_permission(self, request):
        return False  # workers write their own heartbeats


@admin.register(QueueProbe)
class QueueProbeAdmin(admin.ModelAdmin):
    list_display = ("id", "queue", "created_at", "answered_at", "answered_by")
    list_filter = ("queue",)
    readonly_fields = ("queue", "created_at", "answered_at", "answered_by")

    def has_add_permission(self, request):
        return False  # the operations page sends probes
