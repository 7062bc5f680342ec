"""manage.py generate GENERATOR [--seed K] [--count N] [--trait TYPE=VALUE ...] OUTDIR

Writes ``<generator>-<seed>.png`` and ``<generator>-<seed>.json`` (ERC-721 metadata) for N
consecutive seeds from K (a random K when not given). Images go through the same service as the
Generate button: a seed made before is copied from storage, a new one is rendered and stored,
so its permalink serves it from then on. ``--trait`` (trait-conditioned generators, repeatable;
a multi-valued type may be given several times): the traits to draw; types not given are "any".
"""

import hashlib
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gan_app.gan import GeneratorArtifactError
from gan_app.generation import render
from gan_app.generation import requests as generation
from gan_app.generation.metadata import absolute, dumps, file_stem
from gan_app.models import Generator

CHUNK = 64  # seeds per forward pass
MAX_COUNT = 100_000


def make_folder(path) -> Path:
    """``path`` as an existing folder (created if missing), or a one-line CommandError."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create {folder}: {exc.strerror}") from None
    return folder


class Command(BaseCommand):
    help = "Generate images (PNG + ERC-721 metadata JSON) from a generator into a folder."

    def add_arguments(self, parser):
        parser.add_argument("generator", help="Generator slug (or numeric id).")
        parser.add_argument("outdir", help="Folder to write the files to (created if missing).")
        parser.add_argument("--seed", type=int, default=None, help="First seed (default random).")
        parser.add_argument("--count", type=int, default=1, help="How many consecutive seeds.")
        parser.add_argument(
            "--trait",
            action="append",
            default=[],
            metavar="TYPE=VALUE",
            help="A trait to draw (conditional generators; repeatable).",
        )

    def handle(self, *args, generator, outdir, seed, count, trait, **options):
        gen = self.find_generator(generator)
        seeds = self.plan(seed, count)
        traits = self.traits(gen, trait)
        folder = make_folder(outdir)
        bar = tqdm(total=len(seeds), unit="img", disable=not sys.stderr.isatty(), file=sys.stderr)
        try:
            for start in range(0, len(seeds), CHUNK):
                chunk = seeds[start : start + CHUNK]
                images = render.ensure_images(gen, chunk, traits)
                for seed_ in chunk:
                    self.write(folder, gen, images[seed_])
                bar.update(len(chunk))
        except OSError as exc:
            raise CommandError(f"cannot write to {folder}: {exc.strerror or exc}") from None
        except GeneratorArtifactError as exc:
            raise CommandError(f"generator {gen.slug}: {exc}") from None
        finally:
            bar.close()
        first, last = seeds[0], seeds[-1]
        span = f"seed {first}" if first == last else f"seeds {first}..{last}"
        self.stdout.write(f"Wrote {len(seeds)} image(s) ({span}) from {gen.slug} to {folder}")

    def find_generator(self, name):
        query = Generator.objects.select_related("collection")
        found = query.filter(slug=name).first()
        if found is None and name.isdigit():
            found = query.filter(pk=int(name)).first()
        if found is None:
            known = ", ".join(query.order_by("slug").values_list("slug", flat=True)[:10])
            raise CommandError(
                f"no generator {name!r}" + (f" (known: {known})" if known else " (none exist yet)")
            )
        if not found.model_file:
            raise CommandError(f"generator {found.slug} has no model file")
        return found

    def traits(self, generator, pairs):
        asked: dict[str, list[str]] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise CommandError(f"--trait wants TYPE=VALUE, got {pair!r}")
            asked.setdefault(name.strip(), []).append(value.strip())
        try:
            return generation.trait_params(generator, asked).get("traits", {})
        except generation.GenerationError as exc:
            raise CommandError(str(exc)) from None

    def plan(self, seed, count):
        if not 1 <= count <= MAX_COUNT:
            raise CommandError(f"--count must be from 1 to {MAX_COUNT:,}, got {count}")
        first = generation.random_seed(count) if seed is None else seed
        if first < 0 or first + count - 1 > generation.MAX_SEED:
            raise CommandError(
                f"seeds must be from 0 to {generation.MAX_SEED:,}; --seed {first} with --count "
                f"{count} is outside that range"
            )
        return list(range(first, first + count))

    def write(self, folder, generator, image):
        stem = file_stem(generator.slug, image.seed)
        if image.condition_key:
            stem += "-" + hashlib.sha256(image.condition_key.encode()).hexdigest()[:8]
        with image.image.open("rb") as fh:
            (folder / f"{stem}.png").write_bytes(fh.read())
        # Metadata links: the permalinks when SITE_URL is known, else the file next to it.
        metadata = (
            absolute(image.metadata, settings.SITE_URL)
            if settings.SITE_URL
            else {**image.metadata, "image": f"{stem}.png"}
        )
        (folder / f"{stem}.json").write_text(dumps(metadata), encoding="utf-8")
