"""Where training runs and what that implies (mixed precision and XLA only on a GPU), and the
process-wide numerics every graph of this package runs with (``pin_numerics``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import keras
import numpy as np
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

    On CPU "auto" keeps float32 and no XLA. XLA costs far more than it saves there (measured:
    a minute to compile, then ~30x slower epochs). Mixed bfloat16 is faster on CPUs with AMX
    (measured here: +9 to +25% training images/s, ``docs/training.md``, "Training
    speed on CPU") but changes the numbers a run trains with, so a CPU run asks for it with
    ``mixed_precision="on"``.
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


def pin_numerics() -> None:
    """Give every process the same graph rewrites, whatever TensorFlow work it did before.

    Grappler's options are process-wide and read each time a graph runs, so they are part of
    the numbers: with the remapper on, a generator's Dense + BiasAdd + tanh runs as one fused
    kernel, with it off as three, and the two differ in the last bit of some pixels (which a
    rounding to uint8 sometimes shows). Training turned it off for its own sake, so a process
    that had trained drew other bytes for the same seed than a fresh one. The package applies
    this once on import, before any of its graphs runs, so every process agrees.

    Why off: the remapper tries to fuse Conv2D + BiasAdd + LeakyRelu in the discriminator, but
    the LeakyRelu's gradient (LeakyReluGrad) still reads the BiasAdd it fused away, so the pass
    gives up on the whole graph and TensorFlow logs "remapper failed: ... fanout ...
    LeakyReluGrad exist for missing node ... BiasAdd" at error level on every training run.
    """
    tf.config.optimizer.set_experimental_options({"remapping": False})


def fixed_shape_batches(function, arrays, batch: int):
    """``function(*chunks)`` over the rows of ``arrays`` in chunks of exactly ``batch`` rows (the
    last padded with zero rows), each result cut back to the real rows and concatenated.

    oneDNN picks a convolution's algorithm by the batch size, the thread count and the CPU:
    with a few rows it may split the sum over input channels between threads (a generator's
    last transposed convolution, with its 3 output channels, is where it shows), so a seed
    drawn alone gave other pixels than the same seed in a batch. Which thread counts do it
    depends on the CPU (here 3, 16 and 32 threads did, 2 and 8 did not; a 2-core CI machine
    did at its default), so no machine is exempt: one shape for every call makes a row's
    result independent of the rows that came with it. Callers keep ``batch`` small enough
    that a lone row's padding costs little.
    ``function`` returns one array or a tuple of them; the results are NumPy arrays. Needs at
    least one row.
    """
    arrays = [np.asarray(a) for a in arrays]
    total = len(arrays[0])
    if not total:
        raise ValueError("fixed_shape_batches needs at least one row")
    parts = []
    for start in range(0, total, batch):
        chunks = [a[start : start + batch] for a in arrays]
        rows = len(chunks[0])
        if rows < batch:
            chunks = [
                np.concatenate([c, np.zeros((batch - rows, *c.shape[1:]), c.dtype)]) for c in chunks
            ]
        result = function(*chunks)
        results = result if isinstance(result, tuple) else (result,)
        parts.append([np.asarray(r)[:rows] for r in results])
    joined = tuple(np.concatenate(column) for column in zip(*parts, strict=True))
    return joined if len(joined) > 1 else joined[0]


def rowwise_dense(model) -> None:
    """Make every 2-D ``Dense`` layer of ``model`` multiply each row on its own (in place).

    A ``Dense`` layer is one matrix product over the whole batch, and the product's kernel
    handles the rows of a block in different ways: on some CPUs (an AMD EPYC here, at every
    thread count) rows 7 and 8 of an 8-row pass come from a tail kernel that sums in another
    order than rows 1-6, so a seed drawn in one position of a pass gave a last bit, and
    sometimes a pixel, different from the same seed in another. The convolutions compute
    each image alone and are not affected. Multiplied row by row (the same 1-row product for
    every row, unrolled over the pass's fixed rows: the caller traces with a static batch, as
    ``LoadedGenerator`` does for ``fixed_shape_batches``; an unknown batch keeps the batch
    product) a row's result cannot depend on its position or its neighbours. For serving
    only: training keeps the batch product.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.call = _rowwise_call(layer, layer.call)


def _rowwise_call(layer, batch_call):
    def call(inputs, *args, **kwargs):
        if len(inputs.shape) != 2 or inputs.shape[0] is None:  # no fixed rows to unroll
            return batch_call(inputs, *args, **kwargs)
        kernel = layer.kernel
        rows = tf.concat([tf.matmul(row, kernel) for row in tf.split(inputs, inputs.shape[0])], 0)
        if layer.use_bias:
            rows = rows + layer.bias
        return layer.activation(rows) if layer.activation is not None else rows

    return call
