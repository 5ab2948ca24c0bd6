"""Checkpoints of a run that survive interruption: written atomically, resumed exactly, on any backend.

The tensors (G, D, both optimizers, the fixed noise, G's weight average, and
every random state: Dropout's, the batch maker's) go as plain numpy arrays into one `.npz` file, which
every Keras backend can read; the loop's own position and history go in a small JSON file beside it.
Each checkpoint is written into a hidden temporary folder and renamed into place only when complete, so a
write cut short (power loss, kill -9) never replaces a readable checkpoint.

    RUN/checkpoints/epoch_0004_step_000000/{tensors.npz, state.json}

A checkpoint resumed on the backend that wrote it continues exactly. On another backend the random
states are left as the new backend seeded them (each backend keeps them in its own format and draws
other numbers from them), so only the random streams differ: weights, optimizer moments, the average,
the fixed noise, the epoch and the history carry over unchanged.
"""

import json
import os
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np

from machinery import runs

FOLDER, NAME = runs.CHECKPOINT_FOLDER, runs.CHECKPOINT_PATTERN
TENSORS_FILE = "tensors.npz"
STATE_FILE = runs.CHECKPOINT_STATE_FILE  # written last inside the temporary folder: marks a finished write
OLD_FORMAT_FILE = "tensors.index"  # what tf.train.Checkpoint wrote, before the kit ran on every backend
RANDOM_GROUP = "random_state"  # the only group that does not cross backends
AVERAGE_GROUP = "generator_average"  # averaging.GeneratorAverage's variables, in runs that keep one
KEEP = 3


class CheckpointError(runs.RunError):
    """A checkpoint that cannot be resumed here (so a run folder that cannot be used as asked); the message
    is one line that says what to do."""


def random_state_variables(model):
    """Variables that are not weights: Keras keeps Dropout's and SeedGenerator's states there."""
    weight_ids = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


def training_state(generator, discriminator, gan, batch_maker, fixed_noise, average=None):
    """{group: [Keras variables]}: everything a resume needs, by group, each in a fixed order."""
    groups = dict(generator=generator.weights, discriminator=discriminator.weights,
                  d_optimizer=discriminator.optimizer.variables, g_optimizer=gan.optimizer.variables,
                  fixed_noise=[fixed_noise],
                  **{RANDOM_GROUP: [*random_state_variables(generator), *random_state_variables(discriminator),
                                    *random_state_variables(batch_maker)]})
    if average:
        groups[AVERAGE_GROUP] = average.variables
    return groups


_position, complete_checkpoints = runs.checkpoint_position, runs.complete_checkpoints  # the folder's layout: runs.py


def latest(run_dir):
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def write(run_dir, groups, state, keep=KEEP):
    """Write a checkpoint for state["epoch"], state["step"]; keep the newest `keep`. Returns its folder.
    `state` must hold the name of the backend that trained ("backend")."""
    folder = Path(run_dir) / FOLDER
    final = folder / NAME.format(state["epoch"], state["step"])
    temporary = folder / f".partial-{final.name}"
    shutil.rmtree(temporary, ignore_errors=True)  # left over from a write that was cut short
    temporary.mkdir(parents=True)
    arrays = {f"{group}/{i:04d}": keras.ops.convert_to_numpy(v)
              for group, variables in groups.items() for i, v in enumerate(variables)}
    with open(temporary / TENSORS_FILE, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    _write_json_durably(temporary / STATE_FILE, state)
    if final.exists():  # the same position saved twice: move the old one aside, never delete it first
        stale = folder / f".stale-{final.name}"
        shutil.rmtree(stale, ignore_errors=True)
        os.replace(final, stale)
        os.replace(temporary, final)
        shutil.rmtree(stale)
    else:
        os.replace(temporary, final)
    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old)
    return final


STATE_KEYS = ("epoch", "step", "shuffle_state", "sums", "seconds", "history")  # what the loop reads back


def read(path, groups, backend):
    """(state, [(variable, value)]) of one checkpoint, read whole and checked against `groups`, or a
    CheckpointError that says what is wrong with it. Nothing is assigned yet: see restore_newest."""
    path = Path(path)
    if (path / OLD_FORMAT_FILE).is_file():
        raise CheckpointError("written by an earlier kit (TensorFlow checkpoint format); continue it with that "
                              "kit (git checkout 295dca3), or start a new run with --overwrite")
    try:
        state = json.loads((path / STATE_FILE).read_text())
        with np.load(path / TENSORS_FILE) as saved:
            arrays = {key: saved[key] for key in saved.files}  # reads every tensor: a truncated one fails here
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # ValueError: also bad JSON
        raise CheckpointError(f"unreadable ({type(e).__name__}: {str(e)[:80]})") from None
    missing = [key for key in STATE_KEYS if key not in state] if isinstance(state, dict) else STATE_KEYS
    if missing:
        raise CheckpointError(f"{STATE_FILE} lacks {', '.join(missing)}")
    values = []
    for group, variables in groups.items():
        if group == RANDOM_GROUP and state.get("backend") != backend:
            continue  # another backend's random states: a different format and stream
        keys = sorted(k for k in arrays if k.startswith(f"{group}/"))
        if len(keys) != len(variables):
            raise CheckpointError(f"holds {len(keys)} {group} tensors, this run's models have {len(variables)}; "
                                  "it belongs to another preset or kit version")
        for key, variable in zip(keys, variables):
            if tuple(arrays[key].shape) != tuple(variable.shape):
                raise CheckpointError(f"{key} has shape {arrays[key].shape}, the model wants "
                                      f"{tuple(variable.shape)}; it belongs to another run")
            values.append((variable, arrays[key]))
    return state, values


def restore_newest(run_dir, groups, backend):
    """Load the newest checkpoint that reads completely into `groups`' variables.
    Returns (its folder, its state, [(skipped folder, why)]); a CheckpointError if none reads."""
    skipped = []
    for path in reversed(runs.require_checkpoints(run_dir)):
        try:
            state, values = read(path, groups, backend)
        except CheckpointError as e:
            skipped.append((path, str(e)))
            continue
        for variable, value in values:
            variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype)))
        return path, state, skipped
    name, why = skipped[0][0].name, skipped[0][1]
    raise CheckpointError(f"no checkpoint of {run_dir} can be read ({len(skipped)} tried; the newest, {name}: "
                          f"{why}); start it again with --overwrite")


def _write_json_durably(path, value):
    with open(path, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
