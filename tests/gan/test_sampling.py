import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from gan_app.gan import (
    GANConfig,
    GeneratorArtifactError,
    Trainer,
    export_checkpoint_generator,
    latent_vectors,
    load_generator,
    slerp,
    to_png,
)
from tests.gan.conftest import TINY, run_python


@pytest.fixture(scope="module")
def trained():
    """(generator artifact, checkpoint) of a one-epoch run."""
    sprite_images = np.random.default_rng(7).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    trainer = Trainer(GANConfig(**TINY), sprite_images)
    trainer.run(max_epochs=1)
    buffer = io.BytesIO()
    sha = trainer.export_generator(buffer, training_set={"slug": "sprites"})
    assert sha == hashlib.sha256(buffer.getvalue()).hexdigest()
    return buffer.getvalue(), trainer.checkpoint().data


@pytest.fixture
def artifact(trained):
    return trained[0]


def test_it_derives_the_same_latent_vector_from_a_seed():
    vectors = latent_vectors([0, 5, 2**63 - 1], 16)
    expected = np.random.Generator(np.random.PCG64(5)).standard_normal(16).astype(np.float32)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 16)
    assert np.array_equal(vectors[1], expected)
    assert np.array_equal(latent_vectors([5], 16)[0], expected)


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, True])
def test_it_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed must be"):
        latent_vectors([seed], 4)


def test_it_exports_a_generator_that_loads_from_bytes_paths_and_files(tmp_path, artifact):
    (tmp_path / "g.zip").write_bytes(artifact)
    loaded = [
        load_generator(artifact),
        load_generator(tmp_path / "g.zip"),
        load_generator(str(tmp_path / "g.zip")),
        load_generator(io.BytesIO(artifact)),
    ]

    manifest = loaded[0].manifest
    assert (manifest["resolution"], manifest["latent_dim"], manifest["epoch"]) == (32, 8, 1)
    assert manifest["config"]["generator_width"] == 4
    assert manifest["training_set"]["slug"] == "sprites"
    assert manifest["training_set"]["count"] == 12
    first = loaded[0].generate([1, 2, 3])
    assert first.dtype == np.uint8 and first.shape == (3, 32, 32, 3)
    assert all(np.array_equal(first, g.generate([1, 2, 3])) for g in loaded[1:])


def test_it_generates_what_the_model_computes(artifact):
    generator = load_generator(artifact)
    raw = generator.model(latent_vectors([9], 8), training=False).numpy()
    expected = np.clip(np.rint((raw + 1) * 127.5), 0, 255).astype(np.uint8)
    assert np.array_equal(generator.generate(9), expected)


def test_it_walks_from_one_seed_to_another(artifact):
    generator = load_generator(artifact)
    walk = generator.walk(3, 4, steps=5)
    assert walk.shape == (5, 32, 32, 3)
    assert np.array_equal(walk[0], generator.generate(3)[0])
    assert np.array_equal(walk[-1], generator.generate(4)[0])


def test_it_interpolates_on_the_sphere():
    start, end = latent_vectors([1, 2], 64)
    path = slerp(start, end, 9)
    assert np.allclose(path[0], start) and np.allclose(path[-1], end)
    norms = np.linalg.norm(path, axis=1)
    assert norms.min() > 0.9 * min(np.linalg.norm(start), np.linalg.norm(end))


def test_it_makes_grids_and_deterministic_pngs(artifact):
    generator = load_generator(artifact)
    grid = generator.grid()
    png = generator.to_png(grid)
    assert grid.shape == (4 * 128 + 10, 4 * 128 + 10, 3)
    assert png == to_png(grid)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), grid)


def test_it_rejects_corrupt_artifacts(artifact):
    with pytest.raises(GeneratorArtifactError, match="not a generator file"):
        load_generator(b"not a zip")
    tampered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(artifact)) as src, zipfile.ZipFile(tampered, "w") as dst:
        dst.writestr("manifest.json", src.read("manifest.json"))
        dst.writestr("generator.keras", src.read("generator.keras")[:-10] + b"0123456789")
    with pytest.raises(GeneratorArtifactError, match="checksum mismatch"):
        load_generator(tampered.getvalue())
    wrong = io.BytesIO()
    with zipfile.ZipFile(wrong, "w") as dst:
        dst.writestr("manifest.json", json.dumps({"format": "nff-generator", "version": 99}))
    with pytest.raises(GeneratorArtifactError, match="version 99 is not supported"):
        load_generator(wrong.getvalue())


RELOAD = """
import hashlib, json, sys, tempfile, zipfile
import keras
import numpy as np
# Plain Keras first: the model file needs nothing from this project.
with zipfile.ZipFile(sys.argv[1]) as zf, tempfile.TemporaryDirectory() as tmp:
    model = keras.saving.load_model(zf.extract("generator.keras", tmp), compile=False)
plain = any(m.startswith("gan_app") for m in sys.modules), list(model(np.zeros((1, 8))).shape)
from gan_app.gan import load_generator
generator = load_generator(sys.argv[1])
images = generator.generate([0, 7, 2**63 - 1])
pngs = [hashlib.sha256(generator.to_png(image)).hexdigest() for image in images]
print(json.dumps({"plain": plain, "pngs": pngs}))
"""


def test_it_generates_identical_pngs_after_a_reload_in_a_new_process(tmp_path, artifact):
    (tmp_path / "g.zip").write_bytes(artifact)
    here = load_generator(artifact)
    expected = [hashlib.sha256(to_png(i)).hexdigest() for i in here.generate([0, 7, 2**63 - 1])]

    reloaded = json.loads(run_python(RELOAD, tmp_path / "g.zip"))

    assert reloaded["pngs"] == expected
    assert reloaded["plain"] == [False, [1, 32, 32, 3]]


def test_it_publishes_the_generator_of_a_checkpoint_without_the_training_images(trained):
    artifact, checkpoint = trained
    buffer = io.BytesIO()
    export_checkpoint_generator(checkpoint, buffer, training_set={"slug": "sprites"})
    published, direct = load_generator(buffer.getvalue()), load_generator(artifact)

    assert published.epoch == 1
    assert published.manifest["training_set"] == direct.manifest["training_set"]
    assert np.array_equal(published.generate([1, 2]), direct.generate([1, 2]))


def test_it_serves_float32_from_a_mixed_precision_run(sprite_images):
    config = GANConfig(**TINY, mixed_precision="on")
    trainer = Trainer(config, sprite_images)
    trainer.run(max_epochs=1)
    assert trainer.generator.layers[0].dtype_policy.name == "mixed_bfloat16"
    buffer = io.BytesIO()
    trainer.export_generator(buffer)

    generator = load_generator(buffer.getvalue())

    assert {layer.dtype_policy.name for layer in generator.model.layers} == {"float32"}
    assert generator.generate([5]).shape == (1, 32, 32, 3)


def test_it_generates_the_same_image_for_a_seed_in_any_batch(artifact):
    generator = load_generator(artifact)
    seeds = list(range(70))  # more than one inference batch
    together = generator.generate(seeds)
    assert np.array_equal(together, np.concatenate([generator.generate(s) for s in seeds]))
