"""plotly.js is served from our static files (the plotly package's copy), never a CDN."""

from pathlib import Path

import plotly
import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.templatetags.static import static


def test_it_finds_plotly_js_in_the_plotly_package():
    found = finders.find("vendor/plotly.min.js")

    assert found == str(Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js")


def test_it_collects_plotly_js_with_the_other_static_files():
    # The session fixture ran collectstatic (manifest + compression, as in deploys).
    collected = Path(settings.STATIC_ROOT) / static("vendor/plotly.min.js").removeprefix("/static/")

    assert collected.is_file()
    assert (
        collected.read_bytes()[:200]
        == Path(finders.find("vendor/plotly.min.js")).read_bytes()[:200]
    )


@pytest.mark.django_db
def test_it_serves_plotly_js_over_http(client):
    response = client.get(static("vendor/plotly.min.js"))
    body = b"".join(response.streaming_content)

    assert response.status_code == 200
    assert b"plotly.js" in body[:2000]
