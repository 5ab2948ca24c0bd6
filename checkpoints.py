"""Checkpoints of a run that survive interruption: written atomically, resumed exactly.

Middle floor of the kit. Tensors (G, D, both optimizers, the noise generator's state, the fixed noise,
Dropout's random state, G's weight average) go through tf.train.Checkpoint; the loop's own position and
history go in a small JSON file beside them. Each checkpoint is written into a hidden temporary folder and
renamed into place only when complete, so a write cut short (power loss, kill -9) never replaces a
readable checkpoint.

    RUN/checkpoints/epoch_0004_step_000000/{tensors.*, state.json}
"""

import json
import os
import re
import shutil
from pathlib import Path

import cli

with cli.quiet_tensorflow():
    import tensorflow as tf

FOLDER = "checkpoints"
NAME = "epoch_{:04d}_step_{:06d}"
NAME_PATTERN = re.compile(r"epoch_(\d{4,})_step_(\d{6,})$")
STATE_FILE = "state.json"   # written last inside the temporary folder: its presence marks a finished write
KEEP = 3


def random_state_variables(model):
    """Variables that are not weights: Keras keeps Dropout's seed state there, and tf.train.Checkpoint
    would skip it, so a resumed run would otherwise draw different dropout masks."""
    weight_ids = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


def make_checkpoint(generator, discriminator, gan, noise_rng, fixed_noise, average=None):
    """`average`: the run's models.GeneratorAverage, if it keeps one."""
    extra = dict(generator_average=average.weights + [average.updates]) if average else {}
    return tf.train.Checkpoint(
        generator=generator, discriminator=discriminator,
        d_optimizer=discriminator.optimizer, g_optimizer=gan.optimizer,
        noise_rng=noise_rng, fixed_noise=fixed_noise,
        dropout_state=random_state_variables(generator) + random_state_variables(discriminator), **extra)


def _position(path):
    m = NAME_PATTERN.match(path.name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def complete_checkpoints(run_dir):
    """Finished checkpoints of a run, oldest first."""
    folder = Path(run_dir) / FOLDER
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _position(p) and (p / STATE_FILE).is_file()]
    return sorted(found, key=_position)


def latest(run_dir):
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def write(run_dir, checkpoint, state, keep=KEEP):
    """Write a checkpoint for state["epoch"], state["step"]; keep the newest `keep`. Returns its folder."""
    folder = Path(run_dir) / FOLDER
    final = folder / NAME.format(state["epoch"], state["step"])
    temporary = folder / f".partial-{final.name}"
    shutil.rmtree(temporary, ignore_errors=True)  # left over from a write that was cut short
    temporary.mkdir(parents=True)
    checkpoint.write(str(temporary / "tensors"))
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


def restore(path, checkpoint):
    """Load a checkpoint's tensors into `checkpoint`'s objects and return its JSON state."""
    checkpoint.read(str(Path(path) / "tensors")).assert_existing_objects_matched()
    return json.loads((Path(path) / STATE_FILE).read_text())


def _write_json_durably(path, value):
    with open(path, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
