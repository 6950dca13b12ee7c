"""Ctrl+C (SIGINT) and SIGTERM held back while files that must agree are written, then delivered.

``core.train`` writes, after every epoch, ``last/``, maybe ``best/`` and ``metrics.json``: an interrupt between
those writes left them disagreeing (a resumed run then missed an epoch in metrics.json). Inside
``deferred_interrupts()`` such a signal is only noted; when the block ends it is raised as KeyboardInterrupt,
once every file is whole. Outside the main thread (where Python delivers signals) it does nothing.
"""
from __future__ import annotations

import contextlib
import signal
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
