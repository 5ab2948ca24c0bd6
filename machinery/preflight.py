"""Everything dcgan.py can check before Keras is imported, and the training images read meanwhile.

TensorFlow's import alone takes about 10 s on a 2-core CPU: too long to wait for "data folder does not
exist". So the run folder (one to resume and the flags that contradict it, or a new one's place),
--devices and --processes against the backend's name, --fused-step, the data and the batch against it
are all checked first, each wrong input one line that says what to do.
"""

from pathlib import Path

import data
from machinery import backends, cli, devices, presets, runs, settings


def check_and_read_first(args):
    """Check all that needs no Keras, and read the training images. Returns them (a data.TrainingSet), or None
    where the data is in none of the usual places: then the caller downloads it with Keras (
    data.find_data_dir), once the backend is chosen."""
    out = Path(args.out)
    writes_folder = (args.process_index or 0) == 0  # the process that writes the run folder
    if args.resume:  # a folder with no run or no checkpoint to resume, or a flag that contradicts it
        config = settings.for_resume(args, out, precision_known=False)
        runs.require_checkpoints(out)
        preset = presets.PRESETS[config["preset"]]
    else:
        if writes_folder:
            runs.check_new(out, args.overwrite)
        preset = presets.PRESETS[args.preset or presets.DEFAULT_PRESET]
        if problem := presets.row_problem(preset):
            raise runs.RunError(f"preset {preset.name} in machinery/presets.py {problem}; mend its row")
        config = dict(batch=args.batch or preset.batch, limit=args.limit if args.limit is not None else preset.limit)
    devices.check_flags(args.devices, args.processes, args.process_index, args.coordinator,
                        backends.chosen(args.backend))
    check_fused_step(args)
    data_dir = data.find_data_dir_before_keras(data_dir_of(args, config))
    data_read = data.load_training_set(data_dir, config["limit"]) if data_dir else None
    if data_read:
        check_batch_fits(config["batch"], data_read.images, preset.critic_steps, config["limit"])
        check_data_suits(args, config, data_read)
    if writes_folder:
        runs.check_writable(out)  # last: it makes a new run's folder, which a mistake above should not leave
    return data_read


def check_fused_step(args):
    """--fused-step needs JAX's stateless train step, compiled, on one device of one process (fused_step.py)."""
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


def check_batch_fits(batch, images, critic_steps=1, limit=None):
    """One step must fit in the images: its batch, or for a WGAN-GP preset one batch per critic step."""
    if batch * critic_steps > len(images):
        per_step = f"--batch {batch}" + (f" x {critic_steps} critic steps" if critic_steps > 1 else "")
        more = "raise --limit" if limit == len(images) else "add images"
        cli.fail(f"{per_step} is larger than the {len(images)} training images; lower --batch or {more}")


def data_dir_of(args, config):
    """--data-dir, or where none is given to a resumed run of a folder of images, that folder: it trained on
    nothing else (a Fashion-MNIST run is looked for in the usual places again, as it was at first)."""
    if args.data_dir or not args.resume or presets.data_kind_of(config) != data.IMAGE_FOLDER:
        return args.data_dir
    return config["data_dir"]


def check_data_suits(args, config, training_set):
    """The data must be what a resumed run trained on, and what --eval-every's judge knows."""
    if args.resume:
        kind, folder = presets.data_kind_of(config), config.get("data_dir")
        if kind != training_set.kind:
            raise runs.RunError(f"this run trained on {data.KIND_IN_WORDS[kind]} in {folder}, not on "
                                f"{data.KIND_IN_WORDS[training_set.kind]} in {training_set.folder}; resume with "
                                f"--data-dir {folder}, or start a new run in another --out")
        # Runs made before class names were recorded have none: Fashion-MNIST's, which is all they could train on
        named = config.get("class_names") or training_set.class_names
        if (config.get("data_contents"), named) != (training_set.contents, training_set.class_names):
            raise runs.RunError(f"{training_set.folder} has changed since this run trained on it (images added, "
                                "removed or redrawn, or classes renamed); resume with the data as it was, or start a "
                                "new run in another --out")
    eval_every = args.eval_every if args.eval_every is not None else config.get("eval_every")
    if eval_every and not training_set.judge_knows_it():
        raise runs.RunError(f"--eval-every: {data.JUDGE_KNOWS_ONLY}, not {training_set.folder}; leave --eval-every "
                            "out")
