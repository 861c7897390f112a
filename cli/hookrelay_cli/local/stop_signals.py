"""Ctrl-C and SIGTERM ask `hookrelay local up` to stop.

The handler only records the signal, and takes no lock: Python runs a handler on the main thread between
two bytecodes, also in the middle of an earlier run of the same handler. One that set a threading.Event
held the event's lock while a second signal ran it again, which then waited on that lock for ever: the
stack hung instead of stopping, as when a terminal's Ctrl-C reached both `make run` and the stack.
"""

import signal
import time
from types import FrameType

# How often the main thread wakes while it waits for a stop signal. The kernel may hand the signal to
# any thread, and Python runs its handler on the main thread only, once that thread runs again: a wait
# without end would sleep through it.
SIGNAL_CHECK_SECONDS = 0.5


class StopSignals:
    def __init__(self) -> None:
        self.received: list[int] = []

    def install(self) -> None:
        """On the main thread, where Python allows signal handlers."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._record)

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)

    def wait(self, check_seconds: float = SIGNAL_CHECK_SECONDS) -> None:
        """Until a stop signal has been received."""
        while not self.received:
            time.sleep(check_seconds)
