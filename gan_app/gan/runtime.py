"""Where training runs and what that implies: mixed precision and XLA only on a GPU."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import tensorflow as tf

from .config import GANConfig


@dataclass(frozen=True)
class Runtime:
    device: str  # "cpu" or the GPU's name, for reports and benchmarks
    gpu: bool
    dtype_policy: str  # "float32", "mixed_bfloat16" or "mixed_float16"
    xla: bool

    def describe(self) -> dict:
        return {"device": self.device, "dtype_policy": self.dtype_policy, "xla": self.xla}


@lru_cache(maxsize=1)
def _gpu() -> tuple[str, tuple[int, int]] | None:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    name = details.get("device_name", "GPU")
    return f"{name} x{len(gpus)}" if len(gpus) > 1 else name, details.get(
        "compute_capability", (0, 0)
    )


def resolve_runtime(config: GANConfig) -> Runtime:
    """ "auto" turns mixed precision and XLA on exactly when a GPU is present.

    On CPU both cost more than they save (no fast half-precision units; XLA recompiles per
    shape) and keeping float32 on CPU keeps training reproducible bit for bit.
    """
    gpu = _gpu()
    on_gpu = gpu is not None
    mixed = config.mixed_precision == "on" or (config.mixed_precision == "auto" and on_gpu)
    xla = config.xla == "on" or (config.xla == "auto" and on_gpu)
    policy = "float32"
    if mixed:
        # bfloat16 needs no loss scaling; older GPUs (before Ampere) only do float16 fast.
        capability = gpu[1] if gpu else (0, 0)
        policy = "mixed_bfloat16" if not on_gpu or capability >= (8, 0) else "mixed_float16"
    return Runtime(device=gpu[0] if gpu else "cpu", gpu=on_gpu, dtype_policy=policy, xla=xla)


def skip_remapper() -> None:
    """Turn off grappler's remapper for this process's training graphs.

    The remapper tries to fuse Conv2D + BiasAdd + LeakyRelu in the discriminator, but the
    LeakyRelu's gradient (LeakyReluGrad) still reads the BiasAdd it fused away, so the pass gives
    up on the whole graph and TensorFlow logs "remapper failed: ... fanout ... LeakyReluGrad
    exist for missing node ... BiasAdd" at error level on every run. Skipping the pass changes
    nothing else: it had already abandoned these graphs.
    """
    tf.config.optimizer.set_experimental_options({"remapping": False})
