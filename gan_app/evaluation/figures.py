"""What the pages show of evaluation reports (web side, no TensorFlow): the figures per
checkpoint or generator, the recommended epoch of a run."""


def recommended_checkpoint(run):
    """``{"epoch", "checkpoint", "reason", "ranking"}`` for the run's evaluated checkpoints,
    or None when none is evaluated (rule: ``gan_app.gan.evaluation.select_best_checkpoint``)."""
    from gan_app.gan.evaluation import select_best_checkpoint

    checkpoints = {c.epoch: c for c in run.checkpoints.all() if (c.metrics or {}).get("domain")}
    best = select_best_checkpoint([(e, c.metrics) for e, c in sorted(checkpoints.items())])
    if best is None:
        return None
    return {**best, "checkpoint": checkpoints[best["epoch"]].pk}


def metric_series(run):
    """Per evaluated checkpoint: epoch with domain FID/KID, trait TV, near-copy share and the
    real-vs-real baselines (the chart on the run's evaluation page)."""
    rows = []
    for checkpoint in run.checkpoints.order_by("epoch"):
        report = checkpoint.metrics or {}
        if not report.get("domain"):
            continue
        rows.append(
            {
                "epoch": checkpoint.epoch,
                "checkpoint": checkpoint.pk,
                "domain_kid": report["domain"].get("kid_mean"),
                **headline_figures(report),
            }
        )
    return rows


def headline_figures(report: dict) -> dict:
    """The figures charts and tables show, each with its real-vs-real baseline."""
    baseline = report.get("baseline", {})
    return {
        "domain_fid": report.get("domain", {}).get("fid"),
        "domain_fid_baseline": baseline.get("domain", {}).get("fid"),
        "trait_tv": report.get("traits", {}).get("tv_mean"),
        "trait_tv_baseline": baseline.get("traits", {}).get("tv_mean"),
        "near_copy_share": report.get("memorisation", {}).get("pixel", {}).get("near_copy_share"),
        "inception_fid": report.get("inception", {}).get("fid"),
        # Fidelity / diversity in the trait features, and per-image validity (reports made
        # before these figures existed show them as missing).
        "precision": report.get("domain", {}).get("precision"),
        "recall": report.get("domain", {}).get("recall"),
        "valid_token_rate": report.get("quality", {}).get("valid_token_rate"),
        "valid_token_rate_baseline": baseline.get("quality", {}).get("valid_token_rate"),
        "palette_conformity": report.get("quality", {}).get("palette_conformity"),
    }


def comparison_rows(generators):
    """One row per generator with its headline figures and the real-vs-real baseline."""
    rows = []
    for generator in generators:
        report = generator.metrics or {}
        rows.append(
            {
                "generator": generator,
                "evaluated": bool(report.get("domain")),
                **headline_figures(report),
            }
        )
    return rows
