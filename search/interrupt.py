"""Whether the last Tune run was interrupted (Ctrl+C, or SIGTERM, which the driver turns into SIGINT).

Tune handles SIGINT itself: it stops the trials, saves its state and returns from ``fit()`` normally. Its
ResultGrid then sometimes lists a trial it was still stopping as TERMINATED, and the driver took an interrupted
search for a finished one (exit 0, no ``--resume`` hint; 3 of 9 runs of a probe). ``InterruptWatch``, a public
``tune.Callback``, wraps the SIGINT handler Tune installed (its ``setup`` runs after that) and notes the signal in
``INTERRUPTED`` before passing it on.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

from ray import tune

INTERRUPTED = threading.Event()


class InterruptWatch(tune.Callback):
    def setup(self, **info: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        tunes = signal.getsignal(signal.SIGINT)

        def noting(signum, frame) -> None:
            INTERRUPTED.set()
            if callable(tunes):
                tunes(signum, frame)
            else:   # Tune's handler was not installed (not the main thread there): behave as Python would
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, noting)

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        pass
