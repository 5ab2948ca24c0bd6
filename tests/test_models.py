import zipfile

import keras
import numpy as np
import pytest

import models
from machinery import averaging, backends, presets, sampling, subpixel, train_step
from conftest import BACKEND_NEUTRAL, EVERY_BACKEND

pytestmark = EVERY_BACKEND  # what each backend computes: the trap, the loss, the sub-pixel layer, the step


def weights_of(model):
    # Kernels and biases only: Dropout's RNG state is a variable too, and it advances on every call.
    values = [keras.ops.convert_to_numpy(w).copy() for w in model.weights
              if w.name in ("kernel", "bias", "gamma", "beta")]
    assert values, f"{model.name} has no kernels to compare"
    return values


def changed(before, model):
    return any(not np.array_equal(a, b) for a, b in zip(before, weights_of(model)))


def test_legacy_parameter_counts_match_the_article():
    generator, discriminator, _ = models.build_gan(presets.PRESETS["legacy"])
    assert generator.count_params() == 840_705
    assert discriminator.count_params() == 212_865
    assert generator.output_shape == (None, 28, 28, 1)


@pytest.mark.parametrize("name", ["legacy", "wgan"])  # wgan: D is a critic holding D's layers
def test_discriminator_learns_on_its_step_and_is_untouched_on_the_gan_step(name):
    # The Keras 3 trap, on whichever backend the suite runs (CI runs it under TensorFlow and under JAX).
    generator, discriminator, gan = models.build_gan(presets.PRESETS[name])
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
    # Guards the reason for train_discriminator: D.train_on_batch while D is frozen never trains D.
    # TensorFlow and PyTorch run a step with no trainable weights and learn nothing, with one warning;
    # JAX refuses, because D's optimizer was built over D's weights.
    _, discriminator, _ = models.build_gan(presets.PRESETS["legacy"])
    assert discriminator.trainable is False
    before = weights_of(discriminator)
    images, labels = np.zeros((4, 28, 28, 1), "float32"), np.ones((4, 1), "float32")
    if keras.backend.backend() != "jax":
        with pytest.warns(UserWarning, match="does not have any trainable weights"):
            discriminator.train_on_batch(images, labels)
    else:
        with pytest.raises(ValueError, match="the optimizer was built with 6 variables"):
            discriminator.train_on_batch(images, labels)
    assert not changed(before, discriminator)


def test_accuracy_metrics_split_real_and_fake():
    acc_real, acc_fake = models.real_fake_accuracy()
    y_true = np.array([[0.0], [0.0], [1.0], [1.0]], "float32")
    y_pred = np.array([[-2.0], [0.5], [3.0], [0.1]], "float32")  # logits; fakes: 1 of 2 right; reals: 2 of 2
    assert float(acc_real(y_true, y_pred)) == 1.0
    assert float(acc_fake(y_true, y_pred)) == 0.5
    assert float(acc_real(y_true, np.array([[-2.0], [-1.0], [3.0], [-0.5]], "float32"))) == 0.5


def draw(generator, z, training=False):
    return keras.ops.convert_to_numpy(generator(z, training=training))


def test_settled_batchnorm_uses_current_statistics_and_restores_the_trailing_ones():
    preset = presets.PRESETS["uniform"]
    generator, _, _ = models.build_gan(preset)
    z = sampling.noise_on_host(preset.noise, 64, preset.latent, seed=1)
    stale = draw(generator, z)  # moving averages still at their initial 0 and 1
    with averaging.settled_batchnorm(generator, preset.noise, preset.latent, samples=1024) as settled:  # a run's
        fresh = draw(settled, z)
        assert all(layer.momentum == 0.99 for layer in generator.layers if "batch_normalization" in layer.name)
    # Settled, the inference-mode outputs spread like the training-mode ones instead of saturating.
    after = draw(generator, z)
    np.testing.assert_array_equal(after, stale)  # back to the trailing averages on the way out
    assert abs(fresh.std() - draw(generator, z, training=True).std()) < 0.25 * fresh.std()
    assert not np.allclose(fresh, stale)


@BACKEND_NEUTRAL
def test_the_settle_batch_is_1024_unless_the_environment_sets_a_positive_count(monkeypatch):
    assert averaging.SETTLE_SAMPLES == averaging.settle_samples()  # read at import: the suite's 64 (conftest)
    for value, samples in (("", 1024), ("64", 64), (" 64 ", 64), ("0", 1024), ("-5", 1024), ("1e3", 1024),
                           ("many", 1024), ("\u00b2", 1024)):
        monkeypatch.setenv("DCGAN_KIT_SETTLE_SAMPLES", value)
        assert averaging.settle_samples() == samples, value


def test_generator_average_follows_the_weights_and_swaps_in_and_out():
    generator, _, _ = models.build_gan(presets.PRESETS["uniform"])
    average = averaging.GeneratorAverage(generator, decay=0.5)
    start = [keras.ops.convert_to_numpy(w).copy() for w in generator.trainable_weights]
    for w in generator.trainable_weights:
        w.assign(w + 1.0)
    average.update()  # first update: decay min(0.5, 2/11), so the average moves 9/11 of the way
    expected = [s + 9 / 11 for s in start]
    for a, e in zip(average.weights, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), e, rtol=1e-6, atol=1e-6)
    average.update()  # second: min(0.5, 3/12) = 0.25, towards weights that stayed at start + 1
    expected = [0.25 * e + 0.75 * (s + 1) for e, s in zip(expected, start)]
    for a, e in zip(average.weights, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), e, rtol=1e-6, atol=1e-6)

    with average.swapped_in() as swapped:
        for w, e in zip(swapped.trainable_weights, expected):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(w), e, rtol=1e-6, atol=1e-6)
    for w, s in zip(generator.trainable_weights, start):  # the trained weights are back
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), s + 1)


def test_label_noise_keeps_labels_in_zero_one_where_bce_has_a_floor():
    labels = np.concatenate([np.zeros((500, 1)), np.ones((500, 1))]).astype("float32")
    soft = keras.ops.convert_to_numpy(train_step.jittered_labels(labels, 0.05, keras.random.SeedGenerator(0)))
    fakes, reals = soft[:500], soft[500:]
    assert 0 <= fakes.min() and fakes.max() < 0.05 and fakes.std() > 0.01
    assert 0.95 < reals.min() and reals.max() <= 1 and reals.std() > 0.01
    # Why it matters: the kit's BCE is computed from D's logit, and a label above 1 has no floor there.
    sure_it_is_real = np.full((500, 1), 1e4, np.float32)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    assert float(bce(reals, sure_it_is_real)) >= 0
    assert float(bce(np.full((500, 1), 1.05), sure_it_is_real)) < -100  # 1 + noise: the surer, the lower


@pytest.mark.parametrize("preset_name", ["kit", "conditional"])
def test_the_batch_makers_compiled_call_gives_what_predict_on_batch_does_and_leaves_it_on_the_device(preset_name):
    # kit: G makes its fakes in training mode, so each call also moves G's BatchNorm statistics and the
    # seed's state; conditional: lists in and out. Three calls each way, each way from the same start, G's
    # weights changed before the third (a compiled call must read them, not keep those it was traced with).
    preset = presets.PRESETS[preset_name]
    real = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype("float32")
    if preset.conditional:
        real = [real, np.arange(8, dtype="int32")[:, None]]
    made, states = {}, {}
    for how in ("make", "predict_on_batch"):
        keras.utils.set_random_seed(1)
        generator, _, _ = models.build_gan(preset)
        maker = train_step.BatchMaker(generator, preset.noise, seed=5, label_noise=0.1,
                                      classes=preset.classes * preset.conditional)
        maker.compile(optimizer=None, jit_compile="auto")
        outputs = [getattr(maker, how)(real) for _ in range(2)]
        last_layer = generator.trainable_weights[-1]  # as a train step would: new weights, read by the next call
        last_layer.assign(last_layer + 0.5)
        outputs.append(getattr(maker, how)(real))
        if how == "make":
            assert not any(isinstance(x, np.ndarray) for x in keras.tree.flatten(outputs))  # not via the host
        made[how] = [keras.ops.convert_to_numpy(x) for x in keras.tree.flatten(outputs)]
        states[how] = [keras.ops.convert_to_numpy(v) for v in maker.non_trainable_variables]
    per_call = 5 if preset.conditional else 3  # D's inputs (images and classes), labels, G's inputs (noise, classes)
    assert len(made["make"]) == len(made["predict_on_batch"]) == 3 * per_call
    for compiled, predicted in zip(made["make"], made["predict_on_batch"]):
        np.testing.assert_allclose(compiled, predicted, rtol=1e-5, atol=1e-6)
    for compiled, predicted in zip(states["make"], states["predict_on_batch"]):
        np.testing.assert_allclose(compiled, predicted, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(made["make"][0], made["make"][per_call])  # each call draws new fakes



def test_a_step_gives_d_fakes_labelled_0_then_reals_labelled_1_and_the_gan_noise_labelled_1(monkeypatch):
    """What the two train_on_batch calls of one classic step are given (make_train_step -> models.train_step):
    D, G's fakes labelled 0 followed by the real batch labelled 1; the GAN, fresh noise labelled 1, "real"."""
    preset = presets.PRESETS["legacy"]
    generator, discriminator, gan = models.build_gan(preset)
    given = {}
    train_d, train_g = models.train_discriminator, models.train_generator

    def spy_on_d(d, images, labels):
        given["d"] = keras.ops.convert_to_numpy(images), keras.ops.convert_to_numpy(labels)
        return train_d(d, images, labels)

    def spy_on_gan(g, d, noise, labels):
        given["gan"] = keras.ops.convert_to_numpy(noise), keras.ops.convert_to_numpy(labels)
        return train_g(g, d, noise, labels)

    monkeypatch.setattr(models, "train_discriminator", spy_on_d)
    monkeypatch.setattr(models, "train_generator", spy_on_gan)
    step = train_step.make_train_step(discriminator, gan, train_step.BatchMaker(generator, preset.noise, seed=1), 4)
    real = np.full((4, 28, 28, 1), 0.25, "float32")
    step(real)
    images, labels = given["d"]
    assert labels.ravel().tolist() == [0.0] * 4 + [1.0] * 4
    assert np.array_equal(images[4:], real) and images[:4].shape == real.shape and not np.allclose(images[:4], 0.25)
    noise, labels = given["gan"]
    assert noise.shape == (4, preset.latent) and labels.ravel().tolist() == [1.0] * 4

def test_every_backend_computes_bce_from_d_logit():
    # Through a sigmoid output, JAX and PyTorch clip the probability (loss capped at 16.1, no gradient past
    # it); the kit's D ends in a logit instead, so a sure, wrong D costs what it costs under TensorFlow.
    _, discriminator, _ = models.build_gan(presets.PRESETS["legacy"])
    assert discriminator.layers[-1].activation is keras.activations.linear
    sure_and_wrong = np.full((4, 1), 100.0, np.float32)
    assert float(discriminator.loss(np.zeros((4, 1), np.float32), sure_and_wrong)) == pytest.approx(100.0)


@pytest.mark.parametrize("preset_name", ["kit", "conditional", "demo"])
def test_a_portable_copy_of_a_mixed_precision_generator_draws_the_same_images_in_float32_plain_keras(preset_name):
    preset = presets.PRESETS[preset_name]
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    generator = models.build_models(preset, preset.latent)[0]
    keras.mixed_precision.set_global_policy("float32")
    copy = models.portable_copy(generator)
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in generator.layers}  # its output layer: float32
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    assert not any(isinstance(layer, subpixel.SubpixelConv2DTranspose) for layer in copy.layers)
    for ours, theirs in zip(generator.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    noise = np.random.default_rng(0).uniform(-1, 1, (8, preset.latent)).astype("float32")
    inputs = [noise, np.arange(8)[:, None] % preset.classes] if preset.conditional else noise
    drawn_in_bfloat16 = keras.ops.convert_to_numpy(generator(inputs))  # PyTorch's tensors track gradients:
    drawn_in_float32 = keras.ops.convert_to_numpy(copy(inputs))        # np.asarray would refuse them
    assert drawn_in_float32.dtype == np.float32
    assert np.abs(drawn_in_float32 - drawn_in_bfloat16).max() < 0.1  # bfloat16 keeps 8 bits of mantissa
    assert np.abs(drawn_in_float32 - drawn_in_bfloat16).max() > 0  # and they are not the same computation


def upsampler(layer_class, kernel_size, use_bias, activation):
    """One stride-2 transposed convolution, as G uses them, trained by plain SGD (so a step shows its gradient)."""
    model = keras.Sequential([keras.Input((7, 7, 3)), layer_class(2, kernel_size, strides=2, padding="same",
                                                                  use_bias=use_bias, activation=activation)])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    return model


@pytest.mark.parametrize("kernel_size, use_bias, activation", [(5, False, None), (5, True, "tanh"), (4, True, None),
                                                               (3, False, "selu"), (1, True, None)])
def test_the_subpixel_layer_computes_and_learns_what_keras_conv2d_transpose_does(kernel_size, use_bias, activation):
    keras_layer = upsampler(keras.layers.Conv2DTranspose, kernel_size, use_bias, activation)
    sub_pixel = upsampler(subpixel.SubpixelConv2DTranspose, kernel_size, use_bias, activation)
    rng = np.random.default_rng(0)
    sub_pixel.set_weights([rng.normal(size=w.shape).astype("float32") for w in keras_layer.get_weights()])
    keras_layer.set_weights(sub_pixel.get_weights())
    images = rng.normal(size=(4, 7, 7, 3)).astype("float32")
    drawn = np.asarray(keras_layer.predict_on_batch(images))
    assert drawn.shape == (4, 14, 14, 2)
    np.testing.assert_allclose(np.asarray(sub_pixel.predict_on_batch(images)), drawn, atol=1e-4)
    targets = rng.normal(size=drawn.shape).astype("float32")
    before = sub_pixel.get_weights()[0]
    for model in (keras_layer, sub_pixel):  # one step of SGD with rate 1: the weights move by the gradient
        model.train_on_batch(images, targets)
    for ours, theirs in zip(sub_pixel.get_weights(), keras_layer.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert np.abs(sub_pixel.get_weights()[0] - before).max() > 1e-2  # it did learn, by the same step


def test_g_uses_the_subpixel_layer_where_it_pays_and_saves_as_keras_conv2d_transpose(tmp_path):
    generator = models.build_models(presets.PRESETS["kit"], 100)[0]
    strided = [layer for layer in generator.layers if isinstance(layer, keras.layers.Conv2DTranspose)
               and layer.strides == (2, 2)]
    assert len(strided) == 2
    uses_it = backends.SUBPIXEL_PAYS[keras.backend.backend()]
    assert all(isinstance(layer, subpixel.SubpixelConv2DTranspose) == uses_it for layer in strided)
    # Saved, even when built with the sub-pixel layer here, it is Keras's own layer in the file.
    model = keras.Sequential([keras.Input((7, 7, 3)),
                              subpixel.SubpixelConv2DTranspose(2, 5, strides=2, padding="same")])
    models.portable_copy(model).save(tmp_path / "g.keras")
    with zipfile.ZipFile(tmp_path / "g.keras") as saved:
        config = saved.read("config.json").decode()
    assert '"class_name": "Conv2DTranspose"' in config
    assert "SubpixelConv2DTranspose" not in config and "dcgan_kit" not in config
