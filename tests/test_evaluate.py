"""The judge and evaluate.py: hash-checked classifier, full report, --eval-every in training."""

import csv
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import data
import dcgan
import evaluate
import models
import viz
from machinery import judge, metrics, presets

from conftest import EVERY_BACKEND



def real_data_or_skip():
    try:
        return data.find_data_dir(allow_download=False)
    except data.DataError as e:
        pytest.skip(f"real Fashion-MNIST not installed here: {e}")


def constant_generator(path, latent=100):
    """A generator that ignores its noise: every sample is the same mid-grey blob."""
    model = keras.Sequential([keras.Input((latent,)),
                              keras.layers.Dense(28 * 28, kernel_initializer="zeros", bias_initializer="ones"),
                              keras.layers.Reshape((28, 28, 1)),
                              keras.layers.Activation("tanh")])
    model.save(path)
    return path


def test_committed_classifier_matches_its_recorded_hash_and_accuracy():
    model, features, info = judge.load_classifier()
    assert info["test_accuracy"] >= 0.92
    feats, probs = judge.features_and_probabilities(features, np.zeros((3, 28, 28), np.uint8))
    assert feats.shape == (3, 128) and probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


@EVERY_BACKEND
def test_features_in_small_batches_equal_one_call_over_all_images():
    _, features, _ = judge.load_classifier()
    images = np.random.default_rng(1).integers(0, 256, (23, 28, 28), dtype=np.uint8)
    whole_feats, whole_probs = features(judge.to_unit_range(images), training=False)
    feats, probs = judge.features_and_probabilities(features, images, batch=5)  # 4 batches and a short one
    assert feats.shape == (23, 128) and probs.shape == (23, 10)
    np.testing.assert_allclose(feats, keras.ops.convert_to_numpy(whole_feats), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(probs, keras.ops.convert_to_numpy(whole_probs), rtol=1e-4, atol=1e-5)


def test_real_features_are_computed_once_then_read_back_and_a_damaged_cache_is_recomputed(tmp_path, monkeypatch):
    _, features, info = judge.load_classifier()
    images = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    monkeypatch.setattr(judge, "FEATURE_CACHE", tmp_path / "cache")
    computed = []
    compute = judge.features_and_probabilities
    monkeypatch.setattr(judge, "features_and_probabilities", lambda *a, **k: computed.append(1) or compute(*a, **k))
    first = judge.real_features(features, info, "test", images)
    second = judge.real_features(features, info, "test", images)
    assert len(computed) == 1  # the second came from the cache, and is the same
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    other = judge.real_features(features, info, "test", images[::-1].copy())  # other images: another file
    assert len(computed) == 2 and not np.array_equal(other[0], first[0])
    for cached in (tmp_path / "cache").iterdir():
        cached.write_bytes(cached.read_bytes()[:100])
    again = judge.real_features(features, info, "test", images)
    assert len(computed) == 3
    np.testing.assert_array_equal(again[0], first[0])


@EVERY_BACKEND
def test_shipped_features_are_used_after_a_spot_check_and_a_wrong_file_is_not(tiny_data, tmp_path, monkeypatch):
    """save_real_features writes what real_features then reads instead of judging the whole split; a file
    whose numbers do not match what the judge computes here is ignored and the split judged in full."""
    _, features, info = judge.load_classifier()
    monkeypatch.setattr(judge, "SHIPPED_FEATURES", tmp_path / "real_features.npz")
    monkeypatch.setattr(judge, "FEATURE_CACHE", tmp_path / "cache")
    monkeypatch.setattr(judge, "SPOT_CHECK_ROWS", 10)
    judge.save_real_features(features, info, tiny_data)
    images, _ = data.load_split("train", tiny_data)
    judged = []
    compute = judge.features_and_probabilities
    monkeypatch.setattr(judge, "features_and_probabilities",
                        lambda model, rows, **k: judged.append(len(rows)) or compute(model, rows, **k))
    feats, probs = judge.real_features(features, info, "train", images)
    assert judged == [10]  # the spot check only, not the 96 images
    expected = compute(features, images)
    np.testing.assert_allclose(feats, expected[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(probs, expected[1], rtol=1e-4, atol=1e-5)

    with np.load(judge.SHIPPED_FEATURES) as shipped:
        arrays = {name: shipped[name] for name in shipped.files}
    arrays["train_features"] = arrays["train_features"] + 1.0  # a file that is not this judge's numbers
    np.savez(judge.SHIPPED_FEATURES, **arrays)
    judged.clear()
    feats, _ = judge.real_features(features, info, "train", images)
    assert judged == [10, 96]  # the spot check failed, so the split was judged here
    np.testing.assert_allclose(feats, expected[0], rtol=1e-4, atol=1e-4)


@EVERY_BACKEND
def test_the_shipped_features_belong_to_the_committed_judge_and_the_real_data():
    folder = real_data_or_skip()
    _, features, info = judge.load_classifier()
    images, _ = data.load_split("test", folder)
    with np.load(judge.SHIPPED_FEATURES) as shipped:
        assert str(shipped["judge_sha256"]) == info["sha256"]
        assert str(shipped["test_data"]) == judge.data_key(images)
        rows = np.arange(0, len(images), 97)
        here = judge.features_and_probabilities(features, images[rows])
        np.testing.assert_allclose(here[0], shipped["test_features"][rows], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(here[1], shipped["test_probabilities"][rows], rtol=1e-4, atol=1e-5)


def test_a_damaged_classifier_is_refused(tmp_path, monkeypatch):
    shutil.copy(judge.INFO_FILE, tmp_path / judge.INFO_FILE.name)
    (tmp_path / judge.MODEL_FILE.name).write_bytes(judge.MODEL_FILE.read_bytes()[:-10])
    monkeypatch.setattr(judge, "MODEL_FILE", tmp_path / judge.MODEL_FILE.name)
    monkeypatch.setattr(judge, "INFO_FILE", tmp_path / judge.INFO_FILE.name)
    with pytest.raises(judge.JudgeError, match="does not match the hash"):
        judge.load_classifier()


@pytest.mark.tier("training")
def test_a_constant_generator_scores_far_worse_than_real_data_on_every_metric(tmp_path):
    folder = real_data_or_skip()
    path = constant_generator(tmp_path / "constant.keras")
    report = evaluate.main(["--generator", str(path), "--samples", "1000", "--data-dir", str(folder)])
    fake, real = report["generated"], report["real_data"]
    assert fake["fd"] > 10 * real["fd"] + 10
    assert fake["kid_mean"] > 10 * abs(real["kid_mean"]) + 10
    assert fake["classifier_score"] < 0.5 * real["classifier_score"]
    assert fake["classes_covered"] == 1 and real["classes_covered"] == 10
    assert fake["tv_from_uniform"] > 0.8 > 0.1 > real["tv_from_uniform"]
    assert real["precision"] > 0.5 and real["recall"] > 0.5
    assert fake["recall"] < 0.05
    assert json.loads((tmp_path / "eval.json").read_text())["generated"]["classes_covered"] == 1
    assert Image.open(tmp_path / "eval.png").size == (2000, 1000)


def test_a_copying_generator_shows_its_copies_first_beside_their_originals():
    """eval.png's memorisation check: sample 5 is training image 17, sample 2 nearly image 40; the rest are
    new. Those two lead the rows, nearest first, each beside its original."""
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (60, 28, 28), dtype=np.uint8)
    train_features = rng.normal(size=(60, 16)).astype(np.float32)
    samples = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    sample_features = rng.normal(size=(30, 16)).astype(np.float32) + 3.0  # far from every training image
    samples[5], sample_features[5] = train_images[17], train_features[17]
    samples[2], sample_features[2] = train_images[40], train_features[40] + 0.01
    distances = metrics.nearest_train_distances(sample_features, train_features)
    closest, neighbours = evaluate.closest_to_training(sample_features, train_features, distances, count=4, k=3)
    assert list(closest[:2]) == [5, 2] and list(neighbours[:2, 0]) == [17, 40]
    _, grid, note = evaluate.closeness_grid(samples, train_images, closest, neighbours, distances,
                                            np.array([1.0, 2.0, 3.0, 4.0]))
    assert "1.0 to 4.0" in note
    zoom = viz.zoom_for(4, 5)
    pitch = (28 + viz.GRID_GAP) * zoom

    def tile(row, col):  # the row labels are on the left, so the tiles are counted from the right edge
        left, top = grid.shape[1] - viz.grid_side(5) * zoom + col * pitch, row * pitch
        return grid[top:top + 28 * zoom:zoom, left:left + 28 * zoom:zoom]

    np.testing.assert_array_equal(tile(0, 0), samples[5])
    np.testing.assert_array_equal(tile(0, 2), train_images[17])  # after the black gap: its original
    np.testing.assert_array_equal(tile(1, 2), train_images[40])


def test_a_file_that_is_not_a_generator_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "junk.keras").write_text("not a model")
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--generator", str(tmp_path / "junk.keras")])
    assert e.value.code == 2 and "is not a Keras model file" in capsys.readouterr().err


@pytest.mark.tier("training")
def test_eval_every_scores_epochs_keeps_the_best_and_prints_fd(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    dcgan.main(["--epochs", "2", "--batch", "16", "--limit", "64", "--seed", "0", "--eval-every", "1",
                "--data-dir", str(tiny_data), "--out", str(run)])
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(float(row["fd"]) > 0 and 1 <= int(row["classes_covered"]) <= 10 for row in rows)
    assert all(0 <= float(row[key]) <= 1 for row in rows for key in ("d_real_train", "d_real_test"))
    assert Image.open(run / "losses.png").size == (2900, 650)  # four panels: losses, accuracy, FD, D's gap
    assert (run / "generator_best.keras").is_file()
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [f"FD {float(row['fd']):.1f}, {row['classes_covered']} of 10 classes" in line
            for row, line in zip(rows, printed)] == [True, True]
    assert [f"D: training {float(row['d_real_train']):.2f}, test {float(row['d_real_test']):.2f}" in line
            for row, line in zip(rows, printed)] == [True, True]


def test_warnings_for_collapse_and_rising_fd():
    rising = [dict(epoch=e, fd=fd, classes_covered=10) for e, fd in enumerate([30, 20, 25, 28, 35], 1)]
    assert any("FD rose 3 evaluations" in w for w in judge.warnings(rising))
    assert judge.warnings(rising[:4]) == []  # 20 -> 25 -> 28 is only two rises
    collapsed = rising[:2] + [dict(epoch=3, fd=40, classes_covered=4)]
    assert any("only 4 of 10 classes" in w for w in judge.warnings(collapsed))


@pytest.mark.parametrize("preset, fd_below, classes_at_least", [("kit", 200, 10), ("legacy", 350, 8)])
@pytest.mark.tier("training")
def test_the_shipped_generators_draw_garments_the_judge_recognises(tmp_path, preset, fd_below, classes_at_least):
    """pretrained/kit (a CPU run) and pretrained/legacy (the used-by command on a GPU, under JAX), as a fresh
    clone has them, scored by the judge (which never saw them train): far better than an untrained generator
    of the same preset. Copied first: eval.json goes beside the generator, and the test must not write into
    the repo."""
    folder = real_data_or_skip()
    shipped = Path(__file__).resolve().parent.parent / "pretrained" / preset
    shutil.copytree(shipped, tmp_path / preset, ignore=shutil.ignore_patterns("*.png", "eval.json"))
    config = json.loads((tmp_path / preset / "config.json").read_text())
    assert config["preset"] == preset and config["epochs"] == 10 and config["batch"] == 32
    report = evaluate.main(["--run", str(tmp_path / preset), "--samples", "1000", "--data-dir", str(folder)])
    trained = report["generated"]
    assert trained["fd"] < fd_below and trained["classes_covered"] >= classes_at_least
    assert trained["precision"] > 0.5
    untrained = models.build_models(presets.PRESETS[preset], 100)[0]
    untrained.save(tmp_path / "untrained.keras")
    fresh = evaluate.main(["--generator", str(tmp_path / "untrained.keras"), "--noise", config["noise"],
                           "--samples", "1000", "--data-dir", str(folder)])["generated"]
    assert fresh["fd"] > 2 * trained["fd"]


def test_eval_png_bars_take_a_class_never_asked(tmp_path):
    """class agreement is NaN for a class with no sample (a small --samples of real images may miss one):
    the bars are drawn without it, whatever its place, not refused over a NaN axis limit."""
    nan = float("nan")
    bars = dict(title="agreement", ylabel="share", names=list("abc"), lines=[],
                series={"generator": [nan, 0.5, 0.9], "real": [0.9, nan, 0.8]})
    viz.plot_bars_beside_picture(tmp_path / "e.png", "t", bars, ("p", np.zeros((30, 30), np.uint8), "n"))
    assert Image.open(tmp_path / "e.png").size == (2000, 1000)
