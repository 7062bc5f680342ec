"""manage.py evaluate GENERATOR_OR_RUN [--json] [--force]

A generator slug evaluates that generator; a training run id (``12`` or ``run:12``) evaluates
every checkpoint of the run and prints the recommended epoch. Runs in this process (no worker
needed); the reports are saved like the Celery tasks save them. ``--json`` prints one JSON
document on stdout: ``{"generator": slug, "report": {...}}`` or
``{"run": id, "checkpoints": [{"epoch", "report"}], "recommended": {...} | null}``.
Without Inception-v3 weights the Inception figures say exactly what file is missing.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from gan_app.evaluation import reports as evaluation
from gan_app.gan.trait_classifier import TraitDataError


class Command(BaseCommand):
    help = "Evaluate a generator, or every checkpoint of a training run (recommends an epoch)."

    def add_arguments(self, parser):
        parser.add_argument("target", help="Generator slug, or training run id (12 or run:12).")
        parser.add_argument("--json", action="store_true", help="Print the reports as JSON.")
        parser.add_argument(
            "--force", action="store_true", help="Evaluate again even if nothing changed."
        )

    def handle(self, *args, target, json: bool, force: bool, **options):
        try:
            kind, subject = evaluation.resolve_target(target)
            if kind == "generator":
                result = self.generator(subject, force)
            else:
                result = self.run(subject, force, quiet=json)
        except (evaluation.EvaluationError, TraitDataError) as error:
            raise CommandError(str(error)) from error
        if json:
            self.stdout.write(dumps(result))
        else:
            self.stdout.write(describe(result))

    def generator(self, generator, force):
        report = evaluation.evaluate_generator(generator, force=force)
        listed = generator.is_published and generator.is_listed
        return {
            "generator": generator.slug,
            "report": report,
            "gate": {**generator.gate_verdict, "listed": listed},
        }

    def run(self, run, force, quiet):
        def progress(checkpoint):
            if not quiet:
                self.stderr.write(f"evaluating epoch {checkpoint.epoch}…")

        recommended = evaluation.evaluate_run(run, force=force, progress=progress)
        checkpoints = [
            {"epoch": c.epoch, "checkpoint": c.pk, "report": c.metrics}
            for c in run.checkpoints.order_by("epoch")
        ]
        if not checkpoints:
            raise CommandError(f"training run {run.pk} has no checkpoints to evaluate")
        return {"run": run.pk, "checkpoints": checkpoints, "recommended": recommended}


def dumps(result):
    return json.dumps(result, indent=2, sort_keys=True, allow_nan=False)


def describe(result):
    lines = []
    reports = (
        [(result["generator"], result["report"])]
        if "generator" in result
        else [(f"epoch {c['epoch']}", c["report"]) for c in result["checkpoints"]]
    )
    for name, report in reports:
        base = report["baseline"]
        inception = report["inception"]
        lines.append(
            f"{name}: domain FID {report['domain']['fid']:.4g} (real vs real "
            f"{base['domain']['fid']:.4g}), trait TV {report['traits']['tv_mean']:.3g} "
            f"(real {base['traits']['tv_mean']:.3g}), near-copies "
            f"{report['memorisation']['pixel']['near_copy_share']:.1%}, "
            + (
                f"Inception FID {inception['fid']:.4g} (real {base['inception']['fid']:.4g})"
                if "fid" in inception
                else f"Inception figures unavailable: {inception['unavailable']}"
            )
        )
    if "gate" in result:
        gate, listed = result["gate"], "listed" if result["gate"]["listed"] else "unlisted"
        failing = [c.get("note") or c["name"] for c in gate["checks"] if not c["passed"]]
        lines.append(
            f"quality gate: {'passed' if gate['passed'] else 'failed (' + ', '.join(failing) + ')'}"
            f"; {listed}"
        )
    if "recommended" in result:
        best = result["recommended"]
        lines.append(
            f"recommended: epoch {best['epoch']} ({best['reason']})"
            if best
            else "recommended: none (no checkpoint could be evaluated)"
        )
    return "\n".join(lines) + "\n"
