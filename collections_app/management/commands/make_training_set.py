import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from collections_app.analytics.subsets import (
    SubsetError,
    SubsetSpec,
    build_training_set,
    parse_trait,
)
from collections_app.models import Collection


class Command(BaseCommand):
    help = (
        "Freeze a subset of a collection's tokens as a training set. Percentages apply to what "
        "the other filters leave; --top-price-pct counts only sold tokens."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")
        parser.add_argument(
            "--top-price-pct", type=float, metavar="P", help="Top P%% of sold tokens by USD price."
        )
        parser.add_argument(
            "--top-rarity-pct", type=float, metavar="P", help="Top P%% by rarity rank."
        )
        parser.add_argument(
            "--rarity-metric",
            choices=["rarity", "openrarity"],
            default="rarity",
            help="Rank used by rarity filters: rarity.tools (default) or OpenRarity.",
        )
        parser.add_argument("--min-rarity-rank", type=int, metavar="N")
        parser.add_argument("--max-rarity-rank", type=int, metavar="N")
        parser.add_argument(
            "--trait",
            action="append",
            default=[],
            metavar="TYPE=VALUE",
            help="Keep tokens with it; repeat. Values of one type are alternatives.",
        )
        parser.add_argument(
            "--exclude-trait",
            action="append",
            default=[],
            metavar="TYPE=VALUE",
            help="Drop tokens with it; repeat.",
        )
        parser.add_argument("--sold-only", action="store_true", help="Only tokens with a sale.")
        parser.add_argument(
            "--keep-excluded",
            action="store_true",
            help="Keep tokens carrying a trait value an admin excluded (left out by default).",
        )

    def handle(self, slug, name, **options):
        collection = Collection.objects.filter(slug=slug).first()
        if collection is None:
            raise CommandError(f"no collection with slug {slug!r}")
        try:
            spec = SubsetSpec(
                top_price_pct=options["top_price_pct"],
                top_rarity_pct=options["top_rarity_pct"],
                rarity_metric=options["rarity_metric"],
                min_rarity_rank=options["min_rarity_rank"],
                max_rarity_rank=options["max_rarity_rank"],
                include_traits=[parse_trait(t) for t in options["trait"]],
                exclude_traits=[parse_trait(t) for t in options["exclude_trait"]],
                sold_only=options["sold_only"],
                leave_out_excluded=not options["keep_excluded"],
            )
            with tqdm(
                total=3, desc="training set", disable=not sys.stderr.isatty(), file=sys.stderr
            ) as bar:
                training_set, warnings = build_training_set(
                    collection,
                    name,
                    spec,
                    progress=lambda step: (bar.set_postfix_str(step), bar.update(1)),
                )
        except SubsetError as exc:
            raise CommandError(str(exc)) from None
        stats = training_set.stats
        self.stdout.write(
            f"Created training set {training_set} (id {training_set.pk}): "
            f"{training_set.token_count} of {stats['collection']['tokens']} tokens "
            f"({spec.describe()})"
        )
        for step in stats["funnel"]:
            self.stdout.write(f"  {step['step']}: {step['remaining']}")
        for warning in warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
