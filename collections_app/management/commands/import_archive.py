from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from collections_app.ingest.archives import ArchiveError, import_archive
from collections_app.ingest.cli import JobProgressBar
from collections_app.ingest.jobs import JobBusy, JobCancelled, fail, finish, start_job
from collections_app.models import IngestJob


class Command(BaseCommand):
    help = (
        "Import a seed archive pair ({slug}_archive.zip + {slug}_metadata_archive.zip) from "
        "local paths or s3:// URLs. Bad items are reported one by one; the rest are imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("images", help="images zip: a path or s3://bucket/key")
        parser.add_argument("metadata", help="metadata zip: a path or s3://bucket/key")
        parser.add_argument("--slug", default="", help="collection slug (default: from the name)")

    def say(self, text):
        if self.verbosity > 0:
            self.stdout.write(text)

    def handle(self, *args, images, metadata, slug, **options):
        self.verbosity = options["verbosity"]
        if slug and slugify(slug) != slug:
            raise CommandError(f"--slug {slug!r} is not a slug (try {slugify(slug)!r})")
        params = {"images": images, "metadata": metadata, "slug": slug}
        try:
            job, resumed = start_job(IngestJob.Kind.ARCHIVE_IMPORT, params)
        except JobBusy as exc:
            raise CommandError(str(exc)) from None
        if resumed:
            self.stderr.write(f"Resuming import job #{job.pk} after token {job.cursor or '-'}")
        try:
            with JobProgressBar("Importing") as progress:
                summary = import_archive(
                    images, metadata, slug=slug or None, job=job, on_progress=progress
                )
        except ArchiveError as exc:
            fail(job, str(exc))
            raise CommandError(str(exc)) from None
        except JobCancelled:
            raise CommandError(f"job #{job.pk} was cancelled") from None
        except BaseException as exc:
            fail(job, f"{type(exc).__name__}: {exc}")
            raise
        finish(job, summary.message)
        self.say(f"Job #{job.pk}: {summary.message}")
        for error in job.errors[:20]:
            self.say(f"  {error['item']}: {error['reason']}")
        if len(job.errors) > 20:
            self.say(f"  ... and {len(job.errors) - 20} more (see the job in the admin)")
