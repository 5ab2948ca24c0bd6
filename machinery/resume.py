"""dcgan.py --resume: the models, the random streams and the loop's position put back from the newest
checkpoint that reads whole, so that the resumed run draws exactly what the unbroken one would have.

Nothing on disk changes until a checkpoint has been read whole (checkpoints.restore_newest). A checkpoint
holds the epoch in progress, the steps done in it, the shuffling state at that epoch's start (to draw the
same order again) and the partial sums of its figures (position.Position).
"""

from machinery import checkpoints, cli, runs
from machinery.position import Position


def position_from_newest_checkpoint(training):
    """Restore `training` (a training.Training) from the newest checkpoint of its run; returns where its
    loop goes on. A run that has trained its --epochs already is one line that says how to train it longer."""
    out, config, steps = training.out, training.config, training.steps
    last, state, skipped = checkpoints.restore_newest(out, training.parts.checkpoint, training.record.backend)
    for path, why in skipped:
        print(f"skipped checkpoint {path.name}: {why}")
    training.shuffle.bit_generator.state = state["shuffle_state"]
    at = Position(state["epoch"], state["step"], state["sums"], state["seconds"], state["history"])
    trained = at.epoch if at.step == steps else at.epoch - 1
    if trained > config["epochs"]:
        raise runs.RunError(f"--epochs {config['epochs']} is below the {trained} epochs the run in {out} has "
                            f"trained; pass --epochs {trained + 1} or more to train it longer")
    if trained == config["epochs"]:
        longer = cli.command("python", "dcgan.py", "--resume", "--epochs", trained + 10, "--out", out)
        raise runs.RunError(f"the run in {out} is finished ({trained} of {trained} epochs); to train it "
                            f"longer: {longer}")
    if at.step == steps:  # it was taken at the end of an epoch: start the next one
        training.shuffle.permutation(training.image_count)
        at.next_epoch()
    else:  # mid-epoch: the steps of the epoch so far come with the checkpoint
        at.epoch_step_rows = state.get("step_rows", [])
    at.step_rows = runs.read_steps(out, before_epoch=at.epoch)
    print(f"resuming {out} at epoch {at.epoch}, step {at.step} (checkpoint {last.name})")
    at.diverged_at = last_divergence(out)
    if state.get("backend", "tensorflow") != training.record.backend:
        print(f"it was written under {state.get('backend', 'tensorflow')} and goes on under "
              f"{training.record.backend}: weights, optimizer moments, average, history and frames carry over; the "
              "random streams (noise, Dropout) start afresh from the seed")
    return at


def last_divergence(out):
    """(epoch, step) where the run's last training stopped on a NaN, told to the user, or None. The record stays
    until this try gets past that step: stopped before it, the run still diverges there (tools/sweep.py reads
    the record). An unreadable record's place is unknown: the first step passes."""
    diverged = runs.read_diverged(out)
    if not diverged:
        return None
    print(f"note: its last training stopped on a {diverged['loss']} loss at epoch {diverged['epoch']}, step "
          f"{diverged['step']}; resuming repeats the same steps, so it will most likely stop there again "
          "(a lower --lr is a new run, in another --out)")
    readable = isinstance(diverged["epoch"], int) and isinstance(diverged["step"], int)
    return (diverged["epoch"], diverged["step"]) if readable else (0, 0)
