"""The preset table: one row of settings per seed system, and the kit's own. Data only, no Keras.

models.py builds the layers a row names. Kept apart so that the
scripts can list presets and check their flags before a Keras backend is chosen (see backends.py).
A preset names one generator builder and one discriminator builder (keys of models.GENERATORS and
models.DISCRIMINATORS); adding a system means adding a row, and a builder only if its layers are new.
What a run's config.json may hold follows from the table: read_run_config checks it for every script.
"""

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

import data
from machinery import cli, runs

NOISE_KINDS = ("normal", "uniform")  # the z distributions a preset (or --noise of sampling.py) can name


@dataclass(frozen=True)
class Preset:
    name: str
    system: str            # which system of docs/systems.md it reproduces
    generator: str         # key of models.GENERATORS
    discriminator: str     # key of models.DISCRIMINATORS
    generator_options: dict = field(default_factory=dict)      # extra arguments of the generator builder
    discriminator_options: dict = field(default_factory=dict)  # ... and of the discriminator builder
    latent: int = 100
    noise: str = "normal"  # one of NOISE_KINDS: "normal" N(0, 1), or "uniform" in [-1, 1]
    pixel_range: tuple = (-1, 1)  # (-1, 1) pairs with a tanh output, (0, 1) with a sigmoid
    lr: float = 1e-3       # Adam learning rate, for D and for G through the stacked GAN
    beta_1: float = 0.9    # Adam's first-moment decay
    beta_2: float = 0.999  # Adam's second-moment decay (Keras's default; WGAN-GP's paper uses 0.9)
    dropout: float = 0.3   # D's dropout rate after each convolution: a D that memorises the reals leaves G no slope
    label_noise: float = 0.0  # D's labels move toward 0.5 by label_noise * U[0, 1) (train_step.jittered_labels)
    # > 0: a Wasserstein GAN with gradient penalty of this weight (models.WassersteinCritic): D becomes a
    # critic that scores, the loss is the score's mean, and critic_steps D updates, each on its own real
    # batch, come before each G update. 0: the classic BCE GAN, one D update per G update.
    gradient_penalty: float = 0.0
    critic_steps: int = 1
    # D's fakes made with G in training mode (BatchNorm on the batch's own statistics), as systems A, D, E do;
    # False for the article's plain G(noise), which uses the moving averages that lag early in training.
    fakes_in_training_mode: bool = True
    # > 0: pictures, generator.keras and scores come from an exponential moving average of G's weights with
    # this decay (see averaging.GeneratorAverage); 0: from G as trained, as every seed system does.
    average_decay: float = 0.0
    batch: int = 32
    epochs: int = 10
    grid: int = 5          # the fixed-noise picture is grid x grid samples (conditional: classes x grid)
    # True: G draws the class it is given and D judges image and class together (models.build_models);
    # the legacy and deconv Gs and the strided D have conditional forms, and the projection D has only that one.
    conditional: bool = False
    classes: int = 10      # Fashion-MNIST's, for a conditional preset
    # Images a run trains on where --limit is not given (None: all). A budget of images, not of seconds, so
    # that the demo's minute trains the same run on every machine (faster ones finish sooner).
    limit: int | None = None

    @property
    def loss_name(self):
        if self.gradient_penalty:
            return f"Wasserstein, gradient penalty {self.gradient_penalty:g}, {self.critic_steps} D steps a G step"
        return "BCE" + (f", label noise {self.label_noise}" if self.label_noise else "")

    @property
    def output_activation(self):
        return "tanh" if tuple(self.pixel_range) == (-1, 1) else "sigmoid"


PRESETS = {p.name: p for p in [
    Preset("tutorial", "A: TensorFlow DCGAN tutorial", "deconv", "strided",
           generator_options=dict(seed_channels=256), discriminator_options=dict(leak=0.3),
           latent=100, lr=1e-4, batch=256, epochs=50, grid=4),
    Preset("upsample", "B: UpSampling + Conv generator, sigmoid output", "upsample", "conv4",
           latent=128, pixel_range=(0, 1), lr=1e-4, dropout=0.4, label_noise=0.05, batch=128, epochs=20, grid=4),
    Preset("legacy", "C: compile + freeze + train_on_batch article", "legacy", "strided",
           latent=100, lr=1e-3, batch=32, epochs=10, grid=5, fakes_in_training_mode=False),
    Preset("uniform", "D: uniform noise, lr 2e-4", "deconv", "strided",
           generator_options=dict(seed_channels=256), latent=100, noise="uniform",
           lr=2e-4, beta_1=0.5, batch=128, epochs=50, grid=5),
    # Not a seed system: D's recipe (the tutorial's G, legacy's D, uniform noise, Adam 2e-4 with beta_1 0.5)
    # at the used-by command's batch 32, with pictures and files drawn from G's weight average. Picked with
    # evaluate.py at the full used-by budget (10 epochs, batch 32): FD 134 / 129 / 140 at seeds 11 / 12 / 13,
    # 10 classes each, against 156 / 150 / 171 for the same training runs shown as trained (docs/presets.md).
    Preset("kit", "the kit's own: D's recipe at batch 32, G's weights averaged", "deconv", "strided",
           generator_options=dict(seed_channels=256), latent=100, noise="uniform",
           lr=2e-4, beta_1=0.5, batch=32, epochs=10, grid=5, average_decay=0.999),
    # Not a seed system: the kit's recipe asked for a class, system A's first extension. Both G and D take
    # the label (models.build_conditional_generator, build_conditional_discriminator).
    Preset("conditional", "the kit's recipe, conditioned on the class (A's extension)", "deconv", "strided",
           generator_options=dict(seed_channels=256), latent=100, noise="uniform",
           lr=2e-4, beta_1=0.5, batch=32, epochs=10, grid=8, average_decay=0.999, conditional=True),
    # Not a seed system: system A's other idea for later, WGAN-GP (Gulrajani et al. 2017): the kit's G and D,
    # D a critic without dropout, the paper's Adam (lr 1e-4, betas 0.5 / 0.9), penalty 10 and 5 critic steps.
    Preset("wgan", "WGAN-GP: the kit's models, Wasserstein loss + gradient penalty (A's idea)", "deconv", "strided",
           generator_options=dict(seed_channels=256), latent=100, noise="uniform", dropout=0.0,
           lr=1e-4, beta_1=0.5, beta_2=0.9, gradient_penalty=10.0, critic_steps=5,
           batch=32, epochs=10, grid=5, average_decay=0.999),
    # Not a seed system: the kit's minute, for a class that cannot wait (docs/presets.md, *A garment in a minute*).
    # Told the class (conditional) and judged by a projection D, legacy's small G and a half-width D learn
    # at lr 2e-3 on 16,000 images, one epoch; each choice is measured there.
    Preset("demo", "the kit's minute: legacy's G and a projection D, told the class, lr 2e-3", "legacy", "projection",
           discriminator_options=dict(filters=(32, 64), kernel=4), latent=100, noise="uniform", dropout=0.0,
           lr=2e-3, beta_1=0.5, batch=32, epochs=1, limit=16_000, grid=8, average_decay=0.99, conditional=True),
    Preset("wide", "E: 512-channel seed map, long training", "deconv", "strided",
           generator_options=dict(seed_channels=512), discriminator_options=dict(leak=0.3),
           latent=100, lr=1e-4, batch=128, epochs=300, grid=4),
]}
DEFAULT_PRESET = "legacy"


def trains_a_critic(config):
    """True for a run (its config.json) of a WGAN-GP preset: its D's loss is Wasserstein's, not BCE, so the
    pictures mark another level for "D cannot tell real from fake" (viz.guessing_loss)."""
    preset = PRESETS.get((config or {}).get("preset"))
    return bool(preset and preset.gradient_penalty)
# (G, D) parameter counts of each preset's models, so that --list-presets prints them without importing
# Keras (its import alone takes 5 s or more); tests/test_presets.py builds every model and checks them.
PARAMETERS = {"tutorial": (2_330_944, 212_865), "upsample": (2_155_137, 1_113_345), "legacy": (840_705, 212_865),
              "uniform": (2_330_944, 212_865), "kit": (2_330_944, 212_865), "conditional": (2_456_484, 228_965),
              "wgan": (2_330_944, 212_865), "demo": (903_525, 67_873), "wide": (4_454_720, 212_865)}


# What dcgan.py records in config.json beside a preset's settings, with the JSON types it writes them as
# ("limit" is also a preset's field, None for most: its types are given here, as for a recorded setting).
RECORDED_SETTINGS = {"preset": (str,), "seed": (int,), "limit": (int, type(None)), "precision": (str,),
                     "eval_every": (int,), "ckpt_every": (int,), "picture_size": (int,), "frames_per_epoch": (int, str),
                     "devices": (int,), "processes": (int,)}
# The settings a script needs to rebuild and go on training a run's models (dcgan.py --resume).
TRAINING_NEEDS = ("preset", "latent", "lr", "noise", "label_noise", "fakes_in_training_mode", "grid", "batch",
                  "epochs", "seed", "limit", "precision")

PRECISIONS = ("float32", "mixed_bfloat16")  # what a run computes in (dcgan.py --precision, auto resolved)
# Numbers that must be 1 or more (a batch of 0 would divide by zero); every other must not be negative.
AT_LEAST_ONE = ("latent", "batch", "epochs", "grid", "classes", "critic_steps", "ckpt_every", "picture_size",
                "limit", "frames_per_epoch", "devices", "processes")
# Settings of the right type that may still take only a few values (frames_per_epoch: or a count).
ALLOWED_VALUES = {"preset": tuple(PRESETS), "noise": NOISE_KINDS, "pixel_range": ([0, 1], [-1, 1]),
                  "precision": PRECISIONS, "frames_per_epoch": ("auto",)}
TYPE_WORDS = {(int,): "a whole number", (int, float): "a number", (str,): "a string", (bool,): "true or false",
              (list,): "a list", (dict,): "a JSON object", (int, type(None)): "a whole number or null",
              (int, str): "a whole number or a word"}


def json_types(default):
    """The JSON types a config.json may hold a preset setting in, from the setting's default (a tuple is
    written as a list; a whole number is a fine float)."""
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, float):
        return (int, float)
    return {tuple: (list,), dict: (dict,)}.get(type(default), (type(default),))


SETTING_TYPES = {**{f.name: json_types(f.default_factory() if f.default is MISSING else f.default)
                    for f in fields(Preset) if f.default is not MISSING or f.default_factory is not MISSING},
                 **RECORDED_SETTINGS}


def config_problem(config, needs=()):
    """What makes a run's parsed config.json unusable, in a few words, or None: not a JSON object, a preset the
    table lacks, a setting of the wrong type or value, or a missing one of `needs`. A setting that a run made
    before it existed does not record is only missing, never wrong."""
    if not isinstance(config, dict):
        return "is not a JSON object of settings"
    for key, value in config.items():
        types = SETTING_TYPES.get(key)
        if not types:  # recorded for people (system, keras, ...), or by a later kit: not read by any script
            continue
        if not isinstance(value, types) or isinstance(value, bool) != (bool in types):  # True is an int to Python
            return f"holds {key} = {json.dumps(value)}, not {TYPE_WORDS[types]}"
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        floor = 1 if key in AT_LEAST_ONE else 0
        if is_number and not math.isfinite(value):  # json reads NaN and Infinity, which no run writes
            return f"holds {key} = {json.dumps(value)}, not a finite number"
        if is_number and value < floor:
            return f"holds {key} = {value}, below {floor}"
        if key in ALLOWED_VALUES and not is_number and value not in ALLOWED_VALUES[key]:
            number_or = "a whole number or " if int in types else ""  # frames_per_epoch: a count, or "auto"
            choices = ", ".join(map(json.dumps, ALLOWED_VALUES[key]))
            return f"holds {key} = {json.dumps(value)}, not {number_or}one of {choices}"
    missing = [key for key in needs if key not in config]
    return f"lacks {', '.join(missing)} (made by an older kit?)" if missing else None


def settings_of(preset):
    """A row as a run's config.json records it: its name as "preset", then every other field."""
    return {"preset": preset.name, **{k: v for k, v in asdict(preset).items() if k != "name"}}


def row_problem(preset):
    """What makes a row of PRESETS unusable, as config_problem would find it in the config.json of a run of
    it (noise "gaussian", a pixel range of (0, 255), a batch of 0), or None: a row of your own is told before
    Keras is imported, not deep inside training."""
    return config_problem(json.loads(json.dumps(settings_of(preset))))


def read_run_config(folder, remedy, if_missing=None, needs=()):
    """The config.json of the run in `folder`, checked (config_problem); otherwise a runs.RunError, one line
    that ends in what to do: `remedy`, or `if_missing` where the folder holds no run at all."""
    config = runs.read_config_unchecked(folder, remedy, if_missing)
    problem = config_problem(config, needs)
    if problem:
        raise runs.RunError(f"{Path(folder) / 'config.json'} {problem}; {remedy}")
    return config


def of_run(config):
    """The preset a run trains: its row in PRESETS, with as many classes as the run's data has (a folder of
    your own images: its class folders; runs made before class names were recorded: Fashion-MNIST's ten)."""
    preset = PRESETS[config["preset"]]
    return replace(preset, classes=len(class_names_of(config))) if preset.conditional else preset


def class_names_of(config):
    return config.get("class_names") or list(data.CLASS_NAMES)


def data_kind_of(config):
    """What a run trained on (data.FASHION_MNIST, OTHER_IDX, IMAGE_FOLDER); runs made before it was recorded
    could train on Fashion-MNIST only."""
    return config.get("data_kind", data.FASHION_MNIST)


def picture_layout(preset, grid, class_names=data.CLASS_NAMES):
    """(rows, cols, row labels) of each epoch's picture: grid x grid samples, or for a conditional preset
    one row per class, named."""
    if preset.conditional:
        return preset.classes, grid, list(class_names[:preset.classes])
    return grid, grid, None


def parameter_counts(preset, backend=None):
    """(G's, D's) parameter counts: PARAMETERS's, with no Keras; a preset that table does not know yet
    (a row of your own) is built to count them, which imports Keras (on `backend`) first."""
    if preset.name in PARAMETERS:
        return PARAMETERS[preset.name]
    from machinery import backends

    backends.use(backend)
    import models

    generator, discriminator, _ = models.build_models(preset, preset.latent)
    return generator.count_params(), discriminator.count_params()


def print_table(backend=None):
    """One row per preset: what it builds, how it samples and scales, how it learns."""
    header = ["preset", "G params", "D params", "latent", "pixels", "G output", "loss", "D dropout", "Adam",
              "G shown", "batch", "epochs", "grid", "system (docs/systems.md)"]
    rows = []
    for preset in PRESETS.values():
        g_parameters, d_parameters = parameter_counts(preset, backend)
        rows.append([preset.name, f"{g_parameters:,}", f"{d_parameters:,}",
                     f"{preset.latent} {preset.noise}" + (" + class" if preset.conditional else ""),
                     "[{}, {}]".format(*preset.pixel_range),
                     preset.output_activation,
                     preset.loss_name,
                     f"{preset.dropout:g}",
                     f"lr {preset.lr:g}, beta_1 {preset.beta_1:g}"
                     + (f", beta_2 {preset.beta_2:g}" if preset.beta_2 != Preset.beta_2 else ""),
                     f"average {preset.average_decay:g}" if preset.average_decay else "as trained",
                     str(preset.batch), str(preset.epochs) + (f" ({preset.limit:,} images)" if preset.limit else ""),
                     "{}x{}".format(*picture_layout(preset, preset.grid)[:2]), preset.system])
    cli.print_columns(header, rows)
    return rows
