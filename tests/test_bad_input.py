"""Every wrong input: one line on stderr that says what to do, a non-zero exit, never a traceback."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import data
from machinery import runs
from conftest import ROOT, write_fake_fashion_mnist


# Flags, data files and run folders are checked before a backend computes anything: backend-neutral, so
# (tests/conftest.py) these run once, in the TensorFlow pass. Scripts in processes of their own, each
# stopped by its error before training (a second or less): the fast tier, though the workspace fixture
# below trains one tiny run, once, for the cases that need a finished run.


def run_script(script, *args, cwd, prefix=()):
    return subprocess.run([*prefix, sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                          cwd=cwd)


def every_file(folder):
    """{path: sha256} of every file under `folder`: what the user had, to compare after a failed command.
    Not the run's lock file: a process that took it leaves it behind, empty of meaning once it has ended
    (deleting it on the way out would let two processes lock two different files)."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and p.name != runs.LOCK_FILE}


def assert_one_line(result, message, status=2):
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Data folders good and broken, a finished run, and odd --out targets, made once for the table."""
    root = tmp_path_factory.mktemp("bad_input")
    good = write_fake_fashion_mnist(root / "good", n_train=64)
    missing = write_fake_fashion_mnist(root / "missing")
    (missing / data.FILES["train"][1]).unlink()
    truncated = write_fake_fashion_mnist(root / "truncated")
    path = truncated / data.FILES["train"][0]
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    not_idx = write_fake_fashion_mnist(root / "not_idx")
    (not_idx / data.FILES["train"][0]).write_text("<html>not found</html>")
    renamed = write_fake_fashion_mnist(root / "renamed")
    (renamed / data.FILES["train"][0]).rename(renamed / "train-images.gz")
    (root / "a_file").write_text("x")
    (root / "foreign").mkdir()
    (root / "foreign" / "thesis.tex").write_text("precious")
    run = root / "run"
    subprocess.run([sys.executable, str(ROOT / "dcgan.py"), "--epochs", "1", "--batch", "16", "--seed", "0",
                    "--data-dir", str(good), "--out", str(run)], check=True, capture_output=True)
    (root / "no_ckpt").mkdir()
    (root / "no_ckpt" / "config.json").write_text((run / "config.json").read_text())
    shutil.copytree(root / "no_ckpt", root / "shipped")  # as pretrained/ ships a run: G, no checkpoint
    shutil.copy(run / "generator.keras", root / "shipped")
    (root / "frames" / "images").mkdir(parents=True)
    (root / "frames" / "images" / "epoch_0001.png").write_bytes(b"\x89PNG broken")
    (root / "not_a_model.keras").write_text("nope")
    (root / "frames_only" / "images").mkdir(parents=True)
    shutil.copy(run / "images" / "epoch_0001.png", root / "frames_only" / "images")
    (root / "a_sweep").mkdir()
    (root / "a_sweep" / "sweep.json").write_text('{"setting": "lr", "dcgan_flags": ["--epochs", "1"]}')
    for name, config in (("batch_typo", '{"preset": "legacy", "batch": "32"}'), ("not_settings", '["legacy"]')):
        shutil.copytree(run, root / name)  # a run whose config.json was edited by hand
        (root / name / "config.json").write_text(config)
    (root / "a_sweep_edited").mkdir()  # a sweep.json as sweep.py writes it, which it writes again on the way
    (root / "a_sweep_edited" / "sweep.json").write_text(json.dumps(dict(setting="lr", dcgan_flags=["--epochs", "1"]),
                                                                   indent=2) + "\n")
    shutil.copytree(root / "not_settings", root / "a_sweep_edited" / "lr_0.001_seed_1")
    (root / "a_sweep_record").mkdir()
    (root / "a_sweep_record" / "sweep.json").write_text('["lr"]')
    return root


CASES = [  # (script, arguments with {root} for the workspace, what the one line must say)
    ("dcgan.py", "--epochs 0", "argument --epochs: must be at least 1, got 0"),
    ("dcgan.py", "--devices 0", "argument --devices: must be at least 1, got 0"),
    ("dcgan.py", "--devices 2 --out {root}/new", "--devices 2 needs --backend jax"),
    ("generate.py", "--class boot --run {root}/run", "unknown class 'boot'; use one of t-shirt"),
    ("generate.py", "--class bag --run {root}/run", "draws from noise alone and cannot be asked for a class"),
    ("dcgan.py", "--epochs -3", "argument --epochs: must be at least 1, got -3"),
    ("dcgan.py", "--epochs two", "argument --epochs: expected a whole number, got 'two'"),
    ("dcgan.py", "--batch 0", "argument --batch: must be at least 1"),
    ("dcgan.py", "--latent 0", "argument --latent: must be at least 1"),
    ("dcgan.py", "--lr 0", "argument --lr: must be a finite number above 0"),
    ("dcgan.py", "--lr -0.1", "argument --lr: must be a finite number above 0"),
    ("dcgan.py", "--lr nan", "argument --lr: must be a finite number above 0"),
    ("dcgan.py", "--limit 0", "argument --limit: must be at least 1"),
    ("dcgan.py", "--seed -1", "argument --seed: must be at least 0"),
    ("dcgan.py", "--preset nope", "argument --preset: invalid choice: 'nope'"),
    ("dcgan.py", "--xla yes", "argument --xla: invalid choice: 'yes'"),
    ("dcgan.py", "--fused-step --backend tensorflow --out {root}/new",
     "--fused-step runs under JAX only, not tensorflow"),
    ("dcgan.py", "--fused-step --backend jax --xla off --out {root}/new", "--fused-step compiles each step with XLA"),
    ("dcgan.py", "--fused-step --backend jax --devices 2 --out {root}/new", "--fused-step runs on one device in one"),
    ("tools/bench.py", "--fused-step --backend tensorflow", "--fused-step times dcgan.py --fused-step, which runs under JAX"),
    ("tools/measure.py", "--fused-step --backend tensorflow --out {root}/m", "--fused-step trains with dcgan.py --fused-step"),
    ("dcgan.py", "--frames-per-epoch 0", "argument --frames-per-epoch: must be at least 1, got 0 (or auto)"),
    ("dcgan.py", "--frames-per-epoch all", "argument --frames-per-epoch: expected a whole number, got 'all' (or auto)"),
    ("dcgan.py", "--average-decay 1", "argument --average-decay: must be at least 0 and below 1, got 1"),
    ("dcgan.py", "--dropout 1", "argument --dropout: must be at least 0 and below 1, got 1"),
    ("tools/bench.py", "--rounds 0", "argument --rounds: must be at least 1, got 0"),
    ("dcgan.py", "--bogus", "unrecognized arguments: --bogus"),
    ("dcgan.py", "--resume --overwrite", "--resume and --overwrite contradict each other"),
    ("dcgan.py", "--batch 500 --data-dir {root}/good --out {root}/o1", "--batch 500 is larger than the 64 training"),
    ("dcgan.py", "--preset wgan --batch 16 --data-dir {root}/good --out {root}/o1",
     "--batch 16 x 5 critic steps is larger than the 64 training images"),
    ("dcgan.py", "--data-dir {root}/nowhere", "data folder {root}/nowhere does not exist"),
    ("dcgan.py", "--data-dir {root}/missing --out {root}/o2", "train-labels-idx1-ubyte.gz: file not found"),
    ("dcgan.py", "--data-dir {root}/truncated --out {root}/o3", "train-images-idx3-ubyte.gz: not a readable gzip"),
    ("dcgan.py", "--data-dir {root}/not_idx --out {root}/o4", "train-images-idx3-ubyte.gz: not an IDX file"),
    ("dcgan.py", "--data-dir {root}/renamed --out {root}/o5",
     "train-images-idx3-ubyte.gz: file not found; the folder must hold train-images-idx3-ubyte.gz, "),
    ("dcgan.py", "--seed 4294967296", "argument --seed: must be at most 4294967295, got 4294967296"),
    ("dcgan.py", "--latent 100000", "argument --latent: must be at most 1024, got 100000"),
    ("dcgan.py", "--lr 2", "argument --lr: must be at most 1, got 2"),
    ("make_gif.py", "--fps 1e-9", "argument --fps: must be from 0.1 to 50, got 1e-9"),
    ("make_gif.py", "--fps 1000", "argument --fps: must be from 0.1 to 50, got 1000"),
    ("evaluate.py", "--samples 60001", "argument --samples: must be at most 60000"),
    ("generate.py", "--seed 4294967296", "argument --seed: must be at most 4294967295"),
    ("dcgan.py", "--data-dir {root}/good --out {root}/a_file", "--out {root}/a_file is a file"),
    ("dcgan.py", "--data-dir {root}/good --out {root}/a_file/sub", "cannot write to --out {root}/a_file/sub"),
    ("dcgan.py", "--data-dir {root}/good --out {root}/foreign", "holds files that are not a DCGAN run"),
    ("dcgan.py", "--data-dir {root}/good --out {root}/run", "already holds a run; pass --resume"),
    ("dcgan.py", "--resume --data-dir {root}/good --out {root}/empty_new", "holds no DCGAN run"),
    ("dcgan.py", "--resume --data-dir {root}/good --out {root}/no_ckpt", "has no checkpoint to resume from"),
    ("dcgan.py", "--resume --data-dir {root}/good --out {root}/shipped",
     "{root}/shipped holds a trained generator but no checkpoint to resume from; train a new run with another --out"),
    ("dcgan.py", "--resume --preset tutorial --data-dir {root}/good --out {root}/run",
     "--preset tutorial contradicts the run"),
    ("dcgan.py", "--resume --batch 8 --data-dir {root}/good --out {root}/run", "--batch 8 contradicts the run"),
    ("dcgan.py", "--resume --dropout 0 --data-dir {root}/good --out {root}/run", "--dropout 0.0 contradicts the run"),
    ("make_gif.py", "--run {root}/nowhere", "run folder {root}/nowhere does not exist"),
    ("make_gif.py", "--run {root}/a_file", "run folder {root}/a_file is a file, not a folder"),
    ("dcgan.py", "--data-dir {root}/a_file", "data folder {root}/a_file is a file, not a folder"),
    ("make_gif.py", "--run {root}/foreign", "no frames in"),
    ("make_gif.py", "--run {root}/frames", "epoch_0001.png cannot be read"),
    ("make_gif.py", "--run {root}/frames_only --curves", "has no steps.csv or history.csv to draw --curves from"),
    ("make_gif.py", "--fps 0", "argument --fps: must be from 0.1 to 50, got 0"),
    ("evaluate.py", "--generator {root}/not_a_model.keras", "not_a_model.keras is not a Keras model file"),
    ("evaluate.py", "--run {root}/nowhere", "generator file {root}/nowhere/generator.keras not found"),
    ("evaluate.py", "--samples 5", "argument --samples: must be at least 100"),
    ("evaluate.py", "--run {root}/run --generator {root}/run/generator.keras", "not allowed with argument"),
    ("tools/compare.py", "{root}/run {root}/nowhere", "{root}/nowhere holds no DCGAN run (no config.json); train one"),
    ("tools/compare.py", "{root}/run {root}/no_ckpt", "{root}/no_ckpt has no trained epoch to show"),
    ("tools/compare.py", "{root}/run --out {root}/c.jpg", "--out {root}/c.jpg must end in .png"),
    ("tools/compare.py", "--out {root}/c.png", "the following arguments are required: runs"),
    ("trap.py", "--out {root}/trap.jpg", "--out {root}/trap.jpg must end in .png"),
    ("trap.py", "--steps 0", "argument --steps: must be at least 1, got 0"),
    ("trap.py", "--data-dir {root}/missing --out {root}/trap.png", "train-labels-idx1-ubyte.gz: file not found"),
    ("tools/compare.py", "a b c d e f g", "7 runs given; at most 6 fit one picture"),
    ("tools/compare.py", "{root}/run --out {root}/a_file/c.png", "{root}/a_file (for c.png) is a file"),
    ("tools/verdicts.py", "--run {root}/nowhere", "{root}/nowhere holds no DCGAN run (no config.json); train one"),
    ("tools/verdicts.py", "--run {root}/no_ckpt", "{root}/no_ckpt has no checkpoint to take D from"),
    ("tools/verdicts.py", "--count 3", "argument --count: must be at least 8, got 3"),
    ("tools/verdicts.py", "--run {root}/run --data-dir {root}/nowhere", "data folder {root}/nowhere does not exist"),
    ("tools/sweep.py", "speed 1 2", "argument SETTING: invalid choice: 'speed'"),
    ("tools/sweep.py", "lr 0.001", "1 value(s) of lr given; give 2 to 6"),
    ("tools/sweep.py", "lr 0.001 fast", "argument --lr: expected a number, got 'fast' (see dcgan.py --help)"),
    ("tools/sweep.py", "batch 32 0", "argument --batch: must be at least 1, got 0"),
    ("tools/sweep.py", "lr 0.001 1e-3", "lr 1e-3 is the same as lr 0.001; give each value once"),
    ("tools/sweep.py", "lr 0.001 0.01 --seed 3", "--seed is set by sweep.py for each run: leave it out"),
    ("tools/sweep.py", "lr 0.001 0.01 --lr 0.1", "--lr is what this sweep varies: give its values after lr"),
    ("tools/sweep.py", "lr 0.001 0.01 --seeds 1 1", "--seeds 1 1 names a seed twice"),
    ("tools/sweep.py", "lr 0.001 0.01 --eval-every 0", "--eval-every 0 leaves the runs unscored"),
    ("tools/sweep.py", "lr 0.001 0.01 --bogus", "unrecognized arguments: --bogus (see dcgan.py --help)"),
    ("tools/sweep.py", "lr 0.001 0.01 --out {root}/foreign", "--out {root}/foreign holds files that are not a sweep"),
    ("tools/sweep.py", "lr 0.001 0.01 --out {root}/a_file", "--out {root}/a_file is a file"),
    ("tools/sweep.py", "lr 0.001 0.01 --epochs 2 --out {root}/a_sweep",
     "{root}/a_sweep holds a sweep of lr with the flags --epochs 1; give the same flags"),
    ("tools/sweep.py", "lr 0.001 0.01 --out {root}/a_sweep_record", "sweep.json is not a sweep's record"),
    ("tools/sweep.py", "lr 0.001 0.01 --epochs 1 --out {root}/a_sweep_edited",
     "lr_0.001_seed_1/config.json is not a JSON object of settings; delete {root}/a_sweep_edited/lr_0.001_seed_1"),
    ("dcgan.py", "--resume --data-dir {root}/good --out {root}/batch_typo",
     '{root}/batch_typo/config.json holds batch = "32", not a whole number; start a new run with --overwrite'),
    ("dcgan.py", "--resume --data-dir {root}/good --out {root}/not_settings",
     "{root}/not_settings/config.json is not a JSON object of settings"),
    ("tools/compare.py", "{root}/run {root}/batch_typo", 'holds batch = "32", not a whole number; train the run again'),
    ("tools/verdicts.py", "--run {root}/not_settings", "not_settings/config.json is not a JSON object of settings; train"),
    ("generate.py", "--run {root}/not_settings", "not_settings/config.json is not a JSON object of settings; move"),
    ("evaluate.py", "--run {root}/not_settings", "not_settings/config.json is not a JSON object of settings; move"),
]


@pytest.mark.parametrize("script, arguments, message", CASES, ids=[f"{s} {a}" for s, a, _ in CASES])
def test_bad_input(workspace, script, arguments, message):
    before = every_file(workspace)
    args = [a.format(root=workspace) for a in arguments.split()]
    assert_one_line(run_script(script, *args, cwd=workspace), message.format(root=workspace))
    assert every_file(workspace) == before  # nothing the user had is changed, and nothing is added


def test_nothing_of_the_user_is_touched(workspace):
    assert (workspace / "foreign" / "thesis.tex").read_text() == "precious"
    assert (workspace / "run" / "generator.keras").is_file()
    assert np.all([(workspace / "run" / "images" / "epoch_0001.png").is_file()])


@pytest.fixture(scope="module")
def read_only(workspace):
    """A copy of the finished run and its data in a folder the scripts may read but not write, and the
    command prefix that makes it so. chmod does not stop root: as root the script runs in a mount namespace
    of its own in which the folder is mounted read-only, as a write-protected disk would be."""
    top = Path(tempfile.mkdtemp(prefix="dcgan-read-only-"))
    shutil.copytree(workspace / "run", top / "run")
    shutil.copytree(workspace / "good", top / "data")
    locked = [top, *top.rglob("*")]
    prefix = []
    if os.geteuid() == 0:
        prefix = ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && '
                  'exec "$@"', str(top)]
        if subprocess.run([*prefix, "sh", "-c", 'touch "$0"/probe 2>/dev/null; test ! -e "$0"/probe', str(top)],
                          capture_output=True).returncode:
            shutil.rmtree(top)
            pytest.skip("running as root where a read-only mount cannot be made (no unshare --mount)")
    else:
        for path in locked:
            path.chmod(0o555 if path.is_dir() else 0o444)
    yield top, prefix
    for path in locked:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(top)


READ_ONLY_CASES = [  # (script, arguments with {top} for the read-only folder, what the one line must say)
    ("dcgan.py", "--resume --epochs 3 --data-dir {top}/data --out {top}/run", "cannot write to --out {top}/run ("),
    ("dcgan.py", "--epochs 1 --data-dir {top}/data --out {top}/run/new", "cannot write to --out {top}/run/new ("),
    ("make_gif.py", "--run {top}/run", "cannot write to run folder {top}/run ("),
    ("generate.py", "--run {top}/run", "cannot write to --out {top}/run ("),
    ("evaluate.py", "--run {top}/run --data-dir {top}/data", "cannot write to {top}/run (for eval.json and eval.png)"),
    ("tools/verdicts.py", "--run {top}/run --data-dir {top}/data",
     "cannot write to {top}/run (for verdicts.png and verdicts.json)"),
]


@pytest.mark.parametrize("script, arguments, message", READ_ONLY_CASES,
                         ids=[f"{s} {a}" for s, a, _ in READ_ONLY_CASES])
def test_a_folder_that_cannot_be_written_is_found_before_any_work(read_only, script, arguments, message):
    top, prefix = read_only
    before = every_file(top / "run")
    args = [a.format(top=top) for a in arguments.split()]
    assert_one_line(run_script(script, *args, cwd=top, prefix=prefix), message.format(top=top))
    assert every_file(top / "run") == before


def test_a_reader_that_stops_early_ends_the_script_quietly(tmp_path):
    # As `python dcgan.py --list-presets | head -1` does: the reader is gone before the script prints
    # (Python's start-up alone takes far longer than closing a pipe). (--help needs nothing: argparse drops
    # what it cannot write.)
    child = subprocess.Popen([sys.executable, str(ROOT / "dcgan.py"), "--list-presets"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdout.close()
    errors = child.stderr.read()
    assert child.wait() == 141, errors  # 128 + SIGPIPE, as for any tool cut off by `head`
    assert errors == ""


@pytest.mark.parametrize("script, arguments", [
    ("dcgan", "--data-dir {root}/nowhere"), ("dcgan", "--data-dir {root}/truncated --out {root}/o9"),
    ("dcgan", "--data-dir {root}/good --out {root}/run"), ("dcgan", "--resume --out {root}/empty_new"),
    ("dcgan", "--resume --data-dir {root}/good --out {root}/no_ckpt"),
    ("dcgan", "--resume --batch 8 --data-dir {root}/good --out {root}/run"),
    ("dcgan", "--resume --data-dir {root}/good --out {root}/batch_typo"),
    ("dcgan", "--devices 2 --backend tensorflow --data-dir {root}/good --out {root}/o12"),
    ("dcgan", "--batch 500 --data-dir {root}/good --out {root}/o13"),
    ("dcgan", "--preset wgan --batch 16 --data-dir {root}/good --out {root}/o13"),
    ("generate", "--class bag --run {root}/run"), ("evaluate", "--generator {root}/not_a_model.keras"),
    ("tools.verdicts", "--run {root}/no_ckpt"), ("tools.verdicts", "--run {root}/run --data-dir {root}/nowhere"),
])
def test_what_needs_no_keras_is_refused_before_keras_is_imported(workspace, script, arguments):
    """TensorFlow's import alone takes about 10 s on a 2-core CPU: a mistyped --data-dir or --out, a flag that
    contradicts the run to resume, or a --batch the data cannot fill is told before it, in under a second;
    and a new run's folder is made only once all that passed."""
    probe = (f"import sys, {script}\ntry:\n    {script}.main(sys.argv[1:])\n"
             "except SystemExit:\n    print('keras' in sys.modules)")
    args = [a.format(root=workspace) for a in arguments.split()]
    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT)
    assert result.stderr.startswith("error: ") and result.stdout.strip() == "False", result.stderr
    new_run = [a for a in args if Path(a).name in ("o9", "o12", "o13")]  # the --out of a new run
    assert not any(Path(folder).exists() for folder in new_run)


def test_a_backend_that_is_not_one_is_one_line_in_every_script_that_takes_one(workspace):
    before = every_file(workspace)
    for script, arguments in (("dcgan.py", "--data-dir {root}/good --out {root}/o10"), ("evaluate.py", "--run {root}/run"),
                              ("generate.py", "--run {root}/run --out {root}/o11"), ("trap.py", "--data-dir {root}/good"),
                              ("tools/verdicts.py", "--run {root}/run"), ("tools/bench.py", "")):
        args = [a.format(root=workspace) for a in arguments.split()]
        result = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                                cwd=workspace, env={**os.environ, "KERAS_BACKEND": "theano"})
        assert_one_line(result, "KERAS_BACKEND=theano is not a backend the kit runs on")
    assert every_file(workspace) == before
