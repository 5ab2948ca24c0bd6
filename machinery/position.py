"""Where dcgan.py's loop stands: the epoch in progress, the steps done in it, what they added up to, and the
rows of history.csv and steps.csv so far. A checkpoint keeps what the folder's files do not (the epoch, the
step, the sums, the shuffling state, the history and the epoch's own step rows), so a resumed run goes on
exactly where the interrupted one stopped; resume.py reads the finished epochs' steps back from steps.csv.
"""

import contextlib
import time

import numpy as np

# A step's figures, in the order the step returns them; a checkpoint keeps their sums as "sums".
FIGURES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")


class Position:
    """Where the loop stands, and what the epoch in progress has added up so far."""

    def __init__(self, epoch=1, step=0, sums=(0, 0, 0, 0), seconds_before=0.0, history=(), step_rows=(),
                 epoch_step_rows=(), diverged_at=None):
        self.epoch, self.step = epoch, step  # the epoch in progress, and the steps done in it
        self.sums = np.array(sums, np.float64)  # of its steps' FIGURES
        self.seconds_before = seconds_before  # its training seconds before this process resumed it
        self.history = list(history)  # a row per finished epoch (history.csv)
        self.step_rows = list(step_rows)  # a row per step of the finished epochs (steps.csv)
        self.epoch_step_rows = list(epoch_step_rows)  # and of the epoch in progress
        self.diverged_at = diverged_at  # (epoch, step) where the last try stopped on a NaN, until this one passes it
        self.shuffle_state = None  # the shuffling's state at the epoch's start: its order can be drawn again
        self.epoch_started = None

    def start_epoch(self, shuffle, images, steps, per_step):
        """This epoch's order of the real images, a row of `per_step` per step; its clock starts."""
        self.epoch_started = time.perf_counter() - self.seconds_before
        self.shuffle_state = shuffle.bit_generator.state
        return shuffle.permutation(images)[:steps * per_step].reshape(steps, per_step)

    def add(self, figures):
        """One step done, with its figures."""
        self.step += 1
        self.sums += figures
        self.epoch_step_rows.append(dict(epoch=self.epoch, step=self.step,
                                         **{name: float(value) for name, value in zip(FIGURES, figures)}))

    def means(self):
        return self.sums / self.step

    def seconds(self):
        return time.perf_counter() - self.epoch_started

    @contextlib.contextmanager
    def paused(self):
        """Time spent inside is not the epoch's: its seconds time training alone."""
        drawing_started = time.perf_counter()
        yield
        self.epoch_started += time.perf_counter() - drawing_started

    def epoch_row(self):
        return dict(epoch=self.epoch, **dict(zip(FIGURES, self.means())), seconds=self.seconds())

    def finish_epoch(self, row):
        self.history.append(row)
        self.step_rows.extend(self.epoch_step_rows)

    def next_epoch(self):
        self.epoch, self.step, self.sums, self.seconds_before, self.epoch_step_rows = \
            self.epoch + 1, 0, np.zeros(4), 0.0, []

    def checkpoint_state(self, backend, epoch_row=None):
        """What a checkpoint keeps of the loop, mid-epoch or (`epoch_row` given) at the epoch's end, whose
        steps are in step_rows by then."""
        return dict(epoch=self.epoch, step=self.step, shuffle_state=self.shuffle_state,
                    sums=list(map(float, self.sums)), seconds=epoch_row["seconds"] if epoch_row else self.seconds(),
                    history=self.history, backend=backend, step_rows=[] if epoch_row else self.epoch_step_rows)
