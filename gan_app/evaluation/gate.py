"""The quality gate: a published generator is listed publicly only when its evaluation passes
the thresholds in settings (``QUALITY_GATE_*``), so a minute-long run on 43 tokens never becomes
the home page mosaic. Applied at the end of every generator evaluation.

Like the FID check, the valid-token check is relative to the real tokens: the classifier reads
only some real tokens confidently (87% of the demo's, 63% of the CryptoPunks sample's), so a
fixed bar would be easy on one collection and out of reach on another. The generated share over
the real share must reach ``QUALITY_GATE_MIN_VALID_TOKEN_RATIO``; the absolute
``QUALITY_GATE_MIN_VALID_TOKEN_RATE`` is a floor for collections the classifier reads poorly.

A figure missing from the report (an older report, a metric this evaluation could not measure)
fails its check: the gate fails closed and the verdict says "not measured".
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from gan_app.models import Generator


def _number(value):
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _figure(report, *path):
    """The number at ``path`` in the report, or None (missing, or not a number)."""
    for key in path:
        report = report.get(key) if isinstance(report, dict) else None
    return _number(report)


def _ratio(report, *path):
    """The figure at ``path`` over the same figure of the real-vs-real baseline."""
    value, baseline = _figure(report, *path), _figure(report, "baseline", *path)
    if value is None or baseline is None:
        return None
    if baseline <= 0:
        return float("inf") if value > 0 else 1.0
    return value / baseline


# How each check compares its value with its threshold: the one place the direction lives (the
# verdict and the admin's table both read it).
RULES = {
    "fid_ratio": "≤",
    "valid_token_rate": "≥",
    "valid_token_ratio": "≥",
    "near_copy_share": "≤",
}


def _check(name, value, threshold, what):
    if value is None:
        return {
            "name": name,
            "value": None,
            "threshold": threshold,
            "passed": False,
            "note": f"not measured: the report has no {what}",
        }
    passed = value <= threshold if RULES[name] == "≤" else value >= threshold
    return {"name": name, "value": value, "threshold": threshold, "passed": bool(passed)}


def verdict(report: dict) -> dict:
    """Each check (name, value, threshold, passed) and whether all passed."""
    checks = [
        _check(
            "fid_ratio",
            _ratio(report, "domain", "fid"),
            settings.QUALITY_GATE_MAX_FID_RATIO,
            "domain FID and real-vs-real baseline",
        ),
        _check(
            "valid_token_rate",
            _figure(report, "quality", "valid_token_rate"),
            settings.QUALITY_GATE_MIN_VALID_TOKEN_RATE,
            "quality.valid_token_rate",
        ),
        _check(
            "valid_token_ratio",
            _ratio(report, "quality", "valid_token_rate"),
            settings.QUALITY_GATE_MIN_VALID_TOKEN_RATIO,
            "valid-token rate of real tokens (baseline.quality.valid_token_rate)",
        ),
        _check(
            "near_copy_share",
            _figure(report, "memorisation", "pixel", "near_copy_share"),
            settings.QUALITY_GATE_MAX_NEAR_COPY_SHARE,
            "memorisation.pixel.near_copy_share",
        ),
    ]
    return {
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
        "evaluated_at": report.get("evaluated_at") or timezone.now().isoformat(),
    }


def apply(generator: Generator, report: dict) -> dict:
    """Store the verdict; list the generator when it passes, unlist it when it fails (unless an
    admin listed it anyway, with a reason). Gate off: the verdict is still stored."""
    result = verdict(report)
    fields = {"gate_verdict": result}
    if settings.QUALITY_GATE and generator.is_published and not generator.listed_reason:
        fields["is_listed"] = result["passed"]
    Generator.objects.filter(pk=generator.pk).update(**fields)
    for name, value in fields.items():
        setattr(generator, name, value)
    return result


def rows(generator: Generator) -> list[tuple[str, str, str, str]]:
    """Every check of the stored verdict as (check, value, rule, result), passed ones too, so
    an admin sees by how much a generator passed, not only why one failed."""
    table = []
    for check in (generator.gate_verdict or {}).get("checks", []):
        value = check["value"]
        rule = f"{RULES.get(check['name'], '?')} {check['threshold']:.4g}"
        result = "passed" if check["passed"] else check.get("note") or "failed"
        table.append((check["name"], "—" if value is None else f"{value:.4g}", rule, result))
    return table


def failing(generator: Generator) -> list[str]:
    """The failed checks in words, for the admin."""
    rows = []
    for check in (generator.gate_verdict or {}).get("checks", []):
        if not check["passed"]:
            rows.append(
                check.get("note")
                or f"{check['name']} {check['value']:.4g} (threshold {check['threshold']:.4g})"
            )
    return rows
