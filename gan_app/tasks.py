"""GAN tasks. Each takes primary keys, claims its job once, calls a service, records the outcome.

Imports of TensorFlow stay inside the services: the worker's parent process must not load it
before forking its pool.
"""

from celery import shared_task
from django.conf import settings

# generator_cache connects the signals that warm generators as a generate worker starts.
from . import generation, generator_cache  # noqa: F401

# --- Generation (queue: generate) --------------------------------------------------------------


@shared_task(bind=True, name="gan_app.tasks.generate_images", soft_time_limit=45, time_limit=60)
def generate_images(self, request_id):
    """Render a GenerationRequest, and other queued ones of its generator in the same pass.

    Delivered twice, or for a request a sibling task already rendered: does nothing.
    """
    return generation.process(request_id, task_id=self.request.id or "")


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
    from . import training

    try:
        outcome = training.run_chunk(run_id, self.request.id or "")
    except training.LeaseBusy as busy:
        raise self.retry(countdown=busy.seconds) from None
    return outcome.status
