"""An attempt's wall-clock deadline, enforced on its sockets by one watchdog thread (for the web sender)."""

import contextlib
import heapq
import itertools
import math
import socket
import threading
import time
from types import TracebackType
from typing import Self


class Deadline:
    """One attempt's wall-clock deadline, enforced on every socket the attempt uses.

    A socket timeout bounds each read, not the attempt: a receiver sending a byte now and then would
    hold it for ever. So the attempt's sockets are watched, and when the deadline comes the watchdog
    shuts them down, which makes a blocked TLS handshake or read return at once. Used as a context
    manager around the attempt; urllib3's connections find it in a thread-local (the attempt runs in
    one thread).
    """

    _current = threading.local()

    def __init__(self, seconds: float):
        self._started = time.monotonic()
        self.at = self._started + seconds
        self._lock = threading.Lock()
        self._expired = False
        self._stopped = False
        # Duplicates of the watched sockets: a TLS handshake takes over (detaches) the socket urllib3
        # connected, and shutting down any descriptor of a connection shuts the connection down.
        self._watched: list[socket.socket] = []

    @classmethod
    def current(cls) -> "Deadline":
        deadline: Deadline = cls._current.deadline
        return deadline

    @property
    def passed(self) -> bool:
        # Also when a socket timeout (never shorter than the time remaining) came before the watchdog.
        return self._expired or time.monotonic() >= self.at

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def watch(self, sock: socket.socket) -> None:
        duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
        with self._lock:
            self._watched.append(duplicate)
            if self._expired:
                shut_down(duplicate)

    def stop(self) -> None:
        """No socket is shut down after this: a connection about to go back to the pool must stay usable."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        WATCHDOG.forget(self)

    def expire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._expired = True
            for sock in self._watched:
                shut_down(sock)

    def __enter__(self) -> Self:
        self._current.deadline = self
        WATCHDOG.watch(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
        self._current.deadline = None
        with self._lock:
            for sock in self._watched:
                sock.close()
            self._watched.clear()


class Watchdog:
    """One thread that expires every attempt's deadline when it comes.

    A timer thread per attempt cost more than the rest of the transport's own work; this thread sleeps
    until the earliest deadline and is woken only when an earlier one is added, which in a steady
    stream of attempts with the same timeout is never.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        # (at, sequence, deadline): the sequence orders deadlines due at the same moment.
        self._due: list[tuple[float, int, Deadline]] = []
        self._entries: dict[Deadline, tuple[float, int, Deadline]] = {}
        self._sequence = itertools.count()
        self._wakes_at = math.inf
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hookrelay-deadlines", daemon=True)
                self._thread.start()

    @property
    def pending(self) -> int:
        """How many deadlines are waited for (the attempts in flight)."""
        with self._changed:
            return len(self._due)

    def watch(self, deadline: Deadline) -> None:
        entry = (deadline.at, next(self._sequence), deadline)
        with self._changed:
            heapq.heappush(self._due, entry)
            self._entries[deadline] = entry
            if deadline.at < self._wakes_at:
                self._changed.notify()

    def forget(self, deadline: Deadline) -> None:
        with self._changed:
            entry = self._entries.pop(deadline, None)
            if entry is not None:
                # Attempts in flight are few (a batch's sends): rebuilding the heap is cheap.
                self._due.remove(entry)
                heapq.heapify(self._due)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._wakes_at = self._due[0][0] if self._due else math.inf
                self._changed.wait(max(0.0, self._wakes_at - time.monotonic()) if self._due else None)
                now = time.monotonic()
                expired = []
                while self._due and self._due[0][0] <= now:
                    _, _, deadline = heapq.heappop(self._due)
                    del self._entries[deadline]
                    expired.append(deadline)
            # Outside the lock: shutting sockets down holds up no attempt starting or ending.
            for deadline in expired:
                deadline.expire()


WATCHDOG = Watchdog()


def shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the peer may have closed it already
        sock.shutdown(socket.SHUT_RDWR)
