"""The generator as it is shown, not as it trains: a moving average of its weights, and settled BatchNorm.

Neither changes training: both swap values into G for the
length of a `with` block (a picture, a score, a save) and put the trained values back on the way out.
"""

import contextlib
import os

import keras
from keras import layers, ops

from machinery import backends, sampling


def settle_samples(default=1024):
    """Noise vectors in the one training-mode batch that settles BatchNorm: 1,024. Only the test suite sets
    fewer (DCGAN_KIT_SETTLE_SAMPLES=64, tests/conftest.py): in its tiny runs of 4 steps an epoch, settling
    1,024 at each picture was a third of the time. tests/test_models.py settles 1,024 and checks the result.
    Anything but a positive whole number is ignored."""
    try:
        samples = int(os.environ.get("DCGAN_KIT_SETTLE_SAMPLES", ""))
    except ValueError:
        return default
    return samples if samples > 0 else default


SETTLE_SAMPLES = settle_samples()
SETTLE_SEED = 0  # its own seed, not the training stream, so showing G never shifts training


class GeneratorAverage:
    """An exponential moving average of G's trainable weights, updated after each of G's steps.

    A GAN's G does not settle: each step chases the D of that moment, so its weights circle around a good
    point instead of reaching it. Their average over the last ~1/(1 - decay) steps sits nearer that point
    and draws better images (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training").
    Training itself never sees the average. Early on the decay is min(decay, (1 + t) / (10 + t)) after t
    updates, as tf.train.ExponentialMovingAverage does, so a short run is not an average of its random
    start. (Keras optimizers' use_ema has no such warm-up.) BatchNorm's statistics are not averaged:
    settled_batchnorm computes them for the averaged weights.
    """

    def __init__(self, generator, decay):
        self.generator, self.decay = generator, decay
        self.weights = [keras.Variable(ops.convert_to_numpy(w), trainable=False, name="average")
                        for w in generator.trainable_weights]
        self.updates = keras.Variable(0, dtype="int32", trainable=False, name="average_updates")
        # One compiled call per step, not 41 ops each launched on its own (backends.compile_update says why).
        self.update = backends.compile_update(self.move_toward_generator, reads=generator.trainable_weights,
                                              writes=self.variables)

    @property
    def variables(self):
        """Everything a checkpoint must hold to continue the average exactly."""
        return [*self.weights, self.updates]

    def move_toward_generator(self):
        """After each of G's steps: the average moves toward G's weights. Op by op: the classic step
        (train_step.make_train_step) calls self.update, this compiled; fused_step.py calls it inside its own
        compiled step."""
        self.updates.assign(self.updates + 1)
        t = ops.cast(self.updates, "float32")
        decay = ops.minimum(self.decay, (1.0 + t) / (10.0 + t))
        for average, live in zip(self.weights, self.generator.trainable_weights):
            average.assign(decay * average + (1.0 - decay) * live)

    @contextlib.contextmanager
    def swapped_in(self):
        """Inside the block G holds the averaged weights; on the way out its trained ones come back."""
        live = [ops.convert_to_numpy(w) for w in self.generator.trainable_weights]
        try:
            for w, average in zip(self.generator.trainable_weights, self.weights):
                # A copy, not the average's own buffer: JAX's compiled calls (predict, train_on_batch)
                # donate G's buffers and delete them, which would delete the average with them.
                w.assign(ops.copy(average))
            yield self.generator
        finally:
            for w, value in zip(self.generator.trainable_weights, live):
                w.assign(value)


@contextlib.contextmanager
def settled_batchnorm(generator, noise_kind, latent, samples=SETTLE_SAMPLES):
    """Inside the block, G's BatchNorm layers use the exact statistics of G's current weights.

    BatchNorm's moving averages (momentum 0.99) trail the weights by a few hundred steps, so early in
    training the inference-mode G (the grids, generator.keras) draws much worse images than the G being
    trained. Inside, one batch of `samples` noise vectors in training mode with momentum 0 sets them to
    the current statistics; on the way out the trailing averages come back, so training, checkpoints and
    exact resume are as if nothing happened.
    """
    norms = [layer for layer in generator.layers if isinstance(layer, layers.BatchNormalization)]
    saved = [(n.momentum, ops.convert_to_numpy(n.moving_mean), ops.convert_to_numpy(n.moving_variance))
             for n in norms]
    try:
        if norms:
            for n in norms:
                n.momentum = 0.0
            noise = sampling.noise_on_host(noise_kind, samples, latent, SETTLE_SEED)
            generator(sampling.inputs_for(generator, noise), training=True)  # a conditional G: every class
            for n, (momentum, _, _) in zip(norms, saved):
                n.momentum = momentum  # so that a generator saved inside keeps its own settings
        yield generator
    finally:
        for n, (momentum, mean, variance) in zip(norms, saved):
            n.momentum = momentum
            n.moving_mean.assign(mean)
            n.moving_variance.assign(variance)


@contextlib.contextmanager
def as_shown(generator, average, noise_kind, latent, settle_samples=SETTLE_SAMPLES):
    """Inside the block G is as its pictures and files show it: the averaged weights (when the run keeps
    an average) with settled BatchNorm; on the way out, as trained again."""
    with (average.swapped_in() if average else contextlib.nullcontext()), \
            settled_batchnorm(generator, noise_kind, latent, settle_samples):
        yield generator
