"""One kit on every Keras backend: choosing one, and what crosses from one to another.

The rest of the suite runs on whichever backend the test process has (CI runs it under TensorFlow and
under JAX; tests/conftest.py says which tests run in which pass). The tests here start scripts under a given
backend in subprocesses, so they need TensorFlow and JAX both; backend-neutral themselves, they run once,
in the TensorFlow pass.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import dcgan
from machinery import backends, checkpoints
from conftest import EVERY_BACKEND, ROOT, write_fake_fashion_mnist

BOTH = pytest.mark.skipif("jax" not in backends.installed(), reason="needs JAX installed too")


def run_script(*args, backend=None, check=True, env=None, cwd=None):
    """Run one of the kit's scripts in a fresh process (optionally with --backend), in `cwd` (default: this
    one); returns the result."""
    env = dict(os.environ, **(env or {}))  # --backend, where given, wins over $KERAS_BACKEND
    command = [sys.executable, str(ROOT / args[0]), *args[1:], *(["--backend", backend] if backend else [])]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


TORCH = pytest.mark.skipif("torch" not in backends.installed(), reason="needs PyTorch installed")


def history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


# ---- choosing a backend -----------------------------------------------------------------------------

def test_an_unknown_backend_is_one_line(tmp_path):
    # In an empty folder: a run already in ./out (a user's, after the README's lesson) would be refused first
    for args, env, message in [(["dcgan.py", "--backend", "theano"], {}, "argument --backend: invalid choice"),
                               (["dcgan.py", "--epochs", "1"], {"KERAS_BACKEND": "theano"},
                                "KERAS_BACKEND=theano is not a backend the kit runs on")]:
        result = run_script(*args, check=False, env=env, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr


def test_a_backend_that_is_not_installed_says_how_to_install_it(monkeypatch, capsys):
    real_find_spec = backends.importlib.util.find_spec
    monkeypatch.setattr(backends.importlib.util, "find_spec",
                        lambda name: None if name == "torch" else real_find_spec(name))
    with pytest.raises(SystemExit) as e:
        backends.use("torch")
    error = capsys.readouterr().err
    assert e.value.code == 2 and error.count("\n") == 1
    assert "backend torch is not installed here: pip install torch" in error
    assert "torch" not in backends.installed()


@EVERY_BACKEND
def test_keras_cannot_switch_backend_in_a_running_process(capsys):
    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    if other not in backends.installed():
        pytest.skip(f"{other} is not installed here")
    with pytest.raises(SystemExit):
        backends.use(other)
    assert f"cannot switch to {other}; start a new process with --backend {other}" in capsys.readouterr().err
    assert backends.use(keras.backend.backend()) == keras.backend.backend()


def test_help_names_the_installed_backends():
    for script in ("dcgan.py", "evaluate.py", "generate.py", "tools/bench.py"):
        out = " ".join(run_script(script, "--help").stdout.split())  # argparse wraps lines
        assert f"installed here: {', '.join(backends.installed())})" in out, script


@BOTH
@pytest.mark.tier("scripts")
def test_jax_runs_never_import_tensorflow(tmp_path):
    data_dir = write_fake_fashion_mnist(tmp_path / "data", n_train=32)
    probe = ("import runpy, sys; sys.argv = ['dcgan.py'] + sys.argv[1:]; "
             "runpy.run_path('dcgan.py', run_name='__main__'); print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe, "--backend", "jax", "--epochs", "1", "--batch", "8",
                             "--eval-every", "1", "--data-dir", str(data_dir), "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("False")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["backend"] == "jax"


# ---- what crosses from one backend to another --------------------------------------------------------

DIRECTIONS = [("tensorflow", "jax"), ("jax", "tensorflow")]


@pytest.fixture(scope="module", params=DIRECTIONS, ids=lambda d: f"{d[0]} to {d[1]}")
def started_elsewhere(request, tmp_path_factory):
    """A 2-epoch run of preset kit (G averaged: every checkpoint group is used) made under the first backend."""
    first, second = request.param
    root = tmp_path_factory.mktemp(f"{first}_to_{second}")
    data_dir = write_fake_fashion_mnist(root / "data", n_train=32)
    run_script("dcgan.py", "--preset", "kit", "--epochs", "2", "--batch", "8", "--seed", "5",
               "--data-dir", str(data_dir), "--out", str(root / "run"), backend=first)
    return first, second, root / "run", data_dir


@BOTH
@pytest.mark.tier("scripts")
def test_a_run_resumes_on_another_backend_with_its_history_and_frames(started_elsewhere, tmp_path):
    first, second, original, data_dir = started_elsewhere
    run = shutil.copytree(original, tmp_path / "run")
    before = history(run)
    result = run_script("dcgan.py", "--resume", "--epochs", "3", "--data-dir", str(data_dir), "--out", str(run),
                        backend=second)
    assert f"written under {first} and goes on under {second}" in result.stdout
    after = history(run)
    assert after[:2] == before and [row["epoch"] for row in after] == ["1", "2", "3"]
    assert all(np.isfinite(float(row["d_loss"])) for row in after)
    assert sorted(p.name for p in (run / "images").iterdir()) == [f"epoch_{e:04d}.png" for e in (1, 2, 3)]
    config = json.loads((run / "config.json").read_text())
    assert config["backend"] == second and config["epochs"] == 3


RESTORE_AND_COMPARE = """
import json, sys
from pathlib import Path
import numpy as np
from machinery import backends
backends.use(sys.argv[1])
import keras
from machinery.training import build
from machinery import checkpoints
run = Path(sys.argv[2])
config = json.loads((run / "config.json").read_text())
training = build(config, "auto")
last, _, skipped = checkpoints.restore_newest(run, training.checkpoint, backends.current())
assert not skipped
with np.load(last / checkpoints.TENSORS_FILE) as saved:
    for group, variables in training.checkpoint.items():
        if group != checkpoints.RANDOM_GROUP:
            for i, variable in enumerate(variables):
                np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), saved[f"{group}/{i:04d}"])
print(sum(len(v) for g, v in training.checkpoint.items() if g != checkpoints.RANDOM_GROUP), "tensors equal")
"""


@BOTH
@pytest.mark.tier("scripts")
def test_a_checkpoint_restores_every_weight_and_optimizer_moment_on_the_other_backend(started_elsewhere):
    _, second, run, _ = started_elsewhere
    result = subprocess.run([sys.executable, "-c", RESTORE_AND_COMPARE, second, str(run)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    count = int(result.stdout.split()[-3])
    assert count > 40  # G and D weights, both Adams' moments, the average, the fixed noise


DRAW = """
import sys
from pathlib import Path
import numpy as np
from machinery import backends
backends.use(sys.argv[1])
from machinery import sampling
generator, noise_kind, _ = sampling.load(Path(sys.argv[2]))
np.save(sys.argv[3], generator.predict(sampling.noise(generator, 64, noise_kind, seed=0), verbose=0))
"""


@BOTH
@pytest.mark.tier("scripts")
def test_a_generator_saved_under_one_backend_draws_the_same_images_under_the_other(started_elsewhere, tmp_path):
    first, second, run, _ = started_elsewhere
    drawn = []
    for backend in (first, second):
        result = subprocess.run([sys.executable, "-c", DRAW, backend, str(run / "generator.keras"),
                                 str(tmp_path / f"{backend}.npy")], capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
        drawn.append(np.load(tmp_path / f"{backend}.npy"))
    # The same up to float rounding, which this barely trained G's BatchNorm amplifies: measured 0.0015 on
    # average and 0.012 at most of the [-1, 1] range (TensorFlow with and without oneDNN: 0.07 at most).
    # A weight loaded into the wrong place would move the images by tenths.
    difference = np.abs(drawn[0] - drawn[1])
    assert drawn[0].shape == (64, 28, 28, 1) and drawn[0].std() > 0.1
    assert difference.mean() < 0.01 and difference.max() < 0.1


@pytest.mark.tier("training")
def test_a_checkpoint_of_the_earlier_kit_is_a_one_line_error(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    dcgan.main(["--epochs", "1", "--batch", "8", "--limit", "32", "--data-dir", str(tiny_data), "--out", str(run)])
    last = checkpoints.latest(run)
    (last / checkpoints.TENSORS_FILE).unlink()  # what tf.train.Checkpoint left instead
    for name in (checkpoints.OLD_FORMAT_FILE, "tensors.data-00000-of-00001"):
        (last / name).write_bytes(b"\0" * 64)
    capsys.readouterr()  # the first run's progress bars
    with pytest.raises(SystemExit) as e:
        dcgan.main(["--resume", "--epochs", "2", "--data-dir", str(tiny_data), "--out", str(run)])
    error = capsys.readouterr().err
    assert e.value.code == 2 and error.count("\n") == 1
    assert "written by an earlier kit (TensorFlow checkpoint format)" in error and "--overwrite" in error


@TORCH
@pytest.mark.tier("scripts")
def test_pytorch_trains_resumes_and_samples(tmp_path):
    """PyTorch is in no requirements file, so the suite's two passes never run on it: one tiny run here,
    resumed, then sampled, keeps it working where it is installed."""
    data_dir = write_fake_fashion_mnist(tmp_path / "data", n_train=32)
    run = tmp_path / "run"
    common = ("--batch", "8", "--seed", "3", "--data-dir", str(data_dir), "--out", str(run))
    run_script("dcgan.py", "--epochs", "1", *common, backend="torch")
    run_script("dcgan.py", "--resume", "--epochs", "2", *common, backend="torch")
    rows = history(run)
    assert [row["epoch"] for row in rows] == ["1", "2"] and all(np.isfinite(float(r["g_loss"])) for r in rows)
    run_script("generate.py", "--run", str(run), backend="torch")
    assert (run / "samples.png").is_file()
