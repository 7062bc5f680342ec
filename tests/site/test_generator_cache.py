"""The worker's generator cache: loaded once, LRU across generators, keyed by file sha256."""

import io

import pytest
from django.core.files.base import ContentFile

from gan_app.generation.generator_cache import GeneratorCache, warm

from .conftest import TINY, make_generator

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_artifact():
    from gan_app.gan import GANConfig, build_generator, export_generator

    config = GANConfig(**TINY, seed=1)
    buffer = io.BytesIO()
    sha = export_generator(build_generator(config), buffer, config=config.to_dict(), epoch=9)
    return buffer.getvalue(), sha


def test_it_loads_a_generator_once(generator):
    cache = GeneratorCache(2)

    first = cache.get(generator)
    again = cache.get(generator)

    assert first is again and cache.loads == 1
    assert first.generate([1]).shape == (1, 32, 32, 3)


def test_it_evicts_the_least_recently_used(collection, tiny_artifact, other_artifact):
    a = make_generator(collection, tiny_artifact, slug="a-v1", version=1)
    b = make_generator(collection, other_artifact, slug="b-v2", version=2)
    c = make_generator(collection, tiny_artifact, slug="c-v3", version=3, model_sha256="c" * 64)
    cache = GeneratorCache(2)

    cache.get(a)
    cache.get(b)
    cache.get(a)  # a is now the most recently used
    with pytest.raises(Exception, match="does not match"):
        cache.get(c)  # c's recorded sha256 is not its file's: refused, not cached
    c.model_sha256 = ""
    cache.get(c)

    assert cache.keys() == [a.model_sha256, cache.key(c)]
    assert cache.loads == 3


def test_it_reloads_a_republished_file(generator, other_artifact):
    cache = GeneratorCache(2)
    old = cache.get(generator)

    data, sha = other_artifact
    generator.model_file.save("republished.zip", ContentFile(data), save=False)
    generator.model_sha256 = sha
    generator.save()
    new = cache.get(generator)

    assert new is not old and new.sha256 == sha and new.epoch == 9


def test_it_warms_the_newest_published_generators(
    collection, tiny_artifact, other_artifact, settings
):
    from gan_app.generation.generator_cache import cache

    settings.GENERATOR_CACHE_SIZE = 1
    make_generator(collection, tiny_artifact, slug="old-v1", version=1)
    newest = make_generator(collection, other_artifact, slug="new-v2", version=2)
    make_generator(collection, tiny_artifact, slug="draft-v3", version=3, published=False)

    assert warm() == ["new-v2"]
    assert cache().keys() == [newest.model_sha256]


def test_it_warms_past_a_broken_generator(collection, tiny_artifact, settings):
    settings.GENERATOR_CACHE_SIZE = 3
    make_generator(collection, tiny_artifact, slug="good-v1", version=1)
    broken = make_generator(collection, tiny_artifact, slug="bad-v2", version=2, model_sha256="")
    broken.model_file.save("bad.zip", ContentFile(b"garbage"), save=True)

    assert warm() == ["good-v1"]
