"""compare.py: runs side by side, labelled with the settings in which they differ."""

import shutil
from pathlib import Path

import pytest
from PIL import Image

import dcgan
from machinery import runs
from tools import compare
from conftest import write_fake_fashion_mnist


def train(data_dir, out, *flags):
    dcgan.main(["--epochs", "2", "--batch", "8", "--limit", "32", "--seed", "3", "--eval-every", "0",
                "--data-dir", str(data_dir), "--out", str(out), *flags])
    return out


@pytest.fixture(scope="module")
def two_runs_made(tmp_path_factory):
    """Two runs that differ in lr only, trained once for this file."""
    folder = tmp_path_factory.mktemp("compare")
    fashion = write_fake_fashion_mnist(folder / "fashion")
    return train(fashion, folder / "fast", "--lr", "0.001"), train(fashion, folder / "slow", "--lr", "0.0001")


@pytest.fixture
def two_runs(two_runs_made, tmp_path):
    """Copies of the two runs, the test's own to change."""
    return tuple(shutil.copytree(made, tmp_path / made.name) for made in two_runs_made)


@pytest.mark.tier("training")
def test_two_runs_that_differ_in_lr_are_labelled_by_it(two_runs, tmp_path, capsys):
    result = compare.main([str(folder) for folder in two_runs] + ["--out", str(tmp_path / "lr.png")])
    assert result["differences"] == {"lr": [0.001, 0.0001]}  # the same seed, batch, preset: nothing else
    assert Image.open(tmp_path / "lr.png").size == (6 * 3 * 80, 12 * 80)  # 3 panels of curves: no FD scored
    printed = capsys.readouterr().out
    assert "they differ in: lr (0.001 / 0.0001)" in printed
    assert [line.split()[0] for line in printed.splitlines()[1:3]] == [str(folder) for folder in two_runs]
    assert printed.splitlines()[-1] == f"wrote {tmp_path / 'lr.png'}"
    compare.main([str(folder) for folder in two_runs] + ["--out", str(tmp_path / "lr.png")])
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"replaced {tmp_path / 'lr.png'}, made earlier")


@pytest.mark.tier("training")
def test_a_run_without_steps_or_frames_is_drawn_from_its_history(two_runs, tmp_path, capsys):
    """As pretrained/ ships: config.json and history.csv only. Its epochs' means become the curve, and its
    picture is generate.py's samples.png once that has been drawn."""
    bare = two_runs[1]
    (bare / "steps.csv").unlink()
    last_frame = bare / "images" / "epoch_0002.png"
    for frame in (bare / "images").iterdir():
        if frame != last_frame:
            frame.unlink()
    last_frame.rename(bare / "samples.png")  # a grey picture, as generate.py writes one
    (bare / "images").rmdir()
    found = compare.run_to_show(bare)
    assert [(row["epoch"], row["step"]) for row in found["steps"]] == [(1, 1), (2, 1)]
    assert found["frame"] == bare / "samples.png"
    compare.main([str(two_runs[0]), str(bare), "--out", str(tmp_path / "c.png")])
    assert "holds no frame" not in capsys.readouterr().out
    (bare / "samples.png").unlink()
    assert compare.run_to_show(bare)["frame"] is None
    compare.main([str(two_runs[0]), str(bare), "--out", str(tmp_path / "c.png")])
    assert (tmp_path / "c.png").stat().st_size > 0
    assert f"python generate.py --run {bare} draws samples.png" in capsys.readouterr().out


@pytest.mark.tier("training")
def test_a_damaged_frame_costs_only_its_picture(two_runs, tmp_path, capsys):
    frame = two_runs[0] / "images" / "epoch_0002.png"
    frame.write_bytes(frame.read_bytes()[:100])  # cut short, as by a full disk
    compare.main([str(folder) for folder in two_runs] + ["--out", str(tmp_path / "c.png")])
    assert f"warning: {frame} cannot be read" in capsys.readouterr().out
    assert Image.open(tmp_path / "c.png").size == (6 * 3 * 80, 12 * 80)


def test_settings_missing_from_an_older_run_are_no_difference():
    older, newer = dict(preset="kit", lr=0.0002), dict(preset="kit", lr=0.0002, processes=1)
    assert compare.differences([older, newer]) == {}
    assert compare.differences([older, dict(newer, lr=0.001)]) == {"lr": [0.0002, 0.001]}
    assert compare.differences([dict(older, data_dir="/a"), dict(older, data_dir="/b")]) == {}  # not training


def test_the_shipped_runs_histories_read_though_older_than_some_columns():
    """pretrained/kit's history.csv predates d_real_train and d_real_test (--eval-every's D check): missing is
    blank, not a history that cannot be read (which would leave compare.py and make_gif --curves nothing)."""
    shipped = Path(__file__).resolve().parent.parent / "pretrained"
    header = (shipped / "kit" / "history.csv").read_text().splitlines()[0]
    assert "d_real_train" not in header
    for name in ("kit", "legacy"):
        history = runs.read_history(shipped / name)
        assert [row["epoch"] for row in history] == list(range(1, 11))
        assert all(row["d_real_train"] is None and row["fd"] is None for row in history)
