"""What dcgan.py's loop trains: the models and the step built from a run's settings (build), and the run as
one object (Training) whose few calls the loop makes: start (or resume), the batches, a NaN check, frames,
the epoch's end, a save on Ctrl-C.

Imported after the backend is chosen (it imports Keras).
"""

import contextlib
import importlib.metadata
import sys
from types import SimpleNamespace

import keras
import numpy as np

import data
import models
from machinery import (
    averaging, backends, checkpoints, cli, devices, judge, presets, progress, recording, resume, runs, sampling,
    settings, train_step)
from machinery.position import Position



def build(config, jit_compile, processes=devices.ONE_PROCESS, fused=False):
    """Everything a run trains and shows, built from its config: G, D and the stacked GAN (models.build_gan),
    the batch maker, the fixed noise of the pictures, G's weight average, one train step (`fused`:
    fused_step.py's, which also holds the variables' values until its sync()), and the checkpoint groups."""
    preset = presets.of_run(config)
    # config.get: runs made before --dropout have none recorded, and trained with the preset's
    generator, discriminator, gan = models.build_gan(preset, config["latent"], config["lr"], jit_compile,
                                                     config.get("dropout"))
    batch_maker = train_step.BatchMaker(generator, config["noise"], config["seed"], config["label_noise"],
                                        config["fakes_in_training_mode"], preset.classes * preset.conditional)
    # The same z every epoch, so frames show G change; from numpy, so the same on every backend. A
    # conditional run's picture has one row per class, each column one z: the same z across classes.
    rows, cols, _ = presets.picture_layout(preset, config["grid"], presets.class_names_of(config))
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
        step = train_step.make_train_step(discriminator, gan, batch_maker, config["batch"], jit_compile, processes,
                                          preset.critic_steps, average)
    return SimpleNamespace(
        generator=generator, discriminator=discriminator, gan=gan, batch_maker=batch_maker,
        fixed_noise=fixed_noise, fixed_classes=fixed_classes, average=average, step=step,
        sync=getattr(step, "sync", lambda: None),  # the fused step's values back into the models' variables
        checkpoint=checkpoints.training_state(generator, discriminator, gan, batch_maker, fixed_noise, average))


class Training:
    """One process's training of a run (launch.run_folder's), writing into its write_to (the run folder, which
    this process holds; a scratch folder in processes 1, 2, ... of several). The loop in dcgan.py calls it."""

    def __init__(self, run):
        self.out, self.args, self.config, self.processes = run.out, run.args, run.config, run.processes
        args, config, processes, write_to = run.args, run.config, run.processes, run.write_to
        self.data = run.data
        images, classes, data_dir = run.data.images, run.data.classes, run.data.folder
        # What it trains on: named classes (a conditional preset draws as many as the data has), and for a folder
        # of images its digest, which --resume checks
        config.update(data_kind=run.data.kind, class_names=run.data.class_names, classes=len(run.data.class_names))
        if run.data.contents:
            config["data_contents"] = run.data.contents
        self.preset = preset = presets.of_run(config)
        # A step is one G update, on batch real images, or for WGAN-GP critic_steps batches (one per D update).
        # The remainder is dropped: one batch shape, one traced train function.
        self.per_step = config["batch"] * preset.critic_steps
        self.steps = steps = len(images) // self.per_step
        self.image_count = len(images)
        backend = backends.current()
        config.update(images=len(images), steps_per_epoch=steps, data_dir=str(data_dir.absolute()),
                      keras=keras.__version__, backend=backend, backend_version=importlib.metadata.version(backend))
        config.pop("tensorflow", None)  # runs made before the kit had backends recorded TensorFlow's version
        # "auto" stays auto in config.json: a demo run resumed for many more epochs then draws one frame an epoch.
        per_epoch = settings.frames_per_epoch(config["frames_per_epoch"], config["epochs"], steps)
        self.mid_epoch_frames = set(settings.frame_steps(per_epoch, steps)) - {steps}  # the last is the epoch's own

        keras.mixed_precision.set_global_policy(config["precision"])
        keras.utils.set_random_seed(config["seed"])
        self.device_names = devices.use(config["devices"])  # before the models: their weights go on every device
        self.parts = build(config, backends.jit_compile_setting(args.xla), processes, config["step"] == "fused")
        self.step = self.parts.step
        self.record = recording.Recorder(write_to, config, self.parts, steps)
        self.write_to = write_to
        self.scored_on = (images, classes, data_dir)  # what --eval-every's checks read
        # On the device, so a step gathers its batch there. Several processes: on the host, where each process
        # holds the same copy; a device array of one process could not meet the weights spread over all.
        on_device = keras.ops.convert_to_tensor if processes.count == 1 else np.asarray
        self.real_images = on_device(data.scale_pixels(images, preset.pixel_range))
        self.real_classes = on_device(classes.astype(np.int32)[:, None]) if preset.conditional else None
        self.take = keras.ops.take if processes.count == 1 else np.take
        self.shuffle = np.random.default_rng(config["seed"])

    def start(self):
        """The loop's first position: a new run's, or the checkpoint's of a resumed one (resume.py)."""
        if self.args.resume:
            at = resume.position_from_newest_checkpoint(self)
        else:
            at = Position()
        self.record.start(at.history, at.step_rows, resumed=self.args.resume)
        if not self.args.resume and self.data.kind != data.FASHION_MNIST:  # your own images: see what was read
            self.record.save_training_images(self.data)
        if self.config["eval_every"]:
            self.record.score_every_few_epochs(*self.scored_on)
        self.say_what_trains()
        return at

    def epoch_batches(self, at):
        """This epoch's batches: a row of real images' indices per step."""
        return at.start_epoch(self.shuffle, self.image_count, self.steps, self.per_step)

    def real_batch(self, rows):
        """The step's real images (and their classes, for a conditional preset), gathered where they are kept."""
        batch_images = self.take(self.real_images, rows, axis=0)
        return [batch_images, self.take(self.real_classes, rows, axis=0)] if self.preset.conditional else batch_images

    def stop_if_diverged(self, figures, at, bar):
        """A loss that is not a number stops the run, the last checkpoint kept; a step past where the last try
        stopped so clears its record (tools/sweep.py reads it)."""
        d_loss, g_loss = figures[0], figures[1]
        if not np.isfinite(d_loss + g_loss):
            bar.close()
            kept = checkpoints.latest(self.write_to)
            loss = d_loss if not np.isfinite(d_loss) else g_loss
            runs.write_diverged(self.write_to, at.epoch, at.step + 1, loss)
            cli.fail(f"loss became {loss} at epoch {at.epoch}, step {at.step + 1}; training stopped. Kept: "
                     + (f"checkpoint {kept.name} and its generator.keras" if kept else "nothing yet")
                     + "; try a lower --lr", status=runs.EXIT_DIVERGED)
        if at.diverged_at and (at.epoch, at.step + 1) >= at.diverged_at:
            (self.write_to / runs.DIVERGED_FILE).unlink(missing_ok=True)
            at.diverged_at = None

    def frame_due(self, at):
        return at.step in self.mid_epoch_frames

    def mid_epoch_frame(self, at):
        with at.paused():  # drawing is not counted in the epoch's seconds: they time training
            self.record.mid_epoch_frame(at.epoch, at.step)

    def save_and_stop(self, at, signal, bar):
        """After Ctrl-C or a kill: a checkpoint of the step just done, then exit with the signal's status."""
        saved = self.record.save_progress(at)  # saved first: after a hangup, writing to the terminal may fail
        with contextlib.suppress(OSError):
            bar.close()
        cli.fail(f"interrupted ({signal.name}); saved checkpoint {saved.name}. Continue "
                 f"with: {cli.command('python', 'dcgan.py', '--resume', '--out', self.out)}", status=128 + signal)

    def end_epoch(self, at):
        """The epoch's row (its mean figures, seconds, and scores when due), its frame, and its checkpoint when due."""
        row = at.epoch_row()
        self.record.save_progress(at, row=row)
        return row

    def progress_bar(self, at, log_every_seconds):
        """The epoch's steps to loop over, shown as they go (machinery/progress.py). Processes 1, 2, ... of
        several print to their stdout, which they have silenced; process 0 to stderr, as tqdm does."""
        return progress.EpochProgress(at.epoch, self.config["epochs"], at.step, self.steps, log_every_seconds,
                                      stream=sys.stdout if self.processes.index else None)

    def report_epoch(self, row, at):
        """The epoch's line: its mean figures, images a second and seconds, and the judge's warnings when scored."""
        images_per_second = self.steps * self.per_step / row["seconds"]
        print(progress.epoch_line(row, self.config["epochs"], images_per_second), flush=True)
        if "fd" in row:  # scored this epoch: what the scores say, under the line that shows them
            for warning in judge.warnings(at.history):
                print(f"  warning: {warning}", flush=True)

    def say_what_trains(self):
        batch, preset, processes = self.config["batch"], self.preset, self.processes
        of_what = f"{batch}" + (f" x {preset.critic_steps} critic steps" if preset.critic_steps > 1 else "")
        print(f"training preset {preset.name} on {self.image_count} images, {self.steps} steps of {of_what} per epoch, "
              f"with {backends.describe_device()}")
        if self.config["step"] == "fused":  # not the loop dcgan.py shows: say so, and how to get that one
            print("each step as one compiled call (fakes, D's train step, the GAN's), the default under JAX on one "
                  "GPU; --classic-step for the two train_on_batch calls dcgan.py shows")
        if processes.count > 1:
            print(f"one of {processes.count} processes: this one, process {processes.index}, feeds "
                  f"{batch // processes.count} of each step's {batch} real images and writes the run folder")
        if len(self.device_names) > 1:
            count = len(self.device_names)
            print(f"data-parallel on {count} devices ({', '.join(self.device_names)}): each train_on_batch "
                  f"splits its batch in {count} (D: {2 * batch // count} images per device, G's step: "
                  f"{batch // count})")
