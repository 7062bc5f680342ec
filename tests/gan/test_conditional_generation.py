import io

import numpy as np
import pytest

from gan_app.gan import ConditionError, GANConfig, Trainer, load_generator
from tests.gan.conftest import TINY, run_python
from tests.gan.trait_images import draw_collection


@pytest.fixture(scope="module")
def artifact():
    """A conditional generator trained for one epoch on 12 images with colour and marks."""
    images, traits = draw_collection(12, size=32, seed=3)
    trainer = Trainer(GANConfig(**TINY, conditional=True, trait_min_count=1), images, traits=traits)
    trainer.run(max_epochs=1)
    buffer = io.BytesIO()
    trainer.export_generator(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def generator(artifact):
    return load_generator(artifact)


def test_it_generates_the_same_image_for_generator_traits_and_seed(generator):
    first = generator.generate([3, 4, 5], traits={"colour": "red", "mark": ["dot"]})

    assert first.shape == (3, 32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, generator.generate([3, 4, 5], {"colour": "red", "mark": "dot"}))
    # One seed's image does not depend on the batch it is drawn in.
    assert np.array_equal(first[1:2], generator.generate([4], {"colour": "red", "mark": ["dot"]}))


def test_it_changes_the_image_with_the_traits_but_not_the_latent(generator):
    red = generator.generate([7], {"colour": "red", "mark": ["none"]})
    blue = generator.generate([7], {"colour": "blue", "mark": ["none"]})

    assert not np.array_equal(red, blue)
    assert generator.resolve_traits([7], {"colour": "blue", "mark": ["none"]}).traits == [
        {"colour": "blue", "mark": ["none"]}
    ]


def test_it_draws_free_traits_per_seed_from_real_values(generator):
    resolved = generator.resolve_traits(list(range(40)), {"colour": "any"})

    vocabulary = generator.vocabulary
    real = vocabulary.joint_rows().astype(bool)
    for row in resolved.labels.astype(bool):
        for t in vocabulary.types:
            part = vocabulary.slices[t.name]
            assert (real[:, part] == row[part]).all(axis=1).any(), t.name
    assert len({row.tobytes() for row in resolved.labels}) > 1
    assert np.array_equal(generator.generate([9]), generator.generate([9], {"colour": "any"}))


def test_it_lists_the_valid_values_for_a_bad_request(generator):
    with pytest.raises(ConditionError, match=r"unknown value 'purple' for trait 'colour'.*'red'"):
        generator.generate([1], {"colour": "purple"})
    with pytest.raises(ConditionError, match=r"unknown trait type 'hat'.*'colour', 'mark'"):
        generator.generate([1], {"hat": "cap"})


def test_it_keys_images_by_their_request(generator):
    assert generator.condition_key({"mark": ["stripe", "dot"], "colour": "Red"}) == (
        "colour=red;mark=dot+stripe"
    )
    assert generator.condition_key({"colour": "any"}) == ""


def test_it_walks_and_grids_under_fixed_traits(generator):
    walk = generator.walk(1, 2, steps=4, traits={"colour": "green"})
    grid = generator.grid(range(4), columns=2, traits={"colour": "green"})

    assert walk.shape == (4, 32, 32, 3)
    assert np.array_equal(walk[0], generator.generate([1], {"colour": "green"})[0])
    assert grid.shape == (2 * 128 + 3 * 2, 2 * 128 + 3 * 2, 3)


def test_it_refuses_traits_for_an_unconditional_generator(tiny_config, sprite_images):
    trainer = Trainer(tiny_config, sprite_images)
    buffer = io.BytesIO()
    trainer.export_generator(buffer)
    plain = load_generator(buffer.getvalue())

    assert not plain.conditional and plain.condition_key(None) == ""
    with pytest.raises(ConditionError, match="not trait-conditioned"):
        plain.generate([1], {"colour": "red"})


GENERATE = """
import sys
from gan_app.gan import load_generator, to_png
generator = load_generator(sys.argv[1])
sys.stdout.write(to_png(generator.generate([11], {"colour": "blue"})[0]).hex())
"""


def test_it_generates_identical_pngs_in_a_new_process(tmp_path, artifact, generator):
    (tmp_path / "g.zip").write_bytes(artifact)

    png = bytes.fromhex(run_python(GENERATE, tmp_path / "g.zip"))

    assert png == generator.to_png(generator.generate([11], {"colour": "blue"})[0])
