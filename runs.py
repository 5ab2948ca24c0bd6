"""The run folder: what a training run writes, where, and how it is made safe to reuse.

Bottom floor of the kit: files only, nothing of GANs.

    RUN/config.json  history.csv  images/epoch_NNNN.png  generator.keras  losses.png  dcgan.gif
        eval.json (evaluate.py)  samples.png  walks.png (generate.py)
        checkpoints/ (see checkpoints.py)
"""

import csv
import json
import os
import re
import shutil
from pathlib import Path

HISTORY_FIELDS = ["epoch", "d_loss", "g_loss", "d_acc_real", "d_acc_fake", "seconds", "fd", "classes_covered"]
RUN_FILES = ["config.json", "history.csv", "generator.keras", "generator_best.keras", "losses.png", "dcgan.gif",
             "eval.json", "samples.png", "walks.png"]
RUN_FOLDERS = ["images", "checkpoints"]
FRAME_PATTERN = "epoch_{:04d}.png"
FRAME_NAME = re.compile(r"epoch_(\d+)\.png$")  # reads FRAME_PATTERN back, past 9999 epochs too


class RunError(Exception):
    """A run folder that cannot be used as asked; the message is one line that says what to do."""


def is_run(folder):
    return (Path(folder) / "config.json").is_file()


def check_writable(out):
    """Fail early (before any training) if `out` cannot hold a run."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; give a folder name")
    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise RunError(f"cannot write to --out {out} ({e.strerror}); choose a folder you can write to") from None


def prepare_new(out, overwrite):
    """Make `out` ready for a new run; never delete anything that is not the kit's own."""
    if out.is_dir() and any(out.iterdir()):
        if not is_run(out):
            raise RunError(f"--out {out} holds files that are not a DCGAN run; choose a new or empty folder")
        if not overwrite:
            raise RunError(f"--out {out} already holds a run; pass --resume to continue it, --overwrite to "
                           "replace it, or choose another --out")
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for name in RUN_FOLDERS:
            shutil.rmtree(out / name, ignore_errors=True)
    check_writable(out)


def read_config(out):
    if not is_run(out):
        raise RunError(f"--out {out} holds no DCGAN run (no config.json) to resume; start one without --resume")
    try:
        return json.loads((out / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"{out / 'config.json'} cannot be read ({e}); start a new run with --overwrite") from None


def write_config(out, config):
    replace_atomically(out / "config.json", lambda path: path.write_text(json.dumps(config, indent=2) + "\n"))


def _format(row):
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}


def append_history(out, row):
    path = out / "history.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(_format(row))


def rewrite_history(out, rows):
    """Replace history.csv with `rows` (on resume: drop rows of epochs the checkpoint does not hold)."""
    def write(path):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
            writer.writeheader()
            writer.writerows(_format(row) for row in rows)
    replace_atomically(out / "history.csv", write)


def replace_atomically(path, write):
    """Call write(temporary_path), then rename it over `path`: readers see the old file or the new one."""
    path = Path(path)
    temporary = path.with_name(f".partial-{path.stem}{path.suffix}")  # keep the suffix: Keras checks it
    write(temporary)
    os.replace(temporary, path)
