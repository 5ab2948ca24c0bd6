"""The classic step as one compiled call, under JAX: `dcgan.py --fused-step`, for a GPU.

The classic step (models.train_step, as train_step.make_train_step calls it) makes three
calls into compiled code: the batch maker, D's train_on_batch, the GAN's. On a GPU at batch 32 the
arithmetic is nothing; what a step costs is the calls: each train_on_batch gathers every variable it
touches, hands them to its compiled function, assigns each one back and waits for its loss, 2.6 ms a call
on the H200's host (docs/speed.md), 99 s of a 10-epoch run before anything is computed.

Here the same step, models.train_step, is traced inside one jax.jit: the batch maker, then D's own Keras
train step (the function train_on_batch compiles; its metrics reset first, as train_on_batch does), with D
trainable while it is traced, then the GAN's, with D frozen, then G's weight average. The variables' values stay on the
device between steps, in this object; the Keras variables get them back (sync) only when something else
reads them: a frame, a checkpoint, the end of an epoch. Same math, same random streams, same checkpoint:
a run may switch between the two steps at any resume; their losses agree to float32 rounding (XLA fuses
the one call differently; tests/test_fused_step.py).

JAX only: the trainer's stateless train_step(state, data) is what makes one call of three possible; the
other backends keep the classic step.
"""

import contextlib
import functools

import keras
import numpy as np
from keras import ops

import models


class FusedStep:
    """step(real_batch) -> (d_loss, g_loss, d_acc_real, d_acc_fake), as train_step.make_train_step's step.
    Call sync() before anything else reads or writes the models' variables."""

    def __init__(self, discriminator, gan, batch_maker, batch, average=None, critic_steps=1):
        import jax

        self.discriminator, self.gan, self.batch_maker = discriminator, gan, batch_maker
        self.critic_steps, self.average = critic_steps, average
        self.real_labels = ops.ones((batch, 1))  # G's step calls its fakes "real"
        # D's accuracy metrics make their variables at their first update, which train_on_batch does first
        # thing; here one update on a tiny batch makes them now: a traced step must not create variables.
        tiny = ops.zeros((2, 1))
        discriminator.compute_metrics(None, tiny, tiny, None)
        discriminator.reset_metrics()
        self.variables = self._all_variables()
        self.values = None  # the variables' values while they live here; None while the Keras variables hold them
        self._compiled = jax.jit(self._pure, donate_argnums=0)  # the old values' buffers are reused in place

    def __call__(self, real):
        if self.values is None:
            self.values = [v.value for v in self.variables]
        self.values, figures = self._compiled(self.values, real)
        return np.asarray(figures)  # the one wait of a step: its four figures, which the loop shows and checks

    def sync(self):
        """Hand the variables' values back to the Keras variables (a frame, a checkpoint, scoring read them)."""
        if self.values is not None:
            for variable, value in zip(self.variables, self.values):
                variable.assign(value)
            self.values = None

    def _all_variables(self):
        """Every variable a step reads or writes, once each: G's and D's weights and statistics, the random
        streams' states, both optimizers' slots, both models' metrics, G's weight average."""
        seen, unique = set(), []
        groups = [self.batch_maker.variables]
        for model in (self.discriminator, self.gan):
            groups += [model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
                       model.metrics_variables]
        groups.append(self.average.variables if self.average else [])
        for variable in (v for group in groups for v in group):
            if id(variable) not in seen:
                seen.add(id(variable))
                unique.append(variable)
        return unique

    def _pure(self, values, real):
        """values, real batch -> new values, figures: one step, traced once, with the values lent to the
        variables (Keras's StatelessScope records every assignment instead of making it)."""
        with keras.StatelessScope(state_mapping=list(zip(self.variables, values))) as scope:
            figures = self._step(real)
        return [scope.get_current_value(v) for v in self.variables], figures

    def _step(self, real):
        """models.train_step, the classic loop's own, traced: the batch maker and both train steps inside this
        call. D is unfrozen while its step is traced and frozen for the GAN's, as in the classic loop."""
        with train_on_batch_in_scope(self.discriminator, self.gan):
            d_figures, g_loss = models.train_step(self.discriminator, self.gan, self.batch_maker, real,
                                                  self.real_labels, self.critic_steps)
        d_loss, acc_real, acc_fake = [ops.mean(ops.stack(column)) for column in zip(*d_figures)]
        if self.average:
            self.average.move_toward_generator()
        return ops.stack([ops.cast(f, "float32") for f in (d_loss, g_loss, acc_real, acc_fake)])


@contextlib.contextmanager
def train_on_batch_in_scope(*models_trained):
    """Inside the block, each model's train_on_batch(x, y) is train_in_scope(model, x, y): what the classic
    step's two calls compute, but traceable, so that models.train_step runs unchanged inside one jax.jit.
    An attribute of the model object itself, set past Keras's attribute tracking, and removed after."""
    for model in models_trained:
        object.__setattr__(model, "train_on_batch", functools.partial(train_in_scope, model))
    try:
        yield
    finally:
        for model in models_trained:
            object.__delattr__(model, "train_on_batch")


def train_in_scope(model, x, y):
    """What model.train_on_batch(x, y) computes, inside a StatelessScope: its metrics reset, Keras's own
    train step on the variables' current values, every new value assigned back. Returns what train_on_batch
    would: the loss, or [loss, *metrics]."""
    for metric in model.metrics:
        metric.reset_state()
    groups = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
              model.metrics_variables)
    logs, new_state = model.train_step(tuple([v.value for v in group] for group in groups), (x, y))
    for group, values in zip(groups, new_state):
        for variable, value in zip(group, values):
            variable.assign(value)
    # As train_on_batch returns them: the loss alone, or the loss and the metrics in the model's order.
    return model._flatten_metrics_in_order(logs)
