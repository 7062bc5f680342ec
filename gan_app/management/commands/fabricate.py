"""manage.py fabricate GENERATOR --count N [--seed S] [--traits source|uniform|FILE.json]
[--image-uri TEMPLATE] [--out DIR]

Fabricates a whole new collection in this process (the same job and worker code as the
admin's, with a progress bar): N unique tokens, imported as a collection with source
"fabricated". ``--out`` also unpacks the export there (the seed archive pair, ``erc721/`` with
images, metadata and provenance.txt). Bad input ends in one line, before anything is made.
"""

import json
import sys
import zipfile
from pathlib import Path

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gan_app.fabrication import runs, worker
from gan_app.models import FabricationJob

from .generate import Command as GenerateCommand
from .generate import make_folder


class Command(BaseCommand):
    help = "Fabricate a whole new collection of unique tokens from a published generator."

    def add_arguments(self, parser):
        parser.add_argument("generator", help="Generator slug (or numeric id).")
        parser.add_argument("--count", type=int, required=True, help="Tokens to make.")
        parser.add_argument("--seed", type=int, default=0, help="Run seed (default 0).")
        parser.add_argument(
            "--traits",
            default="source",
            help="source (the collection's frequencies), uniform, or a JSON table file.",
        )
        parser.add_argument("--image-uri", default="{id}.png", help="ERC-721 image URI template.")
        parser.add_argument("--out", default=None, help="Folder to unpack the export into.")

    def handle(self, *args, generator, count, seed, traits, image_uri, out, **options):
        gen = GenerateCommand().find_generator(generator)
        plan = self.trait_plan(traits)
        folder = make_folder(out) if out is not None else None
        try:
            job = runs.create_job(gen, count, seed, plan, image_uri, send=False)
        except runs.FabricationSetupError as exc:
            raise CommandError(str(exc)) from None
        bar = tqdm(total=count, unit="token", disable=not sys.stderr.isatty(), file=sys.stderr)
        try:
            status = worker.process(job.pk, on_token=lambda token, state: bar.update(1))
        finally:
            bar.close()
        job = FabricationJob.objects.get(pk=job.pk)
        if status != FabricationJob.Status.SUCCEEDED:
            raise CommandError(f"fabrication #{job.pk} {status}: {job.error}")
        self.report(job)
        if folder is not None:
            with default_storage.open(job.export_file.name, "rb") as handle:
                zipfile.ZipFile(handle).extractall(folder)
            self.stdout.write(f"export written to {folder}")

    def trait_plan(self, traits):
        if traits in runs.TRAIT_SOURCES:
            return traits
        path = Path(traits)
        if not path.is_file():
            raise CommandError(f"--traits: {traits!r} is not source, uniform or a JSON file")
        try:
            return runs.parse_traits(path.read_text(encoding="utf-8"))
        except (runs.FabricationSetupError, UnicodeDecodeError) as exc:
            raise CommandError(f"--traits {path}: {exc}") from None

    def report(self, job):
        result = job.result
        self.stdout.write(
            f"{job.collection.slug}: {result['made']:,} of {result['requested']:,} tokens from "
            f"{result['candidates']:,} candidates (rejected {json.dumps(result['rejected'])}), "
            f"provenance {result['provenance']}"
        )
        for note in filter(None, job.notes.splitlines()):
            self.stdout.write(f"note: {note}")
