import os
import subprocess
import sys

import pytest

from tests.testenv import ROOT


def load_settings(**env):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "nftsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stderr.strip().splitlines()[-1] if result.stderr else ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("CELERY_BROKER_URL", "kafka://127.0.0.1"),
        ("OPENSEA_RATE_LIMIT", "fast"),
        ("GENERATOR_CACHE_SIZE", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("AWS_S3_ENDPOINT_URL", "127.0.0.1:9000"),
        ("QUALITY_GATE", "sometimes"),
        ("QUALITY_GATE_MAX_FID_RATIO", "-1"),
        ("QUALITY_GATE_MAX_FID_RATIO", "four"),
        ("QUALITY_GATE_MIN_VALID_TOKEN_RATE", "1.5"),
        ("QUALITY_GATE_MIN_VALID_TOKEN_RATIO", "0"),
        ("QUALITY_GATE_MAX_NEAR_COPY_SHARE", "lots"),
        ("CELERY_TASK_EVENTS", "sometimes"),
    ],
)
def test_it_refuses_to_start_with_a_bad_value_and_names_it(name, value):
    code, last_line = load_settings(**{name: value})

    assert code != 0
    assert "ImproperlyConfigured" in last_line
    assert name in last_line


def test_it_starts_with_defaults():
    code, last_line = load_settings()

    assert code == 0, last_line


@pytest.mark.parametrize(("value", "expected"), [(None, "False False"), ("true", "True True")])
def test_celery_task_events_are_sent_only_when_asked_for(value, expected):
    """Nothing in the platform reads task events; each is a broker publish per task."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "nftsite.settings"}
    env.pop("CELERY_TASK_EVENTS", None)
    if value is not None:
        env["CELERY_TASK_EVENTS"] = value
    code = (
        "import django; django.setup(); from nftsite.celery import app; "
        "print(app.conf.worker_send_task_events, app.conf.task_send_sent_event)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip().splitlines()[-1] == expected
