"""`make run` on SQLite: the web server and workers write one file at once (heartbeats every
10 s, ingest, training). Those writes wait for each other instead of failing with "database is
locked" (which the worker logged as "heartbeat not written")."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Six threads write heartbeats like the workers do (update_or_create: a read, then a write in
# one transaction), each on its own connection to the SQLite file.
SCRIPT = """
import threading
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
call_command("migrate", "--noinput", "-v", "0")
from nftsite.models import WorkerHeartbeat
errors = []
def beat(n):
    for i in range(40):
        try:
            WorkerHeartbeat.objects.update_or_create(
                hostname=f"w{n}",
                defaults={"queues": [], "pid": i, "last_seen": timezone.now(),
                          "started_at": timezone.now()},
            )
        except Exception as exc:
            errors.append(str(exc))
    connection.close()
threads = [threading.Thread(target=beat, args=(n,)) for n in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
mode = connection.cursor().execute("PRAGMA journal_mode").fetchone()[0]
print(mode, len(errors), sorted(set(errors)))
"""


def test_it_writes_concurrent_heartbeats_to_sqlite_without_lock_errors(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "nftsite.settings",
        "NFF_VAR_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[:2] == ["wal", "0"], done.stdout
