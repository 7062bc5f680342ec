"""Publishing generators: a checkpoint's generator becomes a ``Generator`` the site serves, and a
generator travels between sites as ``{slug}_generator.zip``.

Export file (one zip, entries stored)::

    manifest.json      {"format": "nff-generator-export", "version": 1, "slug", "name",
                        "description", "collection": {"slug", "name"}, "epoch", "resolution",
                        "latent_dim", "artifact_sha256", "metrics", "generator_manifest"}
    generator.zip      the generator artifact (see gan_app.gan.sampling), loaded by the site
    sample_grid.png    the fixed-seed 4x4 grid (optional)

TensorFlow is imported inside the functions that need it, so the web process can import this.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from PIL import Image

from collections_app.models import Collection
from nftsite.jobs import dispatch_after_commit

from .models import Checkpoint, Generator

EXPORT_FORMAT = "nff-generator-export"
EXPORT_VERSION = 1
MANIFEST = "manifest.json"
ARTIFACT = "generator.zip"
GRID = "sample_grid.png"
ALLOWED_MEMBERS = {MANIFEST, ARTIFACT, GRID}
# A 128 px generator at the widest config is ~50 MB; anything far beyond is not ours.
MAX_MEMBER_BYTES = {MANIFEST: 1024**2, ARTIFACT: 512 * 1024**2, GRID: 16 * 1024**2}
MAX_RATIO = 100  # uncompressed / compressed, per member: more is a zip bomb


class GeneratorImportError(ValueError):
    """A generator zip cannot be imported; the message says why."""


# --- Publishing a checkpoint -------------------------------------------------------------------


def publish_checkpoint(checkpoint: Checkpoint, *, publish: bool = True, name=None) -> Generator:
    """The Generator for this checkpoint's generator, created once (the same checkpoint again
    returns the same row, published now if ``publish``). Version = the collection's next one.
    """
    existing = Generator.objects.filter(checkpoint=checkpoint).first()
    if existing is not None:
        return _maybe_publish(existing, publish)
    run = checkpoint.run
    training_set = run.training_set
    collection = training_set.collection
    artifact = _export_artifact(checkpoint, run, training_set)
    grid = _free_traits_grid(artifact) if run.conditional else _checkpoint_grid_bytes(checkpoint)
    with transaction.atomic():
        # Lock the checkpoint (two publishes of it make one Generator) and the collection (two
        # publishes in it get different version numbers).
        Checkpoint.objects.select_for_update().get(pk=checkpoint.pk)
        Collection.objects.select_for_update().get(pk=collection.pk)
        existing = Generator.objects.filter(checkpoint=checkpoint).first()
        if existing is not None:
            return _maybe_publish(existing, publish)
        generator = _new_generator(
            collection,
            artifact,
            grid,
            name=name,
            training_run=run,
            checkpoint=checkpoint,
            metrics=checkpoint.metrics or {},
            publish=publish,
        )
    return generator


def _export_artifact(checkpoint, run, training_set) -> bytes:
    from gan_app.gan import export_checkpoint_generator

    with checkpoint.state_file.open("rb") as fh:
        state = fh.read()
    buffer = io.BytesIO()
    export_checkpoint_generator(
        state,
        buffer,
        training_set=training_set_facts(training_set),
        extra={"training_run": run.pk, "checkpoint": checkpoint.pk, "run_seed": run.seed},
    )
    return buffer.getvalue()


def training_set_facts(training_set) -> dict:
    """What a generator's manifest remembers about the data it learned from."""
    collection = training_set.collection
    return {
        "slug": collection.slug,
        "collection": collection.name,
        "name": training_set.name,
        "training_set_id": training_set.pk,
        "token_count": training_set.token_count,
        "filter_spec": training_set.filter_spec or {},
        "data_version": training_set.data_version,
    }


def _free_traits_grid(artifact: bytes) -> bytes:
    """A trait-conditioned generator's grid as visitors meet it: seeds 0-15, each with the
    traits it draws, rather than the training grid's one trait combination per row (four
    near-identical tokens a row where the traits decide the picture)."""
    from gan_app.gan import load_generator

    loaded = load_generator(artifact)
    return loaded.to_png(loaded.grid())


def _checkpoint_grid_bytes(checkpoint) -> bytes:
    if checkpoint.grid:
        with checkpoint.grid.open("rb") as fh:
            return fh.read()
    from gan_app.gan import checkpoint_grid

    with checkpoint.state_file.open("rb") as fh:
        return checkpoint_grid(fh.read())


def _maybe_publish(generator: Generator, publish: bool) -> Generator:
    if publish and not generator.is_published:
        generator.publish()
        if not generator.is_listed:  # the gate lists it once an evaluation passes
            transaction.on_commit(lambda: queue_evaluation(generator))
    return generator


def _new_generator(collection, artifact, grid, *, name, publish, **fields) -> Generator:
    """Save artifact + grid under the collection's next version. Call inside a transaction
    holding the collection row."""
    manifest = _artifact_manifest(artifact)
    version = (collection.generators.aggregate(v=Max("version"))["v"] or 0) + 1
    slug = _free_slug(f"{collection.slug}-v{version}")
    epoch = manifest.get("epoch")
    generator = Generator(
        slug=slug,
        name=(name or "").strip()
        or f"{collection.name} v{version}" + (f" (epoch {epoch})" if epoch is not None else ""),
        collection=collection,
        version=version,
        epoch=epoch,
        resolution=int(manifest["resolution"]),
        latent_dim=int(manifest["latent_dim"]),
        # Trait-conditioned: the manifest holds the frozen trait vocabulary ("conditions").
        conditional=bool(manifest.get("conditional")),
        model_sha256=hashlib.sha256(artifact).hexdigest(),
        manifest=manifest,
        is_published=publish,
        published_at=timezone.now() if publish else None,
        # Gate on: unlisted until its evaluation passes (gan_app.evaluation.gate).
        is_listed=publish and not settings.QUALITY_GATE,
        **fields,
    )
    generator.model_file.save(f"{slug}.zip", ContentFile(artifact), save=False)
    if grid:
        generator.sample_grid.save(f"{slug}-grid.png", ContentFile(grid), save=False)
    generator.save()
    # The quality gate lists a generator only after an evaluation: publishing evaluates first.
    if settings.EVALUATE_ON_PUBLISH or (publish and settings.QUALITY_GATE):
        transaction.on_commit(lambda: queue_evaluation(generator))
    return generator


def auto_publish(checkpoint: Checkpoint) -> None:
    """A finished run's last checkpoint, published (``TrainingRun.auto_publish``)."""
    publish_checkpoint(checkpoint, publish=True)


def queue_evaluation(generator: Generator) -> None:
    """Evaluate a generator on the train queue (its page then shows metrics; its images get
    their traits once the collection's classifier exists)."""
    dispatch_after_commit("gan_app.tasks.evaluate_generator", [generator.pk])


def _free_slug(base: str) -> str:
    base = base[:190]
    slug, n = base, 1
    while Generator.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _artifact_manifest(artifact: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(artifact)) as zf:
        return json.loads(zf.read("manifest.json"))


# --- Export / import ---------------------------------------------------------------------------


def export_filename(generator: Generator) -> str:
    return f"{generator.slug}_generator.zip"


def export_generator_zip(generator: Generator) -> bytes:
    """``{slug}_generator.zip``: the artifact, its sample grid and what the site knows of it."""
    with generator.model_file.open("rb") as fh:
        artifact = fh.read()
    grid = b""
    if generator.sample_grid:
        with generator.sample_grid.open("rb") as fh:
            grid = fh.read()
    manifest = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "slug": generator.slug,
        "name": generator.name,
        "description": generator.description,
        "collection": {"slug": generator.collection.slug, "name": generator.collection.name},
        "generator_version": generator.version,
        "epoch": generator.epoch,
        "resolution": generator.resolution,
        "latent_dim": generator.latent_dim,
        "artifact_sha256": hashlib.sha256(artifact).hexdigest(),
        "metrics": generator.metrics or {},
        "generator_manifest": generator.manifest or {},
        "exported_at": timezone.now().isoformat(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        zf.writestr(ARTIFACT, artifact)
        if grid:
            zf.writestr(GRID, grid)
    return buffer.getvalue()


def import_generator_zip(fileobj, collection=None, *, publish=False) -> Generator:
    """Create a Generator from an exported zip (path-like, bytes or binary file).

    The collection is ``collection`` or the one named in the file (created if this site lacks
    it). Importing the same artifact into the same collection again returns the existing row.
    Raises ``GeneratorImportError`` for anything malformed or unsafe.
    """
    data = fileobj if isinstance(fileobj, bytes) else _read(fileobj)
    members = _read_members(data)
    manifest = _parse_manifest(members[MANIFEST])
    artifact = members[ARTIFACT]
    if hashlib.sha256(artifact).hexdigest() != manifest["artifact_sha256"]:
        raise GeneratorImportError("generator.zip does not match its sha256: the file is corrupt")
    grid = members.get(GRID, b"")
    if grid:
        _check_png(grid)
    _check_artifact(artifact)
    with transaction.atomic():
        target = collection or _collection_for(manifest["collection"])
        target = Collection.objects.select_for_update().get(pk=target.pk)
        sha = hashlib.sha256(artifact).hexdigest()
        existing = target.generators.filter(model_sha256=sha).first()
        if existing is not None:
            return _maybe_publish(existing, publish)
        generator = _new_generator(
            target,
            artifact,
            grid,
            name=manifest.get("name"),
            publish=publish,
            description=str(manifest.get("description") or "")[:5000],
            metrics=manifest.get("metrics") if isinstance(manifest.get("metrics"), dict) else {},
        )
    return generator


def _read(fileobj) -> bytes:
    """The whole file, refusing one larger than its members may add up to before reading it."""
    limit = sum(MAX_MEMBER_BYTES.values()) + 1024**2
    if hasattr(fileobj, "read"):
        data = fileobj.read(limit + 1)
    else:
        with open(fileobj, "rb") as fh:
            data = fh.read(limit + 1)
    if len(data) > limit:
        raise GeneratorImportError(f"the file is larger than {limit:,} bytes: not a generator zip")
    return data


def _read_members(data: bytes) -> dict[str, bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise GeneratorImportError(f"not a generator zip: {exc}") from None
    with zf:
        infos = zf.infolist()
        unexpected = sorted({i.filename for i in infos} - ALLOWED_MEMBERS)
        if unexpected:
            raise GeneratorImportError(
                f"unexpected entries in the generator zip: {', '.join(unexpected[:5])} "
                f"(expected {', '.join(sorted(ALLOWED_MEMBERS))})"
            )
        if len(infos) != len({i.filename for i in infos}):
            raise GeneratorImportError("the generator zip has duplicate entries")
        for required in (MANIFEST, ARTIFACT):
            if required not in {i.filename for i in infos}:
                raise GeneratorImportError(f"the generator zip lacks {required}")
        members = {}
        for info in infos:
            limit = MAX_MEMBER_BYTES[info.filename]
            if info.file_size > limit:
                raise GeneratorImportError(
                    f"{info.filename} is {info.file_size:,} bytes (limit {limit:,}): refused"
                )
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise GeneratorImportError(
                    f"{info.filename}: compression ratio over {MAX_RATIO}:1 refused as a zip bomb"
                )
            try:
                # Read at most the limit, whatever the header claimed.
                with zf.open(info) as fh:
                    content = fh.read(limit + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                raise GeneratorImportError(f"{info.filename} cannot be read: {exc}") from None
            if len(content) > limit:
                raise GeneratorImportError(f"{info.filename} is larger than {limit:,} bytes")
            members[info.filename] = content
    return members


def _parse_manifest(raw: bytes) -> dict:
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GeneratorImportError(f"manifest.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise GeneratorImportError(f"not a generator export: format is not {EXPORT_FORMAT!r}")
    if manifest.get("version") != EXPORT_VERSION:
        raise GeneratorImportError(
            f"generator export version {manifest.get('version')!r} is not supported "
            f"(this site reads version {EXPORT_VERSION})"
        )
    sha = manifest.get("artifact_sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise GeneratorImportError("manifest.json lacks the artifact's sha256")
    info = manifest.get("collection")
    if not isinstance(info, dict) or not isinstance(info.get("slug"), str):
        raise GeneratorImportError("manifest.json lacks the collection slug")
    try:
        validate_slug(info["slug"])
    except ValidationError:
        raise GeneratorImportError(
            f"collection slug {info['slug'][:80]!r} is not a valid slug"
        ) from None
    return manifest


def _check_png(data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise GeneratorImportError("sample_grid.png is not a PNG image")
            if image.width * image.height > 16_000_000:
                raise GeneratorImportError("sample_grid.png is too large")
            image.verify()
    except GeneratorImportError:
        raise
    except Exception as exc:  # PIL raises many kinds for broken files
        raise GeneratorImportError(f"sample_grid.png is not a readable image: {exc}") from None


def _check_artifact(artifact: bytes) -> None:
    """Load it as the site would: a file that loads here serves here."""
    from gan_app.gan import GeneratorArtifactError, load_generator

    try:
        load_generator(artifact)
    except GeneratorArtifactError as exc:
        raise GeneratorImportError(f"generator.zip: {exc}") from None
    except Exception as exc:  # Keras refuses unsafe or foreign models with various errors
        raise GeneratorImportError(f"generator.zip cannot be loaded: {exc}") from None


def _collection_for(info: dict) -> Collection:
    collection, _ = Collection.objects.get_or_create(
        slug=info["slug"],
        defaults={"name": str(info.get("name") or info["slug"])[:300]},
    )
    return collection
