"""plotly.js (the cartesian bundle of a pinned npm package) is served from our static files,
hashed, compressed and cached for a year, never from a CDN."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.templatetags.static import static

BUNDLE = "vendor/plotly-cartesian.min.js"
PACKAGE = Path(settings.BASE_DIR) / "node_modules" / "plotly.js-cartesian-dist-min"


def test_it_finds_the_cartesian_bundle_in_node_modules():
    found = finders.find(BUNDLE)

    assert found == str(PACKAGE / "plotly-cartesian.min.js")


def test_it_pins_the_bundle_to_the_plotly_python_packages_plotly_js():
    import json

    import plotly

    bundled = json.loads((PACKAGE / "package.json").read_text())["version"]
    python_side = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"

    assert f"plotly.js v{bundled}" in python_side.read_text()[:200]


def test_it_collects_the_bundle_hashed_and_compressed():
    # The session fixture ran collectstatic (manifest + compression, as in deploys).
    url = static(BUNDLE)
    collected = Path(settings.STATIC_ROOT) / url.removeprefix("/static/")

    assert url != f"/static/{BUNDLE}", "a hashed name, so it can be cached for ever"
    assert collected.read_bytes() == Path(finders.find(BUNDLE)).read_bytes()
    assert Path(f"{collected}.gz").stat().st_size < collected.stat().st_size / 2


@pytest.mark.django_db
def test_it_serves_the_bundle_compressed_with_far_future_cache_headers(client):
    response = client.get(static(BUNDLE), headers={"accept-encoding": "gzip"})
    body = b"".join(response.streaming_content)

    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "max-age=315360000" in response.headers["cache-control"]
    assert "immutable" in response.headers["cache-control"]
    assert len(body) < 600_000


@pytest.mark.django_db
def test_public_chart_pages_load_it_without_holding_up_the_html(client):
    from collections_app.analytics import compute as analytics
    from tests.analytics.factory import punks_like

    collection = punks_like(n=30, slug="async-plotly")
    analytics.compute(collection)
    html = client.get(collection.get_absolute_url()).content.decode()

    assert 'id="plotly-js"' in html and "plotly-cartesian" in html
    tag = html[html.index('id="plotly-js"') - 10 :].split(">", 1)[0]
    assert " async" in tag
