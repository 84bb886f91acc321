"""Ctrl-C during training: a request to stop after the current step, never in a save.

Kept apart so llmlab.training reads as the training loop.
"""
from __future__ import annotations

import signal
import threading

__all__: list[str] = []  # private: llmlab.training is the public face


class StopRequest:
    """Ctrl-C / the stop button, deferred to the end of the current step (a second one stops at once).

    A step interrupted half-way would leave some weights and Adam moments updated and others not,
    and the run could no longer be resumed exactly. Only in the main thread of a single process:
    under torchrun every rank must stop at the same step, so there an interrupt acts at once.
    """

    def __init__(self, enabled: bool):
        self.requested = False
        self.saving = False  # while True, no interrupt may cut the checkpoint being written
        self._enabled = enabled and threading.current_thread() is threading.main_thread()
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.requested and not self.saving:  # pressed twice: do not wait for the step
            raise KeyboardInterrupt
        self.requested = True

    def install(self) -> None:
        """From now on, Ctrl-C only asks to stop."""
        if self._enabled:
            self._previous = signal.signal(signal.SIGINT, self._handler)

    def restore(self) -> None:
        """Ctrl-C behaves as before train() was called."""
        if self._enabled:
            signal.signal(signal.SIGINT, self._previous)
