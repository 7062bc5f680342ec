"""A small demo collection with a stored trait classifier, and tiny generators of it.

The classifier is trained once per session (the only training here: a few seconds) and stays
in storage under the collection's slug and data version; each test rebuilds the rows, so the
same import finds it again. The generators are one dense layer each, made in the session:
``spread`` draws well-separated images (some still duplicates: the check has work to do),
``collapsed`` draws the same image for every seed, ``conditional`` knows the demo's traits.
"""

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from nftsite.celery import app
from tests.generators import one_layer_artifact
from tests.testenv import SERVICES_UP
from tests.workers import routed

DEMO_SIZE = 48
CLASSIFIER = {"epochs": 2, "width": 4, "feature_dim": 8}
UNCONSUMED = "fabrication-tests-unconsumed"


@pytest.fixture(autouse=True)
def tasks_to_no_worker():
    """Every task these tests send goes, really sent, to a queue no worker reads.

    The tests play the worker themselves (``worker.process``) and rebuild the demo collection
    in each test; the tasks that sends (analytics after an import, a fabrication the admin
    queues) went to the session's live worker, alive once a worker test had run, which then
    worked on the rows while the next test flushed them: "deadlock detected", "couldn't be
    flushed", a demo collection at another data version. The worker-kill test routes its own
    fabrication queue inside this.
    """
    with routed(app, {"*": {"queue": UNCONSUMED}}):
        yield


def demo_collection():
    from collections_app.demo.build import build_demo_collection

    collection, _ = build_demo_collection(slug="fab-demo", size=DEMO_SIZE, seed=5)
    collection.refresh_from_db()
    return collection


def demo_vocabulary(collection):
    from gan_app.gan.conditioning import ConditionVocabulary

    sets = [
        {t.trait_type: t.value for t in token.traits.all()}
        for token in collection.tokens.prefetch_related("traits")
    ]
    return ConditionVocabulary.from_traits(sets)


@pytest.fixture(scope="session")
def fab_files(django_db_setup, django_db_blocker):
    """(artifacts by name, data version): the classifier is left in storage."""
    if not SERVICES_UP:
        pytest.skip("PostgreSQL/Redis not reachable")
    from gan_app.evaluation import reports as evaluation

    with django_db_blocker.unblock():
        collection = demo_collection()
        try:
            evaluation.classifier_for(collection, **CLASSIFIER)
            vocabulary = demo_vocabulary(collection)
            data_version = collection.data_version
        finally:
            collection.delete()
    evaluation.clear_caches()
    artifacts = {
        "spread": one_layer_artifact(),
        "collapsed": one_layer_artifact(stddev=0.0),
        "conditional": one_layer_artifact(vocabulary=vocabulary, latent_dim=4),
    }
    return artifacts, vocabulary.to_json(), data_version


def make_generator(collection, artifact, slug, *, conditions=None, latent_dim=2):
    from gan_app.models import Generator

    generator = Generator(
        slug=slug,
        name=slug.replace("-", " ").title(),
        collection=collection,
        resolution=32,
        latent_dim=latent_dim,
        conditional=conditions is not None,
        manifest={"conditions": conditions} if conditions else {},
        is_published=True,
        is_listed=True,
        published_at=timezone.now(),
    )
    generator.model_file.save(f"{slug}.zip", ContentFile(artifact), save=False)
    generator.save()
    return generator


@pytest.fixture
def demo(fab_files, db):
    """The source collection (rows of this test) with its classifier found in storage."""
    from gan_app.evaluation import reports as evaluation
    from gan_app.generation import generator_cache

    collection = demo_collection()
    assert collection.data_version == fab_files[2]
    yield collection
    evaluation.clear_caches()
    generator_cache.cache().clear()


@pytest.fixture
def spread(demo, fab_files):
    return make_generator(demo, fab_files[0]["spread"], "fab-spread")


@pytest.fixture
def collapsed(demo, fab_files):
    return make_generator(demo, fab_files[0]["collapsed"], "fab-collapsed")


@pytest.fixture
def conditional(demo, fab_files):
    artifacts, conditions, _ = fab_files
    return make_generator(
        demo, artifacts["conditional"], "fab-conditional", conditions=conditions, latent_dim=4
    )
