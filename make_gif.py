"""Stitch a run's per-epoch sample grids into one animation.

    python make_gif.py                 # out/images/epoch_*.png -> out/dcgan.gif
    python make_gif.py --run X --fps 4
    python make_gif.py --curves        # each frame beside the losses and D's accuracies up to it
"""

from pathlib import Path

import numpy as np

import viz
from machinery import cli, presets, runs

# A GIF stores each frame's time in hundredths of a second, as a 16-bit number: 50 fps is 2 of them, and
# 0.1 fps (10 s a frame) is far inside the 655 s it can hold.
MIN_FPS, MAX_FPS = 0.1, 50.0


def same_size(pictures):
    """Every frame at the size of the last: a run resumed with another --picture-size (or by an older kit)
    has frames of two sizes, and a GIF has one. Nearest-neighbour, so sample pixels stay sharp squares."""
    from PIL import Image

    height, width = pictures[-1].shape[:2]
    return [p if p.shape[:2] == (height, width) else np.asarray(Image.fromarray(p).resize((width, height),
                                                                                          Image.Resampling.NEAREST))
            for p in pictures]


def training_steps(run):
    """The run's steps (steps.csv), or for a run without them one point an epoch (history.csv)."""
    steps = runs.read_steps(run)
    if not steps:
        steps = [dict(row, step=1) for row in runs.read_history(run)]
    if not steps:
        cli.fail(f"{run} has no steps.csv or history.csv to draw --curves from; drop --curves")
    return steps


def beside_curves(pictures, frames, steps, critic=False):
    """Each frame with, on its right, the run's curves up to the step it was drawn at (about 0.1 s a frame, one
    figure redrawn: a bar on a terminal, for a long run's hundreds)."""
    from tqdm import tqdm

    shown, drawers = [], {}  # one figure per frame height (frames of one run share theirs)
    try:
        for picture, frame in tqdm(list(zip(pictures, frames)), desc="curves", unit="frame", leave=False,
                                   disable=None):
            grey = picture if picture.ndim == 3 else np.stack([picture] * 3, axis=-1)
            height = grey.shape[0]
            if height not in drawers:
                drawers[height] = viz.TrainingCurves(steps, height, critic)
            shown.append(np.concatenate([grey[..., :3], drawers[height].at(runs.frame_drawn_after(frame))], axis=1))
    finally:
        for drawer in drawers.values():
            drawer.close()
    return shown


def make_gif(run, fps, curves=False):
    import imageio.v3 as iio

    train_first = cli.command("python", "dcgan.py", "--out", run)
    if not run.is_dir():
        what = "is a file, not a folder" if run.exists() else "does not exist"
        cli.fail(f"run folder {run} {what}; train first with {train_first}")
    frames = runs.frames_in_epoch_order(run / "images")
    if not frames:
        cli.fail(f"no frames in {run / 'images'} (epoch_NNNN.png); train first with {train_first}")
    try:
        runs.check_writable(run, named=f"run folder {run}")  # before reading every frame, not after
    except runs.RunError as e:
        cli.fail(str(e))
    pictures = []
    for path in frames:
        try:
            pictures.append(iio.imread(path))
        except Exception as e:  # imageio raises many types for a damaged file; all mean the same here
            cli.fail(f"frame {path} cannot be read ({type(e).__name__}); delete it or retrain that epoch")
    pictures = same_size(pictures)
    if curves:
        try:
            config = presets.read_run_config(run, "")  # its what-to-do is never shown: see below
        except runs.RunError:  # frames without a readable config.json: drawn as a BCE run's
            config = None
        pictures = beside_curves(pictures, frames, training_steps(run), presets.trains_a_critic(config))
    gif = run / "dcgan.gif"
    # loop=0 repeats forever; the last frame is held a little longer so the final result can be seen.
    durations = [1000 / fps] * (len(pictures) - 1) + [max(1000 / fps, 1500)]
    if len(pictures) == 1:  # Pillow wants a number, not a list, for a single frame
        durations = durations[0]
    runs.replace_atomically(gif, lambda path: iio.imwrite(path, pictures, extension=".gif", duration=durations,
                                                          loop=0))
    print(f"wrote {gif} ({len(pictures)} frame{'s' * (len(pictures) != 1)}{', with curves' if curves else ''})")
    return gif


def main(argv=None):
    p = cli.OneLineParser(prog="make_gif.py", description="Turn a run's epoch grids into an animated GIF.")
    p.add_argument("--run", default="out", help="run folder written by dcgan.py (default: out)")
    p.add_argument("--fps", type=cli.number_in(MIN_FPS, MAX_FPS), default=2.0,
                   help=f"frames per second, {MIN_FPS:g} to {MAX_FPS:g} (default: 2)")
    p.add_argument("--curves", action="store_true",
                   help="beside each frame, D's and G's losses and D's accuracies up to the step it was drawn at "
                        "(from steps.csv), the rest of the run faint: what the game looked like then")
    args = p.parse_args(argv)
    try:
        return make_gif(Path(args.run), args.fps, args.curves)
    except KeyboardInterrupt:  # the GIF is written atomically: the old one, if any, is untouched
        cli.fail("interrupted; nothing was written", status=130)


if __name__ == "__main__":
    cli.run(main)
