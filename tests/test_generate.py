"""sampling.py (a saved generator and its noise) and generate.py (samples.png, walks.png)."""

import json

import imageio.v3 as iio
import keras
import numpy as np
import pytest

import generate
import viz
from machinery import sampling


def random_generator(folder, noise="uniform", latent=100):
    """A one-layer generator whose images depend on its noise, saved as a run would leave it."""
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((latent,)), keras.layers.Dense(28 * 28, activation="tanh"),
                              keras.layers.Reshape((28, 28, 1))])
    model.save(folder / "generator.keras")
    if noise:
        (folder / "config.json").write_text(json.dumps({"noise": noise, "pixel_range": [-1, 1]}))
    return folder / "generator.keras"


def tile(picture, rows, cols, row, col):
    """Cut one 28x28 image back out of a viz grid picture of rows x cols tiles (under its caption bands)."""
    zoom = viz.zoom_for(rows, cols)
    top = picture.shape[0] - viz.grid_side(rows) * zoom
    step = (28 + viz.GRID_GAP) * zoom
    return picture[top + row * step:top + row * step + 28 * zoom:zoom, col * step:col * step + 28 * zoom:zoom]


def test_walks_follow_the_great_circle_and_end_on_their_ends():
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=100).astype(np.float32), rng.normal(size=100).astype(np.float32)
    path = generate.interpolate(start, end, 9)
    np.testing.assert_allclose(path[0], start, atol=1e-5)
    np.testing.assert_allclose(path[-1], end, atol=1e-5)
    lengths = np.linalg.norm(path, axis=1)
    assert lengths.min() > 0.95 * min(lengths[0], lengths[-1])  # slerp keeps the length z had
    assert np.linalg.norm((start + end) / 2) < 0.8 * lengths[4]  # which the straight line's middle loses
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    np.testing.assert_allclose(steps, steps.mean(), rtol=0.05)  # equal steps along the way


def test_generate_writes_samples_and_walks_from_the_runs_noise(tmp_path, capsys):
    path = random_generator(tmp_path / "run")
    first = generate.main(["--run", str(tmp_path / "run"), "--count", "10", "--walks", "3", "--steps", "4"])
    assert "uniform noise" in capsys.readouterr().out
    samples, walks = (iio.imread(p) for p in first)
    assert generate.grid_shape(10) == (3, 4)
    zoom = viz.zoom_for(3, 4)
    assert zoom * viz.grid_side(4) == samples.shape[1] == walks.shape[1]  # whole pixels repeated: sharp
    assert abs(samples.shape[1] - viz.PICTURE_SIZE) <= viz.grid_side(4) / 2  # the nearest whole zoom
    captions = samples.shape[0] - zoom * viz.grid_side(3)
    assert 0 < captions < walks.shape[0] - zoom * viz.grid_side(3)  # walks: a title and "start ... end"
    assert samples[:captions].max() == 255  # white letters on the caption band
    generator, noise_kind, pixel_range = sampling.load(path)
    ends = sampling.draw(generator, sampling.noise(generator, 6, noise_kind, 0 + 1), pixel_range)
    for row in range(3):  # each walk starts and ends on two of the random ends
        np.testing.assert_array_equal(tile(walks, 3, 4, row, 0), ends[2 * row])
        np.testing.assert_array_equal(tile(walks, 3, 4, row, 3), ends[2 * row + 1])
    assert not np.array_equal(tile(walks, 3, 4, 0, 1), tile(walks, 3, 4, 0, 2))
    again = iio.imread(generate.main(["--run", str(tmp_path / "run"), "--count", "10", "--walks", "0",
                                      "--out", str(tmp_path / "again")])[0])
    assert not (tmp_path / "again" / "walks.png").exists()
    np.testing.assert_array_equal(again, samples)  # same seed, same images
    other = iio.imread(generate.main(["--run", str(tmp_path / "run"), "--count", "10", "--walks", "0",
                                      "--seed", "1", "--out", str(tmp_path / "other")])[0])
    assert not np.array_equal(other, samples)


def test_noise_comes_from_the_run_then_the_flag_then_normal(tmp_path, capsys):
    with_config = random_generator(tmp_path / "run", noise="uniform")
    assert sampling.load(with_config)[1:] == ("uniform", (-1, 1))
    assert sampling.load(with_config, "normal")[1] == "normal"
    assert capsys.readouterr().out == ""
    moved = random_generator(tmp_path / "moved", noise=None)
    assert sampling.load(moved)[1:] == ("normal", (-1, 1))
    assert "no config.json" in capsys.readouterr().out  # a moved generator is not sampled silently
    assert sampling.load(moved, "uniform")[1] == "uniform"


@pytest.mark.parametrize("text", ["{not json", '{"noise": "uniform"}', '{"noise": "gauss", "pixel_range": [-1, 1]}',
                                  '["uniform"]'])
def test_a_broken_run_config_beside_the_generator_is_a_one_line_error(tmp_path, capsys, text):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(SystemExit):
        sampling.config_beside(tmp_path / "generator.keras")
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "config.json" in error and "\n" not in error
    assert sampling.config_beside(tmp_path / "moved" / "generator.keras") is None


@pytest.mark.parametrize("args, message", [
    (["--steps", "1"], "--steps"),
    (["--count", "0"], "--count"),
    (["--count", "2501"], "must be at most 2500"),
    (["--walks", "100", "--steps", "26"], "2500 at most"),
    (["--run", "nowhere"], "generator file nowhere/generator.keras not found"),
    (["--out", "a_file"], "--out a_file is a file"),
])
def test_wrong_input_is_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    random_generator(tmp_path / "out")
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(SystemExit) as e:
        generate.main(args)
    error = capsys.readouterr().err.strip()
    assert e.value.code == 2 and message in error and "\n" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "out"]  # no folder made for a wrong input


def test_a_caption_wider_than_the_picture_is_shrunk_to_fit_not_cut_off():
    picture = viz.captioned_grid(np.zeros((16, 28, 28), np.uint8), 4, 4, size=300,
                                 caption="24 x Sneaker from conditional/generator.keras (seed 0)")
    band = picture[:-viz.grid_side(4) * viz.zoom_for(4, 4, 300)]  # the rows above the zoomed grid
    lit = np.where((band > 128).any(axis=0))[0]
    width = picture.shape[1]
    assert len(lit) and lit.min() >= 0.01 * width and lit.max() <= 0.99 * width  # a margin on both sides
