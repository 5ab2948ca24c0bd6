"""The wgan preset: the Wasserstein loss, the gradient penalty and its second derivative on the backend the
suite runs under, and the loop's critic steps (one G update per critic_steps real batches)."""

import json

import keras
import numpy as np
import pytest

import dcgan
import models
import viz
from machinery import backends, presets, runs
from conftest import BACKEND_NEUTRAL, EVERY_BACKEND

pytestmark = EVERY_BACKEND  # the loss and the penalty's gradient of a gradient, on each backend


def linear_critic(weights, penalty_weight):
    """D(x) = w . x: its slope is w at every point, so its penalty is exactly (|w| - 1)^2."""
    scorer = keras.Sequential([keras.Input(models.IMAGE_SHAPE), keras.layers.Flatten(),
                               keras.layers.Dense(1, use_bias=False)])
    scorer.layers[-1].kernel.assign(weights.reshape(-1, 1))
    critic = models.WassersteinCritic(scorer, penalty_weight, seed=1)
    return critic


def test_input_gradient_is_the_slope_of_the_function():
    points = keras.ops.convert_to_tensor(np.linspace(-2, 2, 12, dtype="float32").reshape(3, 4))
    slopes = backends.input_gradient(lambda x: x ** 3, points)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(slopes), 3 * keras.ops.convert_to_numpy(points) ** 2,
                               rtol=1e-5)


def test_wasserstein_loss_is_mean_fake_score_minus_mean_real_score_over_two():
    scores = keras.ops.convert_to_tensor(np.array([[1.0], [3.0], [10.0], [20.0]], "float32"))  # fakes, reals
    labels = np.array([[0.0], [0.0], [1.0], [1.0]], "float32")
    loss = float(keras.ops.convert_to_numpy(models.wasserstein_loss(labels, scores)))
    assert loss == pytest.approx(((1 + 3) / 2 - (10 + 20) / 2) / 2)


def test_penalty_of_a_linear_critic_is_its_slope_norm_minus_one_squared():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=28 * 28).astype("float32")
    weights *= 3.0 / np.linalg.norm(weights)  # |w| = 3: penalty (3 - 1)^2 = 4 wherever it is measured
    critic = linear_critic(weights, penalty_weight=10.0)
    critic.compile(optimizer="sgd", loss=models.wasserstein_loss)
    images = keras.ops.convert_to_tensor(rng.uniform(-1, 1, (8, 28, 28, 1)).astype("float32"))
    labels = np.array([[0.0]] * 4 + [[1.0]] * 4, "float32")
    assert float(keras.ops.convert_to_numpy(critic.gradient_penalty(images))) == pytest.approx(4.0, rel=1e-4)
    scores = critic(images)
    total = critic.compute_loss(images, labels, scores)
    wasserstein = models.wasserstein_loss(labels, scores)
    assert float(keras.ops.convert_to_numpy(total - wasserstein)) == pytest.approx(40.0, rel=1e-4)


def test_training_on_the_penalty_alone_pulls_the_slope_toward_one():
    # The same images as fakes and as reals: the Wasserstein part's gradient is 0, so only the penalty moves
    # w, and only if the train step differentiates through input_gradient (a second derivative).
    rng = np.random.default_rng(1)
    weights = rng.normal(size=28 * 28).astype("float32")
    weights *= 3.0 / np.linalg.norm(weights)
    critic = linear_critic(weights, penalty_weight=1.0)
    critic.compile(optimizer=keras.optimizers.SGD(0.05), loss=models.wasserstein_loss)
    half = rng.uniform(-1, 1, (4, 28, 28, 1)).astype("float32")
    images, labels = np.concatenate([half, half]), np.array([[0.0]] * 4 + [[1.0]] * 4, "float32")
    norms = []
    for _ in range(5):
        critic.train_on_batch(images, labels)
        norms.append(np.linalg.norm(keras.ops.convert_to_numpy(critic.scorer.layers[-1].kernel)))
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|: plain SGD shrinks |w| by 0.05 * 2 * (|w| - 1) a step
    expected, norm = [], 3.0
    for _ in range(5):
        norm -= 0.05 * 2 * (norm - 1)
        expected.append(norm)
    np.testing.assert_allclose(norms, expected, rtol=1e-4)


def test_wgan_preset_builds_a_critic_without_dropout_and_beta_2_of_the_paper():
    preset = presets.PRESETS["wgan"]
    generator, critic, gan = models.build_gan(preset)
    assert isinstance(critic, models.WassersteinCritic)
    assert not any(isinstance(layer, keras.layers.Dropout) and layer.rate > 0 for layer in critic.scorer.layers)
    assert critic.penalty_seed.state in critic.variables  # so a checkpoint keeps where its random points are
    assert (generator.count_params(), critic.count_params()) == presets.PARAMETERS["wgan"]
    assert float(critic.optimizer.beta_2) == pytest.approx(0.9)
    assert float(gan.optimizer.beta_2) == pytest.approx(0.9)
    assert gan.layers[-1] is critic  # G's step goes through the very critic D's step trains


@pytest.mark.tier("training")
def test_a_wgan_step_trains_the_critic_critic_steps_times_and_g_once(tiny_data, tmp_path, built_gans):
    out = tmp_path / "run"
    dcgan.main(["--preset", "wgan", "--epochs", "1", "--batch", "8", "--data-dir", str(tiny_data),
                "--out", str(out), "--frames-per-epoch", "1"])
    critic, gan = built_gans[0]
    steps = 96 // (8 * 5)  # 96 images: 2 steps of 5 critic batches, 16 images left over
    assert json.loads((out / "config.json").read_text())["steps_per_epoch"] == steps
    assert int(critic.optimizer.iterations) == 5 * steps
    assert int(gan.optimizer.iterations) == steps
    rows = runs.read_steps(out)
    assert [row["step"] for row in rows] == list(range(1, steps + 1))
    assert all(np.isfinite([row["d_loss"], row["g_loss"]]).all() for row in rows)
    assert len(runs.read_history(out)) == 1


def test_a_critic_is_right_when_it_scores_reals_above_the_batch_mean_whatever_the_scores_offset():
    acc_real, acc_fake = models.real_fake_accuracy(critic=True)
    labels = np.array([[0.0], [0.0], [1.0], [1.0]], "float32")  # fakes, then reals
    for offset in (0.0, -100.0, 100.0):  # every score below 0, then above: the critic's loss cannot tell
        scores = keras.ops.convert_to_tensor(np.array([[1.0], [9.0], [8.0], [20.0]], "float32") + offset)
        # mean 9.5 (+ offset): reals 20 above it, 8 not; fakes 1 below it, 9 too
        assert float(keras.ops.convert_to_numpy(acc_real(labels, scores))) == 0.5
        assert float(keras.ops.convert_to_numpy(acc_fake(labels, scores))) == 1.0


def guessing_lines(ax):
    """The y of each horizontal dashed line on a matplotlib axis: where a picture says D can only guess."""
    return [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"]


@BACKEND_NEUTRAL  # a picture's marks, from numbers
def test_pictures_mark_where_d_can_only_guess_by_the_run_s_loss():
    # A critic's loss is no BCE: its "cannot tell" level is 0, not ln 2 (a line at 0.69 would mislead).
    assert presets.trains_a_critic({"preset": "wgan"}) and not presets.trains_a_critic({"preset": "kit"})
    assert not presets.trains_a_critic(None) and not presets.trains_a_critic({"preset": "gone"})
    steps = [dict(epoch=1, step=s, d_loss=-1.0, g_loss=-20.0, d_acc_real=0.7, d_acc_fake=0.7) for s in range(1, 9)]
    for critic, level in ((True, 0.0), (False, np.log(2))):
        curves = viz.TrainingCurves(steps, 200, critic)
        try:
            assert guessing_lines(curves.axes[0]) == [pytest.approx(level)]
        finally:
            curves.close()
