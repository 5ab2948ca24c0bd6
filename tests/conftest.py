"""Shared fixtures: the repo root on sys.path, a tiny Fashion-MNIST made of IDX files the test writes, and
dcgan.py started as its own process (for tests that stop it the hard way). And the suite's two labels:

- its tier, `@pytest.mark.tier("training")` (tiny training runs in this process) or `tier("scripts")`
  (scripts as processes of their own, several devices, across backends); a test with neither is in the fast
  tier. pytest -m fast, -m training or -m scripts runs one tier (README, *Tests*).
- the backends it is about, `@pytest.mark.backends(...)` (EVERY_BACKEND, JAX_ONLY below): it runs in those
  backends' passes. A test without one does not depend on the backend and runs once, in the TensorFlow pass
  (BACKEND_NEUTRAL says so where the module is marked otherwise).

On a module (pytestmark) either label covers its tests; on a test it overrides the module's.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Under JAX most of a tiny test run is XLA compiling the same three step functions again: keep what it
# compiled on disk (for this process and the scripts it starts), which halves the JAX pass.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / ".pytest_cache" / "jax_compilation"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# The kit's cache (judge features of real images per judge, data and backend): for the tests, in the repo.
os.environ.setdefault("DCGAN_KIT_CACHE", str(ROOT / ".pytest_cache" / "dcgan-kit"))
# BatchNorm settled on 64 noise vectors at each picture and save, not 1,024 (machinery/averaging.py): the
# same code, a third less time in each tiny run (the training tests of three files: 297 s -> 195 s).
os.environ.setdefault("DCGAN_KIT_SETTLE_SAMPLES", "64")

import data  # noqa: E402

TIERS = ("fast", "training", "scripts")
ALL_BACKENDS = ("tensorflow", "jax", "torch")
EVERY_BACKEND = pytest.mark.backends(*ALL_BACKENDS)  # about how a backend behaves: checked under each
JAX_ONLY = pytest.mark.backends("jax")
NEUTRAL_PASS = "tensorflow"  # where a test that names no backend runs: the default backend's pass
BACKEND_NEUTRAL = pytest.mark.backends()  # says so of a test in a module marked EVERY_BACKEND


def pytest_configure(config):
    config.addinivalue_line("markers", "tier(name): training or scripts (or fast, inside a module of another tier); "
                                       "none is the fast tier (tests/conftest.py)")
    config.addinivalue_line("markers", "backends(*names): the backend passes a test runs in (tests/conftest.py)")
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: set by tests/conftest.py from tier(...), for pytest -m {tier}")


@pytest.hookimpl(tryfirst=True)  # before pytest's -m selection reads the markers set here
def pytest_collection_modifyitems(config, items):
    import keras

    backend = keras.backend.backend()
    for item in items:
        if any(item.get_closest_marker(name) for name in TIERS):
            raise pytest.UsageError(f"{item.nodeid}: mark its tier as @pytest.mark.tier(NAME), not @pytest.mark.NAME")
        tier = item.get_closest_marker("tier")
        name = tier.args[0] if tier else "fast"
        if tier and (len(tier.args) != 1 or name not in TIERS):
            raise pytest.UsageError(f"{item.nodeid}: tier{tier.args} is not one of {TIERS}")
        item.add_marker(name)
        marked = item.get_closest_marker("backends")
        about = marked.args if marked else ()  # () : backend-neutral
        passes = about or (NEUTRAL_PASS,)
        if backend not in passes:
            what, where = (f"about {' and '.join(about)}" if about else "backend-neutral"), " and ".join(passes)
            item.add_marker(pytest.mark.skip(reason=f"{what}: runs in the {where} pass, not {backend}'s"))


def write_fake_fashion_mnist(folder, n_train=96, n_test=32, seed=0):
    """Four IDX .gz files of random blobs: enough for the loop to run, not to learn anything."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        image_name, label_name = data.FILES[split]
        data.write_idx(folder / image_name, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        data.write_idx(folder / label_name, rng.integers(0, 10, n, dtype=np.uint8))
    return folder


@pytest.fixture
def tiny_data(tmp_path):
    return write_fake_fashion_mnist(tmp_path / "fashion")


@pytest.fixture(autouse=True)
def float32_policy_after_each_test():
    """dcgan.py sets Keras's global precision policy for its run; tests that build models directly
    afterwards in the same process expect the default."""
    yield
    import keras
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def built_gans(monkeypatch):
    """Every (discriminator, gan) pair that models.build_gan makes during the test, in order."""
    import models

    built = []
    build_gan = models.build_gan

    def recording_build_gan(*args, **kwargs):
        generator, discriminator, gan = build_gan(*args, **kwargs)
        built.append((discriminator, gan))
        return generator, discriminator, gan

    monkeypatch.setattr(models, "build_gan", recording_build_gan)
    return built


@pytest.fixture
def start_training():
    """Starts `python dcgan.py` as its own process, tiny batches, seed 1. Whatever is still running when the
    test ends (it failed part-way) is killed, so a failed test leaves nothing training behind it."""
    started = []

    def start(data_dir, out, epochs, *extra):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        started.append(subprocess.Popen(
            [sys.executable, str(ROOT / "dcgan.py"), "--epochs", str(epochs), "--batch", "8", "--seed", "1",
             "--data-dir", str(data_dir), "--out", str(out), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


# slow_data's steps an epoch at batch 8. The tests that stop dcgan.py send their signal about a second after
# epoch 1's checkpoint appears, and it must land within epoch 2: SLOW_STEPS steps must take well over a
# second. On a 2-core CPU a step is 40-60 ms (TensorFlow, or JAX's fused step): 80 steps are 3-5 s; a machine
# at 13 ms a step or less would need more. It was 200 steps: each such test took 45-55 s, most of it training.
SLOW_STEPS = 80


@pytest.fixture
def slow_data(tmp_path):
    return write_fake_fashion_mnist(tmp_path / "bigger", n_train=8 * SLOW_STEPS)
