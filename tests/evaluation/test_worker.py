"""A real Celery worker (over Redis) evaluates a checkpoint."""

import time

import pytest

from gan_app.models import Checkpoint
from gan_app.tasks import evaluate_checkpoint

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_a_worker_evaluates_a_checkpoint(demo, db, celery_worker):
    _, _, run = demo
    checkpoint = run.checkpoints.get(epoch=20)
    before = (checkpoint.metrics or {}).get("evaluated_at")

    # The demo rows are committed by the session fixture, so the worker sees them.
    evaluate_checkpoint.delay(checkpoint.pk, force=True)

    deadline = time.monotonic() + 240
    report = {}
    while time.monotonic() < deadline:
        report = Checkpoint.objects.get(pk=checkpoint.pk).metrics or {}
        if report.get("evaluated_at") not in (None, before):
            break
        time.sleep(0.5)
    assert report.get("evaluated_at") not in (None, before), celery_worker.log()[-3000:]
    assert report["subject"] == {"kind": "checkpoint", "run": run.pk, "epoch": 20}
    assert report["domain"]["fid"] > report["baseline"]["domain"]["fid"]
    assert "gan_app.tasks.evaluate_checkpoint" in celery_worker.log()
