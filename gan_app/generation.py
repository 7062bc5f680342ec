"""Generate: visitors' requests, the worker's batched rendering, images made once.

Web side (no TensorFlow here: pages must not pay for it)::

    req = submit(generator, kind="single", seeds=[42], client_key=key)   # may raise RateLimited
    req = wait_for_change(req.pk, since="queued", timeout=10)            # long-poll helper

Worker side (``gan_app.tasks.generate_images``)::

    process(request_id, task_id)    # claims it plus other queued requests for the same
                                    # generator, renders them all in one forward pass

Everything a seed makes is stored once: the PNG under a name derived from its bytes, then one
``GeneratedImage`` row (unique per generator and seed). A seed asked for again, by anyone, is
served from storage without rendering. Two workers racing on one seed write the same bytes to
the same name and the database keeps one row.

Trait-conditioned generators (``Generator.conditional``): a request may carry traits
(``params["traits"]``, checked by ``conditions.clean_traits``) and its canonical
``params["condition_key"]``; images are unique per (generator, seed, condition_key), so
generator + traits + seed always name the same image.
"""

import hashlib
import io
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from . import conditions, evaluation, notify, ratelimit
from .metadata import image_metadata
from .models import GeneratedImage, GenerationRequest, Generator

log = logging.getLogger(__name__)

# Seeds survive a JSON round trip through JavaScript (IEEE doubles hold integers to 2^53 - 1).
MAX_SEED = 2**53 - 1
MAX_BATCH = 16
WALK_STEPS = 8
MIN_WALK_STEPS, MAX_WALK_STEPS = 3, 16
# Images rendered in one forward pass when a worker gathers queued requests of one generator.
PASS_LIMIT = 64
# A request "running" this long was left by a lost worker; a redelivered task takes it over.
# Longer than the generate task's hard time limit.
STALE_SECONDS = 120
# A request still queued after this long has its task sent again (see requeue_if_stuck).
REQUEUE_AFTER = 30

Kind = GenerationRequest.Kind
Status = GenerationRequest.Status


class GenerationError(ValueError):
    """A request that cannot be made (bad seed, batch size, generator); says why."""


@dataclass(frozen=True)
class Walk:
    start: int
    end: int
    steps: int
    condition_key: str = ""  # conditional generators: the traits held along the walk


def random_seed(count: int = 1) -> int:
    """A random first seed such that ``count`` consecutive seeds stay within range."""
    return secrets.randbelow(MAX_SEED - count + 2)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise GenerationError(f"a seed must be a whole number from 0 to {MAX_SEED:,}")
    return seed


def plan_seeds(kind: str, seed: int | None, count: int = 1, end: int | None = None) -> list[int]:
    """The seeds a request asks for: one; ``count`` consecutive from ``seed``; or walk ends."""
    if kind == Kind.SINGLE:
        return [check_seed(seed if seed is not None else random_seed())]
    if kind == Kind.BATCH:
        if not 1 <= count <= MAX_BATCH:
            raise GenerationError(f"a batch has 1 to {MAX_BATCH} images, not {count}")
        first = check_seed(seed if seed is not None else random_seed(count))
        if first + count - 1 > MAX_SEED:
            raise GenerationError(
                f"a batch of {count} from seed {first:,} would pass the largest seed, {MAX_SEED:,}"
            )
        return list(range(first, first + count))
    if kind == Kind.WALK:
        start = check_seed(seed if seed is not None else random_seed())
        stop = check_seed(end if end is not None else random_seed())
        return [start, stop]
    raise GenerationError(f"unknown kind of request {kind!r}")


def check_steps(steps: int | None) -> int:
    steps = WALK_STEPS if steps is None else steps
    if not MIN_WALK_STEPS <= steps <= MAX_WALK_STEPS:
        raise GenerationError(f"a walk has {MIN_WALK_STEPS} to {MAX_WALK_STEPS} steps, not {steps}")
    return steps


# --- Web side ----------------------------------------------------------------------------------


def submit(
    generator: Generator,
    *,
    kind: str,
    seeds: list[int],
    steps: int | None = None,
    traits: dict | None = None,
    client_key: str = "",
    rate: ratelimit.Rate | None = None,
) -> GenerationRequest:
    """Record a request and queue it on the ``generate`` queue (after commit).

    A request whose images all exist already is answered at once (status done, no task).
    Raises RateLimited when the client is over the limit, GenerationError for bad input
    (traits a generator does not know included).
    """
    if not generator.is_published:
        raise GenerationError(f"generator {generator.slug!r} is not published")
    for seed in seeds:
        check_seed(seed)
    params = {"steps": check_steps(steps)} if kind == Kind.WALK else {}
    params.update(trait_params(generator, traits))
    with transaction.atomic():
        if client_key:
            ratelimit.lock_client(client_key)
            images = ratelimit.images_of(kind, seeds, params)
            ratelimit.check(client_key, rate, images=images)
        ready = _ready_params(generator, kind, seeds, params)
        now = timezone.now()
        req = GenerationRequest.objects.create(
            generator=generator,
            kind=kind,
            seeds=seeds,
            params={**params, **(ready or {})},
            client_key=client_key,
            status=Status.DONE if ready is not None else Status.QUEUED,
            task_id="" if ready is not None else str(uuid.uuid4()),
            started_at=now if ready is not None else None,
            finished_at=now if ready is not None else None,
        )
        if ready is None:
            transaction.on_commit(lambda: send_task(req.pk, req.task_id))
    return req


def send_task(pk: int, task_id: str) -> None:
    from .tasks import generate_images  # tasks import this module

    try:
        generate_images.apply_async(args=[pk], task_id=task_id)
    except Exception as exc:  # broker away: the visitor's status poll sends it again later
        log.error("generation request %s not queued: %s", pk, exc)


def trait_params(generator: Generator, traits: dict | None) -> dict:
    """``{"traits", "condition_key"}`` for a conditional generator's request ({} otherwise)."""
    try:
        request, key = conditions.clean_traits(generator, traits)
    except conditions.TraitRequestError as exc:
        raise GenerationError(str(exc)) from None
    return {"traits": request, "condition_key": key} if generator.conditional else {}


def condition_key(req: GenerationRequest) -> str:
    return req.params.get("condition_key", "")


def _ready_params(generator, kind, seeds, params):
    """Params of an already-made result, or None when something must be rendered."""
    key = params.get("condition_key", "")
    if kind == Kind.WALK:
        name = walk_name(generator, Walk(seeds[0], seeds[1], params["steps"], key))
        return {"strip": name} if default_storage.exists(name) else None
    made = GeneratedImage.objects.filter(generator=generator, condition_key=key, seed__in=seeds)
    return {} if made.count() == len(set(seeds)) else None


def wait_for_change(pk: int, since: str = "", timeout: float = 0.0) -> GenerationRequest | None:
    """The request once its status is none of ``since`` (comma-separated statuses), or after
    ``timeout`` seconds. The worker's notice wakes the wait (``notify``)."""
    waiting_out = set(since.split(",")) if since else set()

    def read():
        return GenerationRequest.objects.select_related("generator").filter(pk=pk).first()

    return notify.wait(pk, read, lambda req: req is None or req.status not in waiting_out, timeout)


def requeue_if_stuck(req: GenerationRequest, after: float = REQUEUE_AFTER) -> bool:
    """Send the task again for a request queued longer than ``after`` seconds.

    A message lost with a broker restart would otherwise leave it queued for ever; a second
    delivery of a live one is harmless (the request is claimed once). At most once per
    ``after`` seconds per request: the new task id is swapped in by a conditional update.
    """
    if req.status != Status.QUEUED:
        return False
    now = timezone.now()
    sent = req.params.get("sent_again_at")
    last_sent = datetime.fromisoformat(sent) if sent else req.created_at
    if now - last_sent < timedelta(seconds=after):
        return False
    task_id = str(uuid.uuid4())
    swapped = GenerationRequest.objects.filter(
        pk=req.pk, status=Status.QUEUED, task_id=req.task_id
    ).update(task_id=task_id, params={**req.params, "sent_again_at": now.isoformat()})
    if not swapped:
        return False
    log.warning("generation request %s queued since %s: task sent again", req.pk, req.created_at)
    send_task(req.pk, task_id)
    return True


def request_images(req: GenerationRequest) -> list[tuple[int, GeneratedImage | None]]:
    """(seed, image or None when not made or hidden by a moderator) in the request's order."""
    if req.kind == Kind.WALK:
        return []
    rows = {
        row.seed: row
        for row in GeneratedImage.objects.filter(
            generator_id=req.generator_id, condition_key=condition_key(req), seed__in=req.seeds
        )
    }
    return [
        (seed, rows[seed] if seed in rows and not rows[seed].is_hidden else None)
        for seed in req.seeds
    ]


def walk_name(generator: Generator, walk: Walk) -> str:
    """Storage name of a walk strip; it names the model file, so a new file draws anew."""
    model = (generator.model_sha256 or f"id{generator.pk}")[:12]
    traits = f"-{hashlib.sha256(walk.condition_key.encode()).hexdigest()[:12]}"
    stem = f"{walk.start}-{walk.end}-{walk.steps}-{model}{traits if walk.condition_key else ''}"
    return f"generated/{generator.slug}/walks/{stem}.png"


def walk_path(generator: Generator, walk: Walk) -> str:
    path = reverse("gan:walk_png", args=[generator.slug, walk.start, walk.end, walk.steps])
    return with_traits(path, walk.condition_key)


def with_traits(path: str, key: str) -> str:
    """A permalink with its condition key (``?traits=...``) when the image has one."""
    from urllib.parse import urlencode

    return f"{path}?{urlencode({'traits': key})}" if key else path


# --- Worker side -------------------------------------------------------------------------------


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
        notify.publish(pks, Status.FAILED)
        return []
    notify.publish(pks, Status.DONE)
    return pks


def claim(request_id: int, task_id: str = "") -> GenerationRequest | None:
    """queued -> running, or take over a running one left by a lost worker; else None."""
    now = timezone.now()
    stale = now - timedelta(seconds=STALE_SECONDS)
    claimed = (
        GenerationRequest.objects.filter(pk=request_id)
        .filter(Q(status=Status.QUEUED) | _left_running(task_id, stale))
        .update(status=Status.RUNNING, started_at=now, task_id=task_id or "")
    )
    if not claimed:
        return None
    return GenerationRequest.objects.select_related("generator__collection").get(pk=request_id)


def _left_running(task_id: str, stale: datetime) -> Q:
    """Running requests a lost worker left behind: started long ago, or claimed by this very
    task. A task delivered again carries its first delivery's id, and with acks_late it is
    only redelivered once the worker that held it is gone (killed, or its connection lost),
    so its requests are finished now rather than after STALE_SECONDS."""
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
            status=Status.RUNNING, started_at=now, task_id=task_id or req.task_id
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
        images, strips = draw(generator, missing, list(to_draw.values()), traits)
        store_images(
            generator,
            [(seed, png, *first_request[seed]) for seed, png in zip(missing, images, strict=True)],
            condition_key=key,
            traits=traits,
        )
        for walk, strip in zip(to_draw.values(), strips, strict=True):
            write_once(walk_name(generator, walk), strip)
    return {pk: walk_name(generator, walk) for pk, walk in walks.items()}


def draw(generator: Generator, seeds: list[int], walks: list[Walk], traits: dict | None = None):
    """(PNG per seed, strip PNG per walk) from one forward pass of the cached model.

    ``traits`` (conditional generators): the request; types left out are drawn per seed.
    """
    import numpy as np

    from gan_app.gan import latent_vectors, make_grid, slerp, to_png

    from .generator_cache import cache

    loaded = cache().get(generator)
    if loaded.conditional:
        return _draw_conditional(loaded, seeds, walks, traits or {})
    parts = [latent_vectors(seeds, loaded.latent_dim)]
    for walk in walks:
        ends = latent_vectors([walk.start, walk.end], loaded.latent_dim)
        parts.append(slerp(ends[0], ends[1], walk.steps))
    pixels = loaded.generate_latents(np.concatenate(parts))
    images = [to_png(p) for p in pixels[: len(seeds)]]
    strips, offset = [], len(seeds)
    for walk in walks:
        frames = pixels[offset : offset + walk.steps]
        strips.append(to_png(make_grid(frames, columns=walk.steps, gutter=0)))
        offset += walk.steps
    return images, strips


def _draw_conditional(loaded, seeds, walks, traits):
    from gan_app.gan import make_grid, to_png

    images = [to_png(p) for p in loaded.generate(seeds, traits)] if seeds else []
    strips = [
        to_png(make_grid(loaded.walk(w.start, w.end, w.steps, traits), columns=w.steps, gutter=0))
        for w in walks
    ]
    return images, strips


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
    generator: Generator, items, *, condition_key: str = "", traits: dict | None = None
) -> None:
    """Store (seed, png, request, position) items: files named from their bytes, then the
    rows in one insert. A seed someone stored meanwhile keeps the first row (same bytes).

    ``condition_key``/``traits``: what a conditional generator was asked for (the metadata
    records the request; the trait classifier's reading goes to ``traits``)."""
    items = list(items)
    labels = label_pngs(generator, [png for _, png, _, _ in items])
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
        rows.append(evaluation.apply_label(row, label) if label is not None else row)
    GeneratedImage.objects.bulk_create(rows, ignore_conflicts=True)


def label_pngs(generator: Generator, pngs: list[bytes]) -> list:
    """Traits, rarity and the near-copy check for a batch (``evaluation.label_pixels``).

    A failure leaves the images unlabelled (logged) rather than failing the visitors' request.
    """
    if not pngs:
        return []
    try:
        import numpy as np
        from PIL import Image

        pixels = np.stack([np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in pngs])
        return evaluation.label_pixels(generator, pixels)
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
    now = timezone.now()
    plain = [r.pk for r in requests if r.pk not in strips]
    GenerationRequest.objects.filter(pk__in=plain).update(
        status=Status.DONE, finished_at=now, error=""
    )
    for req in requests:
        if req.pk in strips:
            req.params = {**req.params, "strip": strips[req.pk]}
            GenerationRequest.objects.filter(pk=req.pk).update(
                status=Status.DONE, finished_at=now, error="", params=req.params
            )


def fail(requests: list[GenerationRequest], error: str) -> None:
    GenerationRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
        status=Status.FAILED, finished_at=timezone.now(), error=error[:5000]
    )


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
        images, _ = draw(generator, missing, [], params.get("traits"))
        store_images(
            generator,
            [(s, png, None, 0) for s, png in zip(missing, images, strict=True)],
            condition_key=key,
            traits=params.get("traits"),
        )
        found.update(
            (row.seed, row)
            for row in GeneratedImage.objects.filter(
                generator=generator, condition_key=key, seed__in=missing
            )
        )
    return found
