from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from collections_app.demo import build as demo
from collections_app.ingest.cli import JobProgressBar
from collections_app.models import IngestJob


def positive(value):
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Build the synthetic demo collection: layered 32x32 pixel-art characters with traits "
        "and rarity-driven sale prices, deterministic by --seed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--slug", default=demo.DEFAULT_SLUG)
        parser.add_argument("--size", type=positive, default=demo.DEFAULT_SIZE)
        parser.add_argument("--seed", type=int, default=demo.DEFAULT_SEED)
        parser.add_argument(
            "--archive-dir",
            default="",
            help="also write the demo as a seed archive pair into this directory",
        )

    def say(self, text):
        if self.verbosity > 0:
            self.stdout.write(text)

    def handle(self, *args, slug, size, seed, archive_dir, **options):
        self.verbosity = options["verbosity"]
        if slugify(slug) != slug:
            raise CommandError(f"--slug {slug!r} is not a slug (try {slugify(slug)!r})")
        if size > 100_000:
            raise CommandError(f"--size {size} is more than the 100,000 a demo needs")
        job = IngestJob.objects.create(
            kind=IngestJob.Kind.DEMO, params={"slug": slug, "size": size, "seed": seed}
        )
        job.claim()
        try:
            with JobProgressBar("Drawing demo tokens") as progress:
                _, counts = demo.build_demo_collection(
                    slug, size, seed, job=job, on_progress=progress
                )
        except ValueError as exc:
            job.fail(str(exc))
            raise CommandError(str(exc)) from None
        except BaseException as exc:
            job.fail(f"{type(exc).__name__}: {exc}")
            raise
        message = f"Demo collection {slug}: {counts.written} tokens (seed {seed})"
        job.finish(message)
        self.say(message)
        if archive_dir:
            images, metadata = demo.write_demo_archives(
                archive_dir, slug=slug, size=size, seed=seed
            )
            self.say(f"Archives: {images} {metadata}")
