from django.core.management.base import BaseCommand, CommandError

from collections_app.ingest.archives import export_archive
from collections_app.ingest.cli import JobProgressBar
from collections_app.models import Collection, IngestJob


class Command(BaseCommand):
    help = "Write a collection as {slug}_archive.zip + {slug}_metadata_archive.zip into OUTDIR."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("outdir", help="a directory (created if needed) or s3://bucket/prefix")

    def say(self, text):
        if self.verbosity > 0:
            self.stdout.write(text)

    def handle(self, *args, slug, outdir, **options):
        self.verbosity = options["verbosity"]
        collection = Collection.objects.filter(slug=slug).first()
        if collection is None:
            raise CommandError(f"no collection with slug {slug!r}")
        job = IngestJob.objects.create(
            kind=IngestJob.Kind.ARCHIVE_EXPORT,
            collection=collection,
            params={"outdir": str(outdir)},
            items_expected=collection.tokens.count(),
        )
        job.claim()
        try:
            with JobProgressBar("Exporting") as progress:
                progress.bar.total = job.items_expected
                summary = export_archive(collection, outdir, on_progress=progress.count)
        except OSError as exc:
            job.fail(str(exc))
            raise CommandError(f"cannot write to {outdir}: {exc.strerror or exc}") from None
        except BaseException as exc:
            job.fail(f"{type(exc).__name__}: {exc}")
            raise
        job.items_done = summary.tokens
        job.save(update_fields=["items_done"])
        job.finish(summary.message)
        self.say(summary.message)
