import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from gan_app.gan import (
    CheckpointError,
    ConfigError,
    GANConfig,
    Trainer,
    export_checkpoint_generator,
    load_generator,
    read_checkpoint,
)
from gan_app.gan.data import EpochBatches
from gan_app.gan.sampling import grid_scale, latent_vectors, make_grid, to_png, to_uint8
from tests.gan.conftest import TINY, run_python
from tests.gan.trait_images import draw_collection

CONDITIONAL = {**TINY, "conditional": True, "trait_min_count": 2}


@pytest.fixture
def collection():
    """12 images (32 px) with a background colour and 0-3 marks drawn on each."""
    return draw_collection(12, size=32, seed=3)


@pytest.fixture
def config():
    return GANConfig(**CONDITIONAL)


def test_it_validates_the_conditioning_settings():
    assert GANConfig.from_dict(GANConfig(**CONDITIONAL).to_dict()).conditional
    with pytest.raises(ConfigError, match="rare_traits must be one of"):
        GANConfig(rare_traits="drop")
    with pytest.raises(ConfigError, match="trait_min_count must be >= 1"):
        GANConfig(trait_min_count=0)
    with pytest.raises(ConfigError, match="conditional must be true or false"):
        GANConfig(conditional="yes")


def test_it_batches_images_with_their_label_rows():
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1).repeat(3, axis=3)
    labels = np.eye(6, dtype=np.float32)

    batches = list(EpochBatches(images, 2, seed=1, labels=labels).epoch(0))

    assert len(batches) == 3
    for batch_images, batch_labels in batches:
        indices = batch_images[:, 0, 0, 0]
        assert np.array_equal(batch_labels, labels[indices])


def test_it_trains_on_images_and_traits_into_a_checkpoint_with_the_vocabulary(config, collection):
    images, traits = collection
    trainer = Trainer(config, images, traits=traits)
    saved = []

    trainer.run(max_epochs=2, on_checkpoint=saved.append)

    assert [h["epoch"] for h in trainer.history] == [1, 2]
    assert all(np.isfinite(h["aux_loss"]) for h in trainer.history)
    manifest, _ = read_checkpoint(saved[-1].data)
    assert manifest["conditions"] == trainer.vocabulary.to_json()
    assert {t["name"] for t in manifest["conditions"]["types"]} == {"colour", "mark"}
    assert len(manifest["data"]["labels_sha256"]) == 64


def test_it_draws_the_grid_as_rows_of_fixed_trait_combinations(config, collection):
    images, traits = collection
    trainer = Trainer(config, images, traits=traits)
    trainer.run(max_epochs=1)

    rows = trainer.vocabulary.grid_conditions(4)
    latent = np.tile(latent_vectors(range(4), config.latent_dim), (4, 1))
    expected = to_uint8(trainer.generator([latent, np.repeat(rows.labels, 4, axis=0)]))

    assert trainer.sample_grid_png() == to_png(make_grid(expected, 4, scale=grid_scale(32)))
    assert len({row.tobytes() for row in rows.labels}) == 4
    grid = np.asarray(Image.open(io.BytesIO(trainer.sample_grid_png())))
    assert grid.shape[:2] == (4 * 128 + 5 * 2, 4 * 128 + 5 * 2)


def test_it_needs_traits_for_a_conditional_run_and_only_then(config, collection):
    images, traits = collection

    with pytest.raises(ValueError, match="needs one trait set per image"):
        Trainer(config, images)
    with pytest.raises(ValueError, match="12 images but 11 trait sets"):
        Trainer(config, images, traits=traits[:11])
    with pytest.raises(ValueError, match="traits are for conditional runs"):
        Trainer(config.replace(conditional=False), images, traits=traits)


def test_it_refuses_to_resume_with_other_traits(config, collection):
    images, traits = collection
    trainer = Trainer(config, images, traits=traits)
    trainer.run(max_epochs=1)
    checkpoint = trainer.checkpoint().data

    with pytest.raises(CheckpointError, match="other trait labels"):
        Trainer.resume(checkpoint, images, traits=[*traits[1:], traits[0]])
    with pytest.raises(ValueError, match="needs one trait set per image"):
        Trainer.resume(checkpoint, images)


RESUME = """
import json, sys
import numpy as np
from gan_app.gan import Trainer
images = np.load(sys.argv[1])
traits = json.load(open(sys.argv[2]))
trainer = Trainer.resume(sys.argv[3], images, traits=traits)
trainer.run()
np.savez(sys.argv[4], *[v.numpy() for vs in trainer.model.state_variables().values() for v in vs])
print(json.dumps({"history": trainer.history, "vocabulary": trainer.vocabulary.to_json()}))
"""


def test_it_resumes_a_conditional_run_exactly_in_a_new_process(tmp_path, config, collection):
    images, traits = collection
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "traits.json").write_text(json.dumps(traits))
    trainer = Trainer(config, images, traits=traits)
    trainer.run(max_epochs=2, on_checkpoint=lambda c: c.write(tmp_path / "epoch2.zip"))

    out = run_python(
        RESUME,
        tmp_path / "images.npy",
        tmp_path / "traits.json",
        tmp_path / "epoch2.zip",
        tmp_path / "w.npz",
    )
    trainer.run()  # the same run, never interrupted

    resumed = json.loads(out)
    assert resumed["vocabulary"] == trainer.vocabulary.to_json()
    assert [h["g_loss"] for h in resumed["history"]] == [h["g_loss"] for h in trainer.history]
    assert [h["aux_loss"] for h in resumed["history"]] == [h["aux_loss"] for h in trainer.history]
    saved = np.load(tmp_path / "w.npz")
    straight = [v.numpy() for vs in trainer.model.state_variables().values() for v in vs]
    assert len(saved.files) == len(straight)
    for i, value in enumerate(straight):
        assert np.array_equal(saved[f"arr_{i}"], value), f"variable {i} differs"


def test_it_publishes_a_checkpoints_generator_with_its_vocabulary(tmp_path, config, collection):
    images, traits = collection
    trainer = Trainer(config, images, traits=traits)
    trainer.run(max_epochs=1, on_checkpoint=lambda c: c.write(tmp_path / "c.zip"))

    export_checkpoint_generator(tmp_path / "c.zip", tmp_path / "g.zip")
    generator = load_generator(tmp_path / "g.zip")

    assert generator.conditional
    assert generator.vocabulary == trainer.vocabulary
    with zipfile.ZipFile(tmp_path / "g.zip") as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["conditional"] is True
    assert manifest["training_set"]["labels_sha256"] == trainer.data_info["labels_sha256"]
    rows = generator.resolve_traits([5], {"colour": "blue"}).labels
    assert np.array_equal(
        generator.generate([5], {"colour": "blue"}),
        to_uint8(trainer.generator([latent_vectors([5], config.latent_dim), rows])),
    )
