"""Draw new images from a trained generator: a grid of fresh samples, and walks through its noise space.

    python generate.py                          # out/generator.keras -> out/samples.png and out/walks.png
    python generate.py --run runs/kit --count 100 --seed 3
    python generate.py --generator g.keras --noise uniform --walks 0
    python generate.py --run runs/conditional --class sneaker   # a generator of --preset conditional

Each row of walks.png goes in equal steps from one noise vector to another. If the generator has learned
a smooth map rather than a lookup table, the images change gradually along the way (a shirt turns into a
pullover, a sandal into a sneaker) and every step in between is itself a plausible garment.

A conditional generator (--preset conditional) draws the class it is asked for: --class sneaker fills
samples.png with sneakers; without --class, samples.png shows every class side by side, a row each, every
column one noise vector (so one column is one "style" in ten classes), and each walk keeps one class.
"""

from pathlib import Path

import numpy as np

import data
import viz
from machinery import backends, cli, presets, runs, sampling


def interpolate(start, end, steps):
    """[steps, latent] points from `start` to `end` (both included) along the great circle (slerp).
    Why not the straight line: a random z of 100 numbers nearly always has about the same length (10 for
    normal noise, 5.8 for uniform), the only lengths the generator ever saw, and the line's middle is
    about 0.7 of that. Measured on 2,000 midpoints: legacy's G drew FD 413 and 7 classes on the line,
    282 and 9 on the circle (274 at the ends); the seed-11 kit G, 171 on the line, 141 on the circle (142 at
    the ends)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    cos_angle = np.dot(start, end) / (np.linalg.norm(start) * np.linalg.norm(end))
    angle = np.arccos(np.clip(cos_angle, -1.0, 1.0))
    if np.sin(angle) < 1e-6:  # (anti)parallel: the circle is not defined, the line is as good
        return (1 - t) * start + t * end
    return (np.sin((1 - t) * angle) * start + np.sin(t * angle) * end) / np.sin(angle)


def walk_noise(generator, walks, steps, noise_kind, seed):
    """[walks * steps, latent]: row after row, each from one random z to another."""
    ends = sampling.noise(generator, 2 * walks, noise_kind, seed + 1)  # +1: not the samples' own noise
    return np.concatenate([interpolate(ends[2 * i], ends[2 * i + 1], steps) for i in range(walks)])


def asked_class_index(text, class_names):
    """--class NAME (or index) -> the class's index among the run's `class_names`; else one line and exit."""
    try:
        return data.class_index(text, class_names)
    except ValueError as e:
        cli.fail(f"--class: {e}")


def draw_samples(generator, count, noise_kind, pixel_range, seed, asked_class=None, class_names=data.CLASS_NAMES):
    """The images of samples.png -> (uint8 images, rows, cols, row labels or None, what they show).
    A conditional G without a class asked: one row per class, each column one z shared by every row."""
    if sampling.is_conditional(generator) and asked_class is None:
        classes = len(class_names)
        cols = -(-count // classes)
        z, asked = sampling.one_row_per_class(sampling.noise(generator, cols, noise_kind, seed), classes)
        images = sampling.draw(generator, z, pixel_range, asked)
        return images, classes, cols, list(class_names), f"{cols} per class"
    images = sampling.sample(generator, count, noise_kind, pixel_range, seed,
                             None if asked_class is None else np.full(count, asked_class))
    shown = f"{count} new samples" if asked_class is None else f"{count} x {class_names[asked_class]}"
    return (images, *grid_shape(count), None, shown)


MAX_IMAGES = 2500  # per picture: a 50x50 grid is already 3,000 pixels wide


def grid_shape(count):
    """(rows, cols) of the most nearly square grid that holds `count` images."""
    cols = int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / cols)), cols


def refuse_class(path):
    cli.fail(f"{path} draws from noise alone and cannot be asked for a class; drop --class, or train a "
             "conditional generator: python dcgan.py --preset conditional")


def generate(path, out, count, walks, steps, seed, noise=None, size=viz.PICTURE_SIZE, asked=None,
             class_names=data.CLASS_NAMES):
    """samples.png and walks.png from the generator file at `path`, into `out`. `asked`: --class as given, or
    None; `class_names`: a conditional G's classes (its run's: Fashion-MNIST's, or those of the folder of
    images it trained on)."""
    generator, noise_kind, pixel_range = sampling.load(path, noise)
    conditional = sampling.is_conditional(generator)
    if asked is not None and not conditional:
        refuse_class(path)
    if conditional and len(class_names) != sampling.class_count(generator):  # a G of other classes, no run beside it
        class_names = [f"class {index}" for index in range(sampling.class_count(generator))]
    asked_class = None if asked is None else asked_class_index(asked, class_names)
    written = [out / "samples.png"]
    samples, rows, cols, row_labels, shown = draw_samples(generator, count, noise_kind, pixel_range, seed,
                                                          asked_class, class_names)
    caption = f"{shown} from {Path(path.parent.name, path.name)} (seed {seed})"
    runs.replace_atomically(written[0], lambda path: viz.save_grid(samples, path, rows, cols, size, caption,
                                                                   row_labels=row_labels))
    if walks:
        written.append(out / "walks.png")
        # A conditional G walks within one class: the one asked for, else each row the next class.
        walk_classes = [asked_class if asked_class is not None else row % len(class_names)
                        for row in range(walks)] if conditional else None
        images = sampling.draw(generator, walk_noise(generator, walks, steps, noise_kind, seed), pixel_range,
                               np.repeat(walk_classes, steps) if conditional else None)
        caption = f"{walks} walk{'s' if walks > 1 else ''} through the noise, {steps} steps each"
        labels = [class_names[c] for c in walk_classes] if conditional else None
        runs.replace_atomically(written[1], lambda path: viz.save_grid(images, path, walks, steps, size, caption,
                                                                       {0: "start", steps - 1: "end"}, labels))
    print(f"wrote {' and '.join(map(str, written))} ({noise_kind} noise, seed {seed})")
    return written


def main(argv=None):
    p = cli.OneLineParser(prog="generate.py", description="Draw new images from a trained generator: a grid "
                                                          "of samples and walks between noise vectors.")
    sampling.add_flags(p, "to draw from")
    p.add_argument("--count", type=cli.int_at_least(1, MAX_IMAGES), default=64,
                   help=f"images in samples.png, 1 to {MAX_IMAGES} (default: 64)")
    p.add_argument("--walks", type=cli.non_negative_int, default=8,
                   help=f"rows in walks.png, one walk each, 0 or more (0 skips it; walks x steps at most "
                        f"{MAX_IMAGES}; default: 8)")
    p.add_argument("--steps", type=cli.int_at_least(2), default=10, help="images per walk, 2 or more (default: 10)")
    p.add_argument("--seed", type=cli.seed, default=0,
                   help="noise seed, 0 to 2**32 - 1: the same seed draws the same images (default: 0)")
    p.add_argument("--picture-size", type=cli.int_at_least(viz.MIN_PICTURE_SIZE, viz.MAX_PICTURE_SIZE),
                   default=viz.PICTURE_SIZE, metavar="PX",
                   help=f"the longer side of each picture's grid in pixels, {viz.MIN_PICTURE_SIZE} to "
                        f"{viz.MAX_PICTURE_SIZE} (default: {viz.PICTURE_SIZE}, for a projector)")
    p.add_argument("--class", dest="asked_class", metavar="NAME",
                   help="for a conditional generator (--preset conditional or demo): draw only this class, by name ("
                        f"Fashion-MNIST's: {', '.join(data.CLASS_FLAGS)}; a folder of images: its class folders' "
                        "names) or index from 0 (default: every class, a row each)")
    p.add_argument("--out", help="folder for the pictures (default: the generator's folder)")
    backends.add_flag(p)
    args = p.parse_args(argv)
    if max(args.count, args.walks * args.steps) > MAX_IMAGES:
        cli.fail(f"--count and --walks x --steps may be {MAX_IMAGES} at most per picture; for more images, "
                 "run again with another --seed")
    path = sampling.path_from(args)
    out = Path(args.out) if args.out else path.parent
    sampling.require_file(path)  # before --out is made: a typo in --run must not leave a folder behind
    run_config = sampling.config_beside(path)
    class_names = presets.class_names_of(run_config or {})  # Fashion-MNIST's, or the folder of images' it trained on
    if args.asked_class is not None and run_config:  # told by its run before Keras's import; a G with no run
        asked_class_index(args.asked_class, class_names)  # is asked once loaded
        if not run_config.get("conditional"):
            refuse_class(path)
    try:
        runs.check_writable(out)  # before any work
        backends.use(args.backend)
        return generate(path, out, args.count, args.walks, args.steps, args.seed, args.noise,
                        args.picture_size, args.asked_class, class_names)
    except runs.RunError as e:
        cli.fail(str(e))
    except KeyboardInterrupt:  # pictures are written atomically: the old ones, if any, are untouched
        cli.fail("interrupted; nothing was written", status=130)


if __name__ == "__main__":
    cli.run(main)
