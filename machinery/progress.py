"""What the training loop shows while it runs, wherever its output goes.

Nothing of Keras. On a terminal: tqdm's live bar for the epoch in progress, which
gives way to one line when the epoch ends. Anywhere else (`> log 2>&1`, a notebook cell, CI, a scheduler):
no bar, whose carriage-return updates would pile up into one endless line, but a line every
`every_seconds` within a long epoch and the same one line at each epoch's end.
"""

import sys
import time

from tqdm import tqdm


def figures(d_loss, g_loss, acc_real, acc_fake):
    return f"d_loss {d_loss:.3f}  g_loss {g_loss:.3f}  D right on real {acc_real:.2f}, on fake {acc_fake:.2f}"


def epoch_line(row, total_epochs, images_per_second):
    """One line for a finished epoch: its mean figures, its speed, and the judge's scores when it was scored."""
    line = (f"epoch {row['epoch']}/{total_epochs}  "
            + figures(row["d_loss"], row["g_loss"], row["d_acc_real"], row["d_acc_fake"])
            + f"  {images_per_second:,.0f} img/s  {row['seconds']:.0f} s")
    if row.get("fd") not in (None, ""):
        line += f"  FD {row['fd']:.1f}, {row['classes_covered']} of 10 classes"
    if row.get("d_real_train") not in (None, ""):  # D's mean verdict on images it trains on, and on unseen ones
        line += f"  D: training {row['d_real_train']:.2f}, test {row['d_real_test']:.2f}"
    return line


class EpochProgress:
    """The steps of one epoch: `for step in EpochProgress(...)`, then `show(step, means)` as it goes."""

    def __init__(self, epoch, total_epochs, first_step, steps, every_seconds, stream=None):
        stream = stream or sys.stderr
        self.label = f"epoch {epoch}/{total_epochs}"
        self.steps = steps
        self.on_terminal = stream.isatty()
        self.every_seconds = every_seconds
        self.last_line = time.perf_counter()
        # leave=False: the bar gives way to the epoch's line; disable: no bar where no one watches it live.
        self.bar = tqdm(range(first_step, steps), desc=self.label, unit="step", initial=first_step, total=steps,
                        leave=False, disable=not self.on_terminal, file=stream)

    def __iter__(self):
        return iter(self.bar)

    def show(self, step, means):
        """After step `step` (from 0), with the epoch's mean d_loss, g_loss, acc_real, acc_fake so far."""
        if self.on_terminal:
            if step % 10 == 0 or step == self.steps - 1:
                self.bar.set_postfix_str(figures(*means).replace("  ", ", "), refresh=False)
        elif time.perf_counter() - self.last_line >= self.every_seconds and step < self.steps - 1:
            self.last_line = time.perf_counter()
            print(f"{self.label}  step {step + 1}/{self.steps}  {figures(*means)}", flush=True)

    def close(self):
        self.bar.close()
