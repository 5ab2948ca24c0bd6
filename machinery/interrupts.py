"""Ctrl-C, a polite kill or a closed terminal ends a run only after the step in progress, saved.

dcgan.py trains inside `with StopOnInterrupt() as interrupt:` and checks `interrupt.received` after each
step: set, the run writes a checkpoint and exits with the shell's status for that signal (130 for Ctrl-C).
"""

import contextlib
import signal

from machinery import cli


class StopOnInterrupt:
    """While active, Ctrl-C (SIGINT), a polite kill (SIGTERM: `kill`, `docker stop`, a batch scheduler's
    time limit) or a hangup (SIGHUP: the terminal or the SSH session closed) only records the signal; the
    loop finishes its step, saves, and exits. So does a reader of stdout that has gone (`python dcgan.py |
    head`): see `printing`."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __init__(self):
        self.received = None

    def __enter__(self):
        self._previous = {s: signal.signal(s, self._request) for s in self.SIGNALS}
        return self

    def _request(self, signum, frame):
        self.received = signal.Signals(signum)

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    @contextlib.contextmanager
    def printing(self):
        """Around the loop's progress lines. Python ignores SIGPIPE, so a reader that has gone shows up as a
        BrokenPipeError from print; raised, it would end the run without saving the steps since the last
        checkpoint. Recorded as SIGPIPE, it ends the run like a signal: after the next step, saved, 141."""
        try:
            yield
        except BrokenPipeError:
            cli.silence_stdout()
            self.received = signal.SIGPIPE
