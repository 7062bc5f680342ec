import io

import keras
import numpy as np
import pytest
from PIL import Image

from gan_app.gan import (
    EmptyTrainingSet,
    GANConfig,
    MixedImageSizes,
    TrainingSetTooSmall,
    UnreadableImages,
    prepare_images,
)
from gan_app.gan.data import EpochBatches, diff_augment, epoch_order
from tests.gan.conftest import sprite_png


def png(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_it_composites_transparency_on_the_background_colour():
    half = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    half.putpixel((0, 0), (255, 0, 0, 255))
    half.putpixel((1, 0), (0, 0, 255, 128))
    config = GANConfig(resolution=32, batch_size=1, background="#00ff00")

    image = prepare_images([png(half)], config).images[0]

    assert tuple(image[0, 0]) == (255, 0, 0)
    assert tuple(image[31, 31]) == (0, 255, 0)
    assert tuple(image[0, 31]) == (0, 127, 128)  # half-transparent blue over green


def test_it_enlarges_pixel_art_cell_for_cell():
    checker = Image.new("RGB", (2, 2), (0, 0, 0))
    checker.putpixel((1, 0), (255, 255, 255))
    images = prepare_images([png(checker)], GANConfig(resolution=32, batch_size=1))

    assert images.resize == "native"
    assert images.pixel_art["grid"] == [2, 2]
    assert set(np.unique(images.images)) == {0, 255}  # no blended edge pixels
    assert tuple(images.images[0, 0, 16]) == (255, 255, 255)


def test_it_enlarges_other_images_with_nearest_neighbour():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)  # ~1,000 colours: no palette
    images = prepare_images([png(Image.fromarray(noise))], GANConfig(resolution=64, batch_size=1))

    assert images.resize == "nearest"
    assert images.pixel_art is None
    assert np.array_equal(images.images[0], noise.repeat(2, 0).repeat(2, 1))


def test_it_shrinks_with_area_averaging():
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 255
    images = prepare_images([png(Image.fromarray(stripes))], GANConfig(resolution=32, batch_size=1))

    assert images.resize == "area"
    assert np.all(np.abs(images.images.astype(int) - 128) <= 1)


def test_it_pads_non_square_images_with_the_background():
    wide = Image.new("RGB", (4, 2), (0, 0, 0))
    image = prepare_images([png(wide)], GANConfig(resolution=32, batch_size=1)).images[0]
    assert tuple(image[0, 16]) == (255, 255, 255)
    assert tuple(image[16, 16]) == (0, 0, 0)


def test_it_rejects_an_empty_set():
    with pytest.raises(EmptyTrainingSet, match="no images"):
        prepare_images([], GANConfig())


def test_it_rejects_a_set_smaller_than_one_batch(sprites):
    with pytest.raises(TrainingSetTooSmall, match=r"12 image.*batch size 64"):
        prepare_images(sprites, GANConfig(batch_size=64))


def test_it_rejects_mixed_sizes_naming_them(sprites):
    sprites[3] = ("odd.png", sprite_png(3, size=16))
    with pytest.raises(MixedImageSizes, match=r"12x12: 11 .*16x16: 1 \(e\.g\. odd\.png\)"):
        prepare_images(sprites, GANConfig(batch_size=4))


def test_it_names_unreadable_images(sprites):
    sprites[5] = ("broken.png", b"not a png")
    with pytest.raises(UnreadableImages, match=r"1 image\(s\) cannot be decoded: broken\.png"):
        prepare_images(sprites, GANConfig(batch_size=4))


def test_it_reads_files_from_paths(tmp_path, sprites):
    paths = []
    for name, data in sprites:
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    from_paths = prepare_images(paths, GANConfig(batch_size=4))
    assert np.array_equal(
        from_paths.images, prepare_images(sprites, GANConfig(batch_size=4)).images
    )


def test_it_caches_the_decoded_array(tmp_path, sprites):
    config = GANConfig(batch_size=4)
    first = prepare_images(sprites, config, cache_dir=tmp_path)
    again = prepare_images(sprites, config, cache_dir=tmp_path)
    other_background = prepare_images(
        sprites, config.replace(background="#000000"), cache_dir=tmp_path
    )

    assert (first.from_cache, again.from_cache, other_background.from_cache) == (
        False,
        True,
        False,
    )
    assert np.array_equal(first.images, again.images)
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_it_shuffles_each_epoch_reproducibly():
    assert np.array_equal(epoch_order(100, 3, 7), epoch_order(100, 3, 7))
    assert not np.array_equal(epoch_order(100, 3, 7), epoch_order(100, 3, 8))
    assert sorted(epoch_order(100, 3, 7)) == list(range(100))


def test_it_batches_whole_batches_only(sprite_images):
    batches = list(EpochBatches(sprite_images[:10], batch_size=4, seed=0).epoch(0))
    assert [tuple(b.shape) for b in batches] == [(4, 32, 32, 3), (4, 32, 32, 3)]
    assert batches[0].dtype.name == "uint8"


def test_it_augments_colour_and_position_reproducibly():
    images = np.zeros((8, 32, 32, 3), np.float32)
    images[:, 12:20, 12:20] = 1.0  # a white square on grey

    first = diff_augment(images, keras.random.SeedGenerator(1)).numpy()
    again = diff_augment(images, keras.random.SeedGenerator(1)).numpy()

    assert first.shape == images.shape
    assert np.array_equal(first, again)
    centres = {
        tuple(np.argwhere(img[..., 0] == img[..., 0].max()).mean(0).round()) for img in first
    }
    assert len(centres) > 1  # squares moved by different offsets
    assert len({round(float(img.max()), 3) for img in first}) > 1  # colours changed per image
