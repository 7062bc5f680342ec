"""Production-shaped fixtures: S3 on moto's standalone server, workers that share nothing on
disk, and a private Redis a test may stop and start again."""

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from tests.s3 import REGION, S3_CREDENTIALS, use_s3_media
from tests.testenv import ROOT
from tests.workers import WorkerProcess, routed

BUCKETS = ("seed", "media")
TINY = {"resolution": 32, "latent_dim": 8, "generator_width": 4}
# A redelivered message waits this long in Redis before another worker may take it (see
# CELERY_VISIBILITY_TIMEOUT); production keeps the hour, tests would wait it out otherwise.
VISIBILITY_TIMEOUT = 4


# Queues of our own: the session's all-queue worker (tests/conftest.py), when another module
# started it, must not take these tests' tasks.
QUEUES = {"ingest": "ingest-prod", "generate": "generate-prod", "train": "train-prod"}


@pytest.fixture
def private_queues():
    from nftsite.celery import app

    routes = {
        "collections_app.tasks.*": {"queue": QUEUES["ingest"]},
        "gan_app.tasks.generate_*": {"queue": QUEUES["generate"]},
        "gan_app.tasks.train_*": {"queue": QUEUES["train"]},
    }
    with routed(app, routes):
        yield QUEUES


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout=60, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")


@pytest.fixture
def s3(s3_client, settings):
    """This test process stores media in S3 too; yields (boto3 client, env for workers)."""
    use_s3_media(settings)
    for bucket in BUCKETS:
        s3_client.create_bucket(Bucket=bucket)
    env = {
        **S3_CREDENTIALS,
        "AWS_STORAGE_BUCKET_NAME": "media",
        "AWS_S3_ENDPOINT_URL": settings.AWS_S3_ENDPOINT_URL,
        "AWS_S3_REGION_NAME": REGION,
    }
    return s3_client, env


def s3_keys(client, bucket="media", prefix=""):
    return {
        o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    }


class Machine:
    """A worker as if on its own machine: its own working directory, var/ and media folder;
    the code comes from PYTHONPATH. What it shares with others is in ``env`` (services only)."""

    def __init__(self, base, name, queues, env=None, concurrency=1, loglevel="INFO"):
        self.home = Path(base) / name
        (self.home / "var").mkdir(parents=True)
        env = {
            "PYTHONPATH": str(ROOT),
            "NFF_VAR_DIR": str(self.home / "var"),
            "MEDIA_ROOT": str(self.home / "var" / "media"),
            "STATIC_ROOT": str(self.home / "var" / "static"),
            **(env or {}),
        }
        self.worker = WorkerProcess(
            name, queues=queues, concurrency=concurrency, env=env, cwd=self.home, loglevel=loglevel
        )

    def start(self):
        self.worker.start(timeout=120)
        return self

    def files(self):
        """Every file this machine wrote under its home (the worker's var/ and cwd)."""
        return sorted(p.relative_to(self.home) for p in self.home.rglob("*") if p.is_file())


@pytest.fixture
def machines(tmp_path, private_queues):
    """Factory of isolated worker machines (on our private queues); stopped at the end."""
    started = []

    def make(name, queues, env=None, concurrency=1, loglevel="INFO"):
        queues = tuple(QUEUES.get(q, q) for q in queues)
        machine = Machine(tmp_path / "machines", name, queues, env, concurrency, loglevel)
        started.append(machine)
        return machine

    yield make
    for machine in started:
        machine.worker.stop()


class PrivateRedis:
    """A ``redis-server`` of our own (no persistence), which a test may stop and restart."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=20, what=f"redis on port {self.port}")
        return self

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@pytest.fixture
def private_redis(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path / "redis").start()
    yield server
    server.stop()


class WebServer:
    """gunicorn with its asyncio worker, as bin/run starts it, on the test database and Redis
    prefix; ``env`` overrides settings (LONG_POLL_PER_CLIENT="2", ...)."""

    def __init__(self, workers=2, **env):
        from tests.workers import database_url

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "nftsite.asgi", "-k", "asgi"),
                *("-b", f"127.0.0.1:{self.port}", "-w", str(workers)),
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url(), "LOG_LEVEL": "WARNING", **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self.up, timeout=60, interval=0.2, what="gunicorn")

    def up(self):
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def web_servers(transactional_db):
    """Factory of web servers on the test database; stopped at the end."""
    started = []

    def start(**kwargs):
        started.append(WebServer(**kwargs))
        return started[-1].url

    yield start
    for server in started:
        server.stop()


def tiny_generator(collection, *, slug, resolution=32, latent_dim=8, width=4, published=True):
    """A published generator with freshly initialised weights, stored in default storage."""
    from gan_app.gan import GANConfig, build_generator, export_generator
    from gan_app.models import Generator

    config = GANConfig(resolution=resolution, latent_dim=latent_dim, generator_width=width)
    buffer = io.BytesIO()
    sha = export_generator(
        build_generator(config), buffer, config=config.to_dict(), epoch=1, training_set={}
    )
    generator = Generator(
        slug=slug,
        name=f"{collection.name} {slug}",
        collection=collection,
        resolution=resolution,
        latent_dim=latent_dim,
        epoch=1,
        model_sha256=sha,
        is_published=published,
        is_listed=published,
        published_at=timezone.now() if published else None,
    )
    generator.model_file.save(f"{slug}.zip", ContentFile(buffer.getvalue()), save=False)
    generator.save()
    return generator


def worker_env(**extra):
    """Settings every test worker here gets: short redelivery, quiet TensorFlow."""
    return {
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **{k: str(v) for k, v in extra.items()},
    }
