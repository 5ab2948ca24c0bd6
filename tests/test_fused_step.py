"""dcgan.py --fused-step: the classic step's math in one compiled call (JAX), with checkpoints that resume."""

import csv
import json
import signal
import time

import numpy as np
import pytest

import dcgan
from machinery import checkpoints
from conftest import BACKEND_NEUTRAL, JAX_ONLY, SLOW_STEPS
from test_resume import generator_weights, history_rows, run_args, wait_for_checkpoint, without_seconds

pytestmark = [JAX_ONLY, pytest.mark.tier("training")]  # --fused-step runs under JAX only


def figures(run):
    """Every step's four figures, from steps.csv, as numbers."""
    with open(run / "steps.csv") as f:
        return np.array([[float(row[k]) for k in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")]
                         for row in csv.DictReader(f)])


# Two frames an epoch: the fused step must hand its values back to the models before a frame mid-epoch too.
@pytest.mark.parametrize("preset", [[], ["--average-decay", "0.9"], ["--preset", "conditional"],
                                    ["--preset", "wgan", "--limit", "80"]],
                         ids=["legacy", "averaged", "conditional", "wgan"])
def test_the_fused_step_trains_as_the_classic_calls_do(tiny_data, tmp_path, preset):
    for name, extra in (("classic", []), ("fused", ["--fused-step"])):
        dcgan.main(run_args(tiny_data, tmp_path / name, "--epochs", "2", "--frames-per-epoch", "2", *preset, *extra))
    classic, fused = figures(tmp_path / "classic"), figures(tmp_path / "fused")
    assert len(fused) == len(classic) > 0
    # The same math; XLA compiles one call differently from three, so float32 rounding may differ a little.
    np.testing.assert_allclose(fused, classic, rtol=1e-4, atol=1e-5)
    for a, b in zip(generator_weights(tmp_path / "classic"), generator_weights(tmp_path / "fused")):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    frames = sorted(p.name for p in (tmp_path / "fused" / "images").iterdir())
    assert frames == sorted(p.name for p in (tmp_path / "classic" / "images").iterdir()) and len(frames) == 4


def test_a_fused_run_resumes_exactly_and_may_go_on_with_the_classic_calls(tiny_data, tmp_path, capsys):
    dcgan.main(run_args(tiny_data, tmp_path / "once", "--epochs", "4", "--fused-step"))
    dcgan.main(run_args(tiny_data, tmp_path / "split", "--epochs", "2", "--fused-step"))
    dcgan.main(["--resume", "--epochs", "4", "--fused-step", "--out", str(tmp_path / "split"),
                "--data-dir", str(tiny_data)])
    for a, b in zip(generator_weights(tmp_path / "once"), generator_weights(tmp_path / "split")):
        np.testing.assert_array_equal(a, b)  # to the bit: the checkpoint held every value the step keeps
    assert without_seconds(history_rows(tmp_path / "once")) == without_seconds(history_rows(tmp_path / "split"))

    capsys.readouterr()
    dcgan.main(run_args(tiny_data, tmp_path / "switched", "--epochs", "2", "--fused-step"))
    assert step_recorded(tmp_path / "switched") == "fused"
    assert "each step as one compiled call" in capsys.readouterr().out  # with the flag for the classic calls
    dcgan.main(["--resume", "--epochs", "4", "--out", str(tmp_path / "switched"), "--data-dir", str(tiny_data)])
    np.testing.assert_allclose(figures(tmp_path / "switched"), figures(tmp_path / "once"), rtol=1e-4, atol=1e-5)
    # On a CPU the classic calls are the default: the loop dcgan.py shows, with nothing more to say
    assert step_recorded(tmp_path / "switched") == "classic"
    assert "each step as" not in capsys.readouterr().out


def step_recorded(run):
    return json.loads((run / "config.json").read_text())["step"]


@BACKEND_NEUTRAL
@pytest.mark.tier("fast")
@pytest.mark.parametrize("backend, gpu, flags, devices, processes, step", [
    ("jax", "H200", {}, 1, 1, "fused"),  # the default on a GPU under JAX
    ("jax", None, {}, 1, 1, "classic"),  # a CPU: the classic calls
    ("tensorflow", "H100", {}, 1, 1, "classic"),  # the fused step is JAX's
    ("jax", "H200", {"classic_step": True}, 1, 1, "classic"),
    ("jax", None, {"fused_step": True}, 1, 1, "fused"),  # asked for on a CPU: as asked (tests, comparisons)
    ("jax", "H200", {}, 2, 1, "classic"),  # several devices or processes: the classic calls, split
    ("jax", "H200", {}, 1, 2, "classic"),
    ("jax", "H200", {"xla": "off"}, 1, 1, "classic"),  # the fused step is one XLA program
])
def test_the_fused_step_is_the_default_under_jax_on_one_gpu_only(monkeypatch, backend, gpu, flags, devices, processes,
                                                                  step):
    from types import SimpleNamespace

    from machinery import backends, settings

    monkeypatch.setattr(backends, "current", lambda: backend)
    monkeypatch.setattr(backends, "gpu_name", lambda: gpu)
    args = SimpleNamespace(**{"fused_step": False, "classic_step": False, "xla": "auto", **flags})
    assert settings.which_step(args, devices, processes) == step


@pytest.mark.tier("scripts")  # dcgan.py as a process of its own, stopped by Ctrl-C
def test_ctrl_c_mid_epoch_saves_what_the_fused_step_held_and_resumes_to_the_bit(slow_data, tmp_path,
                                                                               start_training):
    """Between frames the models' variables are stale (the values live in the fused step): Ctrl-C must hand
    them back before its checkpoint, or the resumed run would not be the unbroken one."""
    run = tmp_path / "run"
    process = start_training(slow_data, run, 2, "--backend", "jax", "--fused-step")
    wait_for_checkpoint(run, process)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == dcgan.EXIT_INTERRUPTED and "Traceback" not in err
    epoch, step = checkpoints._position(checkpoints.latest(run))
    assert epoch == 2 and 0 < step < SLOW_STEPS  # mid-epoch
    dcgan.main(["--resume", "--fused-step", "--out", str(run), "--data-dir", str(slow_data)])
    unbroken = tmp_path / "unbroken"
    dcgan.main(["--epochs", "2", "--batch", "8", "--seed", "1", "--data-dir", str(slow_data), "--out", str(unbroken),
                "--fused-step"])
    for a, b in zip(generator_weights(unbroken), generator_weights(run)):
        np.testing.assert_array_equal(a, b)
    assert without_seconds(history_rows(unbroken)) == without_seconds(history_rows(run))
