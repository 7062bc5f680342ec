from django.contrib import admin

from .models import QueueProbe, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "queues", "pid", "last_seen", "started_at")
    readonly_fields = ("hostname", "queues", "pid", "last_seen", "started_at")


@admin.register(QueueProbe)
class QueueProbeAdmin(admin.ModelAdmin):
    list_display = ("id", "queue", "created_at", "answered_at", "answered_by")
    list_filter = ("queue",)
    readonly_fields = ("queue", "created_at", "answered_at", "answered_by")
