"""How the admin shows things (issue 15, item 7): prices, JSON as tables, no Add links for rows
only the system writes, the run's evaluation page agreeing with the generator page, breadcrumbs."""

from decimal import Decimal

import pytest
from django.urls import reverse

from collections_app.models import Sale, Token
from gan_app import publishing
from nftsite.admin_display import json_table, native, usd

pytestmark = pytest.mark.django_db


def test_it_formats_prices_without_float_artefacts():
    assert usd(Decimal("466767.999975")) == "$466,768.00"
    assert usd(None) == "—"
    assert native(Decimal("0.509400000000000000"), "ETH") == "0.5094 ETH"
    assert native(Decimal("12345.000000000000000000"), "WETH") == "12,345 WETH"
    assert native(Decimal("0.000123456789"), "ETH") == "0.000123457 ETH"


def test_it_shows_json_as_escaped_tables():
    html = json_table({"fid": 1.23456789, "per_type": {"<b>": [1, 2]}, "rows": [{"a": None}]})

    assert html.startswith('<table class="json-table">')
    assert "<th>fid</th><td>1.23457</td>" in html
    assert "<th>&lt;b&gt;</th><td>1, 2</td>" in html
    assert "<th>0</th><td><table" in html and "<td>—</td>" in html
    assert json_table({}) == "—"


def test_it_formats_sale_prices_in_the_admin_lists(admin_client, sprite_set):
    token = Token.objects.filter(collection=sprite_set.collection).first()
    Sale.objects.create(
        token=token,
        collection=token.collection,
        timestamp="2024-01-02T00:00:00Z",
        amount=Decimal("0.509400000000000000"),
        symbol="ETH",
        usd=Decimal("466767.999975"),
        tx_hash="0xabc",
        source_key="s1",
    )

    html = admin_client.get(reverse("admin:collections_app_sale_changelist")).content.decode()

    assert "0.5094 ETH" in html and "$466,768.00" in html
    assert "0.509400000000000000" not in html and "466767.999975" not in html


@pytest.mark.parametrize(
    "model",
    [
        "gan_app_checkpoint",
        "nftsite_workerheartbeat",
        "nftsite_queueprobe",
        "collections_app_token",
        "collections_app_sale",
    ],
)
def test_it_offers_no_add_for_rows_the_system_writes(admin_client, model):
    changelist = admin_client.get(reverse(f"admin:{model}_changelist")).content.decode()

    assert admin_client.get(reverse(f"admin:{model}_add")).status_code == 403
    assert reverse(f"admin:{model}_add") not in changelist


def test_it_shows_the_run_config_and_checkpoint_losses_as_tables(admin_client, trained_run):
    run_page = admin_client.get(
        reverse("admin:gan_app_trainingrun_change", args=[trained_run.pk])
    ).content.decode()
    checkpoint = trained_run.checkpoints.first()
    checkpoint_page = admin_client.get(
        reverse("admin:gan_app_checkpoint_change", args=[checkpoint.pk])
    ).content.decode()

    assert '<table class="json-table"><tr><th>' in run_page
    assert "<th>batch_size</th><td>8</td>" in run_page
    assert "<th>g_loss</th>" in checkpoint_page


def test_it_shows_the_generators_metrics_on_the_run_evaluation_page(admin_client, trained_run):
    checkpoint = trained_run.checkpoints.order_by("-epoch").first()
    checkpoint.metrics = {}
    checkpoint.save(update_fields=["metrics"])
    generator = publishing.publish_checkpoint(checkpoint, publish=True)
    generator.metrics = {"domain": {"fid": 12.5, "kid_mean": 0.01}, "traits": {"tv_mean": 0.2}}
    generator.save(update_fields=["metrics"])
    url = reverse("admin:gan_app_trainingrun_evaluation", args=[trained_run.pk])

    html = admin_client.get(url).content.decode()

    assert "12.500" in html and f"Recommended: epoch {checkpoint.epoch}" in html
    assert html.count(">not evaluated</td>") == trained_run.checkpoints.count() - 1
    generator_page = admin_client.get(
        reverse("admin:gan_app_generator_change", args=[generator.pk])
    ).content.decode()
    assert "<th>fid</th><td>12.5</td>" in generator_page


def test_it_names_the_app_generators_in_breadcrumbs(admin_client, trained_run):
    url = reverse("admin:gan_app_trainingrun_evaluation", args=[trained_run.pk])

    html = admin_client.get(url).content.decode()

    assert ">Generators</a>" in html and "Gan_App" not in html


def test_it_links_every_pipeline_step_from_the_admin_index(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()

    assert 'id="pipeline-dashboard"' in html
    for name in (
        "collections_app_collection_import_archive",
        "collections_app_collection_ingest_opensea",
        "collections_app_trainingset_build",
        "gan_app_trainingrun_start",
    ):
        assert f'href="{reverse(f"admin:{name}")}"' in html
