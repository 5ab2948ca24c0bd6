"""verdicts.py: D's numbers for training images, test images and fakes, from the run's newest checkpoint."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

import data
import dcgan
import models
from machinery import checkpoints, memorisation, presets, runs
from tools import verdicts
from conftest import write_fake_fashion_mnist
from test_evaluate import real_data_or_skip

RUNS = {  # preset: dcgan.py flags for a few steps on the tiny data
    "legacy": ["--batch", "8", "--limit", "32"],
    "wgan": ["--batch", "8", "--limit", "80"],  # 5 critic steps of 8 per G step
    "conditional": ["--batch", "8", "--limit", "32"],
    "kit": ["--batch", "8", "--limit", "32"],
}


@pytest.fixture(scope="module")
def made_runs(tmp_path_factory):
    """Runs of this file by (preset, epochs), each trained once, on the tiny data every test's tiny_data holds."""
    folder = tmp_path_factory.mktemp("verdicts")
    return dict(folder=folder, data=write_fake_fashion_mnist(folder / "fashion"), runs={}, printed={})


@pytest.fixture
def tiny_run(made_runs, tmp_path):
    """tiny_run(preset, epochs=1) -> a run folder of the test's own: a copy of that run, trained once."""
    def copy(preset, epochs=1):
        made = made_runs["runs"].get((preset, epochs))
        if made is None:
            made = made_runs["folder"] / f"{preset}_{epochs}"
            with contextlib.redirect_stdout(io.StringIO()) as printed:
                dcgan.main(["--preset", preset, "--epochs", str(epochs), "--seed", "0", "--eval-every", "0",
                            *RUNS[preset], "--data-dir", str(made_runs["data"]), "--out", str(made)])
            made_runs["runs"][(preset, epochs)], made_runs["printed"][(preset, epochs)] = made, printed.getvalue()
        return shutil.copytree(made, tmp_path / preset)
    return copy


def edit_newest_checkpoint(run, edit):
    """Change the newest checkpoint's arrays in place: edit({"group/NNNN": array}) changes the dict."""
    path = checkpoints.latest(run) / checkpoints.TENSORS_FILE
    with np.load(path) as saved:
        arrays = {key: saved[key] for key in saved.files}
    edit(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def rewrite_newest_checkpoint(run, preset, d_logit):
    """Make the newest checkpoint's D answer `d_logit` for every image (every weight 0 but its last bias) and
    its G draw only mid-grey (every weight 0): what verdicts.py reports is then known exactly."""
    generator, discriminator, _ = models.build_models(presets.PRESETS[preset], 100)
    last_bias = discriminator.layers[-1].weights[-1] if preset != "wgan" else discriminator.scorer.layers[-1].bias

    def constant_d_and_grey_g(arrays):
        for group, variables in (("generator", generator.weights), ("discriminator", discriminator.weights)):
            for i, variable in enumerate(variables):
                key = f"{group}/{i:04d}"
                arrays[key] = np.full_like(arrays[key], d_logit if variable is last_bias else 0.0)

    edit_newest_checkpoint(run, constant_d_and_grey_g)


@pytest.mark.parametrize("preset, d_logit", [("legacy", 2.0), ("wgan", -3.0), ("conditional", -1.5)])
@pytest.mark.tier("training")
def test_verdicts_are_the_checkpoints_d_on_the_checkpoints_g(tiny_run, made_runs, capsys, preset, d_logit):
    run = tiny_run(preset)
    made = made_runs["runs"][preset, 1]
    assert f"python tools/verdicts.py --run {made}" in made_runs["printed"][preset, 1]  # dcgan.py's "next:" names it
    rewrite_newest_checkpoint(run, preset, d_logit)
    report = verdicts.main(["--run", str(run), "--count", "16"])
    critic = preset == "wgan"
    expected = d_logit if critic else 1 / (1 + np.exp(-d_logit))  # a critic's raw score, else a probability
    assert report["critic"] == critic
    assert report["sets"] == (["training", "test", "fakes"] + ["fakes_of_average"] * (preset != "legacy")  # averaged
                              + ["test_wrong_class"] * (preset == "conditional"))
    for kind in report["sets"]:
        assert report[kind]["mean"] == pytest.approx(expected, abs=1e-6), kind
        # one number for every image: above 0.5, all called real; a critic's midpoint is that number itself
        assert report[kind]["called_real"] == (1.0 if expected > report["threshold"] else 0.0)
    assert report["memorised"] == pytest.approx(0.0, abs=1e-6)
    for row in report["by_class"]:  # every class of image gets the same number too, where it has any
        assert list(row) == ["class", "test"] + ["test_wrong_class"] * (preset == "conditional") + ["fakes"]
        for kind in list(row)[1:]:
            assert row[kind]["mean"] is None if not row[kind]["images"] else row[kind]["mean"] == pytest.approx(
                expected, abs=1e-6)
    assert report["checkpoint"] == checkpoints.latest(run).name
    assert json.loads((run / "verdicts.json").read_text()) == report
    assert (run / "verdicts.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert f"checkpoint {report['checkpoint']}" in out and "wrote" in out
    assert f"by class (fakes classed by {report['fakes_classed_by']};" in out and "Ankle boot" in out
    assert ("score (mean)" if critic else "P(real) (mean)") in out


@pytest.mark.tier("training")
def test_the_fakes_shown_are_drawn_by_the_checkpoints_g(tiny_run, tiny_data):
    run = tiny_run("legacy")
    config, preset = verdicts.config_and_preset(run)
    _, _, examples = verdicts.verdicts(run, config, preset, 16, seed=0)
    assert examples[0][1].std() > 0  # trained weights: fakes that differ
    rewrite_newest_checkpoint(run, "legacy", 0.0)
    _, _, examples = verdicts.verdicts(run, config, preset, 16, seed=0)
    assert np.all(examples[0][1] == 128)  # every weight 0: tanh(0), mid-grey, in every fake
    # D says the same of every test image: the first it judged are shown, as the data holds them
    judged = verdicts.judged_images(config, tiny_data, 16, seed=0)["test"][0]
    assert np.array_equal(examples[1][1], judged[:verdicts.SHOWN])


@pytest.mark.tier("training")
def test_the_averaged_fakes_are_drawn_by_the_checkpoints_weight_average(tiny_run, monkeypatch):
    """The kit's pictures come from G's weight average, which D never met: its fakes are a set of their own,
    from the average the checkpoint holds, not from the G that trained."""
    run = tiny_run("kit")

    def average_drawing_zeros(arrays):  # tanh(0): 0 in every pixel
        group = f"{checkpoints.AVERAGE_GROUP}/"
        averaged = sorted(key for key in arrays if key.startswith(group))[:-1]  # the last: the updates' count
        assert averaged and any(np.any(arrays[key] != 0) for key in averaged)
        arrays.update({key: np.zeros_like(arrays[key]) for key in averaged})

    edit_newest_checkpoint(run, average_drawing_zeros)

    monkeypatch.setattr(verdicts, "scores_of", mean_pixel)
    config, preset = verdicts.config_and_preset(run)
    report, scores, _ = verdicts.verdicts(run, config, preset, 16, seed=0)
    assert np.all(scores["fakes_of_average"] == 0.0)
    assert np.all(scores["fakes"] != 0.0)  # the G that trained, untouched
    assert report["fakes_of_average"]["images"] == report["fakes"]["images"] == 16


def mean_pixel(discriminator, images, classes, critic, bar=None):
    """D's stand-in for scores_of (machinery/memorisation.py): each image's mean pixel, so what a set holds shows in its numbers."""
    return images.reshape(len(images), -1).mean(axis=1)


@pytest.mark.tier("training")
def test_by_class_groups_each_sets_verdicts_by_the_class_of_its_images(tiny_run, tiny_data, monkeypatch):
    run = tiny_run("legacy")
    monkeypatch.setattr(verdicts, "scores_of", mean_pixel)
    monkeypatch.setattr(verdicts, "judged_classes", lambda fakes, preset, bar=None: np.arange(len(fakes)) % 10)
    config, preset = verdicts.config_and_preset(run)
    report, scores, _ = verdicts.verdicts(run, config, preset, 30, seed=0)
    assert report["fakes_classed_by"] == "the judge"
    test_classes = verdicts.judged_images(config, tiny_data, 30, seed=0)["test"][1]
    for index, row in enumerate(report["by_class"]):
        assert row["class"] == data.CLASS_NAMES[index]
        of_class = scores["test"][test_classes == index]
        assert row["test"]["images"] == len(of_class)
        assert row["test"]["mean"] == (pytest.approx(of_class.mean()) if len(of_class) else None)
        assert row["fakes"]["images"] == 3  # fakes 0, 10, 20 are "class 0", and so on
        assert row["fakes"]["mean"] == pytest.approx(scores["fakes"][index::10].mean())
        assert row["fakes"]["called_real"] == np.mean(scores["fakes"][index::10] > 0.5)


@pytest.mark.tier("training")
def test_a_conditional_runs_fakes_are_classed_by_the_class_g_was_asked_for(tiny_run, monkeypatch):
    run = tiny_run("conditional")
    make_fakes, asked = verdicts.make_fakes, []  # the classes of G's fakes, then of its average's

    def make_fakes_and_keep_the_classes(*args, **kwargs):
        fakes, classes = make_fakes(*args, **kwargs)
        asked.append(classes)
        return fakes, classes

    def no_judge(*args, **kwargs):
        raise AssertionError("the judge was asked, though G was told each fake's class")

    monkeypatch.setattr(verdicts, "make_fakes", make_fakes_and_keep_the_classes)
    monkeypatch.setattr(verdicts, "judged_classes", no_judge)
    config, preset = verdicts.config_and_preset(run)
    report, _, _ = verdicts.verdicts(run, config, preset, 40, seed=0)
    assert report["fakes_classed_by"] == "the class asked"
    counts = [row["fakes"]["images"] for row in report["by_class"]]
    assert counts == np.bincount(asked[0].ravel(), minlength=10).tolist() and sum(counts) == 40
    # the test images named as another class, grouped by their own: as many in each class as the test set's
    assert [row["test_wrong_class"]["images"] for row in report["by_class"]] == [
        row["test"]["images"] for row in report["by_class"]]


@pytest.mark.parametrize("preset", ["legacy", "upsample"])  # G's pixels in (-1, 1), and in (0, 1)
def test_the_judge_classes_images_in_the_presets_pixel_range_as_garments(preset):
    images, classes = data.load_split("test", real_data_or_skip())
    chosen = np.random.default_rng(0).choice(len(images), 500, replace=False)
    pixels = data.scale_pixels(images[chosen], presets.PRESETS[preset].pixel_range)  # as G draws them
    judged = verdicts.judged_classes(pixels, presets.PRESETS[preset])
    assert np.mean(judged == classes[chosen]) > 0.85  # the judge scores 0.93 on all 10,000


@pytest.mark.tier("training")
def test_a_newest_checkpoint_that_cannot_be_read_is_skipped_and_said(tiny_run, capsys):
    run = tiny_run("legacy", epochs=2)
    older, newest = runs.complete_checkpoints(run)[-2:]
    (newest / checkpoints.TENSORS_FILE).write_bytes(b"cut short")
    capsys.readouterr()
    report = verdicts.main(["--run", str(run), "--count", "8"])
    assert report["checkpoint"] == older.name and report["epoch"] == 1
    assert f"skipped checkpoint {newest.name}: unreadable" in capsys.readouterr().out


def test_the_training_images_judged_are_those_the_run_trained_on(tiny_data):
    import data

    chosen = verdicts.judged_images({"limit": 16}, tiny_data, 16, seed=3)
    first_16, _ = data.load_split("train", tiny_data, 16)
    assert sorted(map(bytes, chosen["training"][0])) == sorted(map(bytes, first_16))  # all 16, none beyond
    test_images, _ = data.load_split("test", tiny_data)
    assert all(any(np.array_equal(image, t) for t in test_images) for image in chosen["test"][0])
    again = verdicts.judged_images({"limit": 16}, tiny_data, 16, seed=3)
    assert np.array_equal(again["test"][0], chosen["test"][0])  # the same seed, the same images


def test_a_wrong_class_is_never_the_images_own_and_may_be_any_other():
    classes = np.repeat(np.arange(10, dtype=np.int32), 300)
    wrong = verdicts.wrong_classes(classes, 10, seed=0)
    assert wrong.dtype == np.int32 and not np.any(wrong == classes)
    for own in range(10):  # each of the nine others, about as often
        counts = np.bincount(wrong[classes == own], minlength=10)
        assert counts[own] == 0 and np.count_nonzero(counts) == 9 and counts[counts > 0].min() > 15
    assert np.array_equal(verdicts.wrong_classes(classes, 10, seed=0), wrong)


def test_an_overwrite_clears_the_verdicts_of_the_run_it_replaces(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "verdicts.png").write_bytes(b"old")
    (tmp_path / "verdicts.json").write_text("{}")
    runs.clear_run(tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("preset", ["legacy", "conditional"])
def test_d_s_memory_check_asks_about_the_training_images_given_and_unseen_test_images(tmp_path, monkeypatch, preset):
    """dcgan.py --eval-every's question to D: the images it trains on all white (class 3), the test split all
    black (class 7). D's stand-in answers each image's mean pixel, or the class it is told: each figure then
    says which images, in which pixel range, with which labels, it was given."""
    from conftest import write_fake_fashion_mnist

    folder = write_fake_fashion_mnist(tmp_path / "fashion", n_test=1500)
    image_file, label_file = data.FILES["test"]
    data.write_idx(folder / image_file, np.zeros((1500, 28, 28), np.uint8))
    data.write_idx(folder / label_file, np.full(1500, 7, np.uint8))
    training = np.full((40, 28, 28), 255, np.uint8)
    conditional = presets.PRESETS[preset].conditional
    asked = []

    def stand_in(discriminator, images, classes, critic, bar=None):
        asked.append(len(images))
        return classes.ravel().astype(float) if conditional else mean_pixel(discriminator, images, classes, critic)
    monkeypatch.setattr(memorisation, "scores_of", stand_in)
    check = memorisation.memory_check(training, np.full(40, 3), folder, presets.PRESETS[preset], False, seed=0)
    expected = dict(d_real_train=3.0, d_real_test=7.0) if conditional else dict(d_real_train=1.0, d_real_test=-1.0)
    assert check(None) == expected == check(None)
    assert asked == [40, memorisation.MEMORY_COUNT] * 2  # all 40 training images; 1,000 of the 1,500 test ones
