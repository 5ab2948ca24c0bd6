"""The conditional presets (conditional, demo): G and D take a class label, the classic loop trains them,
generate.py asks for a class, and evaluate.py checks that the judge sees the class asked for."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import data
import dcgan
import generate
import models
import viz
from machinery import judge, metrics, presets, sampling
from conftest import EVERY_BACKEND, ROOT
from test_models import changed, weights_of

CONDITIONAL = presets.PRESETS["conditional"]


@pytest.fixture(scope="module")
def tiny_conditional_run(tmp_path_factory):
    """One epoch of the conditional preset on 16 fake images: its run folder."""
    from conftest import write_fake_fashion_mnist

    folder = tmp_path_factory.mktemp("conditional")
    fashion = write_fake_fashion_mnist(folder / "fashion")
    run = folder / "run"
    dcgan.main(["--preset", "conditional", "--epochs", "1", "--batch", "8", "--limit", "16", "--seed", "0",
                "--data-dir", str(fashion), "--out", str(run)])
    keras.mixed_precision.set_global_policy("float32")  # the run set its own; the tests build models after
    return run


# Both ways of telling D the class: "conditional" (the deconv G, class planes beside the image) and "demo"
# (legacy's G, D told it by projection).
CONDITIONAL_PRESETS = ["conditional", "demo"]


@pytest.mark.parametrize("name", CONDITIONAL_PRESETS)
@EVERY_BACKEND
def test_conditional_models_take_a_label_and_give_the_right_shapes(name):
    preset = presets.PRESETS[name]
    generator, discriminator, gan = models.build_gan(preset)
    noise = np.random.default_rng(0).uniform(-1, 1, (6, preset.latent)).astype("float32")
    classes = np.arange(6, dtype="int32")[:, None]
    images = keras.ops.convert_to_numpy(generator([noise, classes]))
    assert images.shape == (6, 28, 28, 1) and images.min() >= -1 and images.max() <= 1
    scores = keras.ops.convert_to_numpy(discriminator([images, classes]))
    assert scores.shape == (6, 1)
    assert keras.ops.convert_to_numpy(gan([noise, classes])).shape == (6, 1)
    # The label matters from the first step: the same noise drawn as two classes gives two images, and the
    # same image claimed to be of two classes gets two scores.
    other = keras.ops.convert_to_numpy(generator([noise, (classes + 1) % 10]))
    assert np.abs(other - images).mean() > 1e-4
    other_scores = keras.ops.convert_to_numpy(discriminator([images, (classes + 1) % 10]))
    assert np.abs(other_scores - scores).min() > 1e-6


@pytest.mark.parametrize("name", CONDITIONAL_PRESETS)
@EVERY_BACKEND
def test_the_keras3_trap_is_handled_for_the_two_input_models(name):
    generator, discriminator, gan = models.build_gan(presets.PRESETS[name])
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    classes = rng.integers(0, 10, (16, 1)).astype("int32")
    labels = np.array([0] * 8 + [1] * 8, "float32")[:, None]
    noise = rng.uniform(-1, 1, (8, presets.PRESETS[name].latent)).astype("float32")
    for _ in range(2):  # the second round runs the already traced train functions
        d_before, g_before = weights_of(discriminator), weights_of(generator)
        models.train_discriminator(discriminator, [images, classes], labels)
        assert changed(d_before, discriminator), "D did not learn on its own step"
        assert not changed(g_before, generator), "G moved on D's step"
        d_before, g_before = weights_of(discriminator), weights_of(generator)
        models.train_generator(gan, discriminator, [noise, classes[:8]], np.ones((8, 1), "float32"))
        assert not changed(d_before, discriminator), "D moved on the GAN step"
        assert changed(g_before, generator), "G did not learn on the GAN step"


@pytest.mark.tier("training")
@EVERY_BACKEND
def test_a_tiny_run_writes_a_grid_with_one_named_row_per_class(tiny_conditional_run):
    frame = np.asarray(Image.open(tiny_conditional_run / "images" / "epoch_0001.png"))
    rows, cols = CONDITIONAL.classes, CONDITIONAL.grid
    zoom = viz.zoom_for(rows, cols)
    grid_height, grid_width = viz.grid_side(rows) * zoom, viz.grid_side(cols) * zoom
    assert frame.shape[0] > grid_height and frame.shape[1] > grid_width  # a caption above, names on the left
    names_column = frame[-grid_height:, :frame.shape[1] - grid_width]
    row_height = grid_height // rows
    for row in range(rows):  # white letters beside every row
        assert (names_column[row * row_height:(row + 1) * row_height] > 128).any(), f"no name beside row {row}"
    generator, noise_kind, pixel_range = sampling.load(tiny_conditional_run / "generator.keras")
    assert sampling.is_conditional(generator) and noise_kind == "uniform"


@pytest.mark.tier("training")
def test_generate_draws_the_asked_class_in_range_and_the_same_seed_gives_the_same_images(tiny_conditional_run):
    generator, noise_kind, pixel_range = sampling.load(tiny_conditional_run / "generator.keras")
    sneakers, rows, cols, labels, shown = generate.draw_samples(generator, 12, noise_kind, pixel_range, 5,
                                                                 data.class_index("sneaker"))
    assert sneakers.shape == (12, 28, 28) and sneakers.dtype == np.uint8 and labels is None
    assert "Sneaker" in shown
    again, *_ = generate.draw_samples(generator, 12, noise_kind, pixel_range, 5, 7)  # index 7 = sneaker
    np.testing.assert_array_equal(sneakers, again)
    bags, *_ = generate.draw_samples(generator, 12, noise_kind, pixel_range, 5, data.class_index("Bag"))
    assert not np.array_equal(bags, sneakers)  # same noise, another class: other images
    z = sampling.noise(generator, 12, noise_kind, 5)
    raw = keras.ops.convert_to_numpy(generator([z, np.full((12, 1), 7, "int32")]))
    assert raw.min() >= pixel_range[0] and raw.max() <= pixel_range[1]
    every, rows, cols, labels, _ = generate.draw_samples(generator, 20, noise_kind, pixel_range, 5)
    assert (rows, cols) == (10, 2) and labels == list(data.CLASS_NAMES) and every.shape == (20, 28, 28)


def run_generate(*flags, cwd):
    return subprocess.run([sys.executable, str(ROOT / "generate.py"), *flags], capture_output=True, text=True,
                          cwd=cwd)


@pytest.mark.tier("scripts")  # generate.py as a process of its own
def test_generate_class_flag_writes_pictures_and_refuses_what_it_cannot_do(tiny_conditional_run, tmp_path):
    out = tmp_path / "pictures"
    done = run_generate("--run", str(tiny_conditional_run), "--class", "ankle-boot", "--out", str(out),
                        cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "samples.png").is_file() and (out / "walks.png").is_file()
    unknown = run_generate("--run", str(tiny_conditional_run), "--class", "boot", cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert all(name in unknown.stderr for name in data.CLASS_FLAGS)
    plain = tmp_path / "plain"
    plain.mkdir()
    models.build_gan(presets.PRESETS["legacy"])[0].save(plain / "generator.keras")
    refused = run_generate("--run", str(plain), "--class", "bag", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--preset conditional" in refused.stderr
    assert not (plain / "samples.png").exists()


def test_class_agreement_is_perfect_for_a_perfect_judge_and_chance_for_shuffled_labels():
    asked = np.arange(1000) % 10
    perfect = np.eye(10)[asked]
    assert metrics.class_agreement(perfect, asked)["class_agreement"] == 1.0
    shuffled = np.random.default_rng(0).permutation(asked)
    agreement = metrics.class_agreement(perfect, shuffled)
    assert abs(agreement["class_agreement"] - 0.1) < 0.03
    assert all(abs(share - 0.1) < 0.1 for share in agreement["class_agreement_per_class"])


def test_class_agreement_of_real_test_images_through_the_judge_is_its_accuracy():
    try:
        images, classes = data.load_split("test", data.find_data_dir(allow_download=False))
    except data.DataError as e:
        pytest.skip(f"real Fashion-MNIST not installed here: {e}")
    _, features, info = judge.load_classifier()
    _, probabilities = judge.real_features(features, info, "test", images)
    agreement = metrics.class_agreement(probabilities, classes)
    assert abs(agreement["class_agreement"] - info["test_accuracy"]) < 1e-3  # the same judge, the same images
    assert min(agreement["class_agreement_per_class"]) > 0.7
    shuffled = metrics.class_agreement(probabilities, np.random.default_rng(0).permutation(classes))
    assert abs(shuffled["class_agreement"] - 0.1) < 0.02


@pytest.mark.tier("training")
def test_evaluate_reports_class_agreement_for_a_conditional_generator_only(tiny_conditional_run, tmp_path):
    try:
        data.find_data_dir(allow_download=False)
    except data.DataError as e:
        pytest.skip(f"real Fashion-MNIST not installed here: {e}")
    import evaluate

    report = evaluate.main(["--run", str(tiny_conditional_run), "--samples", "200"])
    assert len(report["generated"]["class_agreement_per_class"]) == 10
    assert 0 <= report["generated"]["class_agreement"] <= 1
    assert report["real_data"]["class_agreement"] > 0.85  # real images with their labels: the judge's accuracy
    saved = json.loads((tiny_conditional_run / "eval.json").read_text())
    assert saved["generated"]["class_agreement"] == report["generated"]["class_agreement"]
    assert Image.open(tiny_conditional_run / "eval.png").size == (2000, 1000)  # its bars: agreement per class
    plain = tmp_path / "plain"
    plain.mkdir()
    models.build_gan(presets.PRESETS["legacy"])[0].save(plain / "generator.keras")
    assert "class_agreement" not in evaluate.main(["--run", str(plain), "--samples", "200"])["generated"]

