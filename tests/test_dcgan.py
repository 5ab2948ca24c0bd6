import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest

import data
import dcgan
import make_gif
import viz
from machinery import runs, settings
from conftest import EVERY_BACKEND, write_fake_fashion_mnist


def read_history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def train_tiny(tiny_data, out, *extra):
    return dcgan.main(["--epochs", "2", "--batch", "16", "--limit", "64", "--seed", "3",
                       "--data-dir", str(tiny_data), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """(data, run): train_tiny's run, trained once for the tests here that compare a run of their own with it."""
    folder = tmp_path_factory.mktemp("trained_once")
    fashion = write_fake_fashion_mnist(folder / "fashion")
    train_tiny(fashion, folder / "run")
    return fashion, folder / "run"


@pytest.mark.tier("training")
@EVERY_BACKEND
def test_smoke_run_leaves_every_output_and_the_gif_has_one_frame_per_epoch(tiny_data, tmp_path, capsys):
    import keras

    run = tmp_path / "run"
    train_tiny(tiny_data, run)
    for name in ("config.json", "history.csv", "steps.csv", "generator.keras", "losses.png",
                 "images/epoch_0001.png", "images/epoch_0002.png"):
        assert (run / name).is_file(), name
    history = read_history(run)
    assert [row["epoch"] for row in history] == ["1", "2"]
    assert set(history[0]) == set(runs.HISTORY_FIELDS)
    with open(run / "steps.csv") as f:  # every step, for losses.png's curves
        assert [(row["epoch"], row["step"]) for row in csv.DictReader(f)] == [
            (str(e), str(s)) for e in (1, 2) for s in (1, 2, 3, 4)]
    out, err = capsys.readouterr()  # not a terminal: no bar, one line an epoch, then the closing line
    lines = out.splitlines()
    assert [line.split("  ")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert "\r" not in out + err and "img/s" in lines[-2] and " s in all (" in lines[-1]
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == 2 and config["batch"] == 16 and config["seed"] == 3 and config["limit"] == 64
    assert config["steps_per_epoch"] == 4

    generator = keras.models.load_model(run / "generator.keras")
    samples = keras.ops.convert_to_numpy(generator(np.random.normal(size=(5, config["latent"])).astype("float32")))
    assert samples.shape == (5, 28, 28, 1)
    assert samples.min() >= -1 and samples.max() <= 1

    grid = iio.imread(run / "images" / "epoch_0001.png")
    zoom = viz.zoom_for(5, 5)
    assert grid.ndim == 2 and grid.shape[1] == zoom * viz.grid_side(5) and zoom >= 4  # projector-sized
    assert grid.shape[0] > grid.shape[1] and grid[:grid.shape[0] - grid.shape[1]].max() == 255  # a caption

    gif = make_gif.main(["--run", str(run)])
    assert iio.imread(gif, index=None).shape[0] == 2


@pytest.mark.tier("training")
@EVERY_BACKEND
def test_same_seed_gives_the_same_history(trained_once, tmp_path):
    tiny_data, first = trained_once
    train_tiny(tiny_data, tmp_path / "again")
    assert without_seconds(read_history(first)) == without_seconds(read_history(tmp_path / "again"))


@pytest.mark.tier("training")
def test_averaging_changes_the_saved_generator_and_pictures_but_not_training(trained_once, tmp_path):
    import keras

    tiny_data, trained = trained_once
    averaged = tmp_path / "averaged"
    train_tiny(tiny_data, averaged, "--average-decay", "0.9")
    assert without_seconds(read_history(trained)) == without_seconds(read_history(averaged))
    assert json.loads((averaged / "config.json").read_text())["average_decay"] == 0.9
    kernels = [[np.asarray(w) for w in keras.models.load_model(run / "generator.keras").weights
                if w.name == "kernel"] for run in (trained, averaged)]
    assert all(a.shape == b.shape and not np.allclose(a, b) for a, b in zip(*kernels))
    frames = [iio.imread(run / "images" / "epoch_0002.png") for run in (trained, averaged)]
    assert not np.array_equal(*frames)


def test_a_folder_with_a_run_is_not_overwritten_silently(tiny_data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as e:
        train_tiny(tiny_data, run)
    assert e.value.code == 2
    assert (run / "config.json").read_text() == "{}"


def test_make_gif_from_a_single_frame(tmp_path):
    import viz

    (tmp_path / "images").mkdir()
    viz.save_grid(np.zeros((4, 28, 28), np.uint8), tmp_path / "images" / "epoch_0001.png", 2, 2)
    gif = make_gif.main(["--run", str(tmp_path), "--fps", "5"])
    assert iio.imread(gif, index=None).shape[0] == 1


def test_make_gif_without_frames_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    with pytest.raises(SystemExit) as e:
        make_gif.main(["--run", str(tmp_path)])
    assert e.value.code == 2
    assert "no frames" in capsys.readouterr().err


def test_frames_are_ordered_by_epoch_number_and_step(tmp_path):
    for name in ("epoch_0010.png", "epoch_0002.png", "epoch_1000.png", "epoch_0009.png", "epoch_0009_step_000100.png",
                 "epoch_0009_step_000020.png", "epoch_0010_step_000020.png", "epoch_0009_sketch.png"):
        (tmp_path / name).touch()
    assert [p.name for p in runs.frames_in_epoch_order(tmp_path)] == [
        "epoch_0002.png", "epoch_0009_step_000020.png", "epoch_0009_step_000100.png", "epoch_0009.png",
        "epoch_0010_step_000020.png", "epoch_0010.png", "epoch_1000.png"]


def test_auto_frames_animate_a_one_epoch_demo_and_leave_a_long_run_one_an_epoch():
    assert settings.frames_per_epoch("auto", 1, 200) == 10  # the half-minute demo: a frame every 20 steps
    assert settings.frame_steps(10, 200) == list(range(20, 201, 20))
    assert settings.frames_per_epoch("auto", 3, 200) == 4
    assert settings.frames_per_epoch("auto", 10, 1875) == 1  # the used-by command: one an epoch, as always
    assert settings.frames_per_epoch("auto", 1, 30) == 1  # fewer than 20 steps apart would look alike
    assert settings.frames_per_epoch(7, 10, 1875) == 7
    assert settings.frame_steps(3, 4) == [2, 3, 4]
    assert settings.frame_steps(7, 5) == [1, 2, 3, 4, 5]  # more asked than steps: one a step


@pytest.mark.tier("training")
@EVERY_BACKEND
def test_frames_within_an_epoch_go_into_the_gif_and_change_nothing_of_training(tiny_data, tmp_path):
    train_tiny(tiny_data, tmp_path / "one", "--frames-per-epoch", "1")
    train_tiny(tiny_data, tmp_path / "three", "--frames-per-epoch", "3")
    one, three = tmp_path / "one", tmp_path / "three"
    assert (one / "steps.csv").read_text() == (three / "steps.csv").read_text()
    assert [p.name for p in runs.frames_in_epoch_order(one / "images")] == ["epoch_0001.png", "epoch_0002.png"]
    frames = runs.frames_in_epoch_order(three / "images")
    assert [p.name for p in frames] == [f"epoch_{e:04d}{s}.png" for e in (1, 2)  # 4 steps an epoch
                                        for s in ("_step_000002", "_step_000003", "")]
    for name in ("epoch_0001.png", "epoch_0002.png"):  # drawing more often moved nothing in G
        assert np.array_equal(iio.imread(one / "images" / name), iio.imread(three / "images" / name))
    pictures = [iio.imread(p) for p in frames]
    assert all(a.shape == pictures[0].shape and not np.array_equal(a, b) for a, b in zip(pictures, pictures[1:]))
    assert json.loads((three / "config.json").read_text())["frames_per_epoch"] == 3
    gif = iio.imread(make_gif.main(["--run", str(three)]), index=None)
    assert gif.shape[0] == 6 and np.abs(gif[0].astype(int) - gif[2]).mean() > 0
    with_curves = iio.imread(make_gif.main(["--run", str(three), "--curves"]), index=None)
    assert with_curves.shape[:2] == gif.shape[:2] and with_curves.shape[2] > 1.5 * gif.shape[2]


def test_curves_beside_a_frame_are_bold_up_to_where_it_was_drawn():
    steps = [dict(epoch=e, step=s, d_loss=0.5 + 0.2 * np.sin(s), g_loss=2.0 + np.cos(s), d_acc_real=0.8,
                  d_acc_fake=0.6) for e in (1, 2) for s in range(1, 51)]
    halfway, at_the_end = (viz.training_so_far(steps, drawn_after, 400) for drawn_after in ((1, None), (2, None)))
    assert halfway.shape == at_the_end.shape and halfway.shape[0] == 400 and halfway.shape[2] == 3

    def rightmost_bold(picture):  # matplotlib's first colour, opaque: D's loss; the rest of the run is faint
        bold = np.all(np.abs(picture.astype(int) - (31, 119, 180)) < 16, axis=2)
        return np.nonzero(bold.any(axis=0))[0].max()
    width = halfway.shape[1]
    assert rightmost_bold(at_the_end) > 0.8 * width
    assert 0.3 * width < rightmost_bold(halfway) < rightmost_bold(at_the_end) - 0.25 * width


@pytest.mark.tier("training")
def test_real_fashion_mnist_when_installed(tmp_path):
    try:
        folder = data.find_data_dir(allow_download=False)
    except data.DataError as e:
        pytest.skip(f"real Fashion-MNIST not installed here: {e}")
    images, labels = data.load_split("train", folder)
    assert images.shape == (60000, 28, 28) and set(np.unique(labels)) == set(range(10))
    run = tmp_path / "real"
    dcgan.main(["--epochs", "1", "--limit", "320", "--seed", "0", "--data-dir", str(folder), "--out", str(run)])
    history = read_history(run)
    assert len(history) == 1 and np.isfinite(float(history[0]["d_loss"]))
    assert (run / "generator.keras").is_file()


@pytest.mark.tier("training")
@EVERY_BACKEND
def test_mixed_bfloat16_run_saves_a_float32_generator_and_records_it(tiny_data, tmp_path):
    import keras

    run = tmp_path / "bf16"
    train_tiny(tiny_data, run, "--precision", "mixed_bfloat16")
    assert json.loads((run / "config.json").read_text())["precision"] == "mixed_bfloat16"
    generator = keras.models.load_model(run / "generator.keras")
    samples = generator(np.zeros((2, 100), "float32"))
    assert keras.backend.standardize_dtype(samples.dtype) == "float32"
    assert float(np.abs(keras.ops.convert_to_numpy(samples)).max()) <= 1
    # and it computes in float32 too, wherever it is loaded (bfloat16 is 8x slower on AVX2-only CPUs)
    assert {layer.dtype_policy.name for layer in generator.layers} == {"float32"}


@EVERY_BACKEND
def test_auto_precision_is_bfloat16_only_where_it_measured_faster(tmp_path, monkeypatch):
    from machinery import backends

    with_bf16, without = tmp_path / "with", tmp_path / "without"
    with_bf16.write_text("flags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    without.write_text("flags\t\t: fpu avx2 avx512f\n")
    assert backends.native_bfloat16_cpu(with_bf16) and not backends.native_bfloat16_cpu(without)
    monkeypatch.setattr(backends, "gpu_name", lambda: None)
    monkeypatch.setattr(backends, "native_bfloat16_cpu", lambda: False)
    assert backends.resolve_precision("auto") == "float32"
    monkeypatch.setattr(backends, "native_bfloat16_cpu", lambda: True)
    expected = "mixed_bfloat16" if backends.BFLOAT16_PAYS_ON_CPU[backends.current()] else "float32"
    assert backends.resolve_precision("auto") == expected
    assert backends.resolve_precision("float32") == "float32"
    monkeypatch.setattr(backends, "gpu_name", lambda: "NVIDIA H200")  # bfloat16 was no faster there
    assert backends.resolve_precision("auto") == "float32"


@pytest.mark.tier("training")
@EVERY_BACKEND
def test_xla_flag_compiles_both_train_steps(tiny_data, tmp_path, built_gans):
    import keras

    history = train_tiny(tiny_data, tmp_path / "xla", "--xla", "on")
    train_tiny(tiny_data, tmp_path / "auto")
    (xla_d, xla_gan), (auto_d, auto_gan) = built_gans
    assert xla_d.jit_compile and xla_gan.jit_compile
    auto_compiles = keras.backend.backend() == "jax"  # Keras's "auto" on a CPU: only JAX compiles with XLA
    assert auto_d.jit_compile == auto_gan.jit_compile == auto_compiles
    assert all(np.isfinite(row["d_loss"]) and np.isfinite(row["g_loss"]) for row in history)


def test_frames_of_two_picture_sizes_make_one_gif_at_the_newest_size(tmp_path):
    import viz

    (tmp_path / "images").mkdir()
    viz.save_grid(np.full((4, 28, 28), 100, np.uint8), tmp_path / "images" / "epoch_0001.png", 2, 2, size=200)
    viz.save_grid(np.full((4, 28, 28), 200, np.uint8), tmp_path / "images" / "epoch_0002.png", 2, 2, size=400)
    frames = iio.imread(make_gif.main(["--run", str(tmp_path)]), index=None)
    newest = iio.imread(tmp_path / "images" / "epoch_0002.png")
    assert frames.shape[0] == 2 and frames.shape[1:3] == newest.shape
    assert frames.shape[1] > viz.captioned_grid(np.zeros((4, 28, 28), np.uint8), 2, 2, size=200).shape[0]


def test_an_interrupted_gif_write_keeps_the_old_gif(tmp_path, monkeypatch, capsys):
    import viz

    (tmp_path / "images").mkdir()
    for epoch in (1, 2):
        viz.save_grid(np.full((4, 28, 28), 60 * epoch, np.uint8), tmp_path / "images" / f"epoch_{epoch:04d}.png", 2, 2)
    gif = make_gif.main(["--run", str(tmp_path)])
    before = gif.read_bytes()

    def cut_short(path, *args, **kwargs):
        path.write_bytes(b"GIF89a")  # a few bytes in, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(iio, "imwrite", cut_short)
    with pytest.raises(SystemExit) as e:
        make_gif.main(["--run", str(tmp_path), "--fps", "4"])
    assert e.value.code == 130 and "interrupted; nothing was written" in capsys.readouterr().err
    assert gif.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["dcgan.gif", "images"]


# What torch.compile raises on the kit's step in PyTorch 2.13 (--xla on under PyTorch), made here on any backend.
InductorError = type("InductorError", (RuntimeError,), {"__module__": "torch._inductor.exc"})


@pytest.mark.tier("training")
def test_a_failure_of_the_backends_compiler_ends_the_run_in_one_line(tiny_data, tmp_path, monkeypatch, capsys):
    import models
    from machinery import backends

    assert backends.compiler_failure(ValueError("the kit's own bug")) is None  # those keep their traceback
    first_step_then_fail = iter([False])

    def compile_fails_at_the_second_step(*args):
        if next(first_step_then_fail, True):
            raise InductorError("LoweringException: ValueRangeError: Invalid ranges [0:-1]\n  target: aten.convolution")
        return real_step(*args)

    real_step = models.train_generator
    monkeypatch.setattr(models, "train_generator", compile_fails_at_the_second_step)
    with pytest.raises(SystemExit) as e:
        train_tiny(tiny_data, tmp_path / "run")
    assert e.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {backends.current()}'s compiler failed on a train step (InductorError: LoweringException: "
        "ValueRangeError: Invalid ranges [0:-1]); run without --xla on (the run stopped there; a checkpoint "
        "written before it is kept)"]


def test_curves_drawn_once_for_many_frames_match_a_figure_of_their_own():
    """make_gif.py --curves moves the bold part of one figure from frame to frame: nothing of an earlier frame
    may stay in a later one."""
    steps = [dict(epoch=e, step=s, d_loss=0.5 + 0.2 * np.sin(s), g_loss=2.0 + np.cos(s), d_acc_real=0.8,
                  d_acc_fake=0.6) for e in (1, 2, 3) for s in range(1, 41)]
    curves = viz.TrainingCurves(steps, 300)
    try:
        later_then_earlier = [curves.at(drawn_after) for drawn_after in ((3, None), (1, 20), (2, None))]
    finally:
        curves.close()
    for drawn_after, picture in zip(((3, None), (1, 20), (2, None)), later_then_earlier):
        np.testing.assert_array_equal(picture, viz.training_so_far(steps, drawn_after, 300))
    assert not np.array_equal(later_then_earlier[0], later_then_earlier[1])
