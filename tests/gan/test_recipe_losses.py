"""The recipe's loss terms on tiny models: hinge and R1 values, the cosine learning-rate decay."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_app.gan import ConfigError, GANConfig, Trainer
from gan_app.gan.gan import build_dcgan
from gan_app.gan.training import TrainingSetTooSmall

from .test_recipes import blobs, tiny


def test_it_computes_the_hinge_losses():
    model = build_dcgan(tiny("seed-dcgan", loss="hinge"))
    real = tf.constant([[2.0], [0.5]])
    fake = tf.constant([[-2.0], [0.0]])
    d_loss, g_loss = model._adversarial_losses(real, fake)
    # D: mean(relu(1 - [2, .5])) + mean(relu(1 + [-2, 0])) = 0.25 + 0.5; G: -mean(fake) = 1.
    assert float(d_loss) == pytest.approx(0.75)
    assert float(g_loss) == pytest.approx(1.0)


def test_it_penalises_the_discriminator_gradient_on_real_images():
    model = build_dcgan(tiny("seed-dcgan", r1_gamma=2.0, dropout=0.0))
    images = tf.random.stateless_uniform((4, 32, 32, 3), seed=(1, 2), minval=-1, maxval=1)

    def judge(x):
        return model.discriminator(x, training=False)

    _, penalty = model._real_logits(images, judge)
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(judge(images))
    squared = tf.reduce_sum(tf.square(tape.gradient(total, images)), axis=[1, 2, 3])
    assert float(penalty) == pytest.approx(float(tf.reduce_mean(squared)), rel=1e-5)
    assert float(penalty) > 0

    plain = build_dcgan(tiny("seed-dcgan"))
    _, none = plain._real_logits(images, lambda x: plain.discriminator(x, training=False))
    assert none == 0.0


def test_it_decays_the_learning_rates_over_the_run():
    trainer = Trainer(tiny("seed-dcgan", lr_schedule="cosine", epochs=2), blobs())
    rate = trainer.model.g_optimizer.learning_rate
    start = float(keras.ops.convert_to_numpy(rate))
    trainer.run()
    end = float(keras.ops.convert_to_numpy(trainer.model.g_optimizer.learning_rate))
    assert start == pytest.approx(GANConfig().g_learning_rate)
    assert end == pytest.approx(0.1 * start, rel=1e-4)


def test_it_resumes_a_scheduled_run_exactly():
    config = tiny("seed-dcgan", lr_schedule="cosine", epochs=3)
    straight = Trainer(config, blobs())
    straight.run()
    first = Trainer(config, blobs())
    first.run(max_epochs=2)
    resumed = Trainer.resume(first.checkpoint().data, blobs())
    resumed.run()
    for a, b in zip(straight.generator.weights, resumed.generator.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_it_names_a_bad_schedule_and_a_set_too_small_for_its_batch():
    with pytest.raises(ConfigError, match=r"lr_schedule must be one of .* got 'linear'"):
        GANConfig(lr_schedule="linear")
    with pytest.raises(TrainingSetTooSmall, match="3 image\\(s\\), fewer than the batch size 8"):
        Trainer(tiny("nff"), blobs(3))


def test_it_loads_a_stored_config_from_before_the_recipes():
    stored = GANConfig().to_dict()
    for newer in ("preset", "ema_decay", "loss", "r1_gamma", "diversity_weight", "lr_schedule"):
        stored.pop(newer)
    assert GANConfig.from_dict(stored) == GANConfig()
