import keras
import pytest

import models
from machinery import backends, presets, subpixel
from tools import bench
from conftest import EVERY_BACKEND, JAX_ONLY

pytestmark = [EVERY_BACKEND, pytest.mark.tier("training")]  # how each backend compiles and times a step



def test_bench_times_both_loops_and_reports_the_ratio(capsys):
    results = bench.main(["--steps", "2", "--rounds", "3", "--warmup", "1", "--batch", "8"])
    assert [r["loop"] for r in results] == ["naive", "fast", "fast mixed_bfloat16"]
    for r in results:
        assert 0 < r["slowest"] <= r["images_per_s"] <= r["fastest"]  # the median round
        assert r["ms_per_step"] > 0 and r["peak_mb"] > 0
        assert abs(r["s_per_epoch"] - 60_000 / r["images_per_s"]) < 1e-6 * r["s_per_epoch"]
        # one thread cannot be busy longer than the step took (odd rounds: both medians are of one round each)
        assert 0 < r["main_thread_ms_per_step"] <= r["ms_per_step"] * 1.001
    printed = capsys.readouterr().out
    assert "speed-up fast / naive:" in printed and "where a fast step's time goes, ms: batch maker" in printed
    for r in results[1:]:  # the fast loops: their three calls take most of a step, each a real share
        calls = r["ms_per_call"]
        assert list(calls) == ["batch maker", "D", "GAN", "rest"]
        assert all(calls[part] > 0 for part in ("batch maker", "D", "GAN"))
        assert 0 <= calls["rest"] < calls["D"] + calls["GAN"]  # the rest: Python between the calls


def test_xla_is_keras_auto_unless_asked_for(built_gans, capsys):
    common = ["--fast", "--precision", "float32", "--steps", "1", "--rounds", "1", "--warmup", "1", "--batch", "4"]
    assert [r["loop"] for r in bench.main(common)] == ["fast"]
    try:
        assert [r["loop"] for r in bench.main(common + ["--xla"])] == ["fast xla"]
    except SystemExit as e:  # PyTorch 2.13's torch.compile fails on the step: one line (backends.compiler_failure)
        assert keras.backend.backend() == "torch" and e.code == 1
        assert "torch's compiler failed on a train step" in capsys.readouterr().err
    (plain_d, plain_gan), (xla_d, xla_gan) = built_gans
    auto_compiles = keras.backend.backend() == "jax"  # Keras's "auto" on a CPU: only JAX compiles with XLA
    assert plain_d.jit_compile == plain_gan.jit_compile == auto_compiles
    assert xla_d.jit_compile and xla_gan.jit_compile


def test_a_preset_that_averages_g_times_the_average_as_dcgan_py_runs_it():
    results = bench.main(["--preset", "kit", "--fast", "--precision", "float32", "--steps", "2", "--rounds", "1",
                          "--warmup", "1", "--batch", "4"])
    calls = results[0]["ms_per_call"]
    assert list(calls) == ["batch maker", "D", "GAN", "G's average", "rest"]
    assert calls["G's average"] > 0


def test_both_upsamplers_times_g_built_the_other_way_and_leaves_the_choice_as_it_was(capsys):
    own_is_subpixel = backends.SUBPIXEL_PAYS[backends.current()]
    with bench.other_upsampler() as name:
        flipped_g = models.build_gan(presets.PRESETS["legacy"])[0]
    strided = [layer for layer in flipped_g.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert len(strided) == 2
    assert all(isinstance(layer, subpixel.SubpixelConv2DTranspose) != own_is_subpixel for layer in strided)
    assert name == ("transposed G" if own_is_subpixel else "sub-pixel G")
    assert backends.SUBPIXEL_PAYS[backends.current()] == own_is_subpixel  # restored

    results = bench.main(["--fast", "--precision", "float32", "--both-upsamplers", "--steps", "1", "--rounds", "1",
                          "--warmup", "1", "--batch", "4"])
    assert [r["loop"] for r in results] == ["fast", f"fast {name}"]
    assert f"fast ({bench.upsampler_name(own_is_subpixel)}) / fast {name}: " in capsys.readouterr().out


@JAX_ONLY  # --fused-step runs under JAX only; elsewhere it is one line (tests/test_bad_input.py)
def test_fused_step_times_dcgan_s_one_call_step_beside_the_fast_loop(capsys):
    results = bench.main(["--preset", "kit", "--fast", "--precision", "float32", "--fused-step", "--steps", "2",
                          "--rounds", "1", "--warmup", "1", "--batch", "4"])
    assert [r["loop"] for r in results] == ["fast", "fused"]
    fused = results[1]
    assert fused["ms_per_step"] > 0 and "ms_per_call" not in fused  # one call: nothing inside it to clock
    assert "fused" in capsys.readouterr().out
