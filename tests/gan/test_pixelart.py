"""Pixel-art collections: grid and palette detection, cell-for-cell training data, clean renders."""

import numpy as np
import pytest

from gan_app.gan import GANConfig, prepare_images
from gan_app.gan.metrics import palette_conformity
from gan_app.gan.pixelart import (
    PixelArtError,
    PixelArtProfile,
    TraitColours,
    clean_background,
    crop_from_model,
    detect_pixel_art,
    pad_to_model,
    snap_to_local_palette,
    snap_to_palette,
    upscale,
)
from gan_app.gan.sampling import latent_vectors, to_png, to_uint8

BACKGROUND = (99, 133, 150)
PALETTE = np.array([BACKGROUND, (0, 0, 0), (219, 177, 128), (255, 0, 0)], dtype=np.uint8)


def sprites(count=12, grid=12, seed=0):
    """Little figures: a skin-coloured square with black eyes and a red hat, moved around."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, grid, grid, 3), dtype=np.uint8)
    images[:] = BACKGROUND
    for image in images:
        x, y = rng.integers(1, grid - 7, 2)
        image[y + 2 : y + 7, x : x + 5] = PALETTE[2]
        image[y + 3, x + 1] = image[y + 3, x + 3] = PALETTE[1]
        if rng.random() < 0.5:
            image[y : y + 2, x : x + 5] = PALETTE[3]
    return images


def test_it_finds_the_grid_of_enlarged_pixel_art():
    native = sprites()
    profile = detect_pixel_art(native.repeat(5, 1).repeat(5, 2))

    assert profile.grid == (12, 12)
    assert profile.block == 5
    assert profile.background == BACKGROUND
    assert {tuple(c) for c in profile.palette} <= {tuple(c) for c in PALETTE}


def test_it_takes_files_saved_at_the_native_size_as_pixel_art():
    profile = detect_pixel_art(sprites())
    assert (profile.grid, profile.block) == ((12, 12), 1)


def test_it_does_not_take_photographic_images_for_pixel_art():
    rng = np.random.default_rng(1)
    gradient = np.linspace(0, 255, 48, dtype=np.float32)
    smooth = np.stack(np.broadcast_arrays(gradient[None, :], gradient[:, None], 128.0), -1)
    noisy = np.clip(smooth[None] + rng.normal(0, 20, (8, 48, 48, 3)), 0, 255).astype(np.uint8)
    assert detect_pixel_art(noisy) is None


def test_it_pads_the_grid_into_the_model_and_crops_it_back():
    native = sprites(count=3)
    padded = pad_to_model(native, 32, BACKGROUND)

    assert padded.shape == (3, 32, 32, 3)
    assert (padded[:, :4] == BACKGROUND).all()  # 12 cells at scale 2 = 24 px, offset 4
    assert np.array_equal(crop_from_model(padded, (12, 12)), native)
    assert np.array_equal(crop_from_model(pad_to_model(native, 64, BACKGROUND), (12, 12)), native)


def test_it_refuses_a_grid_larger_than_the_model():
    with pytest.raises(PixelArtError, match="resolution of at least 40"):
        pad_to_model(np.zeros((1, 40, 40, 3), np.uint8), 32, BACKGROUND)


def test_it_snaps_noisy_output_onto_the_palette_and_removes_stray_pixels():
    native = sprites(count=4)
    noisy = native.astype(int) + np.random.default_rng(2).integers(-25, 26, native.shape)
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    noisy[:, 0, 0] = (200, 10, 10)  # a red speck in the open background

    profile = PixelArtProfile((12, 12), 1, PALETTE, BACKGROUND)
    rendered = profile.render(pad_to_model(noisy, 32, BACKGROUND))

    assert palette_conformity(rendered, PALETTE) == 1.0
    assert np.array_equal(rendered, native)


def test_it_keeps_drawn_details_that_touch_the_figure():
    image = np.zeros((1, 5, 5, 3), np.uint8) + np.array(BACKGROUND, np.uint8)
    image[0, 2, 2] = image[0, 2, 3] = (0, 0, 0)  # two touching cells: a drawn detail
    image[0, 0, 4] = (0, 0, 0)  # a lone speck in the corner
    cleaned = clean_background(image, BACKGROUND)
    assert (cleaned[0, 2, 2:4] == 0).all()
    assert tuple(cleaned[0, 0, 4]) == BACKGROUND


def test_it_renders_the_same_bytes_for_the_same_output():
    profile = PixelArtProfile((12, 12), 1, PALETTE, BACKGROUND)
    output = np.random.default_rng(3).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    first = to_png(upscale(profile.render(output)[0]))
    again = to_png(upscale(profile.render(output.copy())[0]))
    assert first == again
    assert snap_to_palette(output, PALETTE).tobytes() == snap_to_palette(output, PALETTE).tobytes()


def test_it_upscales_by_a_whole_factor_with_nearest_neighbour():
    image = sprites(count=1)[0]
    big = upscale(image, 512)
    assert big.shape == (504, 504, 3)  # 42 px per cell
    assert np.array_equal(big[::42, ::42], image)


def test_it_round_trips_a_profile_through_json():
    profile = detect_pixel_art(sprites())
    again = PixelArtProfile.from_dict(profile.to_dict())
    assert again.grid == profile.grid and again.background == profile.background
    assert np.array_equal(again.palette, profile.palette)
    with pytest.raises(PixelArtError):
        PixelArtProfile.from_dict({"grid": [12], "palette": []})


def test_it_trains_pixel_art_on_its_native_grid(tmp_path):
    from PIL import Image

    files = []
    for i, image in enumerate(sprites(count=8).repeat(4, 1).repeat(4, 2)):
        path = tmp_path / f"{i}.png"
        Image.fromarray(image).save(path)
        files.append(path)
    images = prepare_images(files, GANConfig(resolution=32, batch_size=4), cache_dir=tmp_path)

    assert images.resize == "native"
    assert images.pixel_art["grid"] == [12, 12] and images.pixel_art["block"] == 4
    assert np.array_equal(crop_from_model(images.images, (12, 12)), sprites(count=8))
    cached = prepare_images(files, GANConfig(resolution=32, batch_size=4), cache_dir=tmp_path)
    assert cached.from_cache and cached.pixel_art == images.pixel_art


def test_it_snaps_each_cell_only_to_colours_used_there():
    native = sprites(count=6)
    profile = detect_pixel_art(native)
    assert profile.local is not None
    # A 2x2 skin-coloured smear in the top-left corner, where faces never reach (too big to
    # be a stray speck): it cannot become skin there, only what the collection draws there.
    smeared = native.copy()
    smeared[:, :2, :2] = (215, 170, 120)
    rendered = profile.render(pad_to_model(smeared, 32, BACKGROUND))
    assert (rendered[:, :2, :2] == BACKGROUND).all()
    globally = snap_to_palette(smeared, profile.palette)
    assert (globally[:, :2, :2] == PALETTE[2]).all()  # what a global palette would have made
    assert np.array_equal(rendered, native)
    again = PixelArtProfile.from_dict(profile.to_dict())
    assert np.array_equal(again.local, profile.local)


def test_it_snaps_to_exactly_the_nearest_colour_with_the_first_on_ties():
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    palette[1] = palette[0]  # a tie: the first of equal colours wins
    palette[2], palette[3] = (255, 255, 255), (0, 0, 0)  # the largest terms (float32 exact)
    images = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    images[0, 0, :4] = [(0, 0, 0), (255, 255, 255), (0, 255, 0), (255, 0, 255)]
    weights = np.array([2, 4, 3])
    diff = images.reshape(-1, 1, 3).astype(np.int64) - palette[None].astype(np.int64)
    distance = (diff**2 * weights).sum(-1)
    expected = palette[distance.argmin(1)].reshape(images.shape)
    assert np.array_equal(snap_to_palette(images, palette), expected)
    everywhere = np.ones((8, 8, len(palette)), dtype=bool)
    assert np.array_equal(snap_to_local_palette(images, palette, everywhere), expected)
    # Cells that allow only some colours: the nearest allowed one.
    allowed = rng.random((8, 8, len(palette))) < 0.3
    allowed[..., 5] = True
    barred = np.where(np.tile(allowed.reshape(-1, len(palette)), (3, 1)), 0, 10**9)
    nearest_allowed = palette[(distance + barred).argmin(1)].reshape(images.shape)
    assert np.array_equal(snap_to_local_palette(images, palette, allowed), nearest_allowed)


DARK = (120, 80, 50)


def layered(hats, darks):
    """8x8 tokens drawn in fixed layers: a face (light or dark skin), a red hat or none."""
    images = np.empty((len(hats), 8, 8, 3), dtype=np.uint8)
    images[:] = BACKGROUND
    for image, hat, dark in zip(images, hats, darks, strict=True):
        image[3:7, 2:6] = DARK if dark else PALETTE[2]
        image[4, 3] = image[4, 5] = PALETTE[1]
        if hat:
            image[1:3, 2:6] = PALETTE[3]
    # Multi-hot trait rows, as a conditional run encodes them: hat, no hat, light, dark.
    labels = np.array([[h, not h, not d, d] for h, d in zip(hats, darks, strict=True)], float)
    return images, labels


def test_it_snaps_each_cell_to_the_colours_of_the_images_own_traits():
    hats, darks = [1, 0, 1, 0, 1, 0], [0, 0, 1, 1, 0, 1]
    native, labels = layered(hats, darks)
    profile = detect_pixel_art(native)
    colours = TraitColours.fit(native, labels, profile.palette)
    # A dark face without a hat, as a generator blurs it: the hat's top row halfway to red,
    # the chin halfway between the skins.
    wanted, row = layered([0], [1])
    blurred = wanted.copy()
    blurred[0, 1, 2:6] = (180, 66, 75)
    blurred[0, 5:7, 2:6] = (175, 130, 90)
    model = pad_to_model(blurred, 32, BACKGROUND)

    today = profile.render(model)
    by_traits = profile.render(model, row, colours)

    assert (today[0, 1, 2:6] == PALETTE[3]).all()  # a hat's colour: hats are drawn there
    assert (today[0, 5:7, 2:6] == PALETTE[2]).all()  # the nearer skin, of the other type
    assert np.array_equal(by_traits, wanted)
    again = TraitColours.from_text(colours.to_text())
    assert np.array_equal(again.units, colours.units)
    assert np.array_equal(profile.render(model, row, again), by_traits)


def test_a_cell_no_colour_of_all_its_traits_reaches_keeps_the_collections_colours():
    native, labels = layered([1, 0], [0, 1])
    profile = detect_pixel_art(native)
    colours = TraitColours.fit(native, labels, profile.palette)
    assert colours.units.shape == (4, 8, 8, len(profile.palette))
    # Two units that never share a colour at cell (0, 0): the cell keeps what the collection
    # draws there rather than losing every colour.
    units = np.ones((2, 8, 8, len(profile.palette)), dtype=bool)
    units[0, 0, 0], units[1, 0, 0] = False, False
    units[0, 0, 0, 0], units[1, 0, 0, 1] = True, True
    both = TraitColours(units).allowed(np.array([[1.0, 1.0], [1.0, 0.0]]), profile.local)
    assert np.array_equal(both[0, 0, 0], profile.local[0, 0])
    assert np.flatnonzero(both[1, 0, 0]).tolist() == [0]  # one unit alone: its colour
    assert np.array_equal(both[:, 3:], np.broadcast_to(profile.local[3:], both[:, 3:].shape))
    # Masks are fitted up to 8 MB of bits: a 128 x 128 grid of 256 colours with 100 trait
    # values is not (it renders as an unconditioned generator's).
    assert TraitColours.fits(92, (24, 24), 220) and not TraitColours.fits(100, (128, 128), 256)
    with pytest.raises(PixelArtError, match="4 units"):
        colours.allowed(np.ones((1, 3)), profile.local)
    with pytest.raises(PixelArtError, match="unreadable trait colours"):
        TraitColours.from_text("4,8,8,5:not base64 at all")


def test_a_conditional_pixel_art_run_publishes_its_trait_colours(tmp_path):
    from PIL import Image

    from gan_app.gan import Trainer, export_checkpoint_generator, load_generator
    from tests.gan.conftest import TINY

    hats, darks = [1, 0, 1, 0, 1, 0, 1, 0], [0, 0, 1, 1, 0, 1, 1, 0]
    native, _ = layered(hats, darks)
    files = []
    for i, image in enumerate(native):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        files.append(tmp_path / f"{i}.png")
    traits = [
        [("skin", "dark" if d else "light")] + ([("hat", "red")] if h else [])
        for h, d in zip(hats, darks, strict=True)
    ]
    config = GANConfig(**{**TINY, "conditional": True, "trait_min_count": 2})
    trainer = Trainer(config, prepare_images(files, config), traits=traits)
    trainer.run(max_epochs=1, on_checkpoint=lambda c: c.write(tmp_path / "c.zip"))
    export_checkpoint_generator(tmp_path / "c.zip", tmp_path / "g.zip")

    generator = load_generator(tmp_path / "g.zip")
    assert trainer.trait_colours is not None
    assert np.array_equal(generator.trait_colours.units, trainer.trait_colours.units)
    rows = generator.resolve_traits([3, 4], {"hat": "none", "skin": "dark"}).labels
    model_images = generator.generate_latents(latent_vectors([3, 4], 8), rows)
    colours = generator.pixel_art.render(
        to_uint8(trainer.generator([latent_vectors([3, 4], 8), rows])),
        rows,
        generator.trait_colours,
    )
    assert np.array_equal(model_images, colours)
    # No hat asked for: whatever the barely trained model draws, no red cell survives.
    assert not (model_images == PALETTE[3]).all(-1).any()
    # An unconditional run of the same tokens has none (and renders as before).
    plain = Trainer(GANConfig(**TINY), prepare_images(files, GANConfig(**TINY)))
    assert plain.trait_colours is None
