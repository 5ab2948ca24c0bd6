import numpy as np
import pytest

import models


def weights_of(model):
    # Kernels and biases only: Dropout's RNG state is a variable too, and it advances on every call.
    values = [w.numpy().copy() for w in model.weights if w.name in ("kernel", "bias", "gamma", "beta")]
    assert values, f"{model.name} has no kernels to compare"
    return values


def changed(before, model):
    return any(not np.array_equal(a, b) for a, b in zip(before, weights_of(model)))


def test_legacy_parameter_counts_match_the_article():
    generator, discriminator, _ = models.build_gan(models.PRESETS["legacy"])
    assert generator.count_params() == 840_705
    assert discriminator.count_params() == 212_865
    assert generator.output_shape == (None, 28, 28, 1)


def test_discriminator_learns_on_its_step_and_is_untouched_on_the_gan_step():
    generator, discriminator, gan = models.build_gan(models.PRESETS["legacy"])
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    labels = np.array([0] * 8 + [1] * 8, "float32")[:, None]
    noise = rng.normal(size=(8, 100)).astype("float32")
    for _ in range(2):  # the second round runs the cached, already traced train functions
        d_before, g_before = weights_of(discriminator), weights_of(generator)
        loss, acc_real, acc_fake = models.train_discriminator(discriminator, images, labels)
        assert changed(d_before, discriminator), "D did not learn on its own step"
        assert not changed(g_before, generator), "G moved on D's step"
        assert 0 <= acc_real <= 1 and 0 <= acc_fake <= 1

        d_before, g_before = weights_of(discriminator), weights_of(generator)
        models.train_generator(gan, discriminator, noise, np.ones((8, 1), "float32"))
        assert not changed(d_before, discriminator), "D moved on the GAN step"
        assert changed(g_before, generator), "G did not learn on the GAN step"


def test_the_keras3_trap_is_real_without_the_unfreeze():
    # Guards the reason for train_discriminator: a D.train_on_batch traced while D is frozen learns nothing.
    _, discriminator, _ = models.build_gan(models.PRESETS["legacy"])
    assert discriminator.trainable is False
    before = weights_of(discriminator)
    with pytest.warns(UserWarning, match="does not have any trainable weights"):
        discriminator.train_on_batch(np.zeros((4, 28, 28, 1), "float32"), np.ones((4, 1), "float32"))
    assert not changed(before, discriminator)


def test_accuracy_metrics_split_real_and_fake():
    acc_real, acc_fake = models.real_fake_accuracy(logits=False)
    y_true = np.array([[0.0], [0.0], [1.0], [1.0]], "float32")
    y_pred = np.array([[0.1], [0.9], [0.8], [0.7]], "float32")  # fakes: 1 of 2 right; reals: 2 of 2 right
    assert float(acc_real(y_true, y_pred)) == 1.0
    assert float(acc_fake(y_true, y_pred)) == 0.5
    acc_real, acc_fake = models.real_fake_accuracy(logits=True)
    assert float(acc_fake(y_true, np.array([[-2.0], [-1.0], [3.0], [-0.5]], "float32"))) == 1.0


def test_settled_batchnorm_uses_current_statistics_and_restores_the_trailing_ones():
    import tensorflow as tf

    preset = models.PRESETS["uniform"]
    generator, _, _ = models.build_gan(preset)
    z = models.make_sampler(preset.noise, preset.latent, tf.random.Generator.from_seed(1))(64)
    stale = np.asarray(generator(z, training=False))  # moving averages still at their initial 0 and 1
    with models.settled_batchnorm(generator, preset.noise, preset.latent) as settled:
        fresh = np.asarray(settled(z, training=False))
        assert all(layer.momentum == 0.99 for layer in generator.layers if "batch_normalization" in layer.name)
    # Settled, the inference-mode outputs spread like the training-mode ones instead of saturating.
    after = np.asarray(generator(z, training=False))
    np.testing.assert_array_equal(after, stale)  # back to the trailing averages on the way out
    assert abs(fresh.std() - np.asarray(generator(z, training=True)).std()) < 0.25 * fresh.std()
    assert not np.allclose(fresh, stale)


def test_generator_average_follows_the_weights_and_swaps_in_and_out():
    generator, _, _ = models.build_gan(models.PRESETS["uniform"])
    average = models.GeneratorAverage(generator, decay=0.5)
    start = [w.numpy().copy() for w in generator.trainable_weights]
    for w in generator.trainable_weights:
        w.assign(w + 1.0)
    average.update()  # first update: decay min(0.5, 2/11), so the average moves 9/11 of the way
    expected = [s + 9 / 11 for s in start]
    for a, e in zip(average.weights, expected):
        np.testing.assert_allclose(a.numpy(), e, rtol=1e-6, atol=1e-6)
    average.update()  # second: min(0.5, 3/12) = 0.25, towards weights that stayed at start + 1
    expected = [0.25 * e + 0.75 * (s + 1) for e, s in zip(expected, start)]
    for a, e in zip(average.weights, expected):
        np.testing.assert_allclose(a.numpy(), e, rtol=1e-6, atol=1e-6)

    with average.swapped_in() as swapped:
        for w, e in zip(swapped.trainable_weights, expected):
            np.testing.assert_allclose(w.numpy(), e, rtol=1e-6, atol=1e-6)
    for w, s in zip(generator.trainable_weights, start):  # the trained weights are back
        np.testing.assert_array_equal(w.numpy(), s + 1)


def test_label_noise_keeps_labels_in_zero_one_where_bce_has_a_floor():
    import keras
    import tensorflow as tf

    labels = tf.concat([tf.zeros((500, 1)), tf.ones((500, 1))], axis=0)
    soft = models.jittered_labels(labels, 0.05, tf.random.Generator.from_seed(0)).numpy()
    fakes, reals = soft[:500], soft[500:]
    assert 0 <= fakes.min() and fakes.max() < 0.05 and fakes.std() > 0.01
    assert 0.95 < reals.min() and reals.max() <= 1 and reals.std() > 0.01
    # Why it matters: Keras 3's BCE on a sigmoid uses its logits, and a label above 1 has no floor there.
    logit = keras.Input((1,))
    sigmoid = keras.Model(logit, keras.layers.Activation("sigmoid")(logit))
    sure_it_is_real = sigmoid(np.full((500, 1), 1e4, np.float32))
    bce = keras.losses.BinaryCrossentropy()
    assert float(bce(reals, sure_it_is_real)) >= 0
    assert float(bce(np.full((500, 1), 1.05), sure_it_is_real)) < -100  # 1 + noise: the surer, the lower
