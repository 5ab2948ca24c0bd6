"""See the Keras 3 trap: the classic loop written the Keras 2 way, beside the kit's, from the same start.

    python trap.py                     # 200 steps each way (legacy preset, real data) -> trap.png
    python trap.py --backend jax       # JAX refuses the Keras 2 way outright

Keras 2 fixed what a model trains when it was compiled: compile D, set D.trainable = False, stack it in
`gan`, compile `gan`, and D.train_on_batch still trained D. Keras 3 reads `trainable` later (TensorFlow when
it first traces D's train step, JAX and PyTorch at every call), so that code, unchanged, trains a D that
never learns under TensorFlow and PyTorch, with one warning and no error, and G learns to fool a D that
stays as it was drawn. The kit unfreezes D for its own step (models.train_discriminator). This script trains
the same G and D twice from the same weights and batches, once each way, and shows what D and G did.
"""

import time
import warnings
from pathlib import Path

import numpy as np

import data
import viz
from machinery import backends, cli, presets, runs

PRESET = presets.PRESETS["legacy"]
WAYS = {"keras2": "the Keras 2 way: D frozen once, at compile time",
        "kit": "the kit's way: D unfrozen for its own step"}
GRID = 5


def weights_of(model):
    return [np.array(w) for w in model.weights]


def distance(before, after):
    """How far a model's weights moved: the length of the difference of all of them, as one vector."""
    return float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(before, after))))


def train_one_way(way, images, steps, batch, seed):
    """`steps` steps of the classic loop, D's step taken `way`: a deliberate variant of models.train_step, written
    out here so that the Keras 2 way can stand beside the kit's. Returns dict(steps (rows as steps.csv's),
    d_moved, samples (uint8 grid images), refused (the error of a backend that will not take the step))."""
    import keras

    import models
    from machinery import averaging, sampling

    keras.utils.set_random_seed(seed)  # the same start and the same batches, whichever way
    generator, discriminator, gan = models.build_gan(PRESET)
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.ones((batch, 1)), np.zeros((batch, 1))]).astype("float32")  # reals, then fakes
    d_before, rows, refused = weights_of(discriminator), [], None
    for step in range(steps):
        real = images[rng.integers(0, len(images), batch)]
        fakes = generator.predict_on_batch(sampling.noise_on_host(PRESET.noise, batch, PRESET.latent, rng))
        pair = np.concatenate([real, np.asarray(fakes)])
        try:
            if way == "keras2":  # as the article's Keras 2 code: D was frozen once, in build_gan
                d_loss, acc_real, acc_fake = discriminator.train_on_batch(pair, labels)
            else:
                d_loss, acc_real, acc_fake = models.train_discriminator(discriminator, pair, labels)
        except ValueError as e:  # JAX: D's optimizer was built over weights that a frozen D no longer has
            refused = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            break
        noise = sampling.noise_on_host(PRESET.noise, batch, PRESET.latent, rng)
        g_loss = models.train_generator(gan, discriminator, noise, np.ones((batch, 1), "float32"))
        rows.append(dict(epoch=1, step=step + 1, d_loss=float(d_loss), g_loss=float(g_loss),
                         d_acc_real=float(acc_real), d_acc_fake=float(acc_fake)))
    with averaging.settled_batchnorm(generator, PRESET.noise, PRESET.latent):
        samples = sampling.draw(generator, sampling.noise_on_host(PRESET.noise, GRID * GRID, PRESET.latent, seed),
                                PRESET.pixel_range)
    return dict(steps=rows, d_moved=distance(d_before, weights_of(discriminator)), samples=samples,
                refused=refused)


def report(way, result, said):
    """One paragraph a way: how far D moved, how it judged the last fakes, what Keras said."""
    rows = result["steps"]
    print(f"{WAYS[way]}:")
    if result["refused"]:
        print(f"  {backends.current()} refused D's first step: {result['refused']}")
        return
    last = rows[-20:]
    print(f"  D's weights moved {result['d_moved']:.3f}; over its last {len(last)} steps D was right on "
          f"{np.mean([r['d_acc_real'] for r in last]):.2f} of the real images and "
          f"{np.mean([r['d_acc_fake'] for r in last]):.2f} of the fakes, G's loss "
          f"{np.mean([r['g_loss'] for r in last]):.2f}")
    for message in said:
        print(f"  Keras warned once: {message}")


def main(argv=None):
    p = cli.OneLineParser(prog="trap.py", description="Train the classic loop the Keras 2 way (D frozen once) and "
                                                       "the kit's way from the same start, and show the difference.")
    p.add_argument("--steps", type=cli.int_at_least(1, 10_000), default=200,
                   help="steps each way, 1 to 10000 (default: 200, about a minute each way on a 2-core CPU)")
    p.add_argument("--batch", type=cli.int_at_least(1, 1024), default=32,
                   help="real images a step, 1 to 1024 (default: 32)")
    p.add_argument("--seed", type=cli.seed, default=1, help="the start both ways share, 0 to 2**32 - 1 (default: 1)")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST files (default: searched as dcgan.py does)")
    p.add_argument("--out", default="trap.png", help="picture to write (default: trap.png, here)")
    backends.add_flag(p)
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        p.error(f"--out {out} must end in .png")
    try:
        runs.check_writable(out.parent, named=f"{out.parent} (for {out.name})")
        data_dir = data.find_data_dir_before_keras(args.data_dir)  # a wrong folder told before the slow import
        images = data.load_split("train", data_dir)[0] if data_dir else None
        backends.use(args.backend)
        if images is None:  # in none of the usual places: Keras downloads it, now that the backend is chosen
            images, _ = data.load_split("train", data.find_data_dir(args.data_dir))
        images = data.scale_pixels(images, PRESET.pixel_range)
        results = {}
        for way in WAYS:
            started = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                results[way] = train_one_way(way, images, args.steps, args.batch, args.seed)
            said = dict.fromkeys(str(w.message).splitlines()[0] for w in caught if "trainable" in str(w.message))
            report(way, results[way], said)
            print(f"  ({time.perf_counter() - started:.0f} s)")
    except (data.DataError, runs.RunError) as e:
        cli.fail(str(e))
    except KeyboardInterrupt:
        cli.fail("interrupted; nothing was written", status=130)
    shown = [dict(label=WAYS[way], steps=result["steps"], history=[], frame_title=f"G, {WAYS[way].split(':')[0]}",
                  frame=viz.captioned_grid(result["samples"], GRID, GRID, size=400))
             for way, result in results.items() if result["steps"]]  # a refused way has nothing to draw
    existed = out.exists()
    runs.replace_atomically(out, lambda path: viz.plot_runs(
        path, f"The Keras 3 trap, {backends.current()}, {args.steps} steps", shown))
    print(runs.wrote(out, existed))
    return results


if __name__ == "__main__":
    cli.run(main)
