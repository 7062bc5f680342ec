"""manage.py analytics SLUG [--json]."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from collections_app.models import Collection, Token

from .factory import punks_like

pytestmark = pytest.mark.django_db


def test_it_prints_summary_prices_traits_and_every_rank_as_json(capsys):
    collection = punks_like(n=25)
    call_command("analytics", collection.slug, "--json")
    report = json.loads(capsys.readouterr().out)
    collection.refresh_from_db()

    assert report["collection"] == "punks"
    assert report["data_version"] == collection.data_version
    assert report["summary"]["tokens"] == 25
    assert report["prices"]["usd"]["count"] == report["summary"]["sold_tokens"]
    assert report["prices"]["native"]["ETH"]["count"] == report["summary"]["sold_tokens"]
    assert len(report["top_traits"]["rarest"]) == min(20, collection.traits.count())
    ranks = {
        t.token_id: {"rarity_rank": t.rarity_rank, "ic_rank": t.ic_rank}
        for t in Token.objects.all()
    }
    assert report["ranks"] == ranks


def test_it_prints_readable_tables_without_json(capsys):
    collection = punks_like(n=25)
    call_command("analytics", collection.slug)
    out = capsys.readouterr().out

    assert out.startswith("Punks Like (punks), data version")
    assert "Rarest traits" in out and "Most common traits" in out
    assert "Rarest 10 tokens (all ranks: --json)" in out
    assert "Spearman rarity.tools score vs USD price" in out


def test_it_reuses_fresh_analytics_and_recomputes_on_request(capsys):
    collection = punks_like(n=10)
    call_command("analytics", collection.slug, "--json")
    first = Collection.objects.get(pk=collection.pk).analytics_computed_at
    call_command("analytics", collection.slug, "--json")
    assert Collection.objects.get(pk=collection.pk).analytics_computed_at == first
    call_command("analytics", collection.slug, "--json", "--recompute")
    assert Collection.objects.get(pk=collection.pk).analytics_computed_at > first


def test_it_fails_with_a_one_line_error_for_an_unknown_slug():
    with pytest.raises(CommandError, match=r"^no collection with slug 'missing'$"):
        call_command("analytics", "missing")
