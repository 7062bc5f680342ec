"""Generation speed of a published generator, through the serving path (``load_generator``).

    python bench/generate.py --raw [--resolution 64] [--batch 64] [--seconds 10]

``--raw``: the generator alone, from an exported artifact loaded as the generation worker loads
it: throughput in images/s at a batch size, and single-image latency (p50/p95, seed to pixels).
Weights are freshly initialised: speed does not depend on what a network learned.
Further modes (end to end: request, worker, storage) plug into ``MODES``.

Prints one JSON object per line.
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

import numpy as np

from gan_app.gan import GANConfig, build_generator, export_generator, load_generator
from gan_app.gan.runtime import resolve_runtime


def fresh_generator(resolution: int):
    """A default-width generator for ``resolution``, exported and loaded like a published one."""
    config = GANConfig(resolution=resolution)
    artifact = io.BytesIO()
    export_generator(build_generator(config), artifact, config=config.to_dict(), epoch=0)
    return load_generator(artifact.getvalue()), config


def bench_raw(args) -> list[dict]:
    generator, config = fresh_generator(args.resolution)
    base = {
        "bench": "generate",
        "mode": "raw",
        "resolution": args.resolution,
        "g_width": config.g_width,
        "parameters": generator.model.count_params(),
        "device": resolve_runtime(config).device,
        # The CPU is shared: a load average above the core count means the figures are low.
        "load_average": round(os.getloadavg()[0], 2),
        "cpu_cores": os.cpu_count(),
    }
    seeds = list(range(args.batch))
    generator.generate(seeds)  # traces the inference graph
    done, started, cpu = 0, time.monotonic(), time.process_time()
    while time.monotonic() - started < args.seconds:
        generator.generate([s + done for s in seeds])
        done += args.batch
    throughput = done / (time.monotonic() - started)
    cpu_seconds = time.process_time() - cpu

    latencies = []
    generator.generate([10**9])
    for seed in range(args.latency_samples):
        started = time.perf_counter()
        generator.generate([seed])
        latencies.append(time.perf_counter() - started)
    p50, p95 = np.percentile(latencies, [50, 95]) * 1000
    return [
        {
            **base,
            "batch": args.batch,
            "images_per_second": round(throughput, 1),
            "images_per_cpu_second": round(done / cpu_seconds, 1),
            "target": 500,
        },
        {
            **base,
            "batch": 1,
            "samples": len(latencies),
            "latency_ms_p50": round(float(p50), 2),
            "latency_ms_p95": round(float(p95), 2),
        },
    ]


MODES = {"raw": bench_raw}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--raw", dest="mode", action="store_const", const="raw")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args()
    for figures in MODES[args.mode or "raw"](args):
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
