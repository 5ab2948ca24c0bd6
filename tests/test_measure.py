"""measure.py: every step run as its own process, one table whose figures are the steps' own outputs."""

import json

import keras
import pytest

from tools import measure
from conftest import write_fake_fashion_mnist


@pytest.mark.tier("scripts")
def test_a_tiny_measurement_runs_every_step_and_tables_their_own_figures(tmp_path, capsys):
    folder = write_fake_fashion_mnist(tmp_path / "fashion", n_train=128, n_test=32)
    out = tmp_path / "measured"
    result = measure.main(["--quick", "--steps", "1", "--rounds", "1", "--warmup", "1", "--limit", "64",
                           "--samples", "100", "--seed", "4", "--data-dir", str(folder), "--out", str(out)])
    # bench.py ran for both presets, each with its four loops and the call floor, into its own JSON file
    benches = [json.loads((out / f"bench_{preset}.json").read_text()) for preset in ("legacy", "kit")]
    assert [b["preset"] for b in benches] == ["legacy", "kit"]
    for bench in benches:
        other_g = "sub-pixel G" if keras.backend.backend() != "jax" else "transposed G"  # not the backend's own
        assert [loop["loop"] for loop in bench["loops"]] == ["naive", "fast", "fast mixed_bfloat16", f"fast {other_g}"]
        assert bench["batch"] == 32 and bench["steps"] == 1 and bench["rounds"] == 1  # the budget asked
        assert bench["train_on_batch_floor_ms"] > 0
        assert bench["train_on_batch_floor_gan_ms"] > 0
    # the training run is a real run folder, trained for the asked budget: 64 images = 2 steps of 32
    run = out / "train"
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 4 and config["limit"] == 64 and config["epochs"] == 1
    assert (run / "generator.keras").exists()
    assert result["train"]["images_per_s"] == pytest.approx(64 / result["train"]["seconds"])
    # evaluate.py scored it, and the table quotes its eval.json, not figures of its own
    report = json.loads((run / "eval.json").read_text())
    assert report["samples"] == 100
    table = (out / "measure.md").read_text()
    assert f"FD {report['generated']['fd']:.1f}" in table
    legacy_speed = {loop["loop"]: loop["images_per_s"] for loop in benches[0]["loops"]}
    assert (f"| bench.py, legacy, batch 32: naive / fast / fast mixed_bfloat16 / fast {other_g} | "
            f"{legacy_speed['naive']:.0f} / {legacy_speed['fast']:.0f} (") in table
    other_speed = legacy_speed[f"fast {other_g}"]
    assert f" / {other_speed:.0f} ({other_speed / legacy_speed['naive']:.2f}x) img/s |" in table
    kit_calls = next(loop for loop in benches[1]["loops"] if loop["loop"] == "fast")["ms_per_call"]
    assert (f"| where a fast step's time goes, kit: batch maker / D / GAN / G's average / rest | "
            f"{kit_calls['batch maker']:.2f} / {kit_calls['D']:.2f} / ") in table
    kit_fast = next(loop for loop in benches[1]["loops"] if loop["loop"] == "fast")
    assert (f" ms; the main thread busy {kit_fast['main_thread_ms_per_step']:.1f} of the step's "
            f"{kit_fast['ms_per_step']:.1f} ms |") in table
    # the floor's second figure: as many variables as legacy's GAN call reads, G's 10 weights trained; frozen
    # its 4 BatchNorm statistics, D's 6 weights and 2 Dropout seeds
    legacy = benches[0]
    assert legacy["gan_variables"] == [10, 12]
    assert (f"10 trained and 12 frozen variables as legacy's GAN call, Adam / of which one op launched and read "
            f"back | {legacy['train_on_batch_floor_ms']:.2f} / {legacy['train_on_batch_floor_gan_ms']:.2f} / "
            f"{legacy['round_trip_ms']:.3f} ms") in table
    assert 0 < legacy["round_trip_ms"] < legacy["train_on_batch_floor_ms"]  # a call does more than one op
    assert table.count("\n|") == 9  # header (2 lines), 2 bench rows, 2 call rows, floor, training, evaluate
    assert json.loads((out / "measure.json").read_text())["budget"]["samples"] == 100
    assert table in capsys.readouterr().out


def test_a_step_that_fails_stops_with_its_own_last_line(tmp_path, capsys):
    out = tmp_path / "measured"
    out.mkdir()
    (out / "something.txt").write_text("the user's")
    with pytest.raises(SystemExit):
        measure.main(["--out", str(out)])
    assert "already holds a measurement" in capsys.readouterr().err
    assert (out / "something.txt").read_text() == "the user's"

    with pytest.raises(SystemExit):  # bench.py refuses --steps 0 itself: measure reports its line and log
        measure.run_step("bench", ["tools/bench.py", "--steps", "0"], tmp_path / "bench.log")
    err = capsys.readouterr().err
    assert "bench failed (" in err and "--steps" in err and str(tmp_path / "bench.log") in err
