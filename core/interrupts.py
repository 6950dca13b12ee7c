"""Ctrl+C and SIGTERM: held back while files that must agree are written; SIGTERM treated as Ctrl+C.

``core.train`` writes, after every epoch, ``last/``, maybe ``best/`` and ``metrics.json``: an interrupt between
those writes left them disagreeing (a resumed run then missed an epoch in metrics.json). Inside
``deferred_interrupts()`` such a signal is only noted; when the block ends it is raised as KeyboardInterrupt,
once every file is whole. Outside the main thread (where Python delivers signals) it does nothing.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        raise KeyboardInterrupt(f"signal {signal.Signals(received[0]).name} during a write, delivered after it")


def sigterm_is_ctrl_c() -> None:
    """SIGTERM (``kill``, a scheduler's preemption) raises KeyboardInterrupt, as Ctrl+C does: one line and exit 130
    from the CLI. Installed at start and again after ``ray.shutdown()``, which leaves SIGTERM at its default
    (the process would die with -15 in the driver's last stages); while Ray runs, search/run.py turns SIGTERM into
    SIGINT instead, which Tune handles itself (search/run.py)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def python_handles_ctrl_c() -> None:
    """After a Tune run: Tune leaves its SIGINT handler installed (it only restores the previous one when a signal
    comes), so a Ctrl+C during the driver's later stages (results, refit planning, the ensemble) was swallowed and
    the driver exited 0. Python's own handler raises KeyboardInterrupt again; the CLI turns it into exit 130."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def exit_130_stays_130() -> None:
    """Call before ``sys.exit(130)`` in a ``python -m`` entry point that handled a Ctrl+C.

    CPython quirk: a KeyboardInterrupt raised while C code ran Python through ``PyRun_*`` (pybind11's
    ``py::exec``, which torch uses) sets a process-wide "unhandled KeyboardInterrupt" flag that survives our
    handler, and ``python -m`` then kills itself with SIGINT at exit: exit -2 instead of 130, after the resume
    hint was printed (seen in core.train under load). Every ``PyRun_*`` call first resets that flag, so running
    an empty statement through one clears it (tests/core/test_interrupts.py shows both)."""
    if sys.implementation.name == "cpython":
        import ctypes

        ctypes.pythonapi.PyRun_SimpleString(b"pass")
