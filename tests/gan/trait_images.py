"""Tiny synthetic collections whose traits are drawn on the image, so they are learnable."""

import numpy as np

BACKGROUNDS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}
PLAIN = (128, 128, 128)  # images without a "colour" trait


def draw_collection(count, size=16, seed=0, noise=8):
    """``(images uint8 (count, size, size, 3), traits)`` with two trait types:

    - ``colour`` (single-valued, sometimes absent): the background colour;
    - ``mark`` (multi-valued, 0 to 3 per image): ``dot`` top-left, ``bar`` along the bottom,
      ``stripe`` down the right edge.
    """
    rng = np.random.default_rng(seed)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    traits = []
    names = [*BACKGROUNDS, None]
    q = size // 4
    for i in range(count):
        colour = names[rng.integers(len(names))]
        canvas = np.empty((size, size, 3), dtype=np.float64)
        canvas[:] = BACKGROUNDS[colour] if colour else PLAIN
        marks = [m for m in ("dot", "bar", "stripe") if rng.random() < 0.5]
        if "dot" in marks:
            canvas[q : 2 * q, q : 2 * q] = 255
        if "bar" in marks:
            canvas[-q:, :] = 0
        if "stripe" in marks:
            canvas[:, -q:] = (255, 220, 0)
        canvas += rng.normal(0, noise, canvas.shape)
        images[i] = np.clip(canvas, 0, 255).astype(np.uint8)
        item = [("mark", m) for m in marks]
        if colour:
            item.append(("colour", colour))
        traits.append(item)
    return images, traits
