"""Fabrication jobs, the web/admin/CLI side: check the options, record the job, queue it.

Bad input is refused here with one clear sentence (``FabricationSetupError``) before anything
is queued: a count over ``FABRICATE_MAX_COUNT``, an unlisted generator, a trait plan naming a
trait the generator does not know.

``gan_app.gan`` (TensorFlow) is imported inside functions: web processes import this module.
"""

import json

from django.conf import settings
from django.db import transaction

from ..generation.requests import MAX_SEED
from ..models import FabricationJob, Generator

TRAIT_SOURCES = ("source", "uniform")


class FabricationSetupError(ValueError):
    """A fabrication that cannot start; the message says why."""


def parse_traits(text: str | None):
    """``source`` / ``uniform`` / a JSON table ``{trait_type: {value: weight}}``."""
    text = (text or "").strip()
    if not text or text in TRAIT_SOURCES:
        return text or "source"
    try:
        table = json.loads(text)
    except ValueError as exc:
        raise FabricationSetupError(
            f"traits must be 'source', 'uniform' or a JSON table: {exc}"
        ) from None
    if not isinstance(table, dict):
        raise FabricationSetupError("a trait table is a JSON object {trait_type: {value: weight}}")
    return table


def check_options(generator: Generator, count, seed=0, traits="source", image_uri="{id}.png"):
    """Raise FabricationSetupError for anything the worker would refuse."""
    if not generator.is_public:
        raise FabricationSetupError(
            f"generator {generator.slug!r} is not listed: only generators that are published "
            "and passed the quality gate (or were listed by an admin) fabricate collections"
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise FabricationSetupError(f"count must be a positive whole number, got {count!r}")
    if count > settings.FABRICATE_MAX_COUNT:
        raise FabricationSetupError(
            f"count {count:,} is over the maximum of {settings.FABRICATE_MAX_COUNT:,} tokens "
            "(FABRICATE_MAX_COUNT)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise FabricationSetupError(f"seed must be a whole number from 0 to {MAX_SEED:,}")
    if "{id}" not in (image_uri or ""):
        raise FabricationSetupError(f"the image URI template must contain {{id}}: {image_uri!r}")
    from gan_app.gan.fabrication import FabricationError, TraitPlan

    try:
        options(count, seed, traits).check()
        TraitPlan(traits, vocabulary_of(generator))
    except FabricationError as exc:
        raise FabricationSetupError(str(exc)) from None


def options(count, seed, traits):
    from gan_app.gan.fabrication import FabricationOptions

    return FabricationOptions(
        count=count, seed=seed, traits=traits, max_count=settings.FABRICATE_MAX_COUNT
    )


def vocabulary_of(generator: Generator):
    """The generator's trait vocabulary (None: unconditional), from its manifest."""
    conditions = (generator.manifest or {}).get("conditions")
    if not generator.conditional or not conditions:
        return None
    from gan_app.gan.conditioning import ConditionVocabulary

    return ConditionVocabulary.from_json(conditions)


def create_job(generator, count, seed=0, traits="source", image_uri="{id}.png", *, send=True):
    """Record a fabrication job and queue it on ``generate`` (after commit)."""
    check_options(generator, count, seed, traits, image_uri)
    with transaction.atomic():
        job = FabricationJob.objects.create(
            generator=generator, count=count, seed=seed, traits=traits, image_uri=image_uri
        )
        if send:
            job.dispatch()
    return job


def pause(job: FabricationJob) -> bool:
    return job.pause()


def resume(job: FabricationJob, *, send: bool = True) -> bool:
    return job.resume(send=send)


def cancel(job: FabricationJob) -> bool:
    return job.cancel()
