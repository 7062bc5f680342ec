from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from collections_app.ingest.cli import JobProgressBar
from collections_app.ingest.collector import run_opensea_job
from collections_app.ingest.jobs import JobBusy, start_job
from collections_app.models import Collection, IngestJob


class Command(BaseCommand):
    help = (
        "Ingest a collection from the OpenSea API v2 (tokens, traits, images, sales). Runs in "
        "this process; started again after an interruption it continues where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the collection's OpenSea slug")
        parser.add_argument("--api-url", default="", help="default: OPENSEA_API_URL")
        parser.add_argument("--api-key", default="", help="default: OPENSEA_API_KEY")
        parser.add_argument("--no-sales", action="store_true", help="skip the sale events")

    def say(self, text):
        if self.verbosity > 0:
            self.stdout.write(text)

    def handle(self, *args, slug, api_url, api_key, no_sales, **options):
        self.verbosity = options["verbosity"]
        if slugify(slug) != slug.lower():
            raise CommandError(f"{slug!r} is not an OpenSea collection slug")
        api_url = (api_url or settings.OPENSEA_API_URL).rstrip("/")
        if urlsplit(api_url).scheme not in {"http", "https"} or not urlsplit(api_url).netloc:
            raise CommandError(f"--api-url {api_url!r} is not an http(s) URL")
        # The key stays in this process: it is never stored in the job or passed to a task.
        api_key = api_key or settings.OPENSEA_API_KEY
        if not api_key:
            self.stderr.write("No API key (--api-key or OPENSEA_API_KEY): OpenSea may refuse.")
        collection, _ = Collection.objects.get_or_create(
            slug=slug, defaults={"name": slug, "source": Collection.Source.OPENSEA}
        )
        params = {"api_url": api_url, "sales": not no_sales}
        try:
            job, resumed = start_job(
                IngestJob.Kind.OPENSEA, params, collection=collection, resume_failed=True
            )
        except JobBusy as exc:
            raise CommandError(str(exc)) from None
        if resumed:
            self.stderr.write(f"Resuming job #{job.pk} at {job.cursor or 'the start'}")
        with JobProgressBar(f"Ingesting {slug}") as progress:
            run_opensea_job(job, api_key=api_key, on_progress=progress)
        job.refresh_from_db()
        if job.status == IngestJob.Status.FAILED:
            raise CommandError(f"job #{job.pk} failed: {job.message}")
        if job.status == IngestJob.Status.CANCELLED:
            raise CommandError(f"job #{job.pk} was cancelled")
        self.say(f"Job #{job.pk} {job.get_status_display().lower()}: {job.message}")
        for error in job.errors[:20]:
            self.say(f"  {error['item']}: {error['reason']}")
        if len(job.errors) > 20:
            self.say(f"  ... and {len(job.errors) - 20} more (see the job in the admin)")
