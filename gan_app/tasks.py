"""GAN tasks. Each takes primary keys, claims its job once, calls a service, records the outcome.

Imports of TensorFlow stay inside the services: the worker's parent process must not load it
before forking its pool.
"""

from celery import shared_task

# generator_cache connects the signals that warm generators as a generate worker starts.
from . import generation, generator_cache  # noqa: F401

# --- Generation (queue: generate) --------------------------------------------------------------


@shared_task(bind=True, name="gan_app.tasks.generate_images", soft_time_limit=45, time_limit=60)
def generate_images(self, request_id):
    """Render a GenerationRequest, and other queued ones of its generator in the same pass.

    Delivered twice, or for a request a sibling task already rendered: does nothing.
    """
    return generation.process(request_id, task_id=self.request.id or "")
