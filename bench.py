"""How fast does the classic loop train? The kit's loop against the seed article's, in one run.

    python bench.py                                  # legacy, batch 32: naive, then fast, then the ratio
    python bench.py --preset tutorial --batch 256
    python bench.py --naive                          # only the seed article's loop

Both loops are the design card's: D.train_on_batch on fakes + reals, then gan.train_on_batch on noise
labelled real, with D unfrozen around its own step. They differ only in how a step is fed:
- naive (as the article wrote it): a numpy batch, an eager G(noise) call, labels rebuilt with
  tf.constant every step, noise made on the host;
- fast (dcgan.py's): the data kept as one tensor on the device, fakes, noise and labels made inside one
  compiled function, labels made once (models.make_train_step).
Figures: images per second (real images consumed), milliseconds per step, seconds per 60,000-image epoch,
and the process's peak resident memory so far. Random weights and random data: speed does not depend on them.
"""

import resource
import time

import numpy as np

import cli
import models

FULL_EPOCH = 60_000


def naive_step_function(generator, discriminator, gan, batch, preset, images):
    """The seed article's step, line for line in spirit: everything rebuilt on the host every step."""
    import tensorflow as tf

    def draw_noise():
        if preset.noise == "uniform":
            return np.random.uniform(-1, 1, (batch, preset.latent)).astype("float32")
        return np.random.normal(size=(batch, preset.latent)).astype("float32")

    def step(index):
        real = images[index]                                      # a numpy batch, copied in every step
        noise = draw_noise()
        fake = generator(noise, training=preset.fakes_in_training_mode)  # eager call
        x = tf.concat([fake, real], axis=0)
        y = tf.constant([[0.0]] * batch + [[1.0]] * batch)        # labels rebuilt every step
        d_loss, _, _ = models.train_discriminator(discriminator, x, y)
        noise = draw_noise()
        g_loss = models.train_generator(gan, discriminator, noise, tf.constant([[1.0]] * batch))
        return d_loss, g_loss
    return step


def measure(kind, preset, batch, steps, warmup, seed, precision):
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(precision)  # output layers stay float32 (see models.py)
    keras.utils.set_random_seed(seed)
    generator, discriminator, gan = models.build_gan(preset)
    low, high = preset.pixel_range
    images = np.random.default_rng(seed).uniform(low, high, (max(4096, batch), 28, 28, 1)).astype("float32")
    indices = np.random.default_rng(seed).integers(0, len(images), (warmup + steps, batch))
    if kind == "naive":
        step = naive_step_function(generator, discriminator, gan, batch, preset, images)
        feed = list(indices)
    else:
        rng = tf.random.Generator.from_seed(seed)
        noise = models.make_sampler(preset.noise, preset.latent, rng)
        fast = models.make_train_step(generator, discriminator, gan, batch, noise, rng, preset.label_noise,
                                      preset.fakes_in_training_mode)
        on_device, index_tensor = tf.constant(images), tf.constant(indices)
        step = lambda i: fast(tf.gather(on_device, i))  # noqa: E731
        feed = list(index_tensor)
    for i in range(warmup):  # tracing and first-call costs are not what a 10-epoch run pays per step
        step(feed[i])
    started = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(feed[i])
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(loop=f"{kind} {precision}" if precision != "float32" else kind, images_per_s=steps * batch / seconds, ms_per_step=1000 * seconds / steps,
                s_per_epoch=FULL_EPOCH / (steps * batch / seconds), peak_mb=peak_mb)


def main(argv=None):
    p = cli.OneLineParser(prog="bench.py", description="Time the training loop: fast (the kit's) vs naive "
                                                       "(the seed article's), in one run.")
    p.add_argument("--preset", default=models.DEFAULT_PRESET, choices=list(models.PRESETS), metavar="NAME",
                   help=f"preset to time (default: {models.DEFAULT_PRESET}); one of {', '.join(models.PRESETS)}")
    p.add_argument("--batch", type=cli.positive_int, help="batch size (default: the preset's)")
    p.add_argument("--steps", type=cli.positive_int, default=100, help="timed steps per loop (default: 100)")
    p.add_argument("--warmup", type=cli.non_negative_int, default=10, help="untimed steps first (default: 10)")
    p.add_argument("--seed", type=cli.non_negative_int, default=0)
    p.add_argument("--precision", choices=["float32", "mixed_bfloat16", "mixed_float16", "both"], default="both",
                   help="compute precision of the fast loop; 'both' times float32 and mixed_bfloat16 "
                        "(default: both; the naive loop is always float32, as the article ran it)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--naive", action="store_true", help="time only the seed article's loop")
    which.add_argument("--fast", action="store_true", help="time only the kit's loop")
    args = p.parse_args(argv)
    import tensorflow as tf

    preset = models.PRESETS[args.preset]
    batch = args.batch or preset.batch
    kinds = ["naive"] if args.naive else ["fast"] if args.fast else ["naive", "fast"]
    gpus = tf.config.list_physical_devices("GPU")
    print(f"preset {preset.name}, batch {batch}, {args.steps} steps after {args.warmup} warm-up, on "
          + (f"GPU ({gpus[0].name})" if gpus else "CPU"))
    precisions = ["float32", "mixed_bfloat16"] if args.precision == "both" else [args.precision]
    runs = [(kind, "float32" if kind == "naive" else precision) for kind in kinds
            for precision in (precisions if kind == "fast" else ["float32"])]
    results = [measure(kind, preset, batch, args.steps, args.warmup, args.seed, precision)
               for kind, precision in runs]
    print(f"{'loop':21} {'images/s':>9} {'ms/step':>8} {'s/epoch':>8} {'peak MB':>8}")
    for r in results:
        print(f"{r['loop']:21} {r['images_per_s']:9.0f} {r['ms_per_step']:8.1f} {r['s_per_epoch']:8.0f} "
              f"{r['peak_mb']:8.0f}")
    if results[0]["loop"] == "naive":
        for r in results[1:]:
            print(f"speed-up {r['loop']} / naive: {r['images_per_s'] / results[0]['images_per_s']:.2f}x")
    return results


if __name__ == "__main__":
    main()
