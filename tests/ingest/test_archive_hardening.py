"""Archive import against odd names, odd numbers and well-compressed members (issue 18)."""

import io
import json

import pytest
from django.core.management import call_command
from PIL import Image

from collections_app.models import IngestJob, Sale, Token
from tests.ingest.conftest import asset, png_bytes, write_zip

pytestmark = pytest.mark.django_db


def import_pair(tmp_path, images, metadata):
    call_command(
        "import_archive",
        write_zip(tmp_path / "odd_archive.zip", images),
        write_zip(tmp_path / "odd_metadata_archive.zip", metadata),
        verbosity=0,
    )
    job = IngestJob.objects.exclude(kind=IngestJob.Kind.ANALYTICS).get()
    return job, {e["item"]: e for e in job.errors}


@pytest.mark.parametrize("name", ["².png", "①.png", "\uff11\uff12.png", "\u0661\u0662\u0663.png"])
def test_it_refuses_a_member_named_with_non_ascii_digits_and_imports_the_rest(tmp_path, name):
    job, errors = import_pair(
        tmp_path, {"0.png": png_bytes(), name: png_bytes()}, {"0.json": asset(0)}
    )

    assert set(Token.objects.values_list("token_id", flat=True)) == {"0"}
    assert "not a token id" in errors[name]["reason"]
    assert job.status == IngestJob.Status.PARTIAL


def test_it_refuses_a_token_id_in_non_ascii_digits_inside_metadata(tmp_path):
    _, errors = import_pair(
        tmp_path,
        {"0.png": png_bytes(), "1.png": png_bytes()},
        {"0.json": asset(0), "1.json": json.dumps({"token_id": "\u0661", "traits": []})},
    )

    assert "is not a non-negative integer" in errors["1"]["reason"]
    assert Token.objects.filter(token_id="0").exists()


@pytest.mark.parametrize("price", ["NaN", "1e400", "-Infinity"])
def test_it_skips_only_a_sale_whose_price_is_not_a_finite_number(tmp_path, price):
    good_sale = {
        "total_price": "1000000000000000000",
        "payment_token": {"symbol": "ETH", "decimals": 18, "usd_price": "2000"},
        "event_timestamp": "2021-05-01T00:00:00",
    }
    bad = asset(1, last_sale={**good_sale, "total_price": "PRICE"}).replace('"PRICE"', price)
    _, errors = import_pair(
        tmp_path,
        {"0.png": png_bytes(), "1.png": png_bytes()},
        {"0.json": asset(0, last_sale=good_sale), "1.json": bad},
    )

    assert errors["1"]["imported"] is True
    assert "last sale skipped" in errors["1"]["reason"]
    assert "finite" in errors["1"]["reason"]
    assert Token.objects.get(token_id="1").last_sale_amount is None
    assert Token.objects.get(token_id="1").traits.exists()
    assert Sale.objects.filter(token__token_id="0").count() == 1


@pytest.mark.parametrize("field", ["usd_price", "decimals"])
def test_it_skips_a_sale_with_a_non_finite_rate_or_decimals(tmp_path, field):
    sale = {
        "total_price": "1000000000000000000",
        "payment_token": {"symbol": "ETH", "decimals": 18, "usd_price": "2000", field: "X"},
        "event_timestamp": "2021-05-01T00:00:00",
    }
    bad = asset(0, last_sale=sale).replace('"X"', "NaN")

    _, errors = import_pair(tmp_path, {"0.png": png_bytes()}, {"0.json": bad})

    assert errors["0"]["imported"] is True
    assert Token.objects.get(token_id="0").last_sale_amount is None


def test_it_skips_a_sale_whose_timestamp_is_infinite(tmp_path):
    sale = {
        "total_price": "1000000000000000000",
        "payment_token": {"symbol": "ETH", "decimals": 18, "usd_price": "2000"},
        "event_timestamp": "X",
    }
    bad = asset(0, last_sale=sale).replace('"X"', "1e400")

    _, errors = import_pair(tmp_path, {"0.png": png_bytes()}, {"0.json": bad})

    assert "last sale skipped" in errors["0"]["reason"]
    assert Token.objects.filter(token_id="0").exists()


def test_it_accepts_a_large_but_valid_metadata_file_that_compresses_well(tmp_path):
    padding = "a plain and very repetitive description " * 7500  # about 300 KB
    _, errors = import_pair(
        tmp_path, {"0.png": png_bytes()}, {"0.json": asset(0, description=padding)}
    )

    assert errors == {}
    assert len(Token.objects.get(token_id="0").description) == len(padding)


def test_it_accepts_a_large_flat_colour_png(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (6000, 6000), (12, 34, 56)).save(buffer, "PNG")

    _, errors = import_pair(tmp_path, {"0.png": buffer.getvalue()}, {"0.json": asset(0)})

    assert errors == {}
    assert Token.objects.get(token_id="0").image_width == 6000


def test_it_still_refuses_a_large_member_that_is_a_bomb(tmp_path):
    _, errors = import_pair(
        tmp_path,
        {"0.png": png_bytes(), "1.png": b"\0" * 20_000_000},
        {"0.json": asset(0), "1.json": asset(1)},
    )

    assert "zip bomb" in errors["1"]["reason"]
    assert Token.objects.get(token_id="0").image
