"""A run's settings: the flags beyond the lesson's, config.json made from a preset and the flags, and what a
resumed run must keep.

dcgan.py defines the flags a student meets first (--preset, --epochs, --batch, --lr, ...); add_flags adds
the rest: where the run computes (backend, devices, precision, XLA, the fused step) and what it measures
and saves (scores, checkpoints, pictures). config.json records every setting of a run; a resumed run
reads it back (for_resume) and refuses a flag that would change how a step trains.
"""

import numpy as np

import viz
from machinery import backends, cli, devices, presets, runs

# Upper bounds of the size flags: far past any preset (latent 128, batch 256, 300 epochs), and short of a
# typo's cost (--latent 100000 on 320 images took 3.4 minutes, 15.5 GB of memory and 9.4 GB of files).
MAX_EPOCHS, MAX_BATCH, MAX_LATENT = 10_000, 60_000, 1024
# Settings a resumed run must share with the run it continues; --epochs, --data-dir, --xla, --backend,
# --devices, --processes, --fused-step / --classic-step and the recording settings below may change between the two.
FIXED_ON_RESUME = ("preset", "batch", "lr", "latent", "dropout", "seed", "limit", "precision", "average_decay")
# What a run measures and saves, with the flags' defaults: how often it scores and checkpoints, and how its
# pictures look, never how a step trains. config.json records the run's own, which a resumed run keeps
# unless the flag is given again.
RECORDING_DEFAULTS = {"eval_every": 0, "ckpt_every": 1, "picture_size": viz.PICTURE_SIZE, "frames_per_epoch": "auto"}
# --frames-per-epoch auto: about this many frames in a whole run, so that make_gif.py animates a one-epoch
# demo too, but no two closer than this many steps (a tiny run's frames would all look the same) and no
# more than one an epoch in a run of 10 epochs or more.
AUTO_FRAMES_PER_RUN, MIN_STEPS_BETWEEN_AUTO_FRAMES = 10, 20
MAX_FRAMES_PER_EPOCH = 100


def add_flags(p):
    """The flags of dcgan.py beyond the lesson's: the model's finer settings, where it computes, what it records."""
    p.add_argument("--dropout", type=cli.unit_interval, metavar="RATE",
                   help="D's dropout rate after each convolution, 0 (none) or more and below 1 (legacy: 0.3; "
                        "upsample: 0.4)")
    p.add_argument("--average-decay", type=cli.unit_interval, metavar="D",
                   help="draw pictures, generator.keras and scores from a moving average of G's weights with "
                        "decay D, 0 or more and below 1, e.g. 0.999 (kit: 0.999; the published systems' presets: "
                        "0 = off, G as trained)")
    backends.add_flag(p)
    devices.add_flag(p)
    devices.add_process_flags(p)
    p.add_argument("--precision", choices=["auto", *presets.PRECISIONS], help=backends.PRECISION_HELP)
    p.add_argument("--xla", choices=["auto", "on", "off"], default="auto", help=backends.XLA_HELP)
    step = p.add_mutually_exclusive_group()
    step.add_argument("--fused-step", action="store_true",
                      help="JAX only, one device: run each step's three calls (fakes, D's train step, the GAN's) as "
                           "one compiled call, the same math, for a GPU, where the calls are a step's cost and this "
                           "makes a run several times faster (docs/speed.md; a CPU computes and gains nothing) "
                           "(default: the fused step under JAX on one GPU, the classic train_on_batch calls "
                           "elsewhere)")
    step.add_argument("--classic-step", action="store_true",
                      help="the classic two train_on_batch calls a step, as dcgan.py shows them, also where the "
                           "fused step is the default (JAX on one GPU)")
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


def from_flags(args):
    """A new run's settings: the preset's, overridden by any flag given. Recorded whole in config.json."""
    preset = presets.PRESETS[args.preset or presets.DEFAULT_PRESET]
    config = presets.settings_of(preset)
    config["pixel_range"] = list(preset.pixel_range)
    config["output_activation"] = preset.output_activation
    config.update(RECORDING_DEFAULTS)
    override_with_flags_given(args, config, ("epochs", "batch", "lr", "latent", "dropout", "average_decay",
                                             *RECORDING_DEFAULTS))
    config["seed"] = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    if args.limit is not None:  # else the preset's own (None, all images, but for the demo's minute)
        config["limit"] = args.limit
    config["precision"] = backends.resolve_precision(args.precision or "auto")
    return config


def override_with_flags_given(args, config, flags):
    for flag in flags:
        if getattr(args, flag) is not None:
            config[flag] = getattr(args, flag)


def for_resume(args, out, precision_known=True):
    """The settings of the run in `out`; a flag that contradicts them is an error. --epochs and the recording
    settings may change: they set how long it trains and what it measures and saves, never how a step trains.
    precision_known=False: before the backend is imported, when --precision auto cannot be resolved yet."""
    recorded = presets.read_run_config(out, "start a new run with --overwrite", if_missing="start one without --resume",
                                       needs=presets.TRAINING_NEEDS)
    config = {**RECORDING_DEFAULTS, **recorded}  # runs made before these were recorded: the defaults
    for flag in FIXED_ON_RESUME:
        given = getattr(args, flag)
        if flag == "precision" and given == "auto" and not precision_known:
            continue
        if flag == "precision" and given is not None:
            given = backends.resolve_precision(given)
        if given is not None and given != config.get(flag):
            raise runs.RunError(f"--{flag} {given} contradicts the run in {out} ({flag} = {config.get(flag)}); "
                                "drop the flag to resume, or start a new run in another --out")
    override_with_flags_given(args, config, ("epochs", *RECORDING_DEFAULTS))
    return config


def which_step(args, device_count, process_count):
    """"fused" or "classic": the flag given, else the fused step where it is the default, under JAX on one GPU
    in one process with XLA (there a step's cost is its calls, not its arithmetic: docs/speed.md), and the
    classic train_on_batch calls elsewhere. Both run the same updates in the same order (fused_step.py)."""
    if args.fused_step or args.classic_step:
        return "fused" if args.fused_step else "classic"
    fused_fits = backends.current() == "jax" and device_count == 1 and process_count == 1 and args.xla != "off"
    return "fused" if fused_fits and backends.gpu_name() else "classic"


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
