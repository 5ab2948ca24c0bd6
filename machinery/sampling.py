"""A saved generator: load it, and draw images with the noise it was trained on.

Shared by evaluate.py (scores the images) and generate.py (shows them). A .keras file does not record
which noise its generator learned from, and the wrong kind changes the pictures and the scores (uniform's
seed-11 G scored FD 156 on its own uniform noise, 139 on normal), so the noise kind and the pixel range
come from the run's config.json beside the file, else from --noise, else normal noise.
"""

import zipfile
from pathlib import Path

import numpy as np

import data
from machinery import backends, cli, presets, runs
from machinery.presets import NOISE_KINDS

# Images per generator call: bounded memory for any --count or --samples (the widest layers hold 200 MB
# of activations at 1000), and no slower than larger batches on a CPU.
BATCH = 250


def add_flags(parser, what):
    """--run / --generator (which generator) and --noise, the same in every script that samples one.
    Returns the --run/--generator group, for a script to add other exclusive choices to."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", help="run folder written by dcgan.py: uses its generator.keras (default: out)")
    which.add_argument("--generator", help=f"a generator .keras file {what} (e.g. RUN/generator_best.keras)")
    parser.add_argument("--noise", choices=NOISE_KINDS,
                        help="noise to sample with (default: the run's, from config.json beside the generator; "
                             "normal without one: pass --noise uniform for the kit, uniform and their copies)")
    return which


def path_from(args):
    return Path(args.generator) if args.generator else Path(args.run or "out") / "generator.keras"


def load(path, noise=None):
    """(generator, noise kind, pixel range) for a generator .keras file; `noise` (a flag) wins over the
    run's config.json. Every way the file or its config can be wrong is a one-line error."""
    path = Path(path)
    config = config_beside(path)
    generator = load_generator(path)
    if config:
        return generator, noise or config["noise"], tuple(config["pixel_range"])
    if not noise:
        print(f"no config.json beside {path}: sampling normal noise (--noise uniform for a kit or uniform G)")
    activation = getattr(generator.layers[-1], "activation", None)
    return generator, noise or "normal", ((0, 1) if getattr(activation, "__name__", "") == "sigmoid" else (-1, 1))


def require_file(path):
    """A one-line error, before any work (and before Keras's import), if there is no generator file at `path`,
    or one that is not a Keras model archive (a .keras file is a zip holding config.json and the weights)."""
    if not path.is_file():
        cli.fail(f"generator file {path} not found; train one with python dcgan.py, or pass --generator PATH")
    try:
        with zipfile.ZipFile(path) as archive:
            is_keras_archive = "config.json" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        is_keras_archive = False
    if not is_keras_archive:
        cli.fail(f"{path} is not a Keras model file (no .keras archive); pass a generator.keras saved by dcgan.py")


def load_generator(path):
    """A saved generator: a Keras model mapping (n, latent) noise to (n, 28, 28, 1) images."""
    import keras

    from machinery import subpixel  # noqa: F401 (registers the kit's layer: a G saved as built under JAX holds it)

    require_file(path)
    try:
        generator = keras.models.load_model(path)
    except Exception as e:  # Keras raises many types for a file that is not one of its models
        cli.fail(f"{path} is not a Keras model file ({type(e).__name__}); pass a generator.keras saved by dcgan.py")
    shapes = [tuple(x.shape) for x in generator.inputs]
    if (len(shapes) not in (1, 2) or len(shapes[0]) != 2 or (len(shapes) == 2 and shapes[1][1:] != (1,))
            or tuple(generator.output_shape[1:]) != (28, 28, 1)):
        cli.fail(f"{path} maps {shapes} to {generator.output_shape}, not noise (and a class) to 28x28x1 images")
    return generator


def latent_of(generator):
    return generator.inputs[0].shape[-1]


def is_conditional(generator):
    """True for a generator of a conditional preset: it takes [noise, class index] and draws that class."""
    return len(generator.inputs) == 2


def every_class(count, classes=len(data.CLASS_NAMES)):
    """[count, 1] class indices 0, 1, ..., 9, 0, 1, ...: equal shares of every class, for scores and pictures."""
    return (np.arange(count) % classes).astype(np.int32)[:, None]


def one_row_per_class(z, classes=len(data.CLASS_NAMES)):
    """A conditional G's picture of every class: (z repeated once per class, the class of each), row after row,
    so that row r draws class r and each column keeps one z: the same "style" in every class."""
    return np.tile(z, (classes, 1)), np.repeat(np.arange(classes, dtype=np.int32), len(z))


def class_count(generator):
    """How many classes a conditional G draws: its label code's size (models.label_code), 10 for Fashion-MNIST,
    as many as the class folders of a folder of images it trained on."""
    return generator.get_layer("g_label_code").input_dim


def inputs_for(generator, z, classes=None):
    """What to feed G for noise z: z itself, or [z, classes] for a conditional G (every_class by default)."""
    if not is_conditional(generator):
        return z
    if classes is None:
        classes = every_class(len(z), class_count(generator))
    return [z, np.asarray(classes, np.int32).reshape(-1, 1)]


def config_beside(path):
    """The checked config.json of the run the generator file at `path` lies in, or None where it lies in no run.
    Only its noise and pixel range are used; a file that lacks them, or cannot be used, stops here with one line."""
    if not runs.is_run(path.parent):
        return None
    try:
        return presets.read_run_config(path.parent, "move the generator out of that folder and pass --noise, or "
                                       "rerun dcgan.py", needs=("noise", "pixel_range"))
    except runs.RunError as e:
        cli.fail(str(e))


def check_noise_kind(kind):
    if kind not in NOISE_KINDS:  # a typo would otherwise train or score on the wrong z without a word
        raise ValueError(f"noise kind {kind!r} is not one of {', '.join(NOISE_KINDS)}")


def noise_on_host(kind, count, latent, seed):
    """[count, latent] float32 z from numpy, the same for the same seed on every backend and device:
    "normal" N(0, 1), or "uniform" in [-1, 1]. For noise drawn once (scoring, pictures, settling BatchNorm).
    `seed`: a number, or a numpy Generator to draw from."""
    check_noise_kind(kind)
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, (count, latent)).astype(np.float32)
    return rng.standard_normal((count, latent), np.float32)


def noise_on_device(kind, shape, seed):
    """The same kinds of z drawn where the training step runs, inside its compiled call: the batch maker's
    (machinery/train_step.py). `seed`: a keras.random.SeedGenerator, whose state a checkpoint keeps."""
    import keras  # here, not at the top: the scripts import this module before the backend is chosen

    check_noise_kind(kind)
    if kind == "uniform":
        return keras.random.uniform(shape, -1.0, 1.0, seed=seed)
    return keras.random.normal(shape, seed=seed)


def noise(generator, count, noise_kind, seed):
    """[count, latent] z for a saved generator: the same images for the same seed, whatever the backend."""
    return noise_on_host(noise_kind, count, latent_of(generator), seed)


def draw(generator, z, pixel_range, classes=None, bar=None):
    """uint8 [n, 28, 28] images for the noise z (and, for a conditional G, the classes asked for: by default
    every_class), BATCH at a time, BatchNorm in inference mode (a compiled forward pass: under JAX 10x
    faster than calling the model). `bar`: a tqdm bar advanced by each image."""
    return backends.predict_in_batches(generator, inputs_for(generator, z, classes), BATCH, bar=bar,
                                       finish=lambda images: data.to_uint8(images, pixel_range))


def sample(generator, count, noise_kind, pixel_range, seed, classes=None, bar=None):
    return draw(generator, noise(generator, count, noise_kind, seed), pixel_range, classes, bar)
