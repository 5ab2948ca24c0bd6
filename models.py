"""The generator and discriminator builders, and the classic compile + freeze + stack.

A preset (a row of presets.PRESETS) names one generator builder and one
discriminator builder here; the training loop in dcgan.py reads only the row's fields, never its name.
Plain Keras 3 layers and ops: the same code runs on TensorFlow, JAX and PyTorch (see machinery/backends.py).
"""

import random

import keras
from keras import layers

from machinery import backends, subpixel

IMAGE_SHAPE = (28, 28, 1)


def upsampling_conv(filters, **kwargs):
    """A 5x5, stride-2, "same" layers.Conv2DTranspose (doubles height and width), or where
    backends.SUBPIXEL_PAYS (JAX) the same layer computed as a convolution and a pixel shuffle (machinery/subpixel.py):
    same weights, same numbers, faster gradients there."""
    pays = backends.SUBPIXEL_PAYS[backends.current()]
    return (subpixel.SubpixelConv2DTranspose if pays else layers.Conv2DTranspose)(
        filters, 5, strides=2, padding="same", **kwargs)


# ---- generators: noise (latent,) -> image 28x28x1 in the preset's pixel range -------------------------

def legacy_generator_layers(activation):
    """System C: a Dense seed map, then two Conv2DTranspose steps up to 28x28."""
    return [
        layers.Dense(7 * 7 * 128),                                    # z -> 6272
        layers.Reshape((7, 7, 128)),
        layers.BatchNormalization(),
        upsampling_conv(64, activation="selu"),                         # 7x7x128 -> 14x14x64
        layers.BatchNormalization(),
        upsampling_conv(1, activation=activation, dtype="float32"),   # 14x14x64 -> 28x28x1
    ]


def build_legacy_generator(latent, activation):
    return keras.Sequential([keras.Input((latent,)), *legacy_generator_layers(activation)], name="generator")


def deconv_generator_layers(activation, seed_channels=256):
    """Systems A, D and E: a bias-free Dense seed map, normalised, then Conv2DTranspose up to 28x28."""
    return [
        layers.Dense(7 * 7 * seed_channels, use_bias=False),      # z -> 7*7*seed_channels
        layers.BatchNormalization(),                               # on the flat map, as the systems do
        layers.LeakyReLU(),
        layers.Reshape((7, 7, seed_channels)),
        layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),   # -> 7x7x128
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        upsampling_conv(64, use_bias=False),                                       # -> 14x14x64
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        upsampling_conv(1, use_bias=False, activation=activation, dtype="float32"),  # -> 28x28x1
    ]


def build_deconv_generator(latent, activation, seed_channels=256):
    return keras.Sequential([keras.Input((latent,)), *deconv_generator_layers(activation, seed_channels)],
                            name="generator")


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


# ---- discriminators: image 28x28x1 -> one logit (above 0: "real") ------------------------------------

def seeded_dropout(rate):
    """Dropout whose seed is drawn from Python's `random`, as Keras draws it when none is given, so that
    keras.utils.set_random_seed still decides it. Given explicitly, because without one Keras's PyTorch
    backend takes its masks from torch's global generator, which no checkpoint holds: a resumed run there
    would not be exact. (TensorFlow and JAX keep the state in the layer either way.)"""
    return layers.Dropout(rate, seed=random.randint(1, int(1e9)))


def strided_discriminator_layers(leak=0.2, dropout=0.3, filters=(64, 128), kernel=5):
    return [
        layers.Conv2D(filters[0], kernel, strides=2, padding="same"),   # 28x28xC -> 14x14xfilters[0]
        layers.LeakyReLU(leak),
        seeded_dropout(dropout),
        layers.Conv2D(filters[1], kernel, strides=2, padding="same"),   # -> 7x7xfilters[1]
        layers.LeakyReLU(leak),
        seeded_dropout(dropout),
        layers.Flatten(),
        layers.Dense(1, dtype="float32"),                               # a logit: see build_gan
    ]


def build_strided_discriminator(leak=0.2, dropout=0.3, filters=(64, 128), kernel=5):
    return keras.Sequential([keras.Input(IMAGE_SHAPE), *strided_discriminator_layers(leak, dropout, filters, kernel)],
                            name="discriminator")


def build_conv4_discriminator(dropout=0.4):
    """System B: four convolutions with dropout, one of them strided (its 1,113,345 parameters say so)."""
    def conv_block(filters, **kwargs):
        return [layers.Conv2D(filters, 5, **kwargs), layers.LeakyReLU(0.2), seeded_dropout(dropout)]

    return keras.Sequential([
        keras.Input(IMAGE_SHAPE),
        *conv_block(32, padding="valid"),                           # 28x28x1 -> 24x24x32
        *conv_block(64, strides=2, padding="same"),                 # -> 12x12x64
        *conv_block(128, padding="same"),                           # -> 12x12x128
        *conv_block(256, padding="same"),                           # -> 12x12x256
        layers.Flatten(),
        seeded_dropout(dropout),
        layers.Dense(1, dtype="float32"),                            # a logit: see build_gan
    ], name="discriminator")


DISCRIMINATORS = {"strided": build_strided_discriminator, "conv4": build_conv4_discriminator}


# ---- conditional models: G(noise, label) and D(image, label), for presets with conditional=True --------
# A label is a class index, shape (n, 1), int32. Only the builders whose layers are given as a list above
# (legacy, deconv, strided) have conditional forms: the label joins G before its first layer, D before its
# first layer (strided) or at its end (projection).

def label_code(label, classes, name):
    """A class index -> `classes` numbers: an Embedding that starts as the label's one-hot vector.
    Why one-hot to start: G and D see which class is meant from their first step (a random embedding would
    first have to learn the classes apart). Why an Embedding and not fixed one-hot channels: it is one plain
    layer that saves and loads on every backend, and training may sharpen the code."""
    code = layers.Embedding(classes, classes, embeddings_initializer="identity", name=name)(label)
    return layers.Flatten()(code)                                   # (n, 1, classes) -> (n, classes)


def conditional_generator(generator_layers, latent, classes):
    """A G of `generator_layers` with the label's code beside the noise: the seed map is drawn from both."""
    noise = keras.Input((latent,), name="noise")
    label = keras.Input((1,), dtype="int32", name="label")
    x = layers.Concatenate()([noise, label_code(label, classes, "g_label_code")])   # -> latent + classes
    for layer in generator_layers:
        x = layer(x)
    return keras.Model([noise, label], x, name="generator")


def build_conditional_generator(latent, activation, classes, seed_channels=256):
    return conditional_generator(deconv_generator_layers(activation, seed_channels), latent, classes)


def build_conditional_legacy_generator(latent, activation, classes):
    return conditional_generator(legacy_generator_layers(activation), latent, classes)


def build_conditional_discriminator(classes, leak=0.2, dropout=0.3, filters=(64, 128), kernel=5):
    """The strided D with the label's code as `classes` constant channels beside the image (as keras.io's
    conditional GAN does): its first convolution already sees which class the image claims to be."""
    image = keras.Input(IMAGE_SHAPE, name="image")
    label = keras.Input((1,), dtype="int32", name="label")
    code = layers.Reshape((1, 1, classes))(label_code(label, classes, "d_label_code"))
    planes = layers.UpSampling2D(size=IMAGE_SHAPE[:2])(code)         # -> 28x28xclasses, the code everywhere
    x = layers.Concatenate()([image, planes])                         # -> 28x28x(1 + classes)
    for layer in strided_discriminator_layers(leak, dropout, filters, kernel):
        x = layer(x)
    return keras.Model([image, label], x, name="discriminator")


def build_projection_discriminator(classes, leak=0.2, dropout=0.3, filters=(64, 128), kernel=5):
    """The strided D told the class by projection (Miyato & Koyama 2018): its logit for the image, plus the
    dot product of the image's features with a learned vector for the claimed class. Why: D then judges
    "is this a real sneaker?" with the features it already has, and tells G which way a sneaker lies from
    its first steps; the class planes above make its first convolution learn that from the pixels. It costs
    one Dense's worth of arithmetic, where the planes multiply the first convolution's by 1 + classes."""
    image = keras.Input(IMAGE_SHAPE, name="image")
    label = keras.Input((1,), dtype="int32", name="label")
    *feature_layers, to_logit = strided_discriminator_layers(leak, dropout, filters, kernel)
    features = image
    for layer in feature_layers:
        features = layer(features)                                  # -> 7 * 7 * filters[1] numbers
    class_vector = layers.Flatten()(layers.Embedding(classes, features.shape[-1], name="d_class_vectors")(label))
    match = layers.Dot(axes=1, dtype="float32")([features, class_vector])
    return keras.Model([image, label], layers.Add(dtype="float32")([to_logit(features), match]), name="discriminator")


CONDITIONAL_GENERATORS = {"deconv": build_conditional_generator, "legacy": build_conditional_legacy_generator}
CONDITIONAL_DISCRIMINATORS = {"strided": build_conditional_discriminator, "projection": build_projection_discriminator}


def builder_of(table, preset, role):
    """The function a preset's row names for its generator or discriminator (`role`), from `table`; a name
    the table lacks (a typo in a row of your own) says which names it holds."""
    name = getattr(preset, role)
    if name not in table:
        conditional = "conditional " if preset.conditional else ""
        raise ValueError(f"preset {preset.name} names the {conditional}{role} {name!r}, which models.py does not "
                         f"build; it builds {', '.join(sorted(table))}")
    return table[name]


def build_models(preset, latent, dropout=None):
    """(G, D, the stacked gan, not compiled): one-input models, or two-input ones (image or noise, label)
    for a conditional preset, whose stack passes the same label to G and to D. `dropout`: D's rate, if not
    the preset's."""
    dropout = preset.dropout if dropout is None else dropout
    if preset.conditional and preset.gradient_penalty:
        raise ValueError(f"preset {preset.name}: the gradient penalty has no conditional form yet")
    generators, discriminators = ((CONDITIONAL_GENERATORS, CONDITIONAL_DISCRIMINATORS) if preset.conditional
                                  else (GENERATORS, DISCRIMINATORS))
    build_g, build_d = builder_of(generators, preset, "generator"), builder_of(discriminators, preset, "discriminator")
    if not preset.conditional:
        generator = build_g(latent, preset.output_activation, **preset.generator_options)
        discriminator = build_d(dropout=dropout, **preset.discriminator_options)
        if preset.gradient_penalty:  # the same layers, scored by the Wasserstein loss plus the penalty
            discriminator = WassersteinCritic(discriminator, preset.gradient_penalty, name="critic")
        return generator, discriminator, keras.Sequential([generator, discriminator], name="gan")
    generator = build_g(latent, preset.output_activation, preset.classes, **preset.generator_options)
    discriminator = build_d(preset.classes, dropout=dropout, **preset.discriminator_options)
    noise, label = keras.Input((latent,), name="noise"), keras.Input((1,), dtype="int32", name="label")
    gan = keras.Model([noise, label], discriminator([generator([noise, label]), label]), name="gan")
    return generator, discriminator, gan


# ---- WGAN-GP: D as a critic (presets with gradient_penalty > 0) -------------------------------------------

def wasserstein_loss(y_true, y_pred):
    """The Wasserstein loss in the classic pattern's labels: a fake (label 0) adds its score, a real (label 1)
    subtracts it. On D's batch, half fakes and half reals, that is (mean fake score - mean real score) / 2:
    D learns to score reals above fakes. On G's step every fake is labelled real: G learns to raise its
    fakes' score. With D's slope held near 1, the gap it finds estimates the Wasserstein distance between real
    and generated images: D's loss (this plus the penalty) climbs toward 0 as G's images come closer."""
    y_true = keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), keras.ops.shape(y_pred))
    return keras.ops.mean((1.0 - 2.0 * y_true) * y_pred)


class WassersteinCritic(keras.Model):
    """D's layers (`scorer`), trained with the Wasserstein loss plus WGAN-GP's gradient penalty: weight * the
    mean of (|grad_x D(x)| - 1)^2 at random points x between each fake and the real beside it in D's batch.
    Why a penalty: the Wasserstein distance needs a critic whose slope is at most 1 everywhere; the penalty
    holds it near 1 where it matters, between the two distributions (Gulrajani et al. 2017).

    Its batch is fakes then reals, one fake per real, as train_step.BatchMaker makes it. In the stacked GAN it
    is called like any D; only its own train_on_batch adds the penalty. The points' random mixing weights come
    from its own SeedGenerator, a variable of the model, so a checkpoint keeps its state."""

    def __init__(self, scorer, penalty_weight, seed=None, name="critic"):
        images = keras.Input(scorer.input_shape[1:])
        super().__init__(images, scorer(images), name=name)  # a functional model: inputs, outputs, as D's
        self.scorer, self.penalty_weight = scorer, penalty_weight
        self.penalty_seed = keras.random.SeedGenerator(seed if seed is not None else random.randint(1, int(1e9)))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        return loss + self.penalty_weight * self.gradient_penalty(x, training)

    def gradient_penalty(self, images, training=True):
        ops = keras.ops
        images = ops.cast(images, "float32")
        half = ops.shape(images)[0] // 2
        fakes, reals = images[:half], images[half:]
        mix = keras.random.uniform((half, 1, 1, 1), seed=self.penalty_seed)
        between = reals + mix * (fakes - reals)
        slopes = backends.input_gradient(lambda points: self.scorer(points, training=training), between)
        slopes = ops.cast(slopes, "float32")
        norms = ops.sqrt(ops.sum(ops.square(slopes), axis=(1, 2, 3)) + 1e-12)  # + tiny: sqrt's slope at 0
        return ops.mean(ops.square(norms - 1.0))


# ---- the classic GAN assembly ------------------------------------------------------------------------

def real_fake_accuracy(critic=False):
    """Two metrics for D: accuracy on the real half of a batch and on the fake half (labels > 0.5 are real;
    D calls an image real when its logit is above 0, a probability above 0.5). A critic's (`critic`) scores
    have no 0 to cross (its loss is the same if every score moves by one number): it calls an image real
    when its score is above the batch's mean score."""

    def accuracy_on(is_real):
        def metric(y_true, y_pred):
            y_true = keras.ops.reshape(y_true, keras.ops.shape(y_pred))
            real = keras.ops.cast(y_true > 0.5, "float32")
            mask = real if is_real else 1.0 - real
            threshold = keras.ops.mean(y_pred) if critic else 0.0
            correct = keras.ops.cast((y_pred > threshold) == (y_true > 0.5), "float32")
            return keras.ops.sum(correct * mask) / keras.ops.maximum(keras.ops.sum(mask), 1.0)
        metric.__name__ = "acc_real" if is_real else "acc_fake"
        return metric

    return [accuracy_on(True), accuracy_on(False)]


def build_gan(preset, latent=None, lr=None, jit_compile="auto", dropout=None):
    """(generator, discriminator, gan) for a preset, compiled the classic way.

    D is compiled on its own, then frozen and stacked after G in `gan`, which is compiled so that its
    train step moves only G's weights. Keras 3 does not fix the trainable set at compile(), so the loop must
    still set D.trainable before each call: see train_discriminator. `jit_compile` is Keras's compile()
    argument; what "auto" means differs per backend (backends.XLA_HELP).
    """
    latent = latent or preset.latent
    lr = lr or preset.lr
    # D ends in a logit and the loss applies the sigmoid itself, in every preset. Systems B, C and D put the
    # sigmoid on D and BCE on its output: Keras's TensorFlow backend computes that very loss from the logit
    # behind the sigmoid, but JAX and PyTorch from the probability clipped to [1e-7, 1 - 1e-7], where the
    # loss stops at 16.1 and its gradient at 0. From the logit, every backend trains as TensorFlow does.
    loss = wasserstein_loss if preset.gradient_penalty else keras.losses.BinaryCrossentropy(from_logits=True)
    generator, discriminator, gan = build_models(preset, latent, dropout)

    def adam():
        return keras.optimizers.Adam(lr, beta_1=preset.beta_1, beta_2=preset.beta_2)
    discriminator.compile(optimizer=adam(), loss=loss, metrics=real_fake_accuracy(bool(preset.gradient_penalty)),
                          jit_compile=jit_compile)
    discriminator.trainable = False
    gan.compile(optimizer=adam(), loss=loss, jit_compile=jit_compile)
    # Build both optimizers' slots now, each over the weights its step moves, so that a checkpoint can be
    # restored into them before the first train_on_batch.
    gan.optimizer.build(generator.trainable_variables)
    discriminator.trainable = True
    discriminator.optimizer.build(discriminator.trainable_variables)
    discriminator.trainable = False
    return generator, discriminator, gan


# ---- one step of the classic loop: the two train_on_batch calls -----------------------------------------

def train_discriminator(discriminator, images, labels):
    """Update D: maximise log D(x) + log(1 - D(G(z))) on a batch of fakes and reals.

    Keras 3 does not read `trainable` at compile(). TensorFlow reads it when it first traces the train
    function, JAX and PyTorch at every call; a frozen D learns nothing (TensorFlow, PyTorch: one warning)
    or raises (JAX: its optimizer was built over D's weights). On every backend D must be unfrozen for its
    own step and frozen again for the GAN's.
    Returns D's loss and its accuracy on the real and on the fake half.
    """
    discriminator.trainable = True
    try:
        return discriminator.train_on_batch(images, labels)
    finally:
        discriminator.trainable = False


def train_generator(gan, discriminator, noise, real_labels):
    """Update G through the frozen D: maximise log D(G(z)) by labelling fresh fakes "real"."""
    if discriminator.trainable:  # train_discriminator froze it already; setting it walks every layer again
        discriminator.trainable = False
    return gan.train_on_batch(noise, real_labels)


def train_step(discriminator, gan, make_batch, real, real_labels, critic_steps=1):
    """One step of the classic loop, on a batch of real images: D's update, then G's.

    make_batch(real) -> (D's inputs: G's fakes, then the reals; D's labels: 0 for each fake, 1 for each
    real; fresh noise for G's step): machinery/train_step.py's BatchMaker. `real_labels`: 1 for each of
    G's fakes in its step. A WGAN-GP critic (critic_steps > 1) is updated once per batch of `real`, which
    holds critic_steps batches, before G's one update. Returns ([D's loss, accuracy on reals, on fakes]
    for each D update, G's loss).

    The one GAN step of the kit: the classic loop calls it (machinery/train_step.py feeds it), and the fused
    step (machinery/fused_step.py) traces it, whole, into one compiled call.
    """
    d_figures = []
    for part in split_into_batches(real, critic_steps):
        d_inputs, labels, g_inputs = make_batch(part)
        # (1) Update D: maximise log D(x) + log(1 - D(G(z))), reals labelled 1 and fakes 0
        d_figures.append(train_discriminator(discriminator, d_inputs, labels))
    # (2) Update G: maximise log D(G(z)), through the frozen D, with G's fakes labelled 1 ("real")
    g_loss = train_generator(gan, discriminator, g_inputs, real_labels)
    return d_figures, g_loss


def split_into_batches(real, count):
    """`real` (images, or [images, classes]) cut into `count` equal batches; itself where count is 1."""
    if count == 1:
        return [real]
    size = keras.ops.shape(keras.tree.flatten(real)[0])[0] // count
    return [keras.tree.map_structure(lambda array: array[k * size:(k + 1) * size], real) for k in range(count)]


def portable_copy(model):
    """The same model, weights included, in plain Keras computing in float32: what generator.keras holds.

    Mixed precision and the sub-pixel layer (machinery/subpixel.py) are how this machine trained fastest, not how the
    file should run elsewhere: an AVX2-only CPU computes bfloat16 8x slower than float32 (the weights are
    float32 anyway), and Keras's own Conv2DTranspose loads anywhere, without the kit. Built from the model's
    own serialized config with every dtype policy set to float32 and each sub-pixel layer named as the
    Conv2DTranspose it computes."""
    kit_layer = keras.saving.get_registered_name(subpixel.SubpixelConv2DTranspose)
    keras_layer = dict(module="keras.layers", class_name="Conv2DTranspose", registered_name=None)

    def plain(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                return {**node, "config": {**node["config"], "name": "float32"}}
            if node.get("registered_name") == kit_layer:
                node = {**node, **keras_layer}
            return {key: plain(value) for key, value in node.items()}
        if isinstance(node, list):
            return [plain(value) for value in node]
        return node

    copy = keras.saving.deserialize_keras_object(plain(keras.saving.serialize_keras_object(model)))
    copy.set_weights(model.get_weights())
    return copy
