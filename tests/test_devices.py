"""--devices: data-parallel training over several devices with keras.distribution (JAX), tested on two CPU
devices that XLA simulates, and the one-line refusals everywhere else."""

import csv
import importlib.util
import json
import os
import socket
import subprocess
import sys

import pytest

from machinery import devices
from conftest import JAX_ONLY, ROOT, write_fake_fashion_mnist

# Runs in a fresh process: XLA makes its CPU devices when JAX starts, and Keras keeps one distribution.
TWO_DEVICE_SCRIPT = r"""
import json, sys
from machinery import backends
backends.use("jax")
import jax
from keras.src.backend.jax import trainer
import dcgan

seen = []  # (global rows, devices, rows per shard) of every array a train_on_batch trains on
distribute = trainer._distribute_data
def spy(data, layouts=None):
    out = distribute(data, layouts)
    seen.extend((x.shape[0], len(x.sharding.device_set), [s.data.shape[0] for s in x.addressable_shards])
                for x in jax.tree_util.tree_leaves(out))
    return out
trainer._distribute_data = spy

data_dir, out = sys.argv[1], sys.argv[2]
common = ["--epochs", "2", "--batch", "8", "--limit", "32", "--seed", "4", "--data-dir", data_dir]
dcgan.main(common + ["--devices", "2", "--out", out + "/two"])
sharded, seen[:] = list(seen), []
dcgan.main(common + ["--out", out + "/one"])
print(json.dumps(dict(sharded=sharded, one_device=seen)))
"""


def jax_or_skip():
    """For a JAX pass without JAX installed. The tests that start JAX processes of their own, whatever backend
    the suite runs on, are marked JAX_ONLY: once is enough, in the JAX pass."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed here (pip install -r requirements-jax.txt)")


def read_steps(run):
    with open(run / "steps.csv") as f:
        return list(csv.DictReader(f))


@JAX_ONLY
@pytest.mark.tier("scripts")
def test_two_devices_split_every_batch_and_train_as_one_device_does(tmp_path):
    jax_or_skip()
    data_dir = write_fake_fashion_mnist(tmp_path / "fashion")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT),
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run([sys.executable, "-c", TWO_DEVICE_SCRIPT, str(data_dir), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "data-parallel on 2 devices (cpu:0, cpu:1)" in done.stdout
    # D's step trains on 16 rows (8 fakes, 8 reals), G's on 8 noise vectors: each split 8 + 8 or 4 + 4.
    assert report["sharded"], "no train_on_batch saw a distributed array"
    for rows, device_count, shard_rows in report["sharded"]:
        assert device_count == 2 and shard_rows == [rows // 2, rows // 2], (rows, device_count, shard_rows)
    assert {rows for rows, _, _ in report["sharded"]} == {16, 8}
    assert all(device_count == 1 for _, device_count, _ in report["one_device"])
    # The same global batch and seed: the same training, up to the order in which float sums are added (the
    # gradients of the two halves are summed across devices). Dropout's masks and the noise are the same:
    # JAX draws random bits independently of how an array is split.
    one, two = read_steps(tmp_path / "one"), read_steps(tmp_path / "two")
    assert len(one) == len(two) == 8
    for a, b in zip(one, two):
        for key in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake"):
            assert abs(float(a[key]) - float(b[key])) < 1e-4, (key, a, b)


@pytest.mark.parametrize("requested, backend, batch, says", [
    (2, "tensorflow", 32, "--devices 2 needs --backend jax"),
    (2, "torch", 32, "--devices 2 needs --backend jax"),
    (4, "jax", 32, "there are 2 device(s)"),
    (2, "jax", 33, "--batch 33 does not split evenly across 2 devices"),
])
def test_what_cannot_be_split_is_refused_in_one_line(requested, backend, batch, says, monkeypatch, capsys):
    monkeypatch.setattr(devices, "local_device_names", lambda: ["cpu:0", "cpu:1"])
    with pytest.raises(SystemExit) as stopped:
        devices.resolve(requested, backend, batch)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


@pytest.mark.parametrize("requested, processes, index, coordinator, backend, says", [
    (2, None, None, None, "tensorflow", "--devices 2 needs --backend jax"),
    (None, 2, 0, "127.0.0.1:1234", "torch", "--processes 2 needs --backend jax"),
    (None, 2, None, "127.0.0.1:1234", "jax", "--processes 2 needs --process-index 0 to 1"),
    (None, 2, 2, "127.0.0.1:1234", "jax", "--processes 2 needs --process-index 0 to 1"),
    (None, 2, 1, None, "jax", "--processes 2 needs --coordinator HOST:PORT"),
    (2, 2, 1, "127.0.0.1:1234", "jax", "--devices 2 with --processes"),
])
def test_flags_that_cannot_work_are_refused_from_the_backend_s_name_alone(requested, processes, index, coordinator,
                                                                          backend, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        devices.check_flags(requested, processes, index, coordinator, backend)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_flags_that_can_work_pass_the_check():
    for flags in [(None, None, None, None, "tensorflow"), (1, 1, None, None, "torch"), ("all", None, None, None, "jax"),
                  ("all", 2, 1, "10.0.0.1:1234", "jax"), (None, 2, 0, "10.0.0.1:1234", "jax")]:
        assert devices.check_flags(*flags) is None


def test_all_and_one_are_counted_without_a_distribution(monkeypatch):
    monkeypatch.setattr(devices, "local_device_names", lambda: ["cpu:0", "cpu:1"])
    assert devices.resolve("all", "jax", 32) == 2
    assert devices.resolve(None, "tensorflow", 33) == devices.resolve(1, "torch", 33) == 1
    assert devices.parse_count("ALL") == "all" and devices.parse_count("3") == 3


# One process of a run of several: dcgan.py's own command line, then a digest of the G and D it trained.
PROCESS_SCRIPT = r"""
import hashlib, sys
import numpy as np
from machinery import backends
backends.use("jax")
import dcgan, models

built = []
build_gan = models.build_gan
models.build_gan = lambda *args, **kwargs: built.append(build_gan(*args, **kwargs)) or built[-1]
dcgan.main(sys.argv[1:])
generator, discriminator, _ = built[-1]
weights = [np.asarray(w.value.addressable_data(0)) for w in generator.weights + discriminator.weights]
print("weights", hashlib.sha256(b"".join(w.tobytes() for w in weights)).hexdigest())
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(tmp_path, count, flags):
    """`count` processes of one dcgan.py run on this machine, coordinator on 127.0.0.1; their outputs."""
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path / "scratch"))
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    coordinator = ["--coordinator", f"127.0.0.1:{free_port()}", "--processes", str(count)] if count > 1 else []
    started = [subprocess.Popen([sys.executable, "-c", PROCESS_SCRIPT, *flags, *coordinator,
                                 *(["--process-index", str(i)] if count > 1 else [])],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
               for i in range(count)]
    try:
        outputs = [process.communicate(timeout=300) for process in started]
    finally:
        for process in started:
            process.kill()
    for process, (stdout, stderr) in zip(started, outputs):
        assert process.returncode == 0, stderr[-2000:]
    return [stdout for stdout, _ in outputs]


@JAX_ONLY
@pytest.mark.tier("scripts")
def test_two_processes_train_one_run_with_the_same_weights_and_resume(tmp_path):
    jax_or_skip()
    (tmp_path / "scratch").mkdir()
    data_dir = write_fake_fashion_mnist(tmp_path / "fashion")
    common = ["--batch", "8", "--limit", "32", "--seed", "4", "--data-dir", str(data_dir)]
    first = run_processes(tmp_path, 2, common + ["--epochs", "1", "--out", "two"])
    resumed = run_processes(tmp_path, 2, common + ["--epochs", "2", "--out", "two", "--resume"])
    alone = run_processes(tmp_path, 1, common + ["--epochs", "2", "--out", "one"])
    for outputs in (first, resumed):
        digests = [line for out in outputs for line in out.splitlines() if line.startswith("weights")]
        assert len(digests) == 2 and digests[0] == digests[1]  # every process ends with the same G and D
        assert "one of 2 processes: this one, process 0, feeds 4 of each step's 8" in outputs[0]
        assert "process 1 of 2: training; process 0 writes two" in outputs[1]
        assert "epoch" not in outputs[1]  # process 1 trains silently
    assert "resuming two at epoch 2" in resumed[0]
    # One run folder, written by process 0; process 1's copies went to a scratch folder, since removed.
    assert json.loads((tmp_path / "two" / "config.json").read_text())["processes"] == 2
    assert list((tmp_path / "scratch").iterdir()) == []
    # Two processes, 4 + 4 real images a step, interrupted and resumed, train as one process does on 8.
    one, two = read_steps(tmp_path / "one"), read_steps(tmp_path / "two")
    assert len(one) == len(two) == 8 and "weights" in alone[0]
    for a, b in zip(one, two):
        for key in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake"):
            assert abs(float(a[key]) - float(b[key])) < 1e-4, (key, a, b)


@pytest.mark.parametrize("flags, says", [
    (["--processes", "2", "--backend", "tensorflow"], "--processes 2 needs --backend jax"),
    (["--processes", "2", "--backend", "jax", "--coordinator", "127.0.0.1:1"], "needs --process-index 0 to 1"),
    (["--processes", "2", "--backend", "jax", "--process-index", "2", "--coordinator", "h:1"], "--process-index 0 to 1"),
    (["--processes", "2", "--backend", "jax", "--process-index", "0"], "needs --coordinator HOST:PORT"),
])
def test_a_run_of_several_processes_that_cannot_start_is_refused_in_one_line(flags, says, monkeypatch, capsys,
                                                                            tmp_path):
    import dcgan
    monkeypatch.chdir(tmp_path)  # --out is ./out: a run left there (the README's lesson) would be refused first
    monkeypatch.setattr(dcgan.backends, "use", lambda name: name)  # no Keras switch needed: it stops before
    monkeypatch.setattr(dcgan.backends, "current", lambda: flags[flags.index("--backend") + 1])
    with pytest.raises(SystemExit) as stopped:
        dcgan.main(flags)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
