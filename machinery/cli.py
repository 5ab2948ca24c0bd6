"""Command-line plumbing shared by the scripts: argument types, the one-line error, and one script run by
another as its own process (measure.py, sweep.py).

Every wrong input ends as one line on stderr and exit status 2, never a traceback.
"""

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

# The kit's top folder, where the lesson's scripts are; a tool's script is named from it (tools/bench.py).
REPOSITORY = Path(__file__).resolve().parent.parent


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line that says what to do instead of usage plus error."""

    def error(self, message):
        fail(f"{message} (see {self.prog} --help)")


def fail(message, status=2):
    with contextlib.suppress(OSError):  # stderr may be a terminal that closed: the exit status still tells
        print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(status)


def run(main):
    """Run a script's main(). A reader that stops early (`python dcgan.py --list-presets | head -3`) ends it
    quietly, as it does a Unix tool, not with a BrokenPipeError traceback."""
    try:
        return main()
    except BrokenPipeError:
        silence_stdout()
        raise SystemExit(141)  # 128 + SIGPIPE: what a shell reports for a tool cut off by `head`


def silence_stdout():
    """After a write to stdout failed because its reader has gone: Python flushes stdout once more on its way
    out, which would fail the same way and print a complaint, so stdout's file becomes /dev/null."""
    with contextlib.suppress(OSError, ValueError):  # a stand-in stdout (a test's, a notebook's) has no file
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def print_columns(header, rows):
    """A plain-text table: each column as wide as its widest cell, two spaces between columns."""
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def command(*words):
    """A command line to print for the user to copy: paths with spaces or quotes come out quoted."""
    return " ".join(shlex.quote(str(word)) for word in words)


def run_script(words, log, environment=None):
    """Run one of the kit's scripts as its own process, as a user would type it (`words`: the script's file
    name, then its flags): its output shown live and kept in `log`; `environment`: variables to set for it.
    Returns (exit status, seconds, peak memory in MB, its last line of output)."""
    command = [sys.executable, str(REPOSITORY / words[0]), *map(str, words[1:])]
    started = time.perf_counter()
    with open(log, "w") as kept:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   bufsize=1, env={**os.environ, **(environment or {})})
        last = ""

        def show_all():
            nonlocal last
            for line in process.stdout:
                sys.stdout.write(line)
                kept.write(line)
                last = line.strip() or last
        try:
            show_all()
        except KeyboardInterrupt:  # Ctrl-C reached the script too: show it saving and stopping, then go
            show_all()
            process.wait()
            raise
        _, status, usage = os.wait4(process.pid, 0)  # wait4: this child's own peak memory, not all children's
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen.wait
    return process.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024, last


def int_at_least(minimum, maximum=None):
    """An argparse type: a whole number >= minimum (and <= maximum, if given), with a message that says
    what was wrong."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value
    return parse


def int_at_least_or(word, minimum, maximum=None):
    """An argparse type like int_at_least that also takes one word, e.g. "auto" (in any case), returned as
    `word`."""
    parse_number = int_at_least(minimum, maximum)

    def parse(text):
        if text.strip().lower() == word:
            return word
        try:
            return parse_number(text)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{e} (or {word})") from None
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


seed = int_at_least(0, 2**32 - 1)  # what numpy's and TensorFlow's global seeds take


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive_float(text):
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def number_in(low, high):
    """An argparse type: a number from `low` to `high`, both included."""
    def parse(text):
        value = _number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}, got {text}")
        return value
    return parse


def learning_rate(text):
    """An argparse type: a number above 0 and at most 1."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1, got {text}")
    return value


def unit_interval(text):
    """An argparse type: a number in [0, 1), such as a moving average's decay."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


@contextlib.contextmanager
def quiet_tensorflow():
    """Wrap the first import of TensorFlow or Keras: keep its C++ start-up notes off the terminal.

    TensorFlow 2.21 prints notes such as "oneDNN custom operations are on" and "Could not find cuda drivers"
    before TF_CPP_MIN_LOG_LEVEL takes effect (tensorflow/tensorflow#100442), so what C++ writes to file
    descriptor 2 is dropped during the import; Python exceptions still surface afterwards. Level 3 also
    hides a harmless "remapper failed" that TF's graph optimiser logs as an error when it cannot fuse the
    frozen D's gradient ops. Set TF_CPP_MIN_LOG_LEVEL=0 yourself to see everything.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
