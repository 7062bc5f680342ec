import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.testenv import ROOT

pytestmark = pytest.mark.django_db


def test_it_sends_security_headers_on_pages(client):
    response = client.get("/")

    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_it_passes_the_deploy_checklist_with_production_settings():
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECURE_HTTPS": "true",
        "SECRET_KEY": "p" + "Xk3v9Qw2Lr8Zt5Yb1Nm7Hc4Jd6Fg0Sa2Ee9Rr5Tt1Uu3Ii8Oo6Pp4",
        "ALLOWED_HOSTS": "fakes.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_redacts_a_secret_that_reaches_a_log_line(settings, caplog):
    from nftsite.logging import RedactSecrets

    settings.OPENSEA_API_KEY = "opensea-key-0f9e8d7c6b"
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "GET %s failed", ("/v2?key=opensea-key-0f9e8d7c6b",), None
    )

    RedactSecrets().filter(record)

    assert record.getMessage() == "GET /v2?key=[redacted] failed"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def server_without_database():
    """A real gunicorn whose database does not answer (nothing listens on port 1)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nff_down"}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "nftsite.asgi", "-k", "asgi"),
            *("-b", f"127.0.0.1:{port}", "-w", "1"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=30)


def test_it_answers_503_not_a_traceback_when_the_database_is_down(server_without_database):
    status, headers, body = fetch(server_without_database + "/")

    assert status == 503
    assert headers["Retry-After"] == "30"
    assert "Back in a moment" in body
    assert "Traceback" not in body and "OperationalError" not in body


def test_it_reports_the_database_down_on_the_health_check(server_without_database):
    status, _headers, body = fetch(server_without_database + "/healthz")

    assert status == 503
    assert '"database": {"ok": false' in body
