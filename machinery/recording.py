"""What a run leaves in its folder as it trains: frames of the fixed noise, history.csv and steps.csv, the
judge's scores, generator.keras and the checkpoints; losses.png at the end.

Every file is replaced atomically (runs.replace_atomically): a run stopped at any instant leaves the last
complete version of each, never half of one. Pictures, generator.keras and scores come from G as shown
(averaging.as_shown: its weight average where the run keeps one, BatchNorm settled).
"""

import keras
import numpy as np

import models
import viz
from machinery import averaging, backends, checkpoints, judge, memorisation, presets, runs, sampling

# BatchNorm settled on this many noise vectors for a frame within an epoch, not averaging.SETTLE_SAMPLES'
# 1,024: 4x faster (legacy's G: 0.2 s against 0.7-0.9 s on a 2-core CPU, most of a frame's cost), and its
# pictures differ by 0.4 of 255 grey levels on average. The epoch's own frame and every file keep 1,024
# (the test suite settles 64 everywhere: averaging.settle_samples).
MID_EPOCH_SETTLE_SAMPLES = min(256, averaging.SETTLE_SAMPLES)
TRAINING_IMAGES = "training_images.png"  # a run on data other than Fashion-MNIST: a few of its images as read


class Recorder:
    """Writes a training run's files into `write_to` (the run folder; a scratch folder in processes 1, 2, ...
    of several). `parts`: what training.build made; `steps`: steps per epoch."""

    def __init__(self, write_to, config, parts, steps):
        self.write_to, self.config, self.parts, self.steps = write_to, config, parts, steps
        self.preset = presets.of_run(config)
        self.backend = backends.current()
        self.save_generator = GeneratorSaver(parts.generator).save
        self.scorer = self.eval_noise = self.memory_check = None  # --eval-every's: score_every_few_epochs

    def as_shown(self, settle_samples=averaging.SETTLE_SAMPLES):
        """G as the pictures and files show it, inside the block."""
        return averaging.as_shown(self.parts.generator, self.parts.average, self.config["noise"],
                                  self.config["latent"], settle_samples)

    def start(self, history, step_rows, resumed):
        """The folder as training starts: a resumed run's files cut back to its checkpoint (rows written after
        it are trained again; generator.keras made again from it: one cut short or deleted is mended)."""
        if resumed:
            runs.write_history(self.write_to, history)
            runs.write_steps(self.write_to, step_rows)
            with self.as_shown():
                runs.replace_atomically(self.write_to / "generator.keras", self.save_generator)
        runs.write_config(self.write_to, self.config)
        (self.write_to / "images").mkdir(exist_ok=True)

    def save_training_images(self, training_set, per_class=8, most_classes=10):
        """training_images.png: a few of the training images as the GAN sees them (28x28 grey), a row per class
        (the first `most_classes`), so that a folder of your own images is seen as it was read."""
        images, names = training_set.images, training_set.class_names[:most_classes]
        if len(names) > 1:
            rows = [np.flatnonzero(training_set.classes == label)[:per_class] for label in range(len(names))]
        else:  # one class: four rows of it, unlabelled
            first = np.arange(min(4 * per_class, len(images)))
            rows, names = [first[i:i + per_class] for i in range(0, len(first), per_class)], None
        tiles = np.zeros((len(rows) * per_class, *images.shape[1:]), np.uint8)  # a class short of images: black
        for row, picked in enumerate(rows):
            tiles[row * per_class:row * per_class + len(picked)] = images[picked]
        caption = f"what the GAN sees: {len(training_set.images):,} images from {training_set.folder.name}"
        runs.replace_atomically(self.write_to / TRAINING_IMAGES, lambda path: viz.save_grid(
            tiles, path, len(rows), per_class, self.config["picture_size"], caption, row_labels=names))

    def score_every_few_epochs(self, images, classes, data_dir):
        """For --eval-every: the judge's quick scorer, and D's memorisation check on `images` (the run's)."""
        config = self.config
        self.scorer = judge.make_quick_scorer(data_dir)
        # Its own noise, so scoring never shifts the training stream (exact resume)
        self.eval_noise = sampling.noise_on_host(config["noise"], judge.QUICK_SAMPLES, config["latent"], seed=1)
        self.memory_check = memorisation.memory_check(images, classes, data_dir, self.preset,
                                                      presets.trains_a_critic(config), config["seed"])

    def mid_epoch_frame(self, epoch, step):
        """A frame within an epoch: G's values synced back from the fused step first, BatchNorm settled faster."""
        self.parts.sync()
        with self.as_shown(MID_EPOCH_SETTLE_SAMPLES):
            self.save_frame(epoch, step)

    def save_frame(self, epoch, step):
        """The grid of the fixed noise after `step` steps of `epoch`; call with G as shown."""
        rows, cols, row_labels = presets.picture_layout(self.preset, self.config["grid"],
                                                        presets.class_names_of(self.config))
        fixed_noise = keras.ops.convert_to_numpy(self.parts.fixed_noise)
        samples = sampling.draw(self.parts.generator, fixed_noise, self.preset.pixel_range, self.parts.fixed_classes)
        epochs, steps = self.config["epochs"], self.steps
        caption = f"epoch {epoch} of {epochs}" + (f", step {step} of {steps}" if step < steps else "")
        if epoch > 1 or step == steps:  # steps in all, where the caption does not already say
            caption += f" ({(epoch - 1) * steps + step:,} steps)"
        runs.replace_atomically(self.write_to / "images" / runs.frame_name(epoch, step if step < steps else None),
                                lambda path: viz.save_grid(samples, path, rows, cols, self.config["picture_size"],
                                                           caption, row_labels=row_labels))

    def save_progress(self, at, row=None):
        """At an epoch's end (`row` given: its figures): its frame, its scores if due, its history row. Then,
        when due or on Ctrl-C (no row): generator.keras and a checkpoint of position `at`, which is returned."""
        self.parts.sync()
        config, history = self.config, at.history
        due = row is None or at.epoch % config["ckpt_every"] == 0 or at.epoch == config["epochs"]
        with self.as_shown():  # pictures, files
            if row is not None:
                self.save_frame(at.epoch, self.steps)
                if self.scorer and at.epoch % config["eval_every"] == 0:
                    samples = sampling.draw(self.parts.generator, self.eval_noise, self.preset.pixel_range)
                    row.update(self.scorer(samples))
                    row.update(self.memory_check(self.parts.discriminator))
                    if row["fd"] <= min(r["fd"] for r in history + [row] if r.get("fd") not in (None, "")):
                        runs.replace_atomically(self.write_to / "generator_best.keras", self.save_generator)
            if due:
                runs.replace_atomically(self.write_to / "generator.keras", self.save_generator)
        if row is not None:
            at.finish_epoch(row)
            runs.write_history(self.write_to, history)
            runs.write_steps(self.write_to, at.step_rows)
        if due:  # outside the block: the checkpoint keeps the trailing averages training goes on with
            return checkpoints.write(self.write_to, self.parts.checkpoint, at.checkpoint_state(self.backend, row))

    def save_curves(self, at):
        runs.replace_atomically(self.write_to / "losses.png", lambda path: viz.plot_training(
            at.step_rows, at.history, path, title=f"DCGAN, preset {self.preset.name}, {len(at.history)} epoch(s)",
            critic=presets.trains_a_critic(self.config)))


class GeneratorSaver:
    """save(path): G as it is now, in plain Keras computing in float32 (models.portable_copy), wherever the
    file goes. The plain copy is built once and given G's weights at each save: each build makes its layers
    and variables anew, seconds a run."""

    def __init__(self, generator):
        self.generator, self.plain_copy = generator, None

    def save(self, path):
        if self.plain_copy is None:
            self.plain_copy = models.portable_copy(self.generator)
        else:
            self.plain_copy.set_weights(self.generator.get_weights())
        self.plain_copy.save(path)
