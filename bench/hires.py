"""The seed's main model size, 128 px, on smooth (not pixel-art) images: speed, a grid, GPU time.

    python bench/hires.py [--minutes 10] [--tokens 512] [--resolution 128] [--preset nff]
                          [--out var/bench/hires]

Draws a synthetic collection of smooth, anti-aliased, shaded "portraits" (drawn at 4x and
area-downsampled, so thousands of colours: not pixel art, never trained "native"), trains the
preset for ``--minutes`` of process CPU time, saves the 8x8 sample grid, and prints JSON lines:
training images/s, generation images/s, and the networks' FLOPs per training image with the
expected time for 10,000 images x 500 epochs on one modern GPU at a stated sustained rate.
"""

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from gan_app.gan import GANConfig, Trainer, load_generator, prepare_images
from gan_app.gan.sampling import make_grid, to_png

ROOT = Path(__file__).resolve().parent.parent
# Sustained throughput assumed for the estimate: 10% of an H100's ~400 TFLOP/s dense bf16
# peak. Narrow DCGAN convolutions keep tensor cores far from busy (kernel launches, memory
# bound batch norm); the FLOP count alone (at peak) gives the lower bound printed beside it.
GPU_PEAK_TFLOPS = 400.0
GPU_SUSTAINED_TFLOPS = 40.0
GPU_NAME = "one NVIDIA H100 (bf16 mixed precision, 10% of dense peak sustained)"


def portrait(rng, size):
    """A shaded head with hair, eyes and a coloured backdrop, drawn at 4x then downsampled."""
    big = size * 4
    hue = rng.uniform(0, 1)
    top = tuple(int(c) for c in 255 * np.array([hue, 0.6, 1 - hue]) * rng.uniform(0.5, 1))
    image = Image.linear_gradient("L").resize((big, big)).convert("RGB")
    image = Image.blend(Image.new("RGB", (big, big), top), image, 0.35)
    draw = ImageDraw.Draw(image)
    skin = tuple(int(v) for v in rng.choice([[241, 194, 160], [198, 134, 66], [141, 85, 36]]))
    cx, cy = big // 2 + rng.integers(-big // 12, big // 12), big // 2 + big // 10
    rx, ry = big // 4 + rng.integers(-big // 20, big // 20), big // 3
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=skin)
    hair = tuple(int(v) for v in rng.integers(0, 160, 3))
    draw.chord((cx - rx - 8, cy - ry - 10, cx + rx + 8, cy + ry // 3), 180, 360, fill=hair)
    for side in (-1, 1):
        ex = cx + side * rx // 2
        draw.ellipse((ex - 14, cy - 12, ex + 14, cy + 12), fill=(255, 255, 255))
        draw.ellipse((ex - 7, cy - 7, ex + 7, cy + 7), fill=tuple(rng.integers(0, 120, 3).tolist()))
    mouth = cy + ry // 2
    draw.arc(
        (cx - rx // 2, mouth - 20, cx + rx // 2, mouth + 20), 20, 160, fill=(120, 30, 40), width=8
    )
    image = image.filter(ImageFilter.GaussianBlur(2))
    return image.resize((size, size), Image.Resampling.BOX)


def collection(count, size, seed=0):
    rng = np.random.default_rng(seed)
    named = []
    for i in range(count):
        buffer = io.BytesIO()
        portrait(rng, size).save(buffer, format="PNG")
        named.append((f"portrait {i}", buffer.getvalue()))
    return named


def conv_flops(model):
    """Multiply-adds x2 of every (transposed) convolution and dense layer, per image."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * h * w * c_in * k * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * h * w * c_out * k * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="CPU minutes of training")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--preset", default="nff")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "hires")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    named = collection(args.tokens, args.resolution)
    (args.out / "real.png").write_bytes(
        to_png(
            make_grid(np.stack([np.asarray(Image.open(io.BytesIO(d))) for _, d in named[:16]]), 4)
        )
    )
    config = GANConfig.from_preset(
        args.preset,
        resolution=args.resolution,
        epochs=1_000_000,
        batch_size=32,
        seed=1,
        conditional=False,  # the synthetic portraits carry no traits
    )
    images = prepare_images(named, config)
    trainer = Trainer(config, images)
    started = time.process_time()
    while time.process_time() - started < args.minutes * 60:
        trainer.train_epoch()
    rates = [h["images_per_second"] for h in trainer.history[1:]] or [0.0]

    buffer = io.BytesIO()
    trainer.export_generator(buffer)
    generator = load_generator(buffer.getvalue())
    generator.generate([0])
    t0 = time.perf_counter()
    generator.generate(range(256))
    generate_rate = 256 / (time.perf_counter() - t0)
    (args.out / f"grid-{args.resolution}.png").write_bytes(
        to_png(make_grid(generator.generate(range(16)), 4))
    )

    g_flops = conv_flops(trainer.model.generator)
    d_flops = conv_flops(trainer.model.discriminator)
    # Per training image: G forward + backward (~3x forward), D on a real and a fake image
    # forward + backward (~2 x 3x forward); EMA and optimizer updates are negligible.
    step_flops = 3 * g_flops + 6 * d_flops
    total = step_flops * 10_000 * 500
    print(
        json.dumps(
            {
                "bench": "hires",
                "resolution": args.resolution,
                "preset": args.preset,
                "tokens": args.tokens,
                "resize": images.resize,
                "cpu_minutes": round((time.process_time() - started) / 60, 2),
                "epochs": trainer.epoch,
                "train_images_per_second_cpu": round(float(np.median(rates)), 1),
                "generate_images_per_second_cpu": round(generate_rate, 1),
                "generator_gflops_per_image": round(g_flops / 1e9, 3),
                "discriminator_gflops_per_image": round(d_flops / 1e9, 3),
                "train_gflops_per_image": round(step_flops / 1e9, 3),
                "10k_x_500_epochs_pflops": round(total / 1e15, 1),
                "gpu": GPU_NAME,
                "10k_x_500_epochs_gpu_minutes_at_peak": round(
                    total / (GPU_PEAK_TFLOPS * 1e12) / 60, 2
                ),
                "10k_x_500_epochs_gpu_minutes": round(
                    total / (GPU_SUSTAINED_TFLOPS * 1e12) / 60, 1
                ),
                "10k_x_500_epochs_this_cpu_hours": round(
                    10_000 * 500 / float(np.median(rates)) / 3600, 1
                ),
                "load_average": os.getloadavg()[0],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
