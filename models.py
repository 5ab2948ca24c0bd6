"""The presets, their generator and discriminator builders, and the classic compile + freeze + stack.

Middle floor of the kit. A preset is a row of settings (the `PRESETS` table) naming one generator builder
and one discriminator builder; adding a system means adding a row, and a builder only if its layers are new.
The training loop in dcgan.py reads only the row's fields, never the preset's name.
"""

import contextlib
from dataclasses import dataclass, field

import cli

with cli.quiet_tensorflow():
    import keras
    import tensorflow as tf
    from keras import layers

IMAGE_SHAPE = (28, 28, 1)


@dataclass(frozen=True)
class Preset:
    name: str
    system: str            # which write-up of ../shared/SEEDS.md it reproduces
    generator: str         # key of GENERATORS
    discriminator: str     # key of DISCRIMINATORS
    generator_options: dict = field(default_factory=dict)      # extra arguments of the generator builder
    discriminator_options: dict = field(default_factory=dict)  # ... and of the discriminator builder
    latent: int = 100
    noise: str = "normal"  # "normal" N(0, 1), or "uniform" in [-1, 1]
    pixel_range: tuple = (-1, 1)  # (-1, 1) pairs with a tanh output, (0, 1) with a sigmoid
    logits: bool = False   # D outputs a logit (loss from_logits) instead of a sigmoid probability
    lr: float = 1e-3       # Adam learning rate, for D and for G through the stacked GAN
    beta_1: float = 0.9    # Adam's first-moment decay
    label_noise: float = 0.0  # D's labels move toward 0.5 by label_noise * U[0, 1) (jittered_labels)
    # D's fakes made with G in training mode (BatchNorm on the batch's own statistics), as systems A, D, E do;
    # False for the article's plain G(noise), which uses the moving averages that lag early in training.
    fakes_in_training_mode: bool = True
    # > 0: pictures, generator.keras and scores come from an exponential moving average of G's weights with
    # this decay (see GeneratorAverage); 0: from G as trained, as every seed system does.
    average_decay: float = 0.0
    batch: int = 32
    epochs: int = 10
    grid: int = 5          # the fixed-noise picture is grid x grid samples

    @property
    def output_activation(self):
        return "tanh" if tuple(self.pixel_range) == (-1, 1) else "sigmoid"


PRESETS = {p.name: p for p in [
    Preset("tutorial", "A: TensorFlow DCGAN tutorial", "deconv", "strided",
           generator_options=dict(seed_channels=256), discriminator_options=dict(leak=0.3),
           latent=100, logits=True, lr=1e-4, batch=256, epochs=50, grid=4),
    Preset("upsample", "B: UpSampling + Conv generator, sigmoid output", "upsample", "conv4",
           latent=128, pixel_range=(0, 1), lr=1e-4, label_noise=0.05, batch=128, epochs=20, grid=4),
    Preset("legacy", "C: compile + freeze + train_on_batch article", "legacy", "strided",
           latent=100, lr=1e-3, batch=32, epochs=10, grid=5, fakes_in_training_mode=False),
    Preset("uniform", "D: uniform noise, lr 2e-4", "deconv", "strided",
           generator_options=dict(seed_channels=256), latent=100, noise="uniform",
           lr=2e-4, beta_1=0.5, batch=128, epochs=50, grid=5),
    # Not a seed system: D's recipe (the tutorial's G, legacy's D, uniform noise, Adam 2e-4 with beta_1 0.5)
    # at the used-by command's batch 32, with pictures and files drawn from G's weight average. Picked with
    # evaluate.py at the full used-by budget (10 epochs, batch 32): FD 134 / 129 / 140 at seeds 11 / 12 / 13,
    # 10 classes each, against 156 / 150 / 171 for the same training runs shown as trained (README).
    Preset("kit", "the kit's own: D's recipe at batch 32, G's weights averaged", "deconv", "strided",
           generator_options=dict(seed_channels=256), latent=100, noise="uniform",
           lr=2e-4, beta_1=0.5, batch=32, epochs=10, grid=5, average_decay=0.999),
    Preset("wide", "E: 512-channel seed map, long training", "deconv", "strided",
           generator_options=dict(seed_channels=512), discriminator_options=dict(leak=0.3),
           latent=100, logits=True, lr=1e-4, batch=128, epochs=300, grid=4),
]}
DEFAULT_PRESET = "legacy"


# ---- generators: noise (latent,) -> image 28x28x1 in the preset's pixel range -------------------------

def build_legacy_generator(latent, activation):
    return keras.Sequential([
        keras.Input((latent,)),
        layers.Dense(7 * 7 * 128),                                    # z -> 6272
        layers.Reshape((7, 7, 128)),
        layers.BatchNormalization(),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same", activation="selu"),  # 7x7x128 -> 14x14x64
        layers.BatchNormalization(),
        layers.Conv2DTranspose(1, 5, strides=2, padding="same", activation=activation,
                               dtype="float32"),                     # 14x14x64 -> 28x28x1
    ], name="generator")


def build_deconv_generator(latent, activation, seed_channels=256):
    """Systems A, D and E: a bias-free Dense seed map, normalised, then Conv2DTranspose up to 28x28."""
    return keras.Sequential([
        keras.Input((latent,)),
        layers.Dense(7 * 7 * seed_channels, use_bias=False),      # z -> 7*7*seed_channels
        layers.BatchNormalization(),                               # on the flat map, as the systems do
        layers.LeakyReLU(),
        layers.Reshape((7, 7, seed_channels)),
        layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),   # -> 7x7x128
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),    # -> 14x14x64
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False,
                               activation=activation, dtype="float32"),           # -> 28x28x1
    ], name="generator")


def build_upsample_generator(latent, activation):
    """System B: nearest-neighbour UpSampling2D + Conv2D instead of transposed convolutions."""
    return keras.Sequential([
        keras.Input((latent,)),
        layers.Dense(7 * 7 * 128),                                  # z -> 6272
        layers.LeakyReLU(0.2),
        layers.Reshape((7, 7, 128)),
        layers.UpSampling2D(),                                      # -> 14x14x128
        layers.Conv2D(128, 5, padding="same"),
        layers.LeakyReLU(0.2),
        layers.UpSampling2D(),                                      # -> 28x28x128
        layers.Conv2D(128, 5, padding="same"),
        layers.LeakyReLU(0.2),
        layers.Conv2D(128, 4, padding="same"),
        layers.LeakyReLU(0.2),
        layers.Conv2D(128, 4, padding="same"),
        layers.LeakyReLU(0.2),
        layers.Conv2D(1, 4, padding="same", activation=activation, dtype="float32"),  # -> 28x28x1
    ], name="generator")


GENERATORS = {"legacy": build_legacy_generator, "deconv": build_deconv_generator,
              "upsample": build_upsample_generator}


# ---- discriminators: image 28x28x1 -> one score (probability or logit) --------------------------------

def build_strided_discriminator(logits, leak=0.2):
    return keras.Sequential([
        keras.Input(IMAGE_SHAPE),
        layers.Conv2D(64, 5, strides=2, padding="same"),             # 28x28x1 -> 14x14x64
        layers.LeakyReLU(leak),
        layers.Dropout(0.3),
        layers.Conv2D(128, 5, strides=2, padding="same"),            # -> 7x7x128
        layers.LeakyReLU(leak),
        layers.Dropout(0.3),
        layers.Flatten(),
        layers.Dense(1, activation=None if logits else "sigmoid", dtype="float32"),
    ], name="discriminator")


def build_conv4_discriminator(logits):
    """System B: four convolutions with dropout, one of them strided (its 1,113,345 parameters say so)."""
    def conv_block(filters, **kwargs):
        return [layers.Conv2D(filters, 5, **kwargs), layers.LeakyReLU(0.2), layers.Dropout(0.4)]

    return keras.Sequential([
        keras.Input(IMAGE_SHAPE),
        *conv_block(32, padding="valid"),                           # 28x28x1 -> 24x24x32
        *conv_block(64, strides=2, padding="same"),                 # -> 12x12x64
        *conv_block(128, padding="same"),                           # -> 12x12x128
        *conv_block(256, padding="same"),                           # -> 12x12x256
        layers.Flatten(),
        layers.Dropout(0.4),
        layers.Dense(1, activation=None if logits else "sigmoid", dtype="float32"),
    ], name="discriminator")


DISCRIMINATORS = {"strided": build_strided_discriminator, "conv4": build_conv4_discriminator}


# ---- the classic GAN assembly ------------------------------------------------------------------------

def real_fake_accuracy(logits):
    """Two metrics for D: accuracy on the real half of a batch and on the fake half (labels > 0.5 are real)."""
    threshold = 0.0 if logits else 0.5

    def accuracy_on(is_real):
        def metric(y_true, y_pred):
            y_true = keras.ops.reshape(y_true, keras.ops.shape(y_pred))
            real = keras.ops.cast(y_true > 0.5, "float32")
            mask = real if is_real else 1.0 - real
            correct = keras.ops.cast((y_pred > threshold) == (y_true > 0.5), "float32")
            return keras.ops.sum(correct * mask) / keras.ops.maximum(keras.ops.sum(mask), 1.0)
        metric.__name__ = "acc_real" if is_real else "acc_fake"
        return metric

    return [accuracy_on(True), accuracy_on(False)]


def build_gan(preset, latent=None, lr=None, jit_compile="auto"):
    """(generator, discriminator, gan) for a preset, compiled the classic way.

    D is compiled on its own, then frozen and stacked after G in `gan`, which is compiled so that its
    train step moves only G's weights. Keras 3 reads `trainable` when a train function is *traced*, not at
    compile(), so the loop must still set D.trainable before each call: see train_discriminator.
    `jit_compile` is Keras's: "auto" turns XLA on where there is a GPU and leaves it off on a CPU, where
    bench.py --xla measured it 6.7x slower than even the naive loop.
    """
    latent = latent or preset.latent
    lr = lr or preset.lr
    loss = keras.losses.BinaryCrossentropy(from_logits=preset.logits)
    generator = GENERATORS[preset.generator](latent, preset.output_activation, **preset.generator_options)
    discriminator = DISCRIMINATORS[preset.discriminator](preset.logits, **preset.discriminator_options)
    discriminator.compile(optimizer=keras.optimizers.Adam(lr, beta_1=preset.beta_1), loss=loss,
                          metrics=real_fake_accuracy(preset.logits), jit_compile=jit_compile)
    discriminator.trainable = False
    gan = keras.Sequential([generator, discriminator], name="gan")
    gan.compile(optimizer=keras.optimizers.Adam(lr, beta_1=preset.beta_1), loss=loss, jit_compile=jit_compile)
    # Build both optimizers' slots now, each over the weights its step moves, so that a checkpoint can be
    # restored into them before the first train_on_batch.
    gan.optimizer.build(generator.trainable_variables)
    discriminator.trainable = True
    discriminator.optimizer.build(discriminator.trainable_variables)
    discriminator.trainable = False
    return generator, discriminator, gan


# ---- compute precision --------------------------------------------------------------------------------

def native_bfloat16_cpu(cpuinfo="/proc/cpuinfo"):
    """True on CPUs that compute bfloat16 in hardware (AVX512-BF16 or AMX-BF16), where it is ~1.2-1.5x faster."""
    try:
        text = open(cpuinfo).read()
    except OSError:
        return False
    return " avx512_bf16" in text or " amx_bf16" in text


def resolve_precision(requested):
    """ "auto" -> mixed_bfloat16 on such a CPU with no GPU, float32 elsewhere (GPU speed not measured yet)."""
    if requested != "auto":
        return requested
    if tf.config.list_physical_devices("GPU") or not native_bfloat16_cpu():
        return "float32"
    return "mixed_bfloat16"


# ---- one step of the classic loop ---------------------------------------------------------------------

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


NOISE_KINDS = ("normal", "uniform")  # the z distributions a preset (or --noise of sampling.py) can name


def make_sampler(kind, latent, rng):
    """noise(n) -> a [n, latent] batch of z on the device, drawn from the tf.random.Generator `rng`:
    "normal" N(0, 1), or "uniform" in [-1, 1]."""
    if kind not in NOISE_KINDS:  # a typo would otherwise train or score on the wrong z without a word
        raise ValueError(f"noise kind {kind!r} is not one of {', '.join(NOISE_KINDS)}")
    if kind == "uniform":
        return lambda n: rng.uniform((n, latent), -1.0, 1.0)
    return lambda n: rng.normal((n, latent))


def jittered_labels(labels, label_noise, rng):
    """System B's habit: soft, jittered 0/1 labels, so D grows less sure of itself. Each label moves
    toward 0.5 by label_noise * U[0, 1): fakes to [0, noise), reals to (1 - noise, 1].

    Why toward 0.5 and not simply + noise: Keras 3 computes BCE on a sigmoid from its logits, and with a
    label y above 1 that loss, x * (1 - y) + log(1 + exp(-x)), falls without end as the logit x grows.
    D then learns to shout: with + noise, upsample's running-mean D loss reached 86,151 in epoch 2 of a
    10-epoch run. Inside [0, 1] the loss never falls below the label's entropy."""
    return labels + label_noise * rng.uniform(tf.shape(labels)) * (1.0 - 2.0 * labels)


def make_train_step(generator, discriminator, gan, batch, noise, rng, label_noise=0.0,
                    fakes_in_training_mode=True, jit_compile=None):
    """step(real_batch) -> (d_loss, g_loss, d_acc_real, d_acc_fake): one D update, then one G update.

    The fakes, labels and noise are made on the device inside one compiled function, and the labels once,
    so the only host round trips per step are the two train_on_batch calls. `jit_compile` is tf.function's.
    """
    real_labels = tf.ones((batch, 1))
    d_labels = tf.concat([tf.zeros((batch, 1)), real_labels], axis=0)  # fakes first, then reals

    @tf.function(jit_compile=jit_compile)
    def discriminator_batch(real):
        fake = generator(noise(batch), training=fakes_in_training_mode)
        labels = jittered_labels(d_labels, label_noise, rng) if label_noise else d_labels
        return tf.concat([fake, real], axis=0), labels

    def step(real):
        images, labels = discriminator_batch(real)
        d_loss, acc_real, acc_fake = train_discriminator(discriminator, images, labels)
        g_loss = train_generator(gan, discriminator, noise(batch), real_labels)
        return d_loss, g_loss, acc_real, acc_fake

    return step


class GeneratorAverage:
    """An exponential moving average of G's trainable weights, updated after each of G's steps.

    A GAN's G does not settle: each step chases the D of that moment, so its weights circle around a good
    point instead of reaching it. Their average over the last ~1/(1 - decay) steps sits nearer that point
    and draws better images (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training").
    Training itself never sees the average. Early on the decay is min(decay, (1 + t) / (10 + t)) after t
    updates, as tf.train.ExponentialMovingAverage does, so a short run is not an average of its random
    start. BatchNorm's statistics are not averaged: settled_batchnorm computes them for the averaged weights.
    """

    def __init__(self, generator, decay):
        self.generator, self.decay = generator, decay
        self.weights = [tf.Variable(w.numpy(), trainable=False, name="average")
                        for w in generator.trainable_weights]
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="average_updates")

    @tf.function
    def update(self):
        self.updates.assign_add(1)
        t = tf.cast(self.updates, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
        for average, live in zip(self.weights, self.generator.trainable_weights):
            average.assign(decay * average + (1.0 - decay) * live)

    @contextlib.contextmanager
    def swapped_in(self):
        """Inside the block G holds the averaged weights; on the way out its trained ones come back."""
        live = [w.numpy() for w in self.generator.trainable_weights]
        try:
            for w, average in zip(self.generator.trainable_weights, self.weights):
                w.assign(average)
            yield self.generator
        finally:
            for w, value in zip(self.generator.trainable_weights, live):
                w.assign(value)


@contextlib.contextmanager
def settled_batchnorm(generator, noise_kind, latent, samples=1024):
    """Inside the block, G's BatchNorm layers use the exact statistics of G's current weights.

    BatchNorm's moving averages (momentum 0.99) trail the weights by a few hundred steps, so early in
    training the inference-mode G (the grids, generator.keras) draws much worse images than the G being
    trained. Inside, one batch of `samples` noise vectors in training mode with momentum 0 sets them to
    the current statistics; on the way out the trailing averages come back, so training, checkpoints and
    exact resume are as if nothing happened. Its noise comes from its own seed, not the training stream.
    """
    norms = [layer for layer in generator.layers if isinstance(layer, layers.BatchNormalization)]
    saved = [(n.momentum, n.moving_mean.numpy(), n.moving_variance.numpy()) for n in norms]
    try:
        if norms:
            for n in norms:
                n.momentum = 0.0
            generator(make_sampler(noise_kind, latent, tf.random.Generator.from_seed(0))(samples), training=True)
            for n, (momentum, _, _) in zip(norms, saved):
                n.momentum = momentum  # so that a generator saved inside keeps its own settings
        yield generator
    finally:
        for n, (momentum, mean, variance) in zip(norms, saved):
            n.momentum = momentum
            n.moving_mean.assign(mean)
            n.moving_variance.assign(variance)
