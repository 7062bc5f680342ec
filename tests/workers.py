"""A real Celery worker in its own process, for the tests that need one."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.testenv import ROOT, SCRATCH

ALL_QUEUES = settings.JOB_QUEUES


def database_url():
    """The URL of the database the tests are using right now (pytest-django's test database)."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    """``celery worker`` as a child process; ``kill()`` is a real SIGKILL, as in production."""

    kind = "worker"
    ready_text = " ready."

    def __init__(self, name, queues=ALL_QUEUES, concurrency=1, env=None, cwd=ROOT, loglevel="INFO"):
        self.name = name
        self.queues = queues
        self.concurrency = concurrency
        self.env = {**os.environ, "DATABASE_URL": database_url(), **(env or {})}
        self.cwd = cwd
        self.loglevel = loglevel
        self.log_path = SCRATCH / f"{self.kind}-{name}.log"
        self.proc = None

    def command(self):
        return [
            *("-Q", ",".join(self.queues), "-c", str(self.concurrency)),
            *("-n", f"{self.name}@%h", "--without-gossip", "--without-mingle"),
        ]

    def start(self, timeout=90):
        celery = [sys.executable, "-m", "celery", "-A", "nftsite", self.kind]
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps writing to it)
        self.proc = subprocess.Popen(
            [*celery, *self.command(), "-l", self.loglevel],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_for_log(self.ready_text, timeout)
        return self

    def wait_for_log(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} {self.name} exited:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{self.kind} {self.name} did not log {text!r}:\n{self.log()[-4000:]}")

    def log(self):
        return Path(self.log_path).read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self):
        """SIGKILL the whole worker (parent and pool children), like a lost machine."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class BeatProcess(WorkerProcess):
    """``celery beat`` as a child process: the stale-job watchdog on its real schedule."""

    kind = "beat"
    ready_text = "beat: Starting..."

    def __init__(self, name, env=None, cwd=ROOT):
        super().__init__(name, queues=(), env=env, cwd=cwd)

    def command(self):
        return ["-s", str(SCRATCH / f"beat-{self.name}.schedule")]


@contextmanager
def routed(app, routes):
    """Send tasks by ``routes`` for a while (Celery caches its router, so rebuild it)."""
    saved = app.conf.task_routes
    app.conf.task_routes = routes
    app.amqp.flush_routes()
    app.amqp.router = app.amqp.Router()
    try:
        yield
    finally:
        app.conf.task_routes = saved
        app.amqp.flush_routes()
        app.amqp.router = app.amqp.Router()
