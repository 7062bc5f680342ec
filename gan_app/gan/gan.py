"""The DCGAN training model: a generator and a discriminator trained against each other."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .config import GANConfig
from .data import diff_augment
from .models import (
    build_conditional_discriminator,
    build_conditional_generator,
    build_discriminator,
    build_generator,
)
from .runtime import Runtime, resolve_runtime


class DCGAN(keras.Model):
    """Trains ``generator`` and ``discriminator`` on batches of uint8 images, an epoch at a
    time with ``train_epoch`` (``fit`` works too).

    Logged metrics per epoch: ``g_loss``, ``d_loss`` and the discriminator's mean output on
    real (``d_real``) and generated (``d_fake``) images.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        latent_dim: int,
        *,
        label_smoothing: float = 0.1,
        augment: bool = False,
        seed: int = 0,
        loss: str = "bce",
        r1_gamma: float = 0.0,
        ema_decay: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.loss = loss
        self.r1_gamma = r1_gamma
        self.ema_decay = ema_decay
        # The moving average of G's weights that samples and gets published: it averages out
        # the step-to-step jitter of adversarial training (speckles, colour flicker).
        self.ema_generator = _clone(generator) if ema_decay > 0 else None
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")

    def compile(self, d_optimizer, g_optimizer, loss_fn=None, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn or keras.losses.BinaryCrossentropy(from_logits=True)
        # Built now, not at the first step, so a checkpoint can be restored before training.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return [self.g_loss_tracker, self.d_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def train_step(self, real_images):
        # Scale uint8 pixels to the generator's tanh range [-1, 1].
        real_images = tf.cast(real_images, "float32") / 127.5 - 1.0
        batch_size = tf.shape(real_images)[0]
        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

        # One forward pass feeds both losses (as in the TensorFlow DCGAN tutorial the original
        # project started from); the discriminator sees real and fake images as separate
        # batches, so its batch norm never mixes their statistics.
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake_images = self.generator(latent, training=True)
            real_logits, penalty = self._real_logits(
                real_images, lambda x: self.discriminator(x, training=True)
            )
            fake_logits = self.discriminator(self._augment(fake_images), training=True)
            d_loss, g_loss = self._adversarial_losses(real_logits, fake_logits)
            d_loss += penalty
            scaled_d_loss = self.d_optimizer.scale_loss(d_loss)
            scaled_g_loss = self.g_optimizer.scale_loss(g_loss)

        self._apply(d_tape, g_tape, scaled_d_loss, scaled_g_loss)
        self._track(d_loss, g_loss, real_logits, fake_logits)
        return {m.name: m.result() for m in self.metrics}

    def train_epoch(self, batches, epoch: int) -> dict[str, float]:
        """Train on epoch ``epoch`` of ``batches`` (an ``EpochBatches``); return the epoch's
        metrics as ``fit`` reports them (each tracker's mean over the epoch's steps).

        The same steps and figures as ``fit(epochs=1)``, in one compiled call per epoch: the
        loop over the steps and the batch gathers run inside the graph. ``fit`` builds a data
        adapter, a dataset iterator and callbacks on every call, and even a plain call of the
        compiled step per batch pays Python and conversion costs each step; with epochs of a
        few steps on a 2-core CPU the whole-epoch graph trains 1.5-2x faster than either.
        """
        cached = getattr(self, "_epoch_function", None)
        if cached is None or cached[0] is not batches:
            cached = self._epoch_function = (batches, self._compile_epoch(batches))
        self.reset_metrics()
        cached[1](tf.constant(batches.order(epoch)))
        return {name: float(value) for name, value in self.get_metrics_result().items()}

    def _compile_epoch(self, batches):
        images, labels = batches.tensors()

        def run_epoch(order):
            for step in tf.range(tf.shape(order)[0]):
                rows = order[step]
                batch = tf.gather(images, rows)
                self.train_step(batch if labels is None else (batch, tf.gather(labels, rows)))
            return tf.constant(0)

        return tf.function(run_epoch, jit_compile=bool(self.jit_compile), reduce_retracing=True)

    def _real_logits(self, real_images, judge):
        """D's logits on the (augmented) real batch, and the R1 penalty on them (0 when off).

        R1 (Mescheder et al. 2018) penalises the gradient of D on real data, which keeps D
        smooth around the real images so G is pulled to them rather than past them.
        """
        images = self._augment(real_images)
        if self.r1_gamma <= 0:
            return judge(images), 0.0
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = judge(images)
            total = tf.reduce_sum(_first(outputs))  # inside the tape, or it has no gradient
        gradients = tape.gradient(total, images)
        penalty = tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))
        return outputs, 0.5 * self.r1_gamma * penalty

    def _adversarial_losses(self, real_logits, fake_logits):
        """(d_loss, g_loss) for the configured loss."""
        if self.loss == "hinge":
            # Hinge (Lim & Ye 2017; SAGAN): D only cares about margins, G raises D's score.
            d_loss = tf.reduce_mean(tf.nn.relu(1.0 - real_logits)) + tf.reduce_mean(
                tf.nn.relu(1.0 + fake_logits)
            )
            return d_loss, -tf.reduce_mean(fake_logits)
        # One-sided label smoothing: real targets below 1 keep D from overconfidence.
        real_targets = tf.fill(tf.shape(real_logits), 1.0 - self.label_smoothing)
        d_loss = self.loss_fn(real_targets, real_logits) + self.loss_fn(
            tf.zeros_like(fake_logits), fake_logits
        )
        # Non-saturating generator loss: make D call the fakes real.
        return d_loss, self.loss_fn(tf.ones_like(fake_logits), fake_logits)

    def _apply(self, d_tape, g_tape, scaled_d_loss, scaled_g_loss):
        # Each network steps with its own optimizer and learning rate (TTUR).
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        self.d_optimizer.apply(d_tape.gradient(scaled_d_loss, d_vars), d_vars)
        self.g_optimizer.apply(g_tape.gradient(scaled_g_loss, g_vars), g_vars)
        if self.ema_generator is not None:
            self._update_ema()

    def _update_ema(self):
        # Warm-up: early on the average would hold the random initial weights for thousands of
        # steps, so the decay grows with the step count up to ``ema_decay``.
        step = tf.cast(self.g_optimizer.iterations, "float32")
        decay = tf.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        trainable = {id(v) for v in self.generator.trainable_variables}
        for average, weight in zip(
            self.ema_generator.variables, self.generator.variables, strict=True
        ):
            value = tf.cast(weight, average.dtype)
            if id(weight) in trainable:
                average.assign(decay * average + (1.0 - decay) * value)
            else:
                # Batch-norm statistics are already running averages: copy them as they are.
                average.assign(value)

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator that samples grids and gets published: the average when EMA is on."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def _track(self, d_loss, g_loss, real_logits, fake_logits):
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(tf.reduce_mean(tf.sigmoid(real_logits)))
        self.d_fake_tracker.update_state(tf.reduce_mean(tf.sigmoid(fake_logits)))

    def _augment(self, images):
        return diff_augment(images, self.seed_generator) if self.augment else images

    def state_variables(self) -> dict[str, list]:
        """Every variable a checkpoint must hold for an exact resume, by group.

        The discriminator's variables include its dropout layers' RNG state, the generator's
        its batch-norm moving statistics; the optimizers' include their iteration counters.
        """
        groups = {
            "generator": list(self.generator.variables),
            "discriminator": list(self.discriminator.variables),
            "seed_generator": [self.seed_generator.state],
            "g_optimizer": list(self.g_optimizer.variables),
            "d_optimizer": list(self.d_optimizer.variables),
        }
        if self.ema_generator is not None:
            groups["ema_generator"] = list(self.ema_generator.variables)
        return groups


class ConditionalDCGAN(DCGAN):
    """A DCGAN whose batches are ``(uint8 images, multi-hot traits)`` pairs.

    The generator draws fakes for the real batch's trait rows (so it is trained on the
    collection's real trait combinations); the discriminator judges (image, traits) pairs and,
    with ``aux_weight > 0``, also reads the traits off the image: its auxiliary loss is trained
    on real images only and the generator is rewarded when its fakes are read as asked.
    Logs ``aux_loss`` (the generator's) besides the DCGAN metrics.
    """

    def __init__(
        self,
        *args,
        aux_weight: float = 1.0,
        trait_types: int = 1,
        diversity_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.aux_weight = aux_weight
        self.diversity_weight = diversity_weight
        self.trait_types = max(trait_types, 1)
        self.aux_loss_tracker = keras.metrics.Mean(name="aux_loss")

    @property
    def metrics(self):
        return [*super().metrics, self.aux_loss_tracker]

    def train_step(self, data):
        real_images, traits = data
        real_images = tf.cast(real_images, "float32") / 127.5 - 1.0
        traits = tf.cast(traits, "float32")
        batch_size = tf.shape(real_images)[0]
        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake_images = self.generator([latent, traits], training=True)
            real_outputs, penalty = self._real_logits(
                real_images, lambda x: self.discriminator([x, traits], training=True)
            )
            real_logits, real_aux = _split(real_outputs)
            fake_logits, fake_aux = self._judge(self._augment(fake_images), traits)
            d_loss, g_loss = self._adversarial_losses(real_logits, fake_logits)
            d_loss += penalty
            aux_loss = tf.constant(0.0)
            if real_aux is not None:
                # D learns to read traits from real images only (fakes would teach it their
                # mistakes); G is pushed until D reads its fakes as the requested traits.
                d_loss += self.aux_weight * self._trait_loss(traits, real_aux)
                aux_loss = self._trait_loss(traits, fake_aux)
                g_loss += self.aux_weight * aux_loss
            if self.diversity_weight > 0:
                g_loss += self.diversity_weight * self._mode_seeking(latent, traits, fake_images)
            scaled_d_loss = self.d_optimizer.scale_loss(d_loss)
            scaled_g_loss = self.g_optimizer.scale_loss(g_loss)

        self._apply(d_tape, g_tape, scaled_d_loss, scaled_g_loss)
        self._track(d_loss, g_loss, real_logits, fake_logits)
        self.aux_loss_tracker.update_state(aux_loss)
        return {m.name: m.result() for m in self.metrics}

    def _mode_seeking(self, latent, traits, fake_images):
        """Mode-seeking term (MSGAN, Mao et al. 2019) on half the batch: a second latent with
        the same traits must give an image as far from the first as the latents are apart;
        the term is small when images move with the noise, large when the traits alone decide.
        """
        half = tf.shape(latent)[0] // 2
        other = keras.random.normal(tf.shape(latent[:half]), seed=self.seed_generator)
        second = self.generator([other, traits[:half]], training=True)
        image_gap = tf.reduce_mean(tf.abs(tf.cast(second - fake_images[:half], "float32")))
        latent_gap = tf.reduce_mean(tf.abs(other - latent[:half]))
        return 1.0 / (image_gap / latent_gap + 1e-5)

    def _judge(self, images, traits):
        return _split(self.discriminator([images, traits], training=True))

    def _trait_loss(self, traits, logits):
        # Summed over units and divided by the number of trait types: about one cross-entropy
        # per type, however many values the vocabulary has.
        per_unit = tf.nn.sigmoid_cross_entropy_with_logits(labels=traits, logits=logits)
        return tf.reduce_mean(tf.reduce_sum(per_unit, axis=1)) / self.trait_types


def _first(outputs):
    return outputs[0] if isinstance(outputs, list | tuple) else outputs


def _split(outputs):
    """(logit, trait logits or None) of a (conditional) discriminator's outputs."""
    if isinstance(outputs, list | tuple) and len(outputs) == 2:
        return outputs[0], outputs[1]
    return _first(outputs), None


def _clone(generator: keras.Model) -> keras.Model:
    """A float32 copy of ``generator`` with the same weights (the EMA's starting point)."""
    clone = keras.models.clone_model(generator)
    clone.set_weights(generator.get_weights())
    clone.trainable = False
    return clone


def build_dcgan(
    config: GANConfig,
    runtime: Runtime | None = None,
    *,
    num_labels: int | None = None,
    trait_types: int = 1,
    steps_per_epoch: int | None = None,
) -> DCGAN:
    """A compiled DCGAN for ``config``: Adam(beta1) per network, XLA/mixed precision per runtime.

    ``config.conditional`` needs ``num_labels`` (the trait vocabulary's size) and gives a
    ``ConditionalDCGAN``. ``config.lr_schedule`` other than constant needs ``steps_per_epoch``.
    """
    runtime = runtime or resolve_runtime(config)
    dtype = None if runtime.dtype_policy == "float32" else runtime.dtype_policy
    seed = int(np.random.SeedSequence([config.seed, 4]).generate_state(1)[0] % 2**31)
    common = {
        "label_smoothing": config.label_smoothing,
        "augment": config.augment,
        "seed": seed,
        "loss": config.loss,
        "r1_gamma": config.r1_gamma,
        "ema_decay": config.ema_decay,
    }
    if config.conditional:
        if not num_labels:
            raise ValueError("a conditional DCGAN needs the trait vocabulary's size (num_labels)")
        model = ConditionalDCGAN(
            build_conditional_generator(config, num_labels, dtype=dtype),
            build_conditional_discriminator(config, num_labels, dtype=dtype),
            config.latent_dim,
            aux_weight=config.aux_weight,
            trait_types=trait_types,
            diversity_weight=config.diversity_weight,
            **common,
        )
    else:
        model = DCGAN(
            build_generator(config, dtype=dtype),
            build_discriminator(config, dtype=dtype),
            config.latent_dim,
            **common,
        )
    model.compile(
        d_optimizer=_adam(_rate(config.d_learning_rate, config, steps_per_epoch), config, runtime),
        g_optimizer=_adam(_rate(config.g_learning_rate, config, steps_per_epoch), config, runtime),
        jit_compile=runtime.xla,
    )
    return model


def _rate(learning_rate: float, config: GANConfig, steps_per_epoch: int | None):
    """The constant rate, or a cosine decay to 10% of it over the run's optimizer steps."""
    if config.lr_schedule == "constant":
        return learning_rate
    if not steps_per_epoch:
        raise ValueError(f"lr_schedule {config.lr_schedule!r} needs steps_per_epoch")
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.1
    )


def _adam(learning_rate: float, config: GANConfig, runtime: Runtime):
    optimizer = keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=config.beta_1, beta_2=config.beta_2
    )
    if runtime.dtype_policy == "mixed_float16":
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
