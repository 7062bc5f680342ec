"""Generate, the worker side (``gan_app.tasks.generate_images``): claim a request and other
queued ones of its generator, render them in one forward pass, store each image once, label it.

    process(request_id, task_id)    # claims it plus other queued requests for the same
                                    # generator, renders them all in one forward pass

Two workers racing on one seed write the same bytes to the same name and the database keeps
one row. A request whose worker died is put back in the queue by the job kernel's watchdog.
"""

import hashlib
import io
import logging
from datetime import datetime, timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from nftsite.jobs import lease_seconds

from ..evaluation import labelling
from ..models import GeneratedImage, GenerationRequest, Generator
from . import notify
from .metadata import image_metadata
from .requests import (
    WALK_STEPS,
    GenerationError,
    Walk,
    check_seed,
    condition_key,
    trait_params,
    walk_name,
)

log = logging.getLogger(__name__)

# Images rendered in one forward pass when a worker gathers queued requests of one generator.
PASS_LIMIT = 64
# A half-written image file this old was left by a lost writer (longer than the generate
# task's hard time limit). A request's own lease is the job kernel's ("generation").
STALE_SECONDS = 120

Kind = GenerationRequest.Kind
Status = GenerationRequest.Status


def process(request_id: int, task_id: str = "") -> list[int]:
    """Claim the request and queued siblings of its generator; render them together.

    Returns the ids of the requests this call finished (empty when someone else had it).
    """
    head = claim(request_id, task_id)
    if head is None:
        return []
    batch = [head, *claim_siblings(head, task_id)]
    pks = [r.pk for r in batch]
    try:
        render_requests(head.generator, batch)
    except Exception as exc:
        log.exception("generation of requests %s failed", pks)
        fail(batch, f"{type(exc).__name__}: {exc}")
        announce(pks, Status.FAILED)
        return []
    announce(pks, Status.DONE)
    return pks


def announce(pks: list[int], status: str) -> None:
    """Wake the long polls waiting on these requests, once their rows are committed (at once
    outside a transaction): a waiter woken earlier would read the old status."""
    transaction.on_commit(lambda: notify.publish(pks, status))


def claim(request_id: int, task_id: str = "") -> GenerationRequest | None:
    """queued -> running, or take over a running one left by a lost worker; else None."""
    now = timezone.now()
    stale = now - timedelta(seconds=lease_seconds(GenerationRequest.lease_kind))
    claimed = (
        GenerationRequest.objects.filter(pk=request_id)
        .filter(Q(status=Status.QUEUED) | _left_running(task_id, stale))
        .update(status=Status.RUNNING, started_at=now, heartbeat_at=now, task_id=task_id or "")
    )
    if not claimed:
        return None
    # The labelling reads the generator's run and training set (its near-copy index).
    requests = GenerationRequest.objects.select_related("generator__training_run__training_set")
    return Generator.served(requests, "generator").get(pk=request_id)


def _left_running(task_id: str, stale: datetime) -> Q:
    """Running requests a lost worker left behind: started long ago, or claimed by this very
    task. A task delivered again carries its first delivery's id, and with acks_late it is
    only redelivered once the worker that held it is gone (killed, or its connection lost),
    so its requests are finished now rather than after the kind's lease."""
    left = Q(status=Status.RUNNING, started_at__lt=stale)
    return left | Q(status=Status.RUNNING, task_id=task_id) if task_id else left


def claim_siblings(head: GenerationRequest, task_id: str = "") -> list[GenerationRequest]:
    """Other queued requests for the same generator, oldest first, up to PASS_LIMIT images.

    Each is claimed by a conditional update, so two workers never take the same one; their
    own tasks later find them done and do nothing.
    """
    budget = PASS_LIMIT - _image_count(head)
    # Queued ones, and those this task had claimed before its worker was lost.
    mine = Q(status=Status.QUEUED)
    if task_id:
        mine |= Q(status=Status.RUNNING, task_id=task_id)
    candidates = (
        GenerationRequest.objects.filter(mine, generator_id=head.generator_id)
        .exclude(pk=head.pk)
        .order_by("created_at")[:PASS_LIMIT]
    )
    claimed, now = [], timezone.now()
    for req in candidates:
        cost = _image_count(req)
        if cost > budget:
            break
        # task_id records which task rendered it (its own task will find it done).
        if GenerationRequest.objects.filter(mine, pk=req.pk).update(
            status=Status.RUNNING, started_at=now, heartbeat_at=now, task_id=task_id or req.task_id
        ):
            req.status, req.generator = Status.RUNNING, head.generator
            claimed.append(req)
            budget -= cost
    return claimed


def _image_count(req: GenerationRequest) -> int:
    return req.params.get("steps", WALK_STEPS) if req.kind == Kind.WALK else len(req.seeds)


def render_requests(generator: Generator, requests: list[GenerationRequest]) -> None:
    """Render what the requests need that is not stored yet, one pass per trait request
    (one in all for unconditional generators); mark them done."""
    if not generator.is_published:
        raise GenerationError(f"generator {generator.slug} is no longer published")
    groups: dict[str, list[GenerationRequest]] = {}
    for r in requests:
        groups.setdefault(condition_key(r), []).append(r)
    strips = {}
    for key, group in groups.items():
        strips.update(_render_group(generator, group, key, group[0].params.get("traits") or {}))
    finish(requests, strips)


def _render_group(generator, requests, key, traits) -> dict[int, str]:
    """Render the images and walks of requests with one condition key; {pk: strip name}."""
    walks = {
        r.pk: Walk(r.seeds[0], r.seeds[1], _image_count(r), key)
        for r in requests
        if r.kind == Kind.WALK
    }
    seeds = list(dict.fromkeys(s for r in requests if r.kind != Kind.WALK for s in r.seeds))
    first_request = {}
    for r in requests:
        for position, seed in enumerate(r.seeds if r.kind != Kind.WALK else ()):
            first_request.setdefault(seed, (r, position))
    made = set(
        GeneratedImage.objects.filter(
            generator=generator, condition_key=key, seed__in=seeds
        ).values_list("seed", flat=True)
    )
    missing = [s for s in seeds if s not in made]
    to_draw = {
        pk: walk
        for pk, walk in walks.items()
        if not default_storage.exists(walk_name(generator, walk))
    }
    if missing or to_draw:
        pixels, strips = draw_pixels(generator, missing, list(to_draw.values()), traits)
        store_images(
            generator,
            [(s, to_png(p), *first_request[s]) for s, p in zip(missing, pixels, strict=True)],
            condition_key=key,
            traits=traits,
            pixels=pixels,
        )
        for walk, strip in zip(to_draw.values(), strips, strict=True):
            write_once(walk_name(generator, walk), strip)
    return {pk: walk_name(generator, walk) for pk, walk in walks.items()}


def draw_pixels(generator, seeds: list[int], walks: list[Walk], traits: dict | None = None):
    """(uint8 pixels (N, H, W, 3) per seed, strip PNG per walk) from one forward pass of the
    cached model. The pixels are the image as published: PNG-encode them to store.

    ``traits`` (conditional generators): the request; types left out are drawn per seed.
    """
    import numpy as np

    from gan_app.gan import latent_vectors, slerp

    from .generator_cache import cache

    loaded = cache().get(generator)
    if loaded.conditional:
        return _draw_conditional(loaded, seeds, walks, traits or {})
    parts = [latent_vectors(seeds, loaded.latent_dim)]
    for walk in walks:
        ends = latent_vectors([walk.start, walk.end], loaded.latent_dim)
        parts.append(slerp(ends[0], ends[1], walk.steps))
    pixels = loaded.generate_latents(np.concatenate(parts))
    strips, offset = [], len(seeds)
    for walk in walks:
        strips.append(_strip(pixels[offset : offset + walk.steps]))
        offset += walk.steps
    return pixels[: len(seeds)], strips


def _draw_conditional(loaded, seeds, walks, traits):
    pixels = loaded.generate(seeds, traits) if seeds else []
    strips = [_strip(loaded.walk(w.start, w.end, w.steps, traits)) for w in walks]
    return pixels, strips


def _strip(frames) -> bytes:
    from gan_app.gan import make_grid

    return to_png(make_grid(frames, columns=len(frames), gutter=0))


def to_png(pixels) -> bytes:
    """``gan.to_png``, imported when first needed (it brings TensorFlow with it)."""
    from gan_app.gan import to_png as encode

    return encode(pixels)


def store_image(
    generator: Generator,
    seed: int,
    png: bytes,
    request: GenerationRequest | None = None,
    position: int = 0,
) -> GeneratedImage:
    """Store one seed's PNG and row (see ``store_images``); the row that won."""
    store_images(generator, [(seed, png, request, position)])
    return GeneratedImage.objects.get(generator=generator, seed=seed, condition_key="")


def store_images(
    generator: Generator,
    items,
    *,
    condition_key: str = "",
    traits: dict | None = None,
    pixels=None,
) -> None:
    """Store (seed, png, request, position) items: files named from their bytes, then the
    rows in one insert. A seed someone stored meanwhile keeps the first row (same bytes).

    ``condition_key``/``traits``: what a conditional generator was asked for (the metadata
    records the request; the trait classifier's reading goes to ``traits``). ``pixels``: the
    items' images as uint8 (N, H, W, 3), when the caller has them (else read from the PNGs)."""
    items = list(items)
    labels = label_pngs(generator, [png for _, png, _, _ in items], pixels)
    rows = []
    for (seed, png, request, position), label in zip(items, labels, strict=True):
        digest = hashlib.sha256(png).hexdigest()
        row = GeneratedImage(
            generator=generator,
            request=request,
            seed=seed,
            condition_key=condition_key,
            position=position,
            image=write_once(f"generated/{generator.slug}/{seed}-{digest[:16]}.png", png),
            image_sha256=digest,
            metadata=image_metadata(generator, seed, condition_key, traits),
        )
        rows.append(labelling.apply_label(row, label) if label is not None else row)
    GeneratedImage.objects.bulk_create(rows, ignore_conflicts=True)


def label_pngs(generator: Generator, pngs: list[bytes], pixels=None) -> list:
    """Traits, rarity and the near-copy check for a batch (``labelling.label_pixels``).

    ``pixels``: the PNGs' own pixels, when the caller has them (they are not decoded again).
    A failure leaves the images unlabelled (logged) rather than failing the visitors' request.
    """
    if not pngs:
        return []
    try:
        import numpy as np
        from PIL import Image

        if pixels is None:
            pixels = np.stack([np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in pngs])
        return labelling.label_pixels(generator, pixels)
    except Exception:
        log.exception("labelling images of %s failed; stored without traits", generator.slug)
        return [None] * len(pngs)


def write_once(name: str, data: bytes) -> str:
    """Write ``data`` under exactly ``name``; a name already holding it is left as it is.

    The name is a function of the content, so concurrent writers race harmlessly: a writer
    that storage gave an alternative name removes its copy. A short file is some writer's
    work in progress, or, once it is older than a task can run, a killed writer's remains,
    which are replaced.
    """
    if _present(name, len(data)):
        return name
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        default_storage.delete(saved)
    return name


def _present(name: str, size: int) -> bool:
    try:
        if not default_storage.exists(name):
            return False
        if default_storage.size(name) == size:
            return True
        age = timezone.now() - default_storage.get_modified_time(name)
    except FileNotFoundError:  # removed between the calls
        return False
    if age < timedelta(seconds=STALE_SECONDS):
        return True  # another writer is finishing it
    default_storage.delete(name)
    return False


def finish(requests: list[GenerationRequest], strips: dict[int, str]) -> None:
    """Done, unless cancelled meanwhile (the kernel's rule: only an active request ends)."""
    now = timezone.now()
    active = GenerationRequest.objects.filter(status__in=GenerationRequest.ACTIVE)
    plain = [r.pk for r in requests if r.pk not in strips]
    active.filter(pk__in=plain).update(status=Status.DONE, finished_at=now, error="")
    for req in requests:
        if req.pk in strips:
            req.params = {**req.params, "strip": strips[req.pk]}
            active.filter(pk=req.pk).update(
                status=Status.DONE, finished_at=now, error="", params=req.params
            )


def fail(requests: list[GenerationRequest], error: str) -> None:
    GenerationRequest.objects.filter(
        pk__in=[r.pk for r in requests], status__in=GenerationRequest.ACTIVE
    ).update(status=Status.FAILED, finished_at=timezone.now(), error=error[:5000])


def ensure_images(
    generator: Generator, seeds: list[int], traits: dict | None = None
) -> dict[int, GeneratedImage]:
    """Rows for ``seeds`` (and ``traits``, conditional generators), rendering and storing the
    ones not made yet (the CLI's path)."""
    for seed in seeds:
        check_seed(seed)
    params = trait_params(generator, traits)
    key = params.get("condition_key", "")
    found = {
        row.seed: row
        for row in GeneratedImage.objects.filter(
            generator=generator, condition_key=key, seed__in=seeds
        )
    }
    missing = [s for s in dict.fromkeys(seeds) if s not in found]
    if missing:
        pixels, _ = draw_pixels(generator, missing, [], params.get("traits"))
        store_images(
            generator,
            [(s, to_png(p), None, 0) for s, p in zip(missing, pixels, strict=True)],
            condition_key=key,
            traits=params.get("traits"),
            pixels=pixels,
        )
        found.update(
            (row.seed, row)
            for row in GeneratedImage.objects.filter(
                generator=generator, condition_key=key, seed__in=missing
            )
        )
    return found
