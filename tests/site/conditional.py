"""A tiny trait-conditioned generator on the demo collection's traits, exported as a real
artifact (untrained: the flow, determinism and errors are what the site tests need)."""

import io
import json
import zipfile

from django.core.files.base import ContentFile
from django.utils import timezone

from collections_app.demo.build import build_demo_collection
from gan_app.models import Generator

TINY = {"resolution": 32, "latent_dim": 8, "generator_width": 4, "conditional": True}
DEMO_SIZE = 24


def conditional_artifact(size=DEMO_SIZE):
    """(artifact bytes, sha256, manifest) for the demo collection of ``size`` tokens."""
    from collections_app.demo.build import demo_tokens
    from gan_app.gan import ConditionVocabulary, GANConfig, export_generator
    from gan_app.gan.models import build_conditional_generator

    traits = [t.metadata["traits"] for t in demo_tokens(size=size)]
    vocabulary = ConditionVocabulary.from_traits(traits, min_count=1)
    config = GANConfig(**TINY)
    buffer = io.BytesIO()
    sha = export_generator(
        build_conditional_generator(config, vocabulary.size),
        buffer,
        config=config.to_dict(),
        epoch=1,
        training_set={"slug": "cond-fakes", "count": size},
        conditions=vocabulary.to_json(),
    )
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    return buffer.getvalue(), sha, manifest


def demo_collection(slug="cond-fakes", size=DEMO_SIZE):
    collection = build_demo_collection(slug, size=size)[0]
    collection.refresh_from_db()  # finalising bumped its data version (the classifier's key)
    return collection


def make_conditional_generator(collection, artifact, slug="cond-v1"):
    data, sha, manifest = artifact
    generator = Generator(
        slug=slug,
        name="Conditional Fakes v1",
        collection=collection,
        version=1,
        resolution=32,
        latent_dim=8,
        epoch=1,
        conditional=True,
        model_sha256=sha,
        manifest=manifest,
        is_published=True,
        is_listed=True,
        published_at=timezone.now(),
    )
    generator.model_file.save(f"{slug}.zip", ContentFile(data), save=False)
    generator.save()
    return generator
