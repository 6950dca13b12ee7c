"""Work the driver repeats in the background while a block runs (the lock's heartbeat, the copy of Tune's state)."""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator


@contextlib.contextmanager
def every(interval_s: float, step: Callable[[], bool | None], name: str) -> Iterator[None]:
    """Call ``step`` every ``interval_s`` seconds in a daemon thread while the block runs; it stops early when
    ``step`` returns False. The thread is stopped (and waited for, briefly) when the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            if step() is False:
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
