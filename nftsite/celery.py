"""Celery application: one app, four queues (ingest, train, generate, default).

Routing, acks_late, prefetch 1 and the JSON-only serializer are in settings (CELERY_ prefix).
"""

import os

from celery import Celery
from django.conf import settings
from kombu import Queue

from . import kombu_fixes

kombu_fixes.apply()  # a Redis restart must not kill a worker (see kombu_fixes)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nftsite.settings")

app = Celery("nftsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in settings.JOB_QUEUES]
app.autodiscover_tasks(["collections_app", "gan_app", "nftsite"])

from . import worker  # noqa: E402,F401  (connects the worker heartbeat signals)
