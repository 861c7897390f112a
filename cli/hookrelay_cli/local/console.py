"""The local stack's stdout: whole lines only, as CloudWatch Logs receives them from each function.

All the local functions run in one process, on threads, and print to one stdout. `print()` writes
a line's text and its newline separately, so two threads (powertools' EMF metrics and a log line)
could otherwise splice one JSON line into another.
"""

import threading
from typing import TextIO


class WholeLines:
    def __init__(self, stream: TextIO):
        self._stream = stream
        self._lock = threading.Lock()
        self._pending = threading.local()

    def write(self, text: str) -> int:
        pending: str = getattr(self._pending, "text", "") + text
        *lines, rest = pending.split("\n")
        self._pending.text = rest
        if lines:
            with self._lock:
                self._stream.write("".join(line + "\n" for line in lines))
                self._stream.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
