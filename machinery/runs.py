"""The run folder: what a training run writes, where, and how it is made safe to reuse.

Files only, nothing of GANs.

    RUN/config.json  history.csv  steps.csv  images/epoch_NNNN.png  generator.keras  losses.png  dcgan.gif
        images/epoch_NNNN_step_SSSSSS.png (frames within an epoch, --frames-per-epoch)
        eval.json  eval.png (evaluate.py)  samples.png  walks.png (generate.py)  verdicts.png  verdicts.json
        (verdicts.py)
        checkpoints/ (see checkpoints.py)  .lock (held while a process trains in it)
        diverged.json (where its last training stopped on a NaN loss)
"""

import contextlib
import csv
import fcntl
import json
import os
import re
import shutil
from pathlib import Path

HISTORY_FIELDS = ["epoch", "d_loss", "g_loss", "d_acc_real", "d_acc_fake", "seconds", "fd", "classes_covered",
                  "d_real_train", "d_real_test"]
SCORED_FIELDS = ("fd", "classes_covered", "d_real_train", "d_real_test")  # blank in epochs not scored
STEP_FIELDS = ["epoch", "step", "d_loss", "g_loss", "d_acc_real", "d_acc_fake"]  # steps.csv: one row a step
RUN_FILES = ["config.json", "history.csv", "steps.csv", "generator.keras", "generator_best.keras", "losses.png",
             "dcgan.gif", "eval.json", "eval.png", "samples.png", "walks.png", "verdicts.png", "verdicts.json",
             "diverged.json"]
DIVERGED_FILE = "diverged.json"
EXIT_DIVERGED = 3  # the exit status of a run stopped by a loss that is not a number (its record: DIVERGED_FILE)
CHECKPOINT_FOLDER = "checkpoints"
RUN_FOLDERS = ["images", CHECKPOINT_FOLDER]  # removed by --overwrite only when nothing else is in them
FRAME_PATTERN = "epoch_{:04d}.png"  # the frame at an epoch's end
MID_EPOCH_FRAME_PATTERN = "epoch_{:04d}_step_{:06d}.png"  # a frame within the epoch, after that many steps
FRAME_NAME = re.compile(r"epoch_(\d+)(?:_step_(\d+))?\.png$")  # reads both back, past 9999 epochs too
CHECKPOINT_PATTERN = "epoch_{:04d}_step_{:06d}"
CHECKPOINT_NAME = re.compile(r"epoch_(\d{4,})_step_(\d{6,})$")
CHECKPOINT_STATE_FILE = "state.json"  # written last into a checkpoint's temporary folder: marks a finished write
UNFINISHED_PREFIXES = (".partial-", ".stale-")  # what the kit writes to, before renaming it into place
LOCK_FILE = ".lock"  # held (flock) by the process training in the folder; holds its PID


class RunError(Exception):
    """A run folder that cannot be used as asked; the message is one line that says what to do."""


def is_run(folder):
    return (Path(folder) / "config.json").is_file()


def check_writable(out, named=None):
    """Fail early (before any work) if the folder `out` cannot be written; creates it, nothing in it.
    `named`: how the message names it (default: --out OUT)."""
    named = named or f"--out {out}"
    if out.exists() and not out.is_dir():
        raise RunError(f"{named} is a file; give a folder name")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise RunError(f"cannot write to {named} ({e.strerror}); choose a folder you can write to") from None


def check_new(out, overwrite):
    """Refuse, before anything is written, an `out` that holds something a new run must not replace."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; give a folder name")
    if out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir()):
        if not is_run(out):
            raise RunError(f"--out {out} holds files that are not a DCGAN run; choose a new or empty folder")
        if not overwrite:
            raise RunError(f"--out {out} already holds a run; pass --resume to continue it, --overwrite to "
                           "replace it, or choose another --out")


def kit_files(out):
    """Every file and folder of `out` that the kit wrote, known by its name (finished or cut short by a
    crash); nothing a user put there."""
    def ours(folder, is_kit_name, want_folder=False):
        if not folder.is_dir():
            return []
        return [p for p in folder.iterdir() if p.is_dir() == want_folder and is_kit_name(_finished_name(p))]

    return (ours(out, lambda name: name in RUN_FILES) + ours(out / "images", FRAME_NAME.fullmatch)
            + ours(out / CHECKPOINT_FOLDER, CHECKPOINT_NAME.fullmatch, want_folder=True))


def _finished_name(path):
    name = path.name
    for prefix in UNFINISHED_PREFIXES:
        name = name.removeprefix(prefix)
    return name


def clear_run(out):
    """--overwrite: remove the kit's own files from `out`, then its folders if nothing else is left in them."""
    for path in kit_files(out):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    for name in RUN_FOLDERS:
        if (out / name).is_dir() and not any((out / name).iterdir()):
            (out / name).rmdir()


@contextlib.contextmanager
def locked(out):
    """Inside the block this process alone trains in `out`. The lock is the operating system's (flock), so
    it goes with the process, however it ends: a folder left by a killed run is simply taken over."""
    with open(out / LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise RunError(f"--out {out} is in use by another training process (PID {holder}); wait for it to "
                           "end, stop it, or choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_config_unchecked(folder, remedy, if_missing=None):
    """The run's config.json as parsed, unchecked (presets.read_run_config checks it); otherwise a RunError, one
    line that ends in what to do: `remedy`, or `if_missing` (default: `remedy`) where there is no run at all."""
    if not is_run(folder):
        raise RunError(f"{folder} holds no DCGAN run (no config.json); {if_missing or remedy}")
    try:
        return json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"{Path(folder) / 'config.json'} cannot be read ({e}); {remedy}") from None


def write_config(out, config):
    replace_atomically(out / "config.json", lambda path: path.write_text(json.dumps(config, indent=2) + "\n"))


def _format(row):
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}


def _write_csv(path, fields, rows):
    def write(temporary):
        with open(temporary, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(_format(row) for row in rows)
    replace_atomically(path, write)


def write_history(out, rows):
    """history.csv: one row per epoch trained, all of them, rewritten whole (on resume, the rows the
    checkpoint holds: later ones are trained again)."""
    _write_csv(out / "history.csv", HISTORY_FIELDS, rows)


def write_steps(out, rows):
    """steps.csv: every step's losses and D's accuracies, for the curves of losses.png."""
    _write_csv(out / "steps.csv", STEP_FIELDS, rows)


def _read_csv(path, fields, whole_numbers=("epoch", "step", "classes_covered"), may_be_blank=SCORED_FIELDS):
    """A CSV the kit wrote, as dicts of numbers (None for a blank or missing figure that may be blank); [] when
    there is no such file or it cannot be read."""
    def number(key, text):
        if text in ("", None) and key in may_be_blank:  # blank in epochs not scored, missing in older runs
            return None
        return (int if key in whole_numbers else float)(text)
    try:
        with open(path, newline="") as f:
            return [{k: number(k, row.get(k)) for k in fields} for row in csv.DictReader(f)]
    except (OSError, ValueError, TypeError):
        return []


def read_steps(out, before_epoch=float("inf")):
    """The rows of steps.csv of epochs before `before_epoch` ([] when there is no such file, or it cannot be
    read: the curves then start later, nothing else depends on them)."""
    return [row for row in _read_csv(out / "steps.csv", STEP_FIELDS) if row["epoch"] < before_epoch]


def write_diverged(out, epoch, step, loss):
    """Record that training stopped on a non-finite loss there: resuming repeats the same steps exactly, so a
    rerun (by hand, or by sweep.py) can know it will most likely stop there again."""
    record = dict(epoch=epoch, step=step, loss=str(loss))
    replace_atomically(out / DIVERGED_FILE, lambda path: path.write_text(json.dumps(record) + "\n"))


def read_diverged(out):
    """Where the run's last training diverged ({epoch, step, loss}), or None if it did not. A record that
    cannot be read still says it diverged, somewhere unknown."""
    path = out / DIVERGED_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return dict(epoch="?", step="?", loss="?")


def read_history(out):
    """The rows of history.csv, one an epoch ([] when there is none, or it cannot be read)."""
    return _read_csv(out / "history.csv", HISTORY_FIELDS)


def frame_name(epoch, step=None):
    """The file name of the frame after `step` steps of `epoch`; step None: at the epoch's end."""
    return FRAME_PATTERN.format(epoch) if step is None else MID_EPOCH_FRAME_PATTERN.format(epoch, step)


def frame_drawn_after(frame):
    """(epoch, steps of it done) when a frame file was drawn, read from its name; steps None: at the epoch's
    end."""
    match = FRAME_NAME.fullmatch(Path(frame).name)
    return int(match.group(1)), None if match.group(2) is None else int(match.group(2))


def frames_in_epoch_order(images_dir):
    """The frame files in the order they were drawn: by epoch number (not by name, so epoch 10000 follows
    9999), within an epoch by step, the epoch's end last."""
    def order(frame):
        epoch, step = frame_drawn_after(frame)
        return epoch, float("inf") if step is None else step
    return sorted((p for p in images_dir.glob("epoch_*.png") if FRAME_NAME.fullmatch(p.name)), key=order)


def checkpoint_position(path):
    """(epoch, step) of a checkpoint folder, from its name; None for anything else."""
    m = CHECKPOINT_NAME.match(Path(path).name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def complete_checkpoints(run_dir):
    """Finished checkpoints of a run (checkpoints.py writes them), oldest first."""
    folder = Path(run_dir) / CHECKPOINT_FOLDER
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if checkpoint_position(p) and (p / CHECKPOINT_STATE_FILE).is_file()]
    return sorted(found, key=checkpoint_position)


def require_checkpoints(run_dir):
    """complete_checkpoints(run_dir), or a RunError that says what to do when there is none."""
    if not (found := complete_checkpoints(run_dir)):
        if (Path(run_dir) / "generator.keras").is_file():
            # a finished run kept without its checkpoints (pretrained/): never advise --overwrite on it
            raise RunError(f"{run_dir} holds a trained generator but no checkpoint to resume from; train a new "
                           "run with another --out")
        raise RunError(f"{run_dir} has no checkpoint to resume from; start it again with --overwrite")
    return found


def replace_atomically(path, write):
    """Call write(temporary_path), then rename it over `path`: readers see the old file or the new one."""
    path = Path(path)
    temporary = path.with_name(f".partial-{path.stem}{path.suffix}")  # keep the suffix: Keras checks it
    try:
        write(temporary)
    except BaseException:  # a full disk, Ctrl-C: the old file stays, and no half-written one lies beside it
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def wrote(path, existed):
    """The line a tool prints once it has written the picture `path` outside a run folder: where a file was
    there before (`existed`), it says so, so that no earlier picture is replaced without a word."""
    return f"replaced {path}, made earlier (--out names another file)" if existed else f"wrote {path}"
