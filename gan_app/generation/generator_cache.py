"""Generators kept loaded in a worker's memory, least recently used out first.

Loading an artifact and tracing its inference graph costs about a second; a forward pass for
one image costs milliseconds. So each worker process loads a generator once, keyed by the
artifact's sha256 (a republished file is a new key and loads afresh), and keeps at most
``GENERATOR_CACHE_SIZE`` of them. Workers that consume the ``generate`` queue warm the cache
with the most recently published generators as they start.

TensorFlow is imported only here and only when a generator is loaded, inside the process
that runs tasks (a prefork child, or the worker itself for solo/threads pools), never in a
parent that forks afterwards.
"""

import logging
import threading
import time
from collections import OrderedDict

from celery.signals import worker_process_init, worker_ready
from django.conf import settings

log = logging.getLogger(__name__)


class GeneratorCache:
    def __init__(self, size: int):
        self.size = size
        self._items = OrderedDict()  # key -> LoadedGenerator
        self._lock = threading.Lock()
        self._loading = {}  # key -> Lock held while one thread loads it
        self.loads = 0

    @staticmethod
    def key(generator) -> str:
        return generator.model_sha256 or f"{generator.pk}:{generator.model_file.name}"

    def get(self, generator):
        """The loaded generator for a ``Generator`` row, loading it on first use."""
        key = self.key(generator)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            loading = self._loading.setdefault(key, threading.Lock())
        # One thread loads; others asking for the same generator wait for it, not reload.
        with loading:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            loaded = load(generator)
            with self._lock:
                self._items[key] = loaded
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    evicted, _ = self._items.popitem(last=False)
                    log.info("generator cache: evicted %s", evicted[:12])
                self._loading.pop(key, None)
                self.loads += 1
            return loaded

    def holds(self, generator) -> bool:
        with self._lock:
            return self.key(generator) in self._items

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def load(generator):
    """Read the artifact from storage, check it, load it and trace its graph once."""
    from gan_app.gan import GeneratorArtifactError, load_generator

    with generator.model_file.open("rb") as fh:
        data = fh.read()
    loaded = load_generator(data)
    expected = generator.model_sha256
    # Publishing records the artifact's sha256 (older rows may hold the inner model's).
    if expected and expected not in (loaded.sha256, loaded.manifest.get("model_sha256")):
        raise GeneratorArtifactError(
            f"generator {generator.slug}: file {generator.model_file.name} does not match "
            f"its recorded sha256 {expected[:12]}…"
        )
    loaded.generate([0])  # traces the inference graph now rather than on a visitor's click
    _prepare_labelling(generator)
    log.info("generator cache: loaded %s (%s)", generator.slug, loaded.sha256[:12])
    return loaded


def _prepare_labelling(generator):
    """Load the collection's trait classifier and the near-copy index with the generator
    (evaluation), so the first visitor does not wait for them either."""
    try:
        import numpy as np

        from ..evaluation.labelling import label_pixels

        size = generator.resolution
        label_pixels(generator, np.zeros((1, size, size, 3), np.uint8))
    except Exception as exc:  # labelling is an extra: never keep a generator from serving
        log.warning("generator cache: labelling for %s not prepared: %s", generator.slug, exc)


_cache = None
_cache_lock = threading.Lock()


def cache() -> GeneratorCache:
    """This process's cache (created on first use with ``GENERATOR_CACHE_SIZE``)."""
    global _cache
    with _cache_lock:
        if _cache is None or _cache.size != settings.GENERATOR_CACHE_SIZE:
            _cache = GeneratorCache(settings.GENERATOR_CACHE_SIZE)
        return _cache


def warm(limit: int | None = None) -> list[str]:
    """Load the most recently published generators (at most the cache size); their slugs."""
    from django.db import close_old_connections

    from ..models import Generator

    limit = min(limit or settings.GENERATOR_CACHE_SIZE, settings.GENERATOR_CACHE_SIZE)
    warmed = []
    try:
        generators = list(
            Generator.objects.filter(is_published=True)
            .select_related("collection")
            .order_by("-published_at", "-pk")[:limit]
        )
        for generator in reversed(generators):  # the newest ends most recently used
            try:
                known = cache().holds(generator)
                cache().get(generator)
                if known:
                    # Its classifier or near-copy index may have been stored since it loaded.
                    _prepare_labelling(generator)
                else:
                    log.info("generator cache: warmed %s", generator.slug)
                warmed.append(generator.slug)
            except Exception as exc:  # one broken file must not keep the worker from serving
                log.warning("generator cache: %s not warmed: %s", generator.slug, exc)
    except Exception as exc:  # the database may not be migrated yet on a first start
        log.warning("generator cache: not warmed: %s", exc)
    finally:
        close_old_connections()
    return warmed


def _consumes_generate(app) -> bool:
    try:
        return settings.QUEUE_GENERATE in app.amqp.queues.consume_from
    except Exception:
        return False


def _warm_in_background():
    threading.Thread(target=keep_warm, name="warm-generators", daemon=True).start()


def keep_warm():
    """Warm now, then again every ``GENERATOR_WARM_INTERVAL`` seconds, so a generator published
    while the worker runs is loaded in every pool process before a visitor asks for it, rather
    than on that visitor's click."""
    while True:
        warm()
        time.sleep(settings.GENERATOR_WARM_INTERVAL)


@worker_process_init.connect
def warm_pool_process(sender=None, **kwargs):
    """Prefork children and the solo pool: the processes that will run the tasks."""
    from celery import current_app

    if _consumes_generate(current_app):
        # In the background: a prefork child must report ready within seconds.
        _warm_in_background()


@worker_ready.connect
def warm_threaded_worker(sender=None, **kwargs):
    """Thread pools run tasks in the worker process itself (no worker_process_init)."""
    pool = getattr(sender, "pool", None)
    if type(pool).__module__.endswith(".thread") and _consumes_generate(sender.app):
        _warm_in_background()
