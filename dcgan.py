"""Train a DCGAN on Fashion-MNIST the classic Keras way, and watch it learn.

    python dcgan.py --epochs 10 --batch 32      # then: python make_gif.py
    python dcgan.py --resume                    # after Ctrl-C, a crash or kill -9: go on where it stopped
    python dcgan.py --backend jax               # any Keras 3 backend: tensorflow (default), jax, torch
    python dcgan.py --backend jax --fused-step  # on a GPU: each step one compiled call (machinery/fused_step.py)

The pattern (the design card's): compile the discriminator D; freeze it inside a stacked
Sequential([G, D]) called `gan`; then, for every batch, one D.train_on_batch on real + fake images and one
gan.train_on_batch on fresh noise labelled "real". Every epoch saves a grid of samples from one fixed noise
batch (a short run, several an epoch), so the frames of a run can be compared and stitched into an
animation, and a checkpoint.

Everything lands in one run folder (--out, default `out`): see machinery/runs.py for the list.
"""

import contextlib
import importlib.metadata
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import data
import viz
from machinery import backends, cli, devices, presets, progress, runs, sampling

# The modules that import Keras (models, train_step, averaging, checkpoints, judge) are imported inside the
# functions below, after main() has chosen the backend: Keras picks its backend once, at its first import.

EXIT_INTERRUPTED = 130  # the shell's convention for a program stopped by Ctrl-C: 128 + SIGINT (143: SIGTERM)
EXIT_DIVERGED = 3
# Settings a resumed run must share with the run it continues; --epochs, --data-dir, --xla, --backend and
# the habits below may change between the two.
FIXED_ON_RESUME = ("preset", "batch", "lr", "latent", "dropout", "seed", "limit", "precision", "average_decay")
# Upper bounds of the size flags: far past any preset (latent 128, batch 256, 300 epochs), and short of a
# typo's cost (--latent 100000 on 320 images took 3.4 minutes, 15.5 GB of memory and 9.4 GB of files).
MAX_EPOCHS, MAX_BATCH, MAX_LATENT = 10_000, 60_000, 1024
# What a run measures and saves, with the flags' defaults; config.json records the run's own, which a
# resumed run keeps unless the flag is given again.
RUN_HABITS = {"eval_every": 0, "ckpt_every": 1, "picture_size": viz.PICTURE_SIZE, "frames_per_epoch": "auto"}
# --frames-per-epoch auto: about this many frames in a whole run, so that make_gif.py animates a one-epoch
# demo too, but no two closer than this many steps (a tiny run's frames would all look the same) and no
# more than one an epoch in a run of 10 epochs or more.
AUTO_FRAMES_PER_RUN, MIN_STEPS_BETWEEN_AUTO_FRAMES = 10, 20
MAX_FRAMES_PER_EPOCH = 100
# BatchNorm settled on this many noise vectors for a frame within an epoch, not averaging.SETTLE_SAMPLES'
# 1,024: 4x faster (legacy's G: 0.2 s against 0.7-0.9 s on a 2-core CPU, most of a frame's cost), and its
# pictures differ by 0.4 of 255 grey levels on average. The epoch's own frame and every file keep 1,024.
MID_EPOCH_SETTLE_SAMPLES = 256
# Where output is not a terminal (a log file, a notebook, CI), tqdm's bar is off and a line of progress is
# printed at most this often within an epoch, besides the line at each epoch's end.
LOG_EVERY_SECONDS = 30


def parse_args(argv=None):
    p = cli.OneLineParser(
        prog="dcgan.py",
        description="Train a DCGAN on Fashion-MNIST with the classic compile + freeze + train_on_batch loop.",
        epilog="Example: python dcgan.py --epochs 10 --batch 32, then python make_gif.py.")
    p.add_argument("--preset", choices=list(presets.PRESETS), metavar="NAME",
                   help=f"which seed system to train: {', '.join(presets.PRESETS)} (default: "
                        f"{presets.DEFAULT_PRESET}); the flags below override its settings")
    p.add_argument("--list-presets", action="store_true", help="print the presets and their settings, then exit")
    p.add_argument("--epochs", type=cli.int_at_least(1, MAX_EPOCHS),
                   help=f"passes over the data, 1 to {MAX_EPOCHS} (legacy: 10)")
    p.add_argument("--batch", type=cli.int_at_least(1, MAX_BATCH),
                   help=f"real images per step, 1 to {MAX_BATCH}; D sees as many fakes beside them (legacy: 32)")
    p.add_argument("--lr", type=cli.learning_rate, help="Adam learning rate for D and G, above 0 and at most 1 "
                                                         "(legacy: 1e-3)")
    p.add_argument("--latent", type=cli.int_at_least(1, MAX_LATENT),
                   help=f"size of the noise vector z, 1 to {MAX_LATENT} (legacy: 100)")
    p.add_argument("--dropout", type=cli.unit_interval, metavar="RATE",
                   help="D's dropout rate after each convolution, 0 (none) or more and below 1 (legacy: 0.3; "
                        "upsample: 0.4)")
    p.add_argument("--average-decay", type=cli.unit_interval, metavar="D",
                   help="draw pictures, generator.keras and scores from a moving average of G's weights with "
                        "decay D, 0 or more and below 1, e.g. 0.999 (kit: 0.999; the seed presets: 0 = off, G "
                        "as trained)")
    p.add_argument("--seed", type=cli.seed,
                   help="random seed, 0 to 2**32 - 1; the same seed on CPU gives the same history (wgan under "
                        "TensorFlow: not to the bit, see docs/resume.md) (default: a new one, "
                        "recorded in config.json)")
    p.add_argument("--limit", type=cli.positive_int, metavar="N",
                   help="train on the first N images only (1 or more), for quick demos")
    p.add_argument("--data-dir", help="folder with the four Fashion-MNIST .gz files (default: search "
                                      f"${data.ENV_VAR}, the Keras cache, {data.DEBIAN_DIR}, then download)")
    p.add_argument("--out", default="out", help="run folder for every output (default: out)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (only the kit's own files are removed)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with its settings; --epochs may "
                        "raise the total, --eval-every and --ckpt-every may change")
    backends.add_flag(p)
    devices.add_flag(p)
    devices.add_process_flags(p)
    p.add_argument("--precision", choices=["auto", *presets.PRECISIONS], help=backends.PRECISION_HELP)
    p.add_argument("--xla", choices=["auto", "on", "off"], default="auto", help=backends.XLA_HELP)
    p.add_argument("--fused-step", action="store_true",
                   help="JAX only, one device: run each step's three calls (fakes, D's train step, the GAN's) as "
                        "one compiled call, the same math, for a GPU, where the calls are a step's cost: on one H200 "
                        "the used-by command took 46-78 s against 185 s (machinery/fused_step.py; a CPU computes and gains "
                        "nothing) (default: off, the classic train_on_batch calls)")
    p.add_argument("--eval-every", type=cli.non_negative_int, metavar="N",
                   help="every N epochs (0 or more), score 2,000 samples with the judge (FD and class "
                        "coverage, see evaluate.py) and ask D about 1,000 training and 1,000 test images (does it "
                        "learn its training set by heart?): added to history.csv and losses.png, a warning when "
                        "classes collapse or FD keeps rising, and the best-FD generator kept as "
                        "generator_best.keras (default: 0, off; --resume keeps the run's own)")
    p.add_argument("--ckpt-every", type=cli.positive_int, metavar="N",
                   help="write a checkpoint (and generator.keras) every N epochs (1 or more) and at the end "
                        "(default: 1; --resume keeps the run's own)")
    p.add_argument("--picture-size", type=cli.int_at_least(viz.MIN_PICTURE_SIZE, viz.MAX_PICTURE_SIZE),
                   metavar="PX", help=f"the longer side of each epoch's picture in pixels, {viz.MIN_PICTURE_SIZE} "
                                      f"to {viz.MAX_PICTURE_SIZE}; each sample pixel becomes a sharp square "
                                      f"(default: {viz.PICTURE_SIZE}, for a projector; --resume keeps the run's "
                                      "own)")
    p.add_argument("--frames-per-epoch", type=cli.int_at_least_or("auto", 1, MAX_FRAMES_PER_EPOCH), metavar="N|auto",
                   help=f"pictures of the fixed noise per epoch, 1 to {MAX_FRAMES_PER_EPOCH}, evenly spaced, the "
                        "last at the epoch's end, so that make_gif.py shows a short run learning step by step "
                        f"(default: auto = about {AUTO_FRAMES_PER_RUN} in the run, at least "
                        f"{MIN_STEPS_BETWEEN_AUTO_FRAMES} steps apart: one an epoch from "
                        f"{AUTO_FRAMES_PER_RUN} epochs on; --resume keeps the run's own)")
    args = p.parse_args(argv)
    if args.resume and args.overwrite:
        p.error("--resume and --overwrite contradict each other; choose one")
    return args


def frames_per_epoch(setting, epochs, steps):
    """--frames-per-epoch as a number: `setting` itself, or for "auto", enough for about
    AUTO_FRAMES_PER_RUN frames in `epochs` epochs of `steps` steps, at least MIN_STEPS_BETWEEN_AUTO_FRAMES
    steps apart."""
    if setting != "auto":
        return setting
    wanted = -(-AUTO_FRAMES_PER_RUN // epochs)  # rounded up
    return max(1, min(wanted, steps // MIN_STEPS_BETWEEN_AUTO_FRAMES))


def frame_steps(per_epoch, steps):
    """After which steps of an epoch its frames are drawn: evenly spaced, the last at the epoch's end."""
    return sorted({-(-k * steps // per_epoch) for k in range(1, per_epoch + 1)})


# ---- training -----------------------------------------------------------------------------------------

def resolve_config(args):
    """The run's settings: the preset's, overridden by any flag given. Recorded whole in config.json."""
    preset = presets.PRESETS[args.preset or presets.DEFAULT_PRESET]
    config = presets.settings_of(preset)
    config["pixel_range"] = list(preset.pixel_range)
    config["output_activation"] = preset.output_activation
    config.update(RUN_HABITS)
    override_with_flags_given(args, config, ("epochs", "batch", "lr", "latent", "dropout", "average_decay",
                                             *RUN_HABITS))
    config["seed"] = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    config["limit"] = args.limit
    config["precision"] = backends.resolve_precision(args.precision or "auto")
    return config


def override_with_flags_given(args, config, flags):
    for flag in flags:
        if getattr(args, flag) is not None:
            config[flag] = getattr(args, flag)


def config_for_resume(args, out, precision_known=True):
    """The settings of the run in `out`; a flag that contradicts them is an error. --epochs and the habits
    may change: they set how long it trains and what it measures and saves, never how a step trains.
    precision_known=False: before the backend is imported, when --precision auto cannot be resolved yet."""
    recorded = presets.read_run_config(out, "start a new run with --overwrite", if_missing="start one without --resume",
                                       needs=presets.TRAINING_NEEDS)
    config = {**RUN_HABITS, **recorded}  # runs made before habits were recorded: the defaults
    for flag in FIXED_ON_RESUME:
        given = getattr(args, flag)
        if flag == "precision" and given == "auto" and not precision_known:
            continue
        if flag == "precision" and given is not None:
            given = backends.resolve_precision(given)
        if given is not None and given != config.get(flag):
            raise runs.RunError(f"--{flag} {given} contradicts the run in {out} ({flag} = {config.get(flag)}); "
                                "drop the flag to resume, or start a new run in another --out")
    override_with_flags_given(args, config, ("epochs", *RUN_HABITS))
    return config


class StopOnInterrupt:
    """While active, Ctrl-C (SIGINT), a polite kill (SIGTERM: `kill`, `docker stop`, a batch scheduler's
    time limit) or a hangup (SIGHUP: the terminal or the SSH session closed) only records the signal; the
    loop finishes its step, saves, and exits. So does a reader of stdout that has gone (`python dcgan.py |
    head`): see `printing`."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __init__(self):
        self.received = None

    def __enter__(self):
        self._previous = {s: signal.signal(s, self._request) for s in self.SIGNALS}
        return self

    def _request(self, signum, frame):
        self.received = signal.Signals(signum)

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    @contextlib.contextmanager
    def printing(self):
        """Around the loop's progress lines. Python ignores SIGPIPE, so a reader that has gone shows up as a
        BrokenPipeError from print; raised, it would end the run without saving the steps since the last
        checkpoint. Recorded as SIGPIPE, it ends the run like a signal: after the next step, saved, 141."""
        try:
            yield
        except BrokenPipeError:
            cli.silence_stdout()
            self.received = signal.SIGPIPE


def build_training(config, jit_compile, share=devices.ONE_PROCESS, fused=False):
    """Everything a run trains and shows, built from its config: G, D and the stacked GAN, the batch
    maker, the fixed noise of the pictures, G's weight average, one train step (`fused`: machinery/fused_step.py's,
    which also updates the average and holds the variables' values until its sync()), and the checkpoint
    groups."""
    from machinery import averaging, checkpoints
    import keras
    import models
    from machinery import train_step

    preset = presets.PRESETS[config["preset"]]
    # config.get: runs made before --dropout have none recorded, and trained with the preset's
    generator, discriminator, gan = models.build_gan(preset, config["latent"], config["lr"], jit_compile,
                                                     config.get("dropout"))
    batch_maker = train_step.BatchMaker(generator, config["noise"], config["seed"], config["label_noise"],
                                        config["fakes_in_training_mode"], preset.classes * preset.conditional)
    # The same z every epoch, so frames show G change; from numpy, so the same on every backend. A
    # conditional run's picture has one row per class, each column one z: the same z across classes.
    rows, cols, _ = picture_layout(preset, config["grid"])
    noise = sampling.noise_on_host(config["noise"], cols if preset.conditional else rows * cols, config["latent"],
                                   config["seed"])
    fixed_classes = None
    if preset.conditional:
        noise, fixed_classes = sampling.one_row_per_class(noise, rows)
    fixed_noise = keras.Variable(noise, trainable=False, name="fixed_noise")
    decay = config.get("average_decay", 0.0)  # runs made before the kit had averaging have none
    average = averaging.GeneratorAverage(generator, decay) if decay else None
    if fused:
        from machinery import fused_step
        step = fused_step.FusedStep(discriminator, gan, batch_maker, config["batch"], average, preset.critic_steps)
    else:
        step = train_step.make_train_step(discriminator, gan, batch_maker, config["batch"], jit_compile, share,
                                          preset.critic_steps)
    return SimpleNamespace(
        generator=generator, discriminator=discriminator, gan=gan, batch_maker=batch_maker,
        fixed_noise=fixed_noise, fixed_classes=fixed_classes, average=average, train_step=step,
        sync=getattr(step, "sync", lambda: None),  # the fused step's values back into the models' variables
        checkpoint=checkpoints.training_state(generator, discriminator, gan, batch_maker, fixed_noise, average))


def picture_layout(preset, grid):
    """(rows, cols, row labels) of each epoch's picture: grid x grid samples, or for a conditional preset
    one row per class, named."""
    if preset.conditional:
        return preset.classes, grid, list(data.CLASS_NAMES[:preset.classes])
    return grid, grid, None


def check_and_read_first(args):
    """Check all that needs no Keras, and read the training images, before a backend is imported: TensorFlow's
    import alone takes about 10 s on a 2-core CPU, too long to wait for "data folder does not exist". The run
    folder (one to resume and the flags that contradict it, or a new one's place), --devices and --processes
    against the backend's name, the data and the batch against it. Returns (data folder, images, classes), or
    None where the data is in none of the usual places: then train() downloads it with Keras, once the
    backend is chosen."""
    out = Path(args.out)
    writes_folder = (args.process_index or 0) == 0  # the process that writes the run folder
    if args.resume:  # a folder with no run or no checkpoint to resume, or a flag that contradicts it
        config = config_for_resume(args, out, precision_known=False)
        runs.require_checkpoints(out)
        preset = presets.PRESETS[config["preset"]]
    else:
        if writes_folder:
            runs.check_new(out, args.overwrite)
        preset = presets.PRESETS[args.preset or presets.DEFAULT_PRESET]
        if problem := presets.row_problem(preset):
            raise runs.RunError(f"preset {preset.name} in machinery/presets.py {problem}; mend its row")
        config = dict(batch=args.batch or preset.batch, limit=args.limit)
    devices.check_flags(args.devices, args.processes, args.process_index, args.coordinator,
                        backends.chosen(args.backend))
    check_fused_step(args)
    data_dir = data.find_data_dir_before_keras(args.data_dir)
    data_read = (data_dir, *data.load_split("train", data_dir, config["limit"])) if data_dir else None
    if data_read:
        check_batch_fits(config["batch"], data_read[1], preset.critic_steps)
    if writes_folder:
        runs.check_writable(out)  # last: it makes a new run's folder, which a mistake above should not leave
    return data_read


def check_fused_step(args):
    """--fused-step needs JAX's stateless train step, compiled, on one device of one process (machinery/fused_step.py)."""
    if not args.fused_step:
        return
    if backends.chosen(args.backend) != "jax":
        raise runs.RunError(f"--fused-step runs under JAX only, not {backends.chosen(args.backend)}; pass "
                            "--backend jax, or leave --fused-step out for the classic train_on_batch calls")
    if args.xla == "off":
        raise runs.RunError("--fused-step compiles each step with XLA, which --xla off forbids; leave one of them out")
    if (args.processes or 1) > 1 or args.devices not in (None, 1):
        raise runs.RunError("--fused-step runs on one device in one process; leave out --devices and --processes, "
                            "or --fused-step")


def check_batch_fits(batch, images, critic_steps=1):
    """One step must fit in the images: its batch, or for a WGAN-GP preset one batch per critic step."""
    if batch * critic_steps > len(images):
        per_step = f"--batch {batch}" + (f" x {critic_steps} critic steps" if critic_steps > 1 else "")
        cli.fail(f"{per_step} is larger than the {len(images)} training images; lower --batch or raise --limit")


def train(args, started, data_read=None):
    """Check all that can be checked before anything is written, then train with the run folder locked.
    `started`: time.perf_counter() when the script began, for the closing line's total; `data_read`: what
    check_and_read_first found, if anything."""
    out = Path(args.out)
    # Before JAX touches a device: a run of several processes starts its distributed runtime first.
    share = devices.start_processes(args.processes, args.process_index, args.coordinator, backends.current())
    config = config_for_resume(args, out) if args.resume else resolve_config(args)
    if share.count > 1:  # every process must draw the same stream: process 0's seed, if none was given
        config["seed"] = devices.same_everywhere(config["seed"])
    # Per invocation, not kept by --resume: a run may go on with another number of devices (or machine).
    config["devices"] = devices.resolve(args.devices, backends.current(), config["batch"], share)
    config["processes"] = share.count
    if data_read is None:  # in none of the usual places before the backend was chosen: downloaded now, by Keras
        data_dir = data.find_data_dir(args.data_dir)
        data_read = (data_dir, *data.load_split("train", data_dir, config["limit"]))
    data_dir, images, classes = data_read
    check_batch_fits(config["batch"], images, presets.PRESETS[config["preset"]].critic_steps)  # again: the data may have been downloaded only now
    if share.index > 0:
        return train_as_helper(out, args, config, images, classes, data_dir, share, started)
    with runs.locked(out):
        if args.overwrite:
            runs.clear_run(out)
        return train_in(out, out, args, config, images, classes, data_dir, started, share)


def train_as_helper(out, args, config, images, classes, data_dir, share, started):
    """Process 1, 2, ... of a run of several: the same loop as process 0, every Keras call included (a step
    runs on the devices of all processes at once), reading --out to resume, but writing its copies of the
    run's files into a scratch folder removed at the end, and printing nothing: process 0 writes and tells."""
    print(f"process {share.index} of {share.count}: training; process 0 writes {out} and shows the progress")
    with tempfile.TemporaryDirectory(prefix=f"dcgan-process-{share.index}-") as scratch, \
            open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        return train_in(out, Path(scratch), args, config, images, classes, data_dir, started, share)


def train_in(out, write_to, args, config, images, classes, data_dir, started, share=devices.ONE_PROCESS):
    """The loop: build, resume from `out` if asked, train epoch after epoch, writing into `write_to` (the
    run folder, which this process holds; a scratch folder in processes 1, 2, ... of several).
    `classes`: the images' class indices, which a conditional preset trains on."""
    from machinery import averaging, checkpoints, judge
    import keras
    import models
    from machinery import memorisation

    backend = backends.current()
    preset = presets.PRESETS[config["preset"]]
    batch = config["batch"]
    # A step is one G update, on batch real images, or for WGAN-GP critic_steps batches (one per D update).
    # The remainder is dropped: one batch shape, one traced train function.
    per_step = batch * preset.critic_steps
    steps = len(images) // per_step
    config.update(images=len(images), steps_per_epoch=steps, data_dir=str(data_dir), keras=keras.__version__,
                  backend=backend, backend_version=importlib.metadata.version(backend))
    config.pop("tensorflow", None)  # runs made before the kit had backends recorded TensorFlow's version
    # "auto" stays auto in config.json: a demo run resumed for many more epochs then draws one frame an epoch.
    per_epoch = frames_per_epoch(config["frames_per_epoch"], config["epochs"], steps)
    mid_epoch_frames = set(frame_steps(per_epoch, steps)) - {steps}  # the frame at the end is the epoch's own

    keras.mixed_precision.set_global_policy(config["precision"])
    keras.utils.set_random_seed(config["seed"])
    device_names = devices.use(config["devices"])  # before the models: their weights go on every device
    run = build_training(config, backends.jit_compile_setting(args.xla), share, args.fused_step)
    generator, average = run.generator, run.average

    portable = []  # G's plain copy, built once: each build makes its layers and variables anew, seconds a run

    def save_generator(path):
        """G as shown, in plain Keras computing in float32, wherever the file goes (models.portable_copy)."""
        if portable:
            portable[0].set_weights(generator.get_weights())
        else:
            portable.append(models.portable_copy(generator))
        portable[0].save(path)
    # On the device, so a step gathers its batch there. Several processes: on the host, where each process
    # holds the same copy; a device array of one process could not meet the weights spread over all.
    on_device = keras.ops.convert_to_tensor if share.count == 1 else np.asarray
    real_images = on_device(data.scale_pixels(images, preset.pixel_range))
    real_classes = on_device(classes.astype(np.int32)[:, None]) if preset.conditional else None
    take = keras.ops.take if share.count == 1 else np.take

    def real_batch(rows):
        """The step's real images (and their classes, for a conditional preset), gathered where they are kept."""
        batch_images = take(real_images, rows, axis=0)
        return [batch_images, take(real_classes, rows, axis=0)] if preset.conditional else batch_images
    shuffle = np.random.default_rng(config["seed"])

    # Where the loop starts: a checkpoint holds the epoch in progress, the steps done in it, the shuffling
    # state at that epoch's start (to draw the same order again) and the partial sums of its figures.
    epoch, first_step, sums, seconds_before, history = 1, 0, np.zeros(4), 0.0, []
    diverged_at = None  # (epoch, step) where the last try stopped on a NaN, while this one has not passed it
    step_rows, epoch_step_rows = [], []  # every step so far (for losses.png); the epoch in progress's
    if args.resume:  # nothing on disk changes until a checkpoint has been read whole
        last, state, skipped = checkpoints.restore_newest(out, run.checkpoint, backend)
        for path, why in skipped:
            print(f"skipped checkpoint {path.name}: {why}")
        shuffle.bit_generator.state = state["shuffle_state"]
        epoch, first_step, history = state["epoch"], state["step"], state["history"]
        sums, seconds_before = np.array(state["sums"]), state["seconds"]
        trained = epoch if first_step == steps else epoch - 1
        if trained > config["epochs"]:
            raise runs.RunError(f"--epochs {config['epochs']} is below the {trained} epochs the run in {out} has "
                                f"trained; pass --epochs {trained + 1} or more to train it longer")
        if trained == config["epochs"]:
            longer = cli.command("python", "dcgan.py", "--resume", "--epochs", trained + 10, "--out", out)
            raise runs.RunError(f"the run in {out} is finished ({trained} of {trained} epochs); to train it "
                                f"longer: {longer}")
        if first_step == steps:  # it was taken at the end of an epoch: start the next one
            shuffle.permutation(len(images))
            epoch, first_step, sums, seconds_before = epoch + 1, 0, np.zeros(4), 0.0
        else:  # mid-epoch: the steps of the epoch so far come with the checkpoint
            epoch_step_rows = state.get("step_rows", [])
        step_rows = runs.read_steps(out, before_epoch=epoch)
        print(f"resuming {out} at epoch {epoch}, step {first_step} (checkpoint {last.name})")
        if diverged := runs.read_diverged(out):
            print(f"note: its last training stopped on a {diverged['loss']} loss at epoch {diverged['epoch']}, step "
                  f"{diverged['step']}; resuming repeats the same steps, so it will most likely stop there again "
                  "(a lower --lr is a new run, in another --out)")
            # The record stays until this try gets past that step: stopped before it, the run still diverges
            # there (tools/sweep.py reads the record). An unreadable record's place is unknown: the first step passes.
            readable = isinstance(diverged["epoch"], int) and isinstance(diverged["step"], int)
            diverged_at = (diverged["epoch"], diverged["step"]) if readable else (0, 0)
        if state.get("backend", "tensorflow") != backend:
            print(f"it was written under {state.get('backend', 'tensorflow')} and goes on under {backend}: weights, "
                  "optimizer moments, average, history and frames carry over; the random streams (noise, "
                  "Dropout) start afresh from the seed")
        runs.write_history(write_to, history)  # rows written after that checkpoint are trained again
        runs.write_steps(write_to, step_rows)
        # generator.keras is the checkpoint's G as shown: one cut short or deleted is made again from it.
        with averaging.as_shown(generator, average, config["noise"], config["latent"]):
            runs.replace_atomically(write_to / "generator.keras", save_generator)
    runs.write_config(write_to, config)
    (write_to / "images").mkdir(exist_ok=True)

    scorer = judge.make_quick_scorer(data_dir) if config["eval_every"] else None
    if scorer:  # its own noise, so scoring never shifts the training stream (exact resume)
        eval_noise = sampling.noise_on_host(config["noise"], judge.QUICK_SAMPLES, config["latent"], seed=1)
        memory_check = memorisation.memory_check(images, classes, data_dir, preset, presets.trains_a_critic(config),
                                             config["seed"])

    def save_frame(epoch, step):
        """The grid of the fixed noise after `step` steps of `epoch`; call with G as shown."""
        rows, cols, row_labels = picture_layout(preset, config["grid"])
        samples = sampling.draw(generator, keras.ops.convert_to_numpy(run.fixed_noise), preset.pixel_range,
                                run.fixed_classes)
        caption = f"epoch {epoch} of {config['epochs']}" + (f", step {step} of {steps}" if step < steps else "")
        if epoch > 1 or step == steps:  # steps in all, where the caption does not already say
            caption += f" ({(epoch - 1) * steps + step:,} steps)"
        runs.replace_atomically(write_to / "images" / runs.frame_name(epoch, step if step < steps else None),
                                lambda path: viz.save_grid(samples, path, rows, cols, config["picture_size"],
                                                           caption, row_labels=row_labels))

    def save_progress(epoch, step, shuffle_state, sums, seconds, row=None):
        """At an epoch's end (row given): its frame, its scores if due, its history row. Then, when due or
        on Ctrl-C (no row): generator.keras and a checkpoint."""
        run.sync()
        due = row is None or epoch % config["ckpt_every"] == 0 or epoch == config["epochs"]
        with averaging.as_shown(generator, average, config["noise"], config["latent"]):  # pictures, files
            if row is not None:
                save_frame(epoch, steps)
                if scorer and epoch % config["eval_every"] == 0:
                    row.update(scorer(sampling.draw(generator, eval_noise, preset.pixel_range)))
                    row.update(memory_check(run.discriminator))
                    if row["fd"] <= min(r["fd"] for r in history + [row] if r.get("fd") not in (None, "")):
                        runs.replace_atomically(write_to / "generator_best.keras", save_generator)
            if due:
                runs.replace_atomically(write_to / "generator.keras", save_generator)
        if row is not None:
            history.append(row)
            step_rows.extend(epoch_step_rows)
            runs.write_history(write_to, history)
            runs.write_steps(write_to, step_rows)
        if due:  # outside the block: the checkpoint keeps the trailing averages training goes on with
            state = dict(epoch=epoch, step=step, shuffle_state=shuffle_state, sums=list(map(float, sums)),
                         seconds=seconds, history=history, backend=backend,
                         step_rows=[] if row is not None else epoch_step_rows)
            return checkpoints.write(write_to, run.checkpoint, state)

    of_what = f"{batch}" + (f" x {preset.critic_steps} critic steps" if preset.critic_steps > 1 else "")
    print(f"training preset {preset.name} on {len(images)} images, {steps} steps of {of_what} per epoch, with "
          f"{backends.describe_device()}")
    if share.count > 1:
        print(f"one of {share.count} processes: this one, process {share.index}, feeds {batch // share.count} of "
              f"each step's {batch} real images and writes the run folder")
    if len(device_names) > 1:
        print(f"data-parallel on {len(device_names)} devices ({', '.join(device_names)}): each train_on_batch "
              f"splits its batch in {len(device_names)} (D: {2 * batch // len(device_names)} images per device, "
              f"G's step: {batch // len(device_names)})")
    with StopOnInterrupt() as interrupt:
        while epoch <= config["epochs"]:
            epoch_started = time.perf_counter() - seconds_before
            shuffle_state = shuffle.bit_generator.state
            order = shuffle.permutation(len(images))[:steps * per_step].reshape(steps, per_step)
            bar = progress.EpochProgress(epoch, config["epochs"], first_step, steps, LOG_EVERY_SECONDS,
                                         stream=sys.stdout if share.index else None)  # helpers: silenced
            for step in bar:
                d_loss, g_loss, acc_real, acc_fake = run.train_step(real_batch(order[step]))
                if not np.isfinite(d_loss + g_loss):
                    bar.close()
                    kept = checkpoints.latest(write_to)
                    runs.write_diverged(write_to, epoch, step + 1, d_loss if not np.isfinite(d_loss) else g_loss)
                    cli.fail(f"loss became {d_loss if not np.isfinite(d_loss) else g_loss} at epoch {epoch}, "
                             f"step {step + 1}; training stopped. Kept: "
                             + (f"checkpoint {kept.name} and its generator.keras" if kept else "nothing yet")
                             + "; try a lower --lr", status=EXIT_DIVERGED)
                if diverged_at and (epoch, step + 1) >= diverged_at:  # past where the last try diverged
                    (write_to / runs.DIVERGED_FILE).unlink(missing_ok=True)
                    diverged_at = None
                if average and not args.fused_step:  # the fused step updates it itself
                    average.update()
                if step + 1 in mid_epoch_frames:  # not counted in the epoch's seconds: they time training
                    drawing_started = time.perf_counter()
                    run.sync()
                    with averaging.as_shown(generator, average, config["noise"], config["latent"],
                                            MID_EPOCH_SETTLE_SAMPLES):
                        save_frame(epoch, step + 1)
                    epoch_started += time.perf_counter() - drawing_started
                sums += (d_loss, g_loss, acc_real, acc_fake)
                epoch_step_rows.append(dict(epoch=epoch, step=step + 1, d_loss=float(d_loss), g_loss=float(g_loss),
                                            d_acc_real=float(acc_real), d_acc_fake=float(acc_fake)))
                with interrupt.printing():
                    bar.show(step, sums / (step + 1))
                if interrupt.received:  # saved first: after a hangup, writing to the terminal may fail
                    saved = save_progress(epoch, step + 1, shuffle_state, sums,
                                          time.perf_counter() - epoch_started)
                    with contextlib.suppress(OSError):
                        bar.close()
                    cli.fail(f"interrupted ({interrupt.received.name}); saved checkpoint {saved.name}. Continue "
                             f"with: {cli.command('python', 'dcgan.py', '--resume', '--out', out)}",
                             status=128 + interrupt.received)
            bar.close()
            mean = sums / steps
            seconds = time.perf_counter() - epoch_started
            row = dict(epoch=epoch, d_loss=mean[0], g_loss=mean[1], d_acc_real=mean[2], d_acc_fake=mean[3],
                       seconds=seconds)
            save_progress(epoch, steps, shuffle_state, sums, seconds, row=row)
            with interrupt.printing():  # a checkpoint may not be due: the next epoch's first step saves one
                print(progress.epoch_line(row, config["epochs"], steps * per_step / seconds), flush=True)
                if "fd" in row:  # scored this epoch: what the scores say, under the line that shows them
                    for warning in judge.warnings(history):
                        print(f"  warning: {warning}", flush=True)
            epoch, first_step, sums, seconds_before, epoch_step_rows = epoch + 1, 0, np.zeros(4), 0.0, []

    runs.replace_atomically(write_to / "losses.png", lambda path: viz.plot_training(
        step_rows, history, path, title=f"DCGAN, preset {preset.name}, {len(history)} epoch(s)",
        critic=presets.trains_a_critic(config)))
    print(f"done: {len(history)} epoch(s), {time.perf_counter() - started:.0f} s in all (start-up, training, "
          f"pictures{', scoring' if scorer else ''}); outputs in {out}/ "
          "(next: " + "; ".join(cli.command("python", script, "--run", out)
                                for script in ("make_gif.py", "generate.py", "tools/verdicts.py", "evaluate.py")) + ")")
    return history


def parameter_counts(preset, backend=None):
    """(G's, D's) parameter counts: presets.PARAMETERS's, with no Keras; a preset that table does not know yet
    (a row of your own) is built to count them, which imports Keras (on `backend`) first."""
    if preset.name in presets.PARAMETERS:
        return presets.PARAMETERS[preset.name]
    backends.use(backend)
    import models

    generator, discriminator, _ = models.build_models(preset, preset.latent)
    return generator.count_params(), discriminator.count_params()


def print_presets(backend=None):
    """One row per preset: what it builds, how it samples and scales, how it learns."""
    header = ["preset", "G params", "D params", "latent", "pixels", "G output", "loss", "D dropout", "Adam",
              "G shown", "batch", "epochs", "grid", "system (docs/systems.md)"]
    rows = []
    for preset in presets.PRESETS.values():
        g_parameters, d_parameters = parameter_counts(preset, backend)
        rows.append([preset.name, f"{g_parameters:,}", f"{d_parameters:,}",
                     f"{preset.latent} {preset.noise}" + (" + class" if preset.conditional else ""),
                     "[{}, {}]".format(*preset.pixel_range),
                     preset.output_activation,
                     preset.loss_name,
                     f"{preset.dropout:g}",
                     f"lr {preset.lr:g}, beta_1 {preset.beta_1:g}"
                     + (f", beta_2 {preset.beta_2:g}" if preset.beta_2 != presets.Preset.beta_2 else ""),
                     f"average {preset.average_decay:g}" if preset.average_decay else "as trained",
                     str(preset.batch), str(preset.epochs),
                     "{}x{}".format(*picture_layout(preset, preset.grid)[:2]), preset.system])
    cli.print_columns(header, rows)
    return rows


def main(argv=None):
    started = time.perf_counter()
    args = parse_args(argv)
    if args.list_presets:  # a table in machinery/presets.py: no backend, no Keras, under a second
        return print_presets(args.backend)
    try:
        data_read = check_and_read_first(args)
        backends.use(args.backend)
        return train(args, started, data_read)
    except (data.DataError, runs.RunError) as e:  # runs.RunError includes checkpoints.CheckpointError
        cli.fail(str(e))
    except Exception as e:
        if (failed := backends.compiler_failure(e)) is None:
            raise
        cli.fail(f"{failed} (the run stopped there; a checkpoint written before it is kept)", status=1)
    except KeyboardInterrupt:  # before the loop took over Ctrl-C: nothing was trained, nothing is lost
        cli.fail("interrupted before training started; nothing to save", status=EXIT_INTERRUPTED)


if __name__ == "__main__":
    cli.run(main)
