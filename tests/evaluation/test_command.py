"""manage.py evaluate GENERATOR_OR_RUN --json."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from gan_app.publishing import publish_checkpoint

pytestmark = [pytest.mark.services, pytest.mark.slow]


def evaluate(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("evaluate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_prints_a_generators_report_as_json(demo, db):
    _, _, run = demo
    generator = publish_checkpoint(run.checkpoints.get(epoch=20))

    out, _ = evaluate(generator.slug, "--json", "--force")

    result = json.loads(out)
    assert result["generator"] == generator.slug
    report = result["report"]
    assert report["domain"]["fid"] > report["baseline"]["domain"]["fid"]
    assert "INCEPTION_WEIGHTS is not set" in report["inception"]["unavailable"]
    generator.refresh_from_db()
    assert generator.metrics["evaluated_at"] == report["evaluated_at"]


def test_it_evaluates_every_checkpoint_of_a_run_and_recommends_one(demo, db):
    _, _, run = demo

    result = json.loads(evaluate(str(run.pk), "--json")[0])
    text, _ = evaluate(f"run:{run.pk}")

    assert result["run"] == run.pk
    assert [c["epoch"] for c in result["checkpoints"]] == [0, 20, 40]
    assert all(c["report"]["domain"]["fid"] >= 0 for c in result["checkpoints"])
    assert result["recommended"]["epoch"] in (20, 40)
    assert f"recommended: epoch {result['recommended']['epoch']}" in text
    assert "Inception figures unavailable: Inception-v3 weights are needed" in text


def test_it_names_what_it_could_not_find(db):
    with pytest.raises(CommandError, match="no generator with slug 'nope'"):
        evaluate("nope", "--json")


def test_it_prints_the_quality_gates_verdict(demo, db, settings):
    settings.QUALITY_GATE = True
    settings.QUALITY_GATE_MAX_FID_RATIO = 1.0  # an epoch-20 generator is further than that
    _, _, run = demo
    generator = publish_checkpoint(run.checkpoints.get(epoch=20))

    result = json.loads(evaluate(generator.slug, "--json")[0])
    text, _ = evaluate(generator.slug)

    assert result["gate"]["passed"] is False and result["gate"]["listed"] is False
    assert {c["name"] for c in result["gate"]["checks"]} >= {"fid_ratio"}
    assert "quality gate: failed (fid_ratio" in text and text.rstrip().endswith("; unlisted")
