"""Draw new images from a trained generator: a grid of fresh samples, and walks through its noise space.

    python generate.py                          # out/generator.keras -> out/samples.png and out/walks.png
    python generate.py --run runs/kit --count 100 --seed 3
    python generate.py --generator g.keras --noise uniform --walks 0

Each row of walks.png goes in equal steps from one noise vector to another. If the generator has learned
a smooth map rather than a lookup table, the images change gradually along the way (a shirt turns into a
pullover, a sandal into a sneaker) and every step in between is itself a plausible garment.
"""

from pathlib import Path

import numpy as np

import backends
import cli
import runs
import sampling
import viz


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


MAX_IMAGES = 2500  # per picture: a 50x50 grid is already 3,000 pixels wide


def grid_shape(count):
    """(rows, cols) of the most nearly square grid that holds `count` images."""
    cols = int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / cols)), cols


def generate(path, out, count, walks, steps, seed, noise=None, size=viz.PICTURE_SIZE):
    generator, noise_kind, pixel_range = sampling.load(path, noise)
    written = [out / "samples.png"]
    samples = sampling.sample(generator, count, noise_kind, pixel_range, seed)
    caption = f"{count} new samples from {Path(path.parent.name, path.name)} (seed {seed})"
    runs.replace_atomically(written[0], lambda path: viz.save_grid(samples, path, *grid_shape(count), size,
                                                                   caption))
    if walks:
        written.append(out / "walks.png")
        images = sampling.draw(generator, walk_noise(generator, walks, steps, noise_kind, seed), pixel_range)
        caption = f"{walks} walk{'s' if walks > 1 else ''} through the noise, {steps} steps each"
        runs.replace_atomically(written[1], lambda path: viz.save_grid(images, path, walks, steps, size, caption,
                                                                       {0: "start", steps - 1: "end"}))
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
    p.add_argument("--out", help="folder for the pictures (default: the generator's folder)")
    backends.add_flag(p)
    args = p.parse_args(argv)
    if max(args.count, args.walks * args.steps) > MAX_IMAGES:
        cli.fail(f"--count and --walks x --steps may be {MAX_IMAGES} at most per picture; for more images, "
                 "run again with another --seed")
    path = sampling.path_from(args)
    out = Path(args.out) if args.out else path.parent
    sampling.require_file(path)  # before --out is made: a typo in --run must not leave a folder behind
    try:
        runs.check_writable(out)  # before any work
        backends.use(args.backend)
        return generate(path, out, args.count, args.walks, args.steps, args.seed, args.noise,
                        args.picture_size)
    except runs.RunError as e:
        cli.fail(str(e))
    except KeyboardInterrupt:  # pictures are written atomically: the old ones, if any, are untouched
        cli.fail("interrupted; nothing was written", status=130)


if __name__ == "__main__":
    main()
