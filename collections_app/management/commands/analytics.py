import json
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from collections_app.analytics import compute, refresh, report
from collections_app.models import Collection

STEPS = ["load", "rarity", "save", "images"]  # compute.compute's progress steps


class Command(BaseCommand):
    help = (
        "Print a collection's analytics: summary, price stats, top traits and rarity ranks "
        "(computed first when stale)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--json", action="store_true", help="Print JSON (all ranks included).")
        parser.add_argument(
            "--recompute", action="store_true", help="Recompute even when the cache is fresh."
        )

    def handle(self, slug, **options):
        collection = Collection.objects.filter(slug=slug).first()
        if collection is None:
            raise CommandError(f"no collection with slug {slug!r}")
        with tqdm(
            total=len(STEPS), desc="analytics", disable=not sys.stderr.isatty(), file=sys.stderr
        ) as bar:

            def progress(step):
                bar.set_postfix_str(step)
                bar.update(1)

            if options["recompute"]:
                compute.compute(collection, progress=progress)
            data = refresh.ensure_fresh(collection, progress=progress)
        summary = report.report(collection, data)
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=1))
        else:
            self.stdout.write(report.format_report(summary))
