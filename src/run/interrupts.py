"""Stopping a process without leaving anything half made: Ctrl-C (SIGINT), SIGTERM and Ray's cancel.

Python raises KeyboardInterrupt wherever the main thread is when SIGINT lands, and a process manager's
SIGTERM (Slurm, Kubernetes, Ray's job stop) kills at once. Either could split the creation of an MLflow
run from the code that ends it, or a finished training from the study's record of it, and leave a run
RUNNING forever. This module owns the process's SIGINT and SIGTERM handler and three kinds of block:

    stoppable()  an entry point's: SIGINT raises KeyboardInterrupt, SIGTERM raises `Terminated` (a
                 KeyboardInterrupt, so every cleanup written for Ctrl-C serves both); once=True: after
                 the first, further signals only say that the process is already stopping
    atomic()     a step an interrupt must not split (create a run and enter the code that ends it, end
                 a run, tell the study): a signal is noted and raised when the block ends
    at_checks()  a model's training: the first signal is noted and raised where `check()` is called
                 (after a batch), not inside a weak-reference callback, where Python would print and drop
                 it; a second one raises at once

Ray's `ray.cancel` interrupts a task through Python's SIGINT handler (`_thread.interrupt_main`), so it
is handled as Ctrl-C. `stop(reason)` lets another thread stop the main one the same way (a worker whose
driver died). Outside the main thread, or where a signal is ignored (a job started with nohup), the
blocks leave the signal alone.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM (or `stop`): the process is asked to end; handled as Ctrl-C, with its own reason."""

    def __init__(self, reason: str = "terminated"):
        super().__init__(reason)
        self.reason = reason


def _raised(exc: BaseException) -> BaseException:
    """The exception this module raised for `exc`: a library may catch a KeyboardInterrupt and raise a
    plain one instead (Ray's wait and get do), which would lose a Terminated's reason."""
    if not isinstance(exc, Terminated) and isinstance(_state.raised, Terminated):
        return _state.raised
    return exc


def terminated(exc: BaseException) -> bool:
    """Whether a SIGTERM (or `stop`) raised this KeyboardInterrupt, not a Ctrl-C or Ray's cancel."""
    return isinstance(_raised(exc), Terminated)


def reason(exc: BaseException) -> str:
    """What stopped a process, for a run's `end_reason` and a trial's failure: "interrupted" (Ctrl-C,
    Ray's cancel), "terminated" (SIGTERM) or the reason given to `stop`."""
    return _raised(exc).reason if terminated(exc) else "interrupted"


def exit_code(exc: BaseException) -> int:
    """The shell's status for a process that a signal stopped: 128 + the signal's number."""
    return 128 + (signal.SIGTERM if terminated(exc) else signal.SIGINT)


class SignalState:
    """The process's signal handling: which blocks are open, what came and is not raised yet. One per
    process (`_state`), as the handler it installs is."""

    def __init__(self):
        self.depth = 0        # open blocks that share the handler (the outermost installed it)
        self.previous = {}    # each signal's handler before the outermost block
        self.root = False     # inside an entry point's stoppable(): signals raise this module's exceptions
        self.once = False     # ... and once it is stopping, later signals are only noted
        self.stopping = False  # an interrupt was raised
        self.atomic = 0       # open atomic() blocks: a signal waits for the outermost to end
        self.at_checks = 0    # open at_checks() blocks: the first signal waits for a check()
        self.signals_at_checks = 0  # signals that came during the outermost at_checks() block
        self.pending: list[int] = []  # signals noted and not yet raised
        self.why: str | None = None  # the reason `stop` gave
        self.raised: KeyboardInterrupt | None = None  # what the entry point's block raised last


_state = SignalState()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _exception(signum: int) -> KeyboardInterrupt:
    if signum == signal.SIGTERM:
        why, _state.why = _state.why, None
        return Terminated(why or "terminated")
    return KeyboardInterrupt()


def _deliver(signum: int) -> None:
    """Raises the signal's exception, or hands the signal to the handler that was there before."""
    prev = _state.previous.get(signum)
    if _state.once and _state.stopping:
        if _state.root:
            print(f"already stopping ({signal.Signals(signum).name} again): waiting for the runs to end",
                  file=sys.stderr, flush=True)
        return
    if _state.root or prev is signal.default_int_handler or (signum == signal.SIGINT and prev == signal.SIG_DFL):
        _state.stopping = True
        _state.raised = _exception(signum)
        raise _state.raised
    if callable(prev):
        prev(signum, None)
    elif prev == signal.SIG_DFL:  # SIGTERM's default: the process ends, as it would have without the block
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _on_signal(signum, frame) -> None:
    if _state.at_checks:
        _state.signals_at_checks += 1
    if _state.atomic or (_state.at_checks and _state.signals_at_checks == 1):
        _state.pending.append(signum)
        return
    _state.pending.clear()
    _deliver(signum)


def _enter() -> bool:
    """Joins (or installs) the handler; False outside the main thread, where nothing is installed."""
    if not _main_thread():
        return False
    if _state.depth == 0:
        _state.previous = {s: signal.getsignal(s) for s in SIGNALS}
        for s in SIGNALS:
            if _state.previous[s] not in (signal.SIG_IGN, None):
                signal.signal(s, _on_signal)
    _state.depth += 1
    return True


def _leave() -> None:
    _state.depth -= 1
    if _state.depth == 0:
        for s, prev in _state.previous.items():
            if prev is not None and signal.getsignal(s) is _on_signal:
                signal.signal(s, prev)
        _state.pending.clear()


def reclaim() -> None:
    """Takes the signals back inside an open block after a library replaced their handlers (ray.init sets
    a SIGTERM handler that exits at once, and Ray's core worker one that only logs)."""
    if _state.depth and _main_thread():
        for s in SIGNALS:
            if _state.previous.get(s) not in (signal.SIG_IGN, None) and signal.getsignal(s) is not _on_signal:
                signal.signal(s, _on_signal)


def pending() -> bool:
    """Whether a signal was noted and not yet raised (an atomic or at_checks block)."""
    return bool(_state.pending)


def check() -> None:
    """Raises a noted signal, unless an atomic block is open."""
    if _state.pending and not _state.atomic:
        signum = _state.pending[0]
        _state.pending.clear()
        _deliver(signum)


@contextmanager
def stoppable(once: bool = True):
    """An entry point's block: SIGINT raises KeyboardInterrupt, SIGTERM `Terminated`; `once`: a process
    that is already stopping notes further signals instead of raising them in its cleanup."""
    if not _enter():
        yield
        return
    outer = (_state.root, _state.once, _state.stopping, _state.raised)
    _state.root, _state.once, _state.stopping, _state.raised = True, once, False, None
    try:
        yield
    finally:
        _state.root, _state.once, _state.stopping, _state.raised = outer
        _leave()


class atomic:
    """A block an interrupt cannot split: a signal that comes is raised when the block ends, or where
    `release()` is called inside it (e.g. inside the `try` whose handlers end what the block made)."""

    def __enter__(self):
        self.active = _enter()
        if self.active:
            _state.atomic += 1
        return self

    def release(self) -> None:
        if self.active:
            self.active = False
            _state.atomic -= 1
            try:
                check()
            finally:
                _leave()

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, KeyboardInterrupt) and self.active:
            _state.pending.clear()  # already stopping: a signal that came meanwhile says nothing new
        self.release()
        return False


@contextmanager
def at_checks():
    """A block in which no Ctrl-C is lost: yields `check`, which raises a signal that came during the
    block; a second signal raises at once (work that never reaches a check, a hung call, still stops)."""
    if not _enter():
        yield lambda: None
        return
    if _state.at_checks == 0:
        _state.signals_at_checks = 0
    _state.at_checks += 1
    try:
        yield check
    finally:
        _state.at_checks -= 1
        _leave()


def stop(why: str) -> None:
    """From any thread: stops the main thread as SIGTERM would, with `why` as the reason."""
    _state.why = why
    if _main_thread():
        _on_signal(signal.SIGTERM, None)
    else:
        _thread.interrupt_main(signal.SIGTERM)
