"""The classic loop's step as dcgan.py calls it: models.train_step (D.train_on_batch on fakes + reals, then
gan.train_on_batch on noise labelled real), fed by the batch maker.

What a step feeds the two train_on_batch calls (the fakes,
D's labels, the noise for G's step) is made on the device in one compiled call and stays there, with
random numbers from a keras.random.SeedGenerator whose state a checkpoint saves, so a resumed run draws
exactly what an unbroken one would. The same code runs on every Keras backend.
"""

import keras
import numpy as np
from keras import ops

import models
from machinery import backends, sampling


def jittered_labels(labels, label_noise, seed):
    """System B's habit: soft, jittered 0/1 labels, so D grows less sure of itself. Each label moves
    toward 0.5 by label_noise * U[0, 1): fakes to [0, noise), reals to (1 - noise, 1].

    Why toward 0.5 and not simply + noise: the kit computes BCE from D's logit (models.build_gan), and with
    a label y above 1 that loss, x * (1 - y) + log(1 + exp(-x)), falls without end as the logit x grows.
    D then learns to shout: with + noise, upsample's running-mean D loss reached 86,151 in epoch 2 of a
    10-epoch run. Inside [0, 1] the loss never falls below the label's entropy."""
    labels = ops.convert_to_tensor(labels, "float32")
    return labels + label_noise * keras.random.uniform(ops.shape(labels), seed=seed) * (1.0 - 2.0 * labels)


class BatchMaker(keras.Model):
    """real batch -> (D's inputs: fakes then reals, D's labels, G's inputs for its step), as one Keras model.

    A model so that Keras carries its state on every backend (G's BatchNorm statistics, which G in training
    mode updates, and the SeedGenerator) and a checkpoint finds it. float32 throughout: under mixed
    precision the real images would otherwise be rounded to bfloat16 on the way in. make(real) computes it
    in one compiled call; predict_on_batch (after compile()) gives the same as numpy.

    `classes` > 0 (a conditional preset): the real batch is [images, their classes]; the fakes are drawn of
    random classes, D gets [images, classes] and G's step [noise, classes], classes again drawn at random.
    """

    def __init__(self, generator, noise_kind, seed, label_noise=0.0, fakes_in_training_mode=True, classes=0):
        super().__init__(name="batch_maker", dtype="float32")
        self.generator, self.noise_kind, self.classes = generator, noise_kind, classes
        self.label_noise, self.fakes_in_training_mode = label_noise, fakes_in_training_mode
        self.seed = keras.random.SeedGenerator(seed)

    def call(self, real):
        real, real_classes = real if self.classes else (real, None)
        batch, latent = real.shape[0], self.generator.inputs[0].shape[-1]
        noise = sampling.noise_on_device(self.noise_kind, (batch, latent), self.seed)
        fake_classes = self._random_classes(batch)
        fake = self.generator(noise if not self.classes else [noise, fake_classes],
                              training=self.fakes_in_training_mode)
        labels = ops.concatenate([ops.zeros((batch, 1)), ops.ones((batch, 1))], axis=0)  # fakes first
        if self.label_noise:
            labels = jittered_labels(labels, self.label_noise, self.seed)
        images = ops.concatenate([fake, real], axis=0)
        g_noise = sampling.noise_on_device(self.noise_kind, (batch, latent), self.seed)  # for G's step, after D's
        if not self.classes:
            return images, labels, g_noise
        d_classes = ops.concatenate([fake_classes, ops.cast(real_classes, "int32")], axis=0)
        return [images, d_classes], labels, [g_noise, self._random_classes(batch)]

    def make(self, real):
        """call(real), compiled once (after compile(), with its jit_compile) and run as one call whose results
        stay on the device, where D's and the GAN's steps read them: no wait for G's fakes, no copies to the
        host and back (predict_on_batch's numpy). On a GPU the device then draws the next fakes while the
        host is still busy with Keras's bookkeeping of D's step."""
        if getattr(self, "_compiled_call", None) is None:
            self._compiled_call = backends.compile_update(self.__call__, reads=self.trainable_variables,
                                                          writes=self.non_trainable_variables, xla=self.jit_compile)
        return self._compiled_call(real)

    def _random_classes(self, batch):
        if not self.classes:
            return None
        return keras.random.randint((batch, 1), 0, self.classes, seed=self.seed, dtype="int32")


def make_train_step(discriminator, gan, batch_maker, batch, jit_compile="auto", share=(0, 1), critic_steps=1,
                    average=None):
    """step(real_batch) -> (d_loss, g_loss, d_acc_real, d_acc_fake): one D update, then one G update, then
    G's weight average (`average`, an averaging.GeneratorAverage) moves toward G, where the run keeps one.
    real_batch: images, or [images, classes] for a conditional preset.
    `critic_steps` > 1 (WGAN-GP): real_batch holds critic_steps batches, each D's for one update, and G's
    update comes after the last; D's figures are the mean of its updates'.

    Three calls into compiled code per step: the batch maker, then the two train_on_batch calls, of which
    only the last two wait for their results (their logs).
    `jit_compile`: Keras's compile() argument, as for D and the GAN.
    `share` = (index, count): this process's place in a run of several (devices.Share). Each process makes
    the whole step's arrays from the whole real batch, alike (same weights, same seed), and trains on its
    own slice of them; Keras puts the slices of all processes together into the global batch in process
    order, so the step computes what one process would on the whole batch (up to the order of sums).
    There, and on several devices of one process, the batch maker runs through predict_on_batch: its numpy
    arrays are what Keras spreads over the devices of a train_on_batch call.
    """
    batch_maker.compile(optimizer=None, jit_compile=jit_compile)  # it is only ever called, never trained
    index, count = share
    on_one_device = count == 1 and keras.distribution.distribution() is None
    real_labels = np.ones((batch // count, 1), np.float32)  # G's step calls its fakes "real"
    if on_one_device:  # put there once, not copied to the device at every GAN step
        real_labels = ops.convert_to_tensor(real_labels)

    def own_slice(array):
        rows = len(array) // count
        return array[index * rows:(index + 1) * rows]

    def make_batch(real):
        """D's inputs and labels and G's inputs, made on the device (several processes or devices: as numpy,
        each process's own slice of them)."""
        if on_one_device:
            return batch_maker.make(real)
        made = batch_maker.predict_on_batch(real)
        return keras.tree.map_structure(own_slice, made) if count > 1 else made

    def step(real):
        d_figures, g_loss = models.train_step(discriminator, gan, make_batch, real, real_labels, critic_steps)
        d_loss, acc_real, acc_fake = d_figures[0] if critic_steps == 1 else np.mean(d_figures, axis=0)
        if average:
            average.update()
        return d_loss, g_loss, acc_real, acc_fake

    return step
