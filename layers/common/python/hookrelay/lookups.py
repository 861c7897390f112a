"""Name lookups that give up at a deadline, their answers reused for a few seconds."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from hookrelay.addresses import Resolver, ip_literal

# Name lookups of a BoundedLookups that may be running at once; lookups that hang each hold a thread until
# the system resolver gives up, so this bounds the threads they can take.
MAX_LOOKUPS_IN_FLIGHT = 32
# A name's answer serves the attempts of the next few seconds (a thread and a name server round trip
# each otherwise). It is vetted at each of them, and they connect to it: a name rebound meanwhile is
# only seen later, never connected to unvetted. At most MAX_REMEMBERED_LOOKUPS names, the oldest forgotten.
LOOKUP_REUSED_FOR_SECONDS = 10.0
MAX_REMEMBERED_LOOKUPS = 1024


class LookupTimedOut(Exception):
    """The endpoint's host did not resolve in time (before the attempt's deadline, at a send)."""


class BoundedLookups:
    """Name lookups that give up at a deadline: an attempt's, or the API's endpoint check's.

    getaddrinfo cannot be interrupted, so each lookup runs in a thread of its own that the attempt waits
    on until its deadline; a daemon thread, so that a hung lookup does not keep the process from exiting.
    At most MAX_LOOKUPS_IN_FLIGHT run at once: past that, a lookup waits for a slot within its deadline.
    An address literal asks no name server, so it is resolved in the attempt's thread; a name answered
    less than `reuse_seconds` (LOOKUP_REUSED_FOR_SECONDS) ago is not looked up again.
    """

    def __init__(self, resolver: Resolver, reuse_seconds: float | None = None):
        self._resolver = resolver
        self._reuse_seconds = LOOKUP_REUSED_FOR_SECONDS if reuse_seconds is None else reuse_seconds
        self._slots = threading.BoundedSemaphore(MAX_LOOKUPS_IN_FLIGHT)
        self._answers: dict[tuple[str, int], tuple[list[str], float]] = {}
        self._answers_lock = threading.Lock()

    def resolver_within(self, remaining: Callable[[], float]) -> Resolver:
        """A resolver that raises LookupTimedOut when a name is not resolved within `remaining()` seconds."""

        def resolve_in_time(host: str, port: int) -> list[str]:
            if ip_literal(host):
                return self._resolver(host, port)
            remembered = self._remembered(host, port)
            if remembered is not None:
                return remembered
            if not self._slots.acquire(timeout=remaining()):
                raise LookupTimedOut
            answer: Future[list[str]] = Future()
            threading.Thread(
                target=self._look_up, args=(answer, host, port), name="hookrelay-lookup", daemon=True
            ).start()
            try:
                addresses = answer.result(timeout=remaining())
            except TimeoutError:
                raise LookupTimedOut from None
            self._remember(host, port, addresses)
            return addresses

        return resolve_in_time

    def _remembered(self, host: str, port: int) -> list[str] | None:
        with self._answers_lock:
            addresses, until = self._answers.get((host, port), ([], 0.0))
        return addresses if addresses and time.monotonic() < until else None

    def _remember(self, host: str, port: int, addresses: list[str]) -> None:
        with self._answers_lock:
            self._answers.pop((host, port), None)  # re-added last: the oldest answers go first
            if len(self._answers) >= MAX_REMEMBERED_LOOKUPS:
                del self._answers[next(iter(self._answers))]
            self._answers[host, port] = (addresses, time.monotonic() + self._reuse_seconds)

    def _look_up(self, answer: Future[list[str]], host: str, port: int) -> None:
        try:
            answer.set_result(self._resolver(host, port))
        except Exception as error:
            answer.set_exception(error)
        finally:
            self._slots.release()
