"""Train a DCGAN on Fashion-MNIST the classic Keras way, and watch it learn.

    python dcgan.py --epochs 10 --batch 32      # then: python make_gif.py
    python dcgan.py --resume                    # after Ctrl-C, a crash or kill -9: go on where it stopped
    python dcgan.py --help                      # every flag

The pattern: a generator G turns noise into images, a discriminator D tells real images from G's. Compile
D; freeze it inside a stacked Sequential([G, D]) called `gan`, and compile that (models.build_gan). Then,
for every batch of real images, one step (models.train_step):
  1. D.train_on_batch on real images labelled 1 and G's fakes labelled 0: D learns to tell them apart;
  2. gan.train_on_batch on fresh noise labelled 1, "real": through the frozen D, G learns to fool it.
A grid of samples from one fixed noise batch is drawn every epoch (several times in a short run), so the
frames compare and make_gif.py stitches them into an animation.

Read it top to bottom: the command line, main, train, then the loop (train_epochs). What keeps a run safe and
fast (checks before the slow import, resume, checkpoints, frames, scoring, several processes, the fused
step) lives in machinery/, called by name. Everything lands in one run folder (--out, default out/).
"""

import time

import data
from machinery import backends, cli, interrupts, launch, preflight, presets, runs, settings

# Where output is not a terminal (a log file, a notebook, CI), tqdm's bar is off and a line of progress is
# printed at most this often within an epoch, besides the line at each epoch's end.
LOG_EVERY_SECONDS = 30
EXIT_INTERRUPTED = 130  # the shell's convention for a program stopped by Ctrl-C: 128 + SIGINT (143: SIGTERM)
EXIT_DIVERGED = runs.EXIT_DIVERGED  # a loss that is not a number stopped the run


def parse_args(argv=None):
    p = cli.OneLineParser(
        prog="dcgan.py",
        description="Train a DCGAN on Fashion-MNIST (or a folder of your own images) with the classic compile + "
                    "freeze + train_on_batch loop.",
        epilog="Example: python dcgan.py --epochs 10 --batch 32, then python make_gif.py.")
    p.add_argument("--preset", choices=list(presets.PRESETS), metavar="NAME",
                   help=f"which preset to train, a named row of settings (--list-presets shows them): "
                        f"{', '.join(presets.PRESETS)} (default: {presets.DEFAULT_PRESET}); the flags below override "
                        "its settings")
    p.add_argument("--list-presets", action="store_true", help="print the presets and their settings, then exit")
    p.add_argument("--epochs", type=cli.int_at_least(1, settings.MAX_EPOCHS),
                   help=f"passes over the data, 1 to {settings.MAX_EPOCHS} (legacy: 10)")
    p.add_argument("--batch", type=cli.int_at_least(1, settings.MAX_BATCH),
                   help=f"real images per step, 1 to {settings.MAX_BATCH}; D sees as many fakes beside them "
                        "(legacy: 32)")
    p.add_argument("--lr", type=cli.learning_rate, help="Adam learning rate for D and G, above 0 and at most 1 "
                                                         "(legacy: 1e-3)")
    p.add_argument("--latent", type=cli.int_at_least(1, settings.MAX_LATENT),
                   help=f"size of the noise vector z, 1 to {settings.MAX_LATENT} (legacy: 100)")
    p.add_argument("--seed", type=cli.seed,
                   help="random seed, 0 to 2**32 - 1; the same seed on CPU gives the same history (wgan under "
                        "TensorFlow: not to the bit, see docs/resume.md) (default: a new one, "
                        "recorded in config.json)")
    p.add_argument("--limit", type=cli.positive_int, metavar="N",
                   help="train on N images only (1 or more), for quick demos: Fashion-MNIST's first N; of a "
                        "folder of images, N in a fixed shuffled order, a mix of its classes (default: all, "
                        "but for a preset that sets its own: demo, 16,000)")
    p.add_argument("--data-dir", metavar="FOLDER",
                   help="folder with the four Fashion-MNIST .gz files, or a folder of your own images, one "
                        "sub-folder per class (README: Your own images) (default: search "
                        f"${data.ENV_VAR}, the Keras cache, {data.DEBIAN_DIR}, then download)")
    p.add_argument("--out", default="out", help="run folder for every output (default: out)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (only the kit's own files are removed)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with its settings; --epochs may "
                        "raise the total, --eval-every and --ckpt-every may change")
    settings.add_flags(p)  # the model's finer settings, where it computes, what it measures and saves
    args = p.parse_args(argv)
    if args.resume and args.overwrite:
        p.error("--resume and --overwrite contradict each other; choose one")
    return args


def main(argv=None):
    started = time.perf_counter()
    args = parse_args(argv)
    if args.list_presets:  # a table in machinery/presets.py: no backend, no Keras, under a second
        return presets.print_table(args.backend)
    try:
        data_read = preflight.check_and_read_first(args)
        backends.use(args.backend)
        with launch.run_folder(args, data_read) as run:  # settings settled, processes started, the folder held
            return train(run, started)
    except (data.DataError, runs.RunError) as e:  # runs.RunError includes checkpoints.CheckpointError
        cli.fail(str(e))
    except Exception as e:
        if (failed := backends.compiler_failure(e)) is None:
            raise
        cli.fail(f"{failed} (the run stopped there; a checkpoint written before it is kept)", status=1)
    except KeyboardInterrupt:  # before the loop took over Ctrl-C: nothing was trained, nothing is lost
        cli.fail("interrupted before training started; nothing to save", status=EXIT_INTERRUPTED)


def train(run, started):
    """Build the models, start (or resume) the run, train it, draw its curves. `run`: what launch.run_folder
    settled (the folder, the settings, the images); `started`: time.perf_counter() when the script began."""
    from machinery.training import Training  # it imports Keras: here, after main() chose the backend

    training = Training(run)
    at = training.start()  # where the loop starts: epoch 1, or the resumed checkpoint's epoch and step
    with interrupts.StopOnInterrupt() as interrupt:
        train_epochs(training, at, interrupt)
    training.record.save_curves(at)
    scored = ", scoring" if run.config["eval_every"] else ""
    scripts = ["make_gif.py", "generate.py"]
    if run.data.judge_knows_it():  # the judge knows Fashion-MNIST only, not a folder of your own images
        scripts += ["tools/verdicts.py", "evaluate.py"]
    print(f"done: {len(at.history)} epoch(s), {time.perf_counter() - started:.0f} s in all (start-up, training, "
          f"pictures{scored}); outputs in {run.out}/ "
          "(next: " + "; ".join(cli.command("python", script, "--run", run.out) for script in scripts) + ")")
    return at.history


def train_epochs(training, at, interrupt):
    """The loop: epoch after epoch, one GAN step for every batch of real images. `at`: where it stands
    (machinery/position.py); `interrupt`: whether Ctrl-C or a kill came (the run then ends after its step,
    saved)."""
    while at.epoch <= training.config["epochs"]:
        batches = training.epoch_batches(at)  # this epoch's shuffled order of the real images, a row a step
        bar = training.progress_bar(at, LOG_EVERY_SECONDS)
        for step in bar:
            # One GAN step (models.train_step): D.train_on_batch on real + fake images, then gan.train_on_batch
            # on fresh noise labelled real, D frozen. Its figures: d_loss, g_loss, and how often D was right on
            # the real images and on the fakes.
            figures = training.step(training.real_batch(batches[step]))
            training.stop_if_diverged(figures, at, bar)  # a loss that is not a number: stop, last checkpoint kept
            at.add(figures)
            if training.frame_due(at):  # a picture of the fixed noise within the epoch, for a short run's GIF
                training.mid_epoch_frame(at)
            with interrupt.printing():  # (a reader of the output that has gone, `| head`, counts as Ctrl-C)
                bar.show(step, at.means())
            if interrupt.received and at.step < training.steps:  # Ctrl-C or a kill: a checkpoint, then exit
                training.save_and_stop(at, interrupt.received, bar)  # (at an epoch's last step: after its end)
        bar.close()
        row = training.end_epoch(at)  # its frame, its history row, and its scores and checkpoint when due
        with interrupt.printing():
            training.report_epoch(row, at)  # one line: its mean figures, images a second; warnings when scored
        at.next_epoch()


if __name__ == "__main__":
    cli.run(main)
