"""Generate, the web side: visitors' requests, their seeds, the long-poll (no TensorFlow here:
pages must not pay for it). The worker side that renders them is ``render``.

    req = submit(generator, kind="single", seeds=[42], client_key=key)   # may raise RateLimited
    req = await wait_for_change(req.pk, since="queued", timeout=10)      # long-poll helper

Everything a seed makes is stored once: the PNG under a name derived from its bytes, then one
``GeneratedImage`` row (unique per generator and seed). A seed asked for again, by anyone, is
served from storage without rendering. Two workers racing on one seed write the same bytes to
the same name and the database keeps one row.

Trait-conditioned generators (``Generator.conditional``): a request may carry traits
(``params["traits"]``, checked by ``conditions.clean_traits``) and its canonical
``params["condition_key"]``; images are unique per (generator, seed, condition_key), so
generator + traits + seed always name the same image.
"""

import copy
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from nftsite.jobs import dispatch_after_commit, dispatch_now
from nftsite.readings import Readings

from ..models import GeneratedImage, GenerationRequest, Generator
from . import conditions, notify, ratelimit
from .metadata import with_traits

log = logging.getLogger(__name__)

# Seeds survive a JSON round trip through JavaScript (IEEE doubles hold integers to 2^53 - 1).
MAX_SEED = 2**53 - 1
MAX_BATCH = 16
WALK_STEPS = 8
MIN_WALK_STEPS, MAX_WALK_STEPS = 3, 16
# A request still queued after this long has its task sent again (see requeue_if_stuck).
REQUEUE_AFTER = 30
# served_generator's readings are used for at most this many seconds (per process).
GENERATOR_MAX_AGE = 5.0
GENERATORS_KEPT = 256  # readings kept at most (two per generator: by slug and by pk)
_generators = Readings(GENERATORS_KEPT)  # found generators only: made-up slugs are not kept
_generators_seen = _generators.seen

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
    images = ratelimit.images_of(kind, seeds, params)
    with transaction.atomic():
        if client_key:
            ratelimit.lock_client(client_key)
            ratelimit.check(client_key, rate, images=images)
        ready = _ready_params(generator, kind, seeds, params)
        now = timezone.now()
        req = GenerationRequest.objects.create(
            generator=generator,
            kind=kind,
            seeds=seeds,
            params={**params, **(ready or {})},
            client_key=client_key,
            image_count=images,
            status=Status.DONE if ready is not None else Status.QUEUED,
            task_id="" if ready is not None else str(uuid.uuid4()),
            started_at=now if ready is not None else None,
            finished_at=now if ready is not None else None,
        )
        if ready is None:
            dispatch_after_commit(GenerationRequest.task_name, [req.pk], task_id=req.task_id)
    return req


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


async def wait_for_change(
    pk: int, since: str = "", timeout: float = 0.0, mark: notify.Mark | None = None
) -> GenerationRequest | None:
    """The request once its status is none of ``since`` (comma-separated statuses), or after
    ``timeout`` seconds. The worker's notice wakes the wait (``notify``); while it sleeps the
    wait holds neither a thread nor a database connection. Each look reads the row with its
    generator in one query (a wait looks about twice: before it sleeps and once woken).

    ``mark``: ``notify.mark()`` taken before the request was submitted, by a caller that then
    gave its connection back (``release_connection``): the wait skips its first look when no
    notice came since, so a fresh request's answer costs one look."""
    if timeout <= 0:  # no waiting: the row as it is
        return await sync_to_async(serving_row)(pk)
    waiting_out = set(since.split(",")) if since else set()

    def changed(status):
        return status is None or status not in waiting_out

    def look():
        """(status, the row once the status changed; else None)."""
        req = serving_row(pk)
        status = None if req is None else req.status
        if changed(status):
            return status, req
        release_connection()
        return status, None

    status, req = await notify.wait(
        pk, sync_to_async(look), lambda seen: changed(seen[0]), timeout, mark
    )
    if req is None and status is not None:  # the wait ran out with the status unchanged
        req = await sync_to_async(serving_row)(pk)
    return req


def release_connection() -> None:
    """Give this thread's database connection back before a wait sleeps: a thousand sleeping
    waiters must not hold a thousand connections. (Inside a transaction the connection is not
    ours to close.)"""
    if not connection.in_atomic_block:
        connection.close()


def serving_row(pk: int) -> GenerationRequest | None:
    """A request with its generator and collection, as the answers to visitors use them."""
    req = unique_row(GenerationRequest.objects.filter(pk=pk))
    if req is not None:
        req.generator = served_generator(pk=req.generator_id)
    return req


def served_generator(*, slug: str | None = None, pk: int | None = None) -> Generator | None:
    """The generator with this slug or pk, with its collection (``Generator.served``), or None.

    Every Generate request reads it, and the join is the dearest query of the request to
    compile, so a reading this process made at most ``GENERATOR_MAX_AGE`` seconds ago will do.
    A change saved in this process is seen at once (the cache is emptied on any generator or
    collection save or delete); one saved elsewhere (the admin, a worker's quality gate) within
    ``GENERATOR_MAX_AGE``. The worker checks that the generator is still published before it
    renders, so a request let in meanwhile fails with the "withdrawn" message. Each caller gets
    its own copy of the row.
    """
    key = ("slug", slug) if pk is None else ("pk", pk)
    lookup = {"slug": slug} if pk is None else {"pk": pk}
    found = _generators.get(
        key,
        GENERATOR_MAX_AGE,
        lambda: unique_row(Generator.served(Generator.objects.filter(**lookup))),
    )
    return None if found is None else copy.copy(found)


def forget_served_generators() -> None:
    """Drop this process's readings of ``served_generator`` (a generator or collection changed)."""
    _generators.clear()


def unique_row(queryset):
    """The row a filter on a unique key finds, or None: ``first()`` less the ORDER BY it adds,
    whose compiling costs more CPU than the lookup itself on the Generate path."""
    return next(iter(queryset.order_by()[:1]), None)


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
    dispatch_now(GenerationRequest.task_name, [req.pk], task_id=task_id)
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
    for row in rows.values():
        row.generator = req.generator  # loaded with the request: not again per image
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
