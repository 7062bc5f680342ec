"""Test environment, loaded with ``-p tests.testenv`` before pytest-django reads the settings.

Points the settings at the real services on this machine: PostgreSQL (a database named after
this checkout, so several checkouts can test at once) and Redis (a key prefix unique to this
test session, so a stale message from another run is never consumed). With ``CI=true`` a
missing service stops the run; elsewhere the suite falls back to SQLite and an in-memory broker
and the tests marked ``services`` are skipped.
"""

import hashlib
import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CHECKOUT_TAG = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/nff_{CHECKOUT_TAG}"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reachable(url, default_port):
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


SERVICES_UP = reachable(POSTGRES_URL, 5432) and reachable(REDIS_URL, 6379)
if IN_CI and not SERVICES_UP:
    raise RuntimeError(
        f"CI=true but PostgreSQL ({POSTGRES_URL}) or Redis ({REDIS_URL}) does not answer: "
        "the suite must run against the real services in CI."
    )

SCRATCH = Path(tempfile.mkdtemp(prefix=f"nff-test-{CHECKOUT_TAG}-"))
os.environ.update(
    {
        "DEBUG": "false",
        "SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdefghijklmnop",
        "NFF_VAR_DIR": str(SCRATCH / "var"),
        "MEDIA_ROOT": str(SCRATCH / "media"),
        "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
        "OPENSEA_API_KEY": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Tests that publish should not start minutes of evaluation; tests/evaluation asks.
        "EVALUATE_ON_PUBLISH": "false",
        # ... nor wait for the quality gate before they are listed; the gate's tests turn it on.
        "QUALITY_GATE": "false",
        # Tests train tiny models on the seed recipe (fast, no EMA copy); tests/training asks
        # for the default recipe where it matters.
        "TRAIN_DEFAULT_PRESET": "seed-dcgan",
    }
)
os.environ.pop("AWS_STORAGE_BUCKET_NAME", None)
if SERVICES_UP:
    os.environ["DATABASE_URL"] = POSTGRES_URL
    os.environ["CELERY_BROKER_URL"] = REDIS_URL
    os.environ["CELERY_BROKER_KEY_PREFIX"] = f"nfftest-{CHECKOUT_TAG}-{os.getpid()}:"
else:
    os.environ["DATABASE_URL"] = f"sqlite:///{SCRATCH / 'db.sqlite3'}"
    os.environ["CELERY_BROKER_URL"] = "memory://"
