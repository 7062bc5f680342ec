"""GAN tasks. Each takes primary keys, claims its job once, calls a service, records the outcome.

Imports of TensorFlow stay inside the services: the worker's parent process must not load it
before forking its pool.
"""

import logging

from celery import shared_task
from django.conf import settings

from nftsite import jobs

# generator_cache connects the signals that warm generators as a generate worker starts.
from .evaluation import labelling
from .evaluation import reports as evaluation
from .generation import (
    generator_cache,  # noqa: F401
    orphans,
    render,
)
from .models import Checkpoint, Generator, TrainingRun
from .training import chunks

log = logging.getLogger(__name__)

# --- Generation (queue: generate) --------------------------------------------------------------


@shared_task(bind=True, name="gan_app.tasks.generate_images", soft_time_limit=45, time_limit=60)
def generate_images(self, request_id):
    """Render a GenerationRequest, and other queued ones of its generator in the same pass.

    Delivered twice, or for a request a sibling task already rendered: does nothing.
    """
    return render.process(request_id, task_id=self.request.id or "")


# --- Training (queue: train) -------------------------------------------------------------------
# A chunk trains for TRAIN_CHUNK_SECONDS; loading the images and the last epoch may run over, so
# the limits leave room (and stay inside the broker's visibility timeout). acks_late (settings):
# a chunk whose worker was killed is delivered again and takes the run over once its lease is
# stale.


@shared_task(
    bind=True,
    name="gan_app.tasks.train_chunk",
    acks_late=True,
    max_retries=None,
    soft_time_limit=settings.TRAIN_CHUNK_SECONDS + 600,
    time_limit=settings.TRAIN_CHUNK_SECONDS + 720,
)
def train_chunk(self, run_id):
    """Train one chunk of a TrainingRun and queue the next. A stale or duplicate task: nothing."""

    try:
        queue = (self.request.delivery_info or {}).get("routing_key")
        outcome = chunks.run_chunk(run_id, self.request.id or "", queue=queue)
    except chunks.LeaseBusy as busy:
        raise self.retry(countdown=busy.seconds) from None
    return outcome.status


# --- Evaluation (queue: train) -----------------------------------------------------------------
# Thin: the services skip an evaluation whose inputs are unchanged, so a redelivered task
# costs a database read.


@shared_task(name="gan_app.tasks.evaluate_checkpoint")
def evaluate_checkpoint(checkpoint_id, force=False):

    checkpoint = Checkpoint.objects.select_related("run__training_set__collection").filter(
        pk=checkpoint_id
    )
    if not checkpoint.exists():
        return None  # deleted with its run meanwhile
    try:
        report = evaluation.evaluate_checkpoint(checkpoint.get(), force=force)
    except evaluation.EvaluationError as error:  # no images or traits: retrying cannot help
        log.warning("checkpoint %s not evaluated: %s", checkpoint_id, error)
        return {"checkpoint": checkpoint_id, "skipped": str(error)}
    return {"checkpoint": checkpoint_id, "domain_fid": report["domain"]["fid"]}


@shared_task(name="gan_app.tasks.evaluate_generator")
def evaluate_generator(generator_id, force=False):

    generator = Generator.objects.select_related("collection", "training_run").filter(
        pk=generator_id
    )
    if not generator.exists():
        return None
    generator = generator.get()
    try:
        report = evaluation.evaluate_generator(generator, force=force)
    except evaluation.EvaluationError as error:
        log.warning("generator %s not evaluated: %s", generator.slug, error)
        return {"generator": generator_id, "skipped": str(error)}
    # The classifier exists now: label images generated before it did.
    labelled = labelling.label_missing(generator)
    return {"generator": generator_id, "domain_fid": report["domain"]["fid"], "labelled": labelled}


@shared_task(name="gan_app.tasks.evaluate_run")
def evaluate_run(run_id, force=False):
    """Queue an evaluation per checkpoint of a run (each its own task, so a long run never
    meets the time limit), after training the collection's classifier once here so the
    checkpoint tasks do not each train it."""

    run = TrainingRun.objects.select_related("training_set__collection").filter(pk=run_id)
    if not run.exists():
        return None
    run = run.get()
    try:
        evaluation.classifier_for(run.collection)
    except evaluation.EvaluationError as error:
        log.warning("run %s not evaluated: %s", run_id, error)
        return {"run": run_id, "skipped": str(error)}
    ids = list(run.checkpoints.order_by("epoch").values_list("pk", flat=True))
    for checkpoint_id in ids:
        jobs.dispatch_now(evaluate_checkpoint.name, [checkpoint_id], {"force": force})
    return {"run": run_id, "checkpoints": len(ids)}


# --- Fabrication (queue: generate) -------------------------------------------------------------
# acks_late (settings): a fabrication whose worker was killed is delivered again, or re-sent by
# the watchdog once its lease ran out; either continues from the stored state.


@shared_task(bind=True, name="gan_app.tasks.fabricate_collection")
def fabricate_collection(self, job_id):
    """Fabricate (or continue) a FabricationJob. Not queued or running: nothing."""
    from .fabrication import worker

    return worker.process(job_id, task_id=self.request.id or "")


@shared_task(name="gan_app.tasks.collect_orphan_images", soft_time_limit=120, time_limit=150)
def collect_orphan_images():
    """Celery beat's sweep of generated PNGs left without a row (generation/orphans.py)."""
    return len(orphans.collect())
