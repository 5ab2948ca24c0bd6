"""Train a DCGAN on Fashion-MNIST the classic Keras way, and watch it learn.

    python dcgan.py --epochs 10 --batch 32      # then: python make_gif.py

The pattern (the design card's): compile the discriminator D; freeze it inside a stacked
Sequential([G, D]) called `gan`; then, for every batch, one D.train_on_batch on real + fake images and one
gan.train_on_batch on fresh noise labelled "real". Every epoch saves a grid of samples from one fixed noise
batch, so the frames of a run can be compared and stitched into an animation.

Everything lands in one run folder (--out, default `out`):
    config.json       every setting of the run
    history.csv       one row per epoch: losses, D's accuracy on real and on fake, seconds
    images/epoch_NNNN.png, losses.png, generator.keras
"""

import csv
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

import cli
import data
import models

HISTORY_FIELDS = ["epoch", "d_loss", "g_loss", "d_acc_real", "d_acc_fake", "seconds"]
RUN_FILES = ["config.json", "history.csv", "generator.keras", "losses.png", "dcgan.gif"]
FRAME_PATTERN = "epoch_{:04d}.png"


def parse_args(argv=None):
    p = cli.OneLineParser(
        prog="dcgan.py",
        description="Train a DCGAN on Fashion-MNIST with the classic compile + freeze + train_on_batch loop.",
        epilog="Example: python dcgan.py --epochs 10 --batch 32, then python make_gif.py.")
    p.add_argument("--preset", default=models.DEFAULT_PRESET, choices=list(models.PRESETS), metavar="NAME",
                   help=f"which seed system to train: {', '.join(models.PRESETS)} (default: "
                        f"{models.DEFAULT_PRESET}); the flags below override its settings")
    p.add_argument("--list-presets", action="store_true", help="print the presets and their settings, then exit")
    p.add_argument("--epochs", type=cli.positive_int, help="passes over the data (legacy: 10)")
    p.add_argument("--batch", type=cli.positive_int,
                   help="real images per step; D sees as many fakes beside them (legacy: 32)")
    p.add_argument("--lr", type=cli.positive_float, help="Adam learning rate for D and G (legacy: 1e-3)")
    p.add_argument("--latent", type=cli.positive_int, help="size of the noise vector z (legacy: 100)")
    p.add_argument("--seed", type=cli.non_negative_int,
                   help="random seed; the same seed on CPU gives the same history (default: a new one, "
                        "recorded in config.json)")
    p.add_argument("--limit", type=cli.positive_int, help="train on the first N images only, for quick demos")
    p.add_argument("--data-dir", help="folder with the four Fashion-MNIST .gz files (default: search "
                                      f"${data.ENV_VAR}, the Keras cache, {data.DEBIAN_DIR}, then download)")
    p.add_argument("--out", default="out", help="run folder for every output (default: out)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (only the kit's own files are removed)")
    return p.parse_args(argv)


# ---- the run folder -----------------------------------------------------------------------------------

def prepare_run_folder(out, overwrite):
    """Create (or, with --overwrite, clear) the run folder; refuse anything that would lose a user's files."""
    if out.exists() and not out.is_dir():
        cli.fail(f"--out {out} is a file; give a folder name")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "config.json").is_file():
            cli.fail(f"--out {out} holds files that are not a DCGAN run; choose a new or empty folder")
        if not overwrite:
            cli.fail(f"--out {out} already holds a run; pass --overwrite to replace it, or choose another --out")
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "images", ignore_errors=True)
    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        cli.fail(f"cannot write to --out {out} ({e.strerror}); choose a folder you can write to")


def append_history(path, row):
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})


# ---- training -----------------------------------------------------------------------------------------

def resolve_config(args, preset):
    """The run's settings: the preset's, overridden by any flag given. Recorded whole in config.json."""
    config = {"preset": preset.name, **{k: v for k, v in asdict(preset).items() if k != "name"}}
    config["pixel_range"] = list(preset.pixel_range)
    config["output_activation"] = preset.output_activation
    for flag in ("epochs", "batch", "lr", "latent"):
        if getattr(args, flag) is not None:
            config[flag] = getattr(args, flag)
    config["seed"] = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    config["limit"] = args.limit
    return config


def train_discriminator(discriminator, images, labels):
    """Update D: maximise log D(x) + log(1 - D(G(z))) on a batch of fakes and reals.

    Keras 3 reads `trainable` when it traces a train function, not at compile(): D is unfrozen around its
    own step so that its function is traced with its weights, and frozen again for the GAN's step.
    Returns D's loss and its accuracy on the real and on the fake half.
    """
    discriminator.trainable = True
    try:
        return discriminator.train_on_batch(images, labels)
    finally:
        discriminator.trainable = False


def train_generator(gan, discriminator, noise, real_labels):
    """Update G through the frozen D: maximise log D(G(z)) by labelling fresh fakes "real"."""
    discriminator.trainable = False
    return gan.train_on_batch(noise, real_labels)


def make_sampler(config, tf):
    """noise(n) -> a [n, latent] batch of z on the device, from the seeded generator the preset asks for."""
    rng = tf.random.Generator.from_seed(config["seed"])
    latent = config["latent"]
    if config["noise"] == "uniform":
        return lambda n: rng.uniform((n, latent), -1.0, 1.0)
    return lambda n: rng.normal((n, latent))


def train(args):
    preset = models.PRESETS[args.preset]
    config = resolve_config(args, preset)
    data_dir = data.find_data_dir(args.data_dir)
    images, _ = data.load_split("train", data_dir, config["limit"])
    batch = config["batch"]
    if batch > len(images):
        cli.fail(f"--batch {batch} is larger than the {len(images)} training images; lower --batch or raise --limit")
    out = Path(args.out)
    prepare_run_folder(out, args.overwrite)
    steps = len(images) // batch  # drop the remainder: one batch shape, one traced train function

    import keras
    import tensorflow as tf
    from tqdm import tqdm

    import viz

    config.update(images=len(images), steps_per_epoch=steps, data_dir=str(data_dir),
                  keras=keras.__version__, tensorflow=tf.__version__)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    keras.utils.set_random_seed(config["seed"])
    generator, discriminator, gan = models.build_gan(preset, config["latent"], config["lr"])
    real_images = tf.constant(data.scale_pixels(images, preset.pixel_range))
    noise = make_sampler(config, tf)
    fixed_noise = noise(config["grid"] ** 2)  # the same z every epoch, so the frames show G changing
    shuffle = np.random.default_rng(config["seed"])

    real_labels = tf.ones((batch, 1))
    d_labels = tf.concat([tf.zeros((batch, 1)), real_labels], axis=0)  # fakes first, then reals

    @tf.function
    def discriminator_batch(real):
        fake = generator(noise(batch), training=False)
        labels = d_labels
        if config["label_noise"]:
            labels += config["label_noise"] * tf.random.uniform(tf.shape(labels))
        return tf.concat([fake, real], axis=0), labels

    gpus = tf.config.list_physical_devices("GPU")
    print(f"training preset {preset.name} on {len(images)} images, {steps} steps of {batch} per epoch, on "
          + (f"GPU ({gpus[0].name})" if gpus else f"CPU ({os.cpu_count()} cores)"))
    history = []
    for epoch in range(1, config["epochs"] + 1):
        started = time.perf_counter()
        order = tf.constant(shuffle.permutation(len(images))[:steps * batch].reshape(steps, batch))
        sums = np.zeros(4)
        bar = tqdm(range(steps), desc=f"epoch {epoch}/{config['epochs']}", unit="step", leave=True)
        for step in bar:
            x, y = discriminator_batch(tf.gather(real_images, order[step]))
            d_loss, acc_real, acc_fake = train_discriminator(discriminator, x, y)
            g_loss = train_generator(gan, discriminator, noise(batch), real_labels)
            sums += (d_loss, g_loss, acc_real, acc_fake)
            if step % 10 == 0 or step == steps - 1:
                mean = sums / (step + 1)
                bar.set_postfix_str(f"d_loss={mean[0]:.3f} g_loss={mean[1]:.3f} "
                                    f"acc_real={mean[2]:.2f} acc_fake={mean[3]:.2f}", refresh=False)
        mean = sums / steps
        row = dict(epoch=epoch, d_loss=mean[0], g_loss=mean[1], d_acc_real=mean[2], d_acc_fake=mean[3],
                   seconds=time.perf_counter() - started)
        history.append(row)
        append_history(out / "history.csv", row)
        samples = data.to_uint8(generator(fixed_noise, training=False).numpy(), preset.pixel_range)
        viz.save_grid(samples, out / "images" / FRAME_PATTERN.format(epoch), config["grid"], config["grid"])

    generator.save(out / "generator.keras")
    viz.plot_losses(history, out / "losses.png", title=f"DCGAN, preset {preset.name}")
    print(f"done: {config['epochs']} epoch(s) in {sum(r['seconds'] for r in history):.0f} s; outputs in {out}/ "
          f"(next: python make_gif.py --run {out})")
    return history


def print_presets():
    """One row per preset: what it builds, how it samples and scales, how it learns."""
    header = ["preset", "G params", "D params", "latent", "pixels", "G output", "loss", "Adam",
              "batch", "epochs", "grid", "system (../shared/SEEDS.md)"]
    rows = []
    for preset in models.PRESETS.values():
        generator, discriminator, _ = models.build_gan(preset)
        rows.append([preset.name, f"{generator.count_params():,}", f"{discriminator.count_params():,}",
                     f"{preset.latent} {preset.noise}", "[{}, {}]".format(*preset.pixel_range),
                     preset.output_activation,
                     ("BCE from logits" if preset.logits else "BCE on sigmoid")
                     + (f", label noise {preset.label_noise}" if preset.label_noise else ""),
                     f"lr {preset.lr:g}, beta_1 {preset.beta_1:g}", str(preset.batch), str(preset.epochs),
                     f"{preset.grid}x{preset.grid}", preset.system])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return rows


def main(argv=None):
    args = parse_args(argv)
    if args.list_presets:
        return print_presets()
    try:
        return train(args)
    except data.DataError as e:
        cli.fail(str(e))


if __name__ == "__main__":
    main()
