"""A throwaway site for the ingest benches: its own database, media and broker settings.

Import this before Django: it points the settings at a scratch directory (SQLite there unless
BENCH_DATABASE_URL names another database, e.g. a scratch PostgreSQL) and migrates it.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = Path(tempfile.mkdtemp(prefix="nff-bench-"))


def setup():
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "nftsite.settings",
            "NFF_VAR_DIR": str(SCRATCH / "var"),
            "MEDIA_ROOT": str(SCRATCH / "media"),
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL")
            or f"sqlite:///{SCRATCH / 'db.sqlite3'}",
            "CELERY_BROKER_URL": "memory://",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("AWS_STORAGE_BUCKET_NAME", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return SCRATCH


def database_label():
    from django.db import connection

    return connection.vendor
