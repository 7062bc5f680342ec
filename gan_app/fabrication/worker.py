"""Fabrication, the ``generate`` worker's side: claim the job, fabricate with checkpoints, then
build the export and the collection from the stored images.

Checkpoints: every token's PNG is written to storage as it is accepted
(``fabrication/<job>/tokens/<id>.png``); every ``FABRICATE_CHECKPOINT_EVERY`` tokens the
fabricator's state follows (a new name each time, then the row points at it, then the old one
goes), and the heartbeat renews the lease. A worker killed between checkpoints loses only the
tokens after the last one; the resumed run makes them again, byte for byte (the fabricator
depends on candidate indices only). Pause and cancel end the job row, so the next heartbeat
fails and the run stops there, its state saved.

At the end the export (seed archive pair, ERC-721 folder, provenance) is written from the
stored PNGs, and the seed archive is imported as the new collection through the archive
importer, so the collection holds exactly what the export does and analytics follow as after
any import.
"""

import hashlib
import logging
import tempfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.text import slugify

from collections_app.analytics.rarity import score_records
from collections_app.ingest.archives import import_archive
from collections_app.models import Collection
from gan_app.gan.fabrication import FabricationError, FabricationState, Fabricator, summarise
from gan_app.gan.fabrication_export import (
    Erc721Writer,
    SeedArchiveWriter,
    dump_json,
    zip_member,
)

from ..evaluation.reports import (
    EvaluationError,
    classifier_for,
    generator_real_set,
    near_copy_index_for,
)
from ..generation import generator_cache
from ..models import FabricationJob
from . import runs

log = logging.getLogger(__name__)

Status = FabricationJob.Status


class Stopped(Exception):
    """The job was paused or cancelled (its row ended): stop where the state was saved."""


def process(job_id: int, task_id: str = "", on_token=None) -> str:
    """Run (or continue) a fabrication job; returns its status. A job that is not queued or
    running (finished, paused, cancelled), or that a live runner holds, is left alone."""
    job = FabricationJob.objects.select_related("generator__collection").filter(pk=job_id).first()
    if job is None:
        return "missing"
    if job.status == Status.RUNNING and not job.is_stale():
        # A delivery while its runner still beats (a redelivery past the visibility timeout):
        # leave it; if that runner dies, the watchdog re-sends the job once its lease runs out.
        return job.status
    if not job.claim(task_id):
        return job.status
    try:
        fabricate_job(job, on_token=on_token)
    except Stopped:
        pass
    except FabricationError as exc:
        job.fail(str(exc))
    except Exception as exc:
        log.exception("fabrication %s failed", job.pk)
        job.fail(f"{type(exc).__name__}: {exc}")
    job.refresh_from_db()
    return job.status


def fabricator_for(job: FabricationJob) -> Fabricator:
    """The generator, its collection's classifier and near-copy guard, and the job's options."""
    generator = job.generator
    loaded = generator_cache.cache().get(generator)
    collection = generator.collection
    classifier = classifier_for(collection, train=False)
    try:
        guard = near_copy_index_for(generator_real_set(generator), collection)[1]
    except EvaluationError:
        guard = None  # a collection without token images has nothing to copy
    options = runs.options(job.count, job.seed, job.traits)
    return Fabricator(loaded, options, guard=guard, classifier=classifier)


def fabricate_job(job: FabricationJob, on_token=None) -> None:
    fabricator = fabricator_for(job)
    state = load_state(job)
    every = settings.FABRICATE_CHECKPOINT_EVERY
    for token in fabricator.run(state):
        write_over(token_name(job, token.token_id), token.png)
        if on_token is not None:
            on_token(token, state)
        if state.accepted % every == 0:
            checkpoint(job, state)
    checkpoint(job, state)
    result = summarise(fabricator, state, rarity=score_records)
    notes = list(result.notes)
    if result.status == "exhausted":
        notes.append(
            f"stopped after {result.candidates:,} candidates with {result.made:,} of "
            f"{result.requested:,} tokens: uniqueness could not be reached "
            f"(rejection rate {result.rejection_rate:.1%})"
        )
    if not result.made:
        raise FabricationError("; ".join(notes) or "no token was made")
    collection = build_outputs(job, state, result)
    summary = result.to_json()
    job.heartbeat(result=summary, notes="\n".join(notes), collection=collection)
    job.finish(f"{result.made:,} tokens" if result.status == "done" else notes[-1])


# --- Checkpoints -------------------------------------------------------------------------------


def token_name(job, token_id) -> str:
    return f"fabrication/{job.pk}/tokens/{token_id}.png"


def write_over(name: str, data: bytes) -> str:
    """Store ``data`` under exactly ``name`` (a re-made token replaces its earlier bytes)."""
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        raise FabricationError(f"storage renamed {name} to {saved}")
    return saved


def load_state(job) -> FabricationState:
    if not job.state_file:
        return FabricationState()
    with default_storage.open(job.state_file.name, "rb") as handle:
        return FabricationState.from_bytes(handle.read())


def checkpoint(job, state) -> None:
    """Save the state under a new name, point the row at it (renewing the lease), drop the old
    one. Raises Stopped when the row ended meanwhile (paused or cancelled)."""
    old = job.state_file.name
    name = write_over(f"fabrication/{job.pk}/state-{state.next_candidate}.npz", state.to_bytes())
    fields = {"state_file": name, "made": state.accepted, "candidates": state.next_candidate}
    alive = job.heartbeat(**fields)
    if not alive:
        # Paused: keep this state, so the resumed run starts here; cancelled: drop it.
        rows = FabricationJob.objects.filter(pk=job.pk, status=Status.PAUSED)
        if not rows.update(**fields):
            default_storage.delete(name)
        elif old and old != name and default_storage.exists(old):
            default_storage.delete(old)
        raise Stopped
    job.state_file.name = name
    job.made, job.candidates = state.accepted, state.next_candidate
    if old and old != name and default_storage.exists(old):
        default_storage.delete(old)


# --- Export and collection ---------------------------------------------------------------------


def export_slug(job) -> str:
    """The same for the same generator and options, so exports compare byte for byte."""
    return slugify(f"{job.generator.slug}-fabricated-s{job.seed}-n{job.count}")[:180]


def export_name(job) -> str:
    return f"{job.generator.name} · fabricated (seed {job.seed})"


def stored_tokens(job, records):
    """Each record's PNG read back from storage, checked against its recorded hash."""
    for record in records:
        with default_storage.open(token_name(job, record["token_id"]), "rb") as handle:
            png = handle.read()
        if hashlib.sha256(png).hexdigest() != record["sha256"]:
            raise FabricationError(f"stored image of token {record['token_id']} was changed")
        yield SimpleNamespace(token_id=record["token_id"], png=png)


def build_outputs(job, state, result) -> Collection:
    """Write the export zip to storage and import its seed archive as the new collection."""
    slug, name = export_slug(job), export_name(job)
    generator = job.generator
    description = (
        f"Fabricated by the generator {generator.name} from {generator.collection.name} "
        f"(seed {job.seed}, {result.made:,} tokens). Provenance {result.provenance}."
    )
    with tempfile.TemporaryDirectory(prefix="nff-fabrication-") as tmp:
        tmp = Path(tmp)
        archive = SeedArchiveWriter(tmp / "seed-archive", slug, name)
        erc721 = Erc721Writer(
            tmp / "erc721", name=name, description=description, image_uri=job.image_uri
        )
        for token in stored_tokens(job, state.records):
            archive.add(token)
            erc721.add(token)
        archive.close(state.records, result)
        erc721.close(state.records, result)
        (tmp / "fabrication.json").write_bytes(dump_json(result.to_json()))
        bundle = tmp / f"{slug}.zip"
        zip_folder(tmp, bundle, exclude=bundle)
        with open(bundle, "rb") as handle:
            export = write_over(f"fabrication/{job.pk}/{slug}.zip", handle.read())
        job.heartbeat(export_file=export)
        job.export_file.name = export
        collection = new_collection(job, slug, name, description)
        job.heartbeat(collection=collection)
        import_archive(archive.images_path, archive.metadata_path, slug=collection.slug)
    return collection


def zip_folder(folder: Path, target: Path, exclude: Path) -> None:
    """Every file under ``folder`` in name order, fixed times and modes: the same bytes twice."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != exclude)
    with zipfile.ZipFile(target, "w") as bundle:
        for path in files:
            bundle.writestr(zip_member(path.relative_to(folder).as_posix()), path.read_bytes())


def new_collection(job, slug, name, description) -> Collection:
    """The job's collection (a resumed job keeps the one it made), under a free slug."""
    if job.collection_id:
        return job.collection
    free, n = slug, 1
    while Collection.objects.filter(slug=free).exists():
        n += 1
        free = f"{slug}-{n}"
    return Collection.objects.create(
        slug=free,
        name=name[:300],
        description=description,
        source=Collection.Source.FABRICATED,
        source_collection=job.generator.collection,
        schema_name="ERC721",
    )
