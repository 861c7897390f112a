"""The one way hookrelay sends a webhook: SSRF-checked, pinned to the vetted address, never redirected.

The endpoint's host is resolved (an answer reused for LOOKUP_REUSED_FOR_SECONDS) and vetted by
hookrelay.addresses at every send; the connection goes to the vetted address (no second lookup, so
DNS rebinding cannot swap in a private one) while TLS still sends SNI for, and verifies the
certificate against, the hostname. Connect timeout 5 s, and one wall-clock deadline of 15 s for the
whole attempt: lookup, connect, TLS, headers and body (the delivery function passes
HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS and HOOKRELAY_SEND_TIMEOUT_SECONDS).
The answer is asked for uncompressed and at most `max_response_bytes` of it is read. One keep-alive
pool of connections per container. Sent with urllib3 alone, which boto3 imports anyway: requests
would add its own imports to every cold start of the delivery function.
"""

import base64
import contextlib
import heapq
import itertools
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit, urlunsplit

from urllib3 import BaseHTTPResponse, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import Retry, Timeout

from hookrelay.addresses import (
    Endpoint,
    EndpointRefused,
    Resolver,
    ip_literal,
    parse_endpoint,
    resolve,
    vet_addresses,
)
from hookrelay.senders import AttemptResult, Request

CONNECT_TIMEOUT_SECONDS = 5.0
TOTAL_TIMEOUT_SECONDS = 15.0
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_BYTES = 1024
# Name lookups of a Transport that may be running at once; lookups that hang each hold a thread until
# the system resolver gives up, so this bounds the threads they can take.
MAX_LOOKUPS_IN_FLIGHT = 32
# A name's answer serves the attempts of the next few seconds (a thread and a name server round trip
# each otherwise). It is vetted at each of them, and they connect to it: a name rebound meanwhile is
# only seen later, never connected to unvetted. At most MAX_REMEMBERED_LOOKUPS names, the oldest forgotten.
LOOKUP_REUSED_FOR_SECONDS = 10.0
MAX_REMEMBERED_LOOKUPS = 1024
# Connections kept alive: to this many receivers, this many to each (a batch's sends run at once).
KEPT_ALIVE_RECEIVERS = 32
KEPT_ALIVE_PER_RECEIVER = 32
# No retry within an attempt (the retry schedule is the delivery's); an error that comes once data may
# have reached the receiver is raised as itself, any other wrapped in a MaxRetryError.
_NO_RETRY = Retry(0, read=False)
READ_CHUNK_BYTES = 4096

# The CA bundle receivers' certificates are checked against: certifi's, as requests and botocore use,
# when installed (the layer ships it); the system's otherwise.
DEFAULT_CA_BUNDLE: str | None
try:
    from certifi import where
except ImportError:
    DEFAULT_CA_BUNDLE = None
else:
    DEFAULT_CA_BUNDLE = where()


class _Deadline:
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
    def current(cls) -> "_Deadline":
        deadline: _Deadline = cls._current.deadline
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
                _shut_down(duplicate)

    def stop(self) -> None:
        """No socket is shut down after this: a connection about to go back to the pool must stay usable."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _WATCHDOG.forget(self)

    def expire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._expired = True
            for sock in self._watched:
                _shut_down(sock)

    def __enter__(self) -> Self:
        self._current.deadline = self
        _WATCHDOG.watch(self)
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


class _Watchdog:
    """One thread that expires every attempt's deadline when it comes.

    A timer thread per attempt cost more than the rest of the transport's own work; this thread sleeps
    until the earliest deadline and is woken only when an earlier one is added, which in a steady
    stream of attempts with the same timeout is never.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        # (at, sequence, deadline): the sequence orders deadlines due at the same moment.
        self._due: list[tuple[float, int, _Deadline]] = []
        self._entries: dict[_Deadline, tuple[float, int, _Deadline]] = {}
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

    def watch(self, deadline: _Deadline) -> None:
        entry = (deadline.at, next(self._sequence), deadline)
        with self._changed:
            heapq.heappush(self._due, entry)
            self._entries[deadline] = entry
            if deadline.at < self._wakes_at:
                self._changed.notify()

    def forget(self, deadline: _Deadline) -> None:
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


_WATCHDOG = _Watchdog()


def _shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the peer may have closed it already
        sock.shutdown(socket.SHUT_RDWR)


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


class _WatchedConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _Deadline.current().watch(sock)
        return sock


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    """A pool whose connections are watched by the deadline of the attempt using them, kept-alive ones too."""

    ConnectionCls = _WatchedConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        # A kept-alive connection is already connected: watch its socket now (a new one is, when it connects).
        sock = getattr(connection, "sock", None)
        if sock is not None:
            _Deadline.current().watch(sock)
        return connection


class _WatchedHTTPSPool(_WatchedPool, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class Transport:
    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = resolve,
        verify: bool | str = True,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        total_timeout: float = TOTAL_TIMEOUT_SECONDS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        _WATCHDOG.start()
        self._allow_private = allow_private
        self._lookups = BoundedLookups(resolver)
        self._trust = _trust(verify)
        self._connect_timeout = connect_timeout
        self._total_timeout = total_timeout
        self._max_response_bytes = max_response_bytes
        # A PoolManager goes through no proxy (and reads none from the environment): a proxy would connect
        # elsewhere than the vetted address.
        self._pools = PoolManager(num_pools=KEPT_ALIVE_RECEIVERS, maxsize=KEPT_ALIVE_PER_RECEIVER)
        self._pools.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}

    @property
    def deadline_seconds(self) -> float:
        """The longest a send takes: it is ended at this deadline, whatever it is doing."""
        return self._total_timeout

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """Send within this transport's own deadline."""
        return self.send(Request(url, body, headers), self._total_timeout)

    def send(self, request: Request, deadline_seconds: float) -> AttemptResult:
        """The web Sender: POST `request` to its http(s) endpoint, whatever it answers within the deadline."""
        with _Deadline(deadline_seconds) as deadline:
            try:
                endpoint = parse_endpoint(request.endpoint, allow_plain_http=self._allow_private)
            except EndpointRefused as refusal:
                return AttemptResult(None, deadline.elapsed_ms(), error=f"refused: endpoint {refusal}")
            resolver = self._lookups.resolver_within(deadline.remaining)
            try:
                if self._allow_private:
                    addresses = resolver(endpoint.host, endpoint.port)
                else:
                    addresses = vet_addresses(endpoint, resolver)
            except LookupTimedOut:
                return AttemptResult(None, deadline.elapsed_ms(), error="timeout: name lookup", timed_out=True)
            except EndpointRefused as refusal:
                return AttemptResult(None, deadline.elapsed_ms(), error=f"refused: endpoint {refusal}")
            except (socket.gaierror, UnicodeError) as error:
                return AttemptResult(
                    None, deadline.elapsed_ms(), error=f"dns: {endpoint.host} does not resolve ({error})"
                )
            return self._send(endpoint, addresses[0], request.body, request.headers, deadline)

    def _send(
        self,
        endpoint: Endpoint,
        address: str,
        body: bytes,
        headers: Mapping[str, str],
        deadline: _Deadline,
    ) -> AttemptResult:
        scheme, host, port = endpoint.scheme, endpoint.host, endpoint.port
        parts = urlsplit(endpoint.url)
        default_port = 443 if scheme == "https" else 80
        sent_headers = {
            # What requests sent, unless the subscription's headers say otherwise: some receivers' firewalls
            # count a request without it as a bot's.
            "Accept": "*/*",
            **headers,
            # A compressed answer can expand far beyond the bytes read (a decompression bomb).
            "Accept-Encoding": "identity",
            "Host": host if port == default_port else f"{host}:{port}",
        }
        if parts.username:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            sent_headers["Authorization"] = _basic_authorization(credentials)
        remaining = deadline.remaining()
        if not remaining:  # the lookup took it all
            return AttemptResult(None, deadline.elapsed_ms(), error="timeout: name lookup", timed_out=True)
        # The pool connects to the vetted address; TLS sends SNI for, and checks the certificate against, the host.
        tls = {**self._trust, "server_hostname": host, "assert_hostname": host} if scheme == "https" else {}
        # An IPv6 address in brackets, as in a URL: urllib3 refuses a scoped one (fe80::1%eth0) without.
        pool_host = f"[{address}]" if ":" in address else address
        try:
            pool = self._pools.connection_from_host(pool_host, port, scheme, pool_kwargs=tls)
            response = pool.urlopen(
                "POST",
                urlunsplit(("", "", parts.path or "/", parts.query, "")),
                body=body,
                headers=sent_headers,
                retries=_NO_RETRY,
                redirect=False,
                assert_same_host=False,
                # Each socket operation's bounds; the deadline's watch bounds them all together.
                timeout=Timeout(connect=min(self._connect_timeout, remaining), read=remaining),
                preload_content=False,
                decode_content=False,
            )
        except HTTPError as error:
            return _failure(error, deadline)
        content, whole = self._read(response)
        deadline.stop()
        timed_out = deadline.passed
        if timed_out or not whole:
            # Its socket may be shut down, or the rest of the answer is unread: closed, never reused.
            response.close()
        response.release_conn()
        excerpt = content[:EXCERPT_BYTES].decode("utf-8", errors="replace")
        if timed_out:
            return AttemptResult(None, deadline.elapsed_ms(), excerpt, error="timeout: answer too slow", timed_out=True)
        redirect = f"redirect: {response.status} not followed" if 300 <= response.status < 400 else None
        return AttemptResult(
            response.status,
            deadline.elapsed_ms(),
            excerpt,
            error=redirect,
            retry_after=response.headers.get("Retry-After"),
        )

    def _read(self, response: BaseHTTPResponse) -> tuple[bytes, bool]:
        """At most max_response_bytes (and a chunk) of the answer, and whether that is all of it.

        Cut short when the deadline shuts the connection down. Decompressed, if the receiver compressed
        it all the same, a bounded chunk at a time.
        """
        content = b""
        with contextlib.suppress(HTTPError):
            for chunk in response.stream(READ_CHUNK_BYTES, decode_content=True):
                content += chunk
                if len(content) >= self._max_response_bytes:
                    return content, False
            return content, True
        return content, False


def _basic_authorization(credentials: str) -> str:
    """`user:password` as basic authentication: latin-1, as requests sent it and most receivers decode it;
    what latin-1 cannot encode in RFC 7617's UTF-8 (an endpoint's credentials are never refused here)."""
    try:
        encoded = credentials.encode("latin-1")
    except UnicodeEncodeError:
        encoded = credentials.encode("utf-8")
    return "Basic " + base64.b64encode(encoded).decode("ascii")


def _trust(verify: bool | str) -> dict[str, Any]:
    """How a receiver's certificate is checked: against a CA bundle (its path, or the default), or not at all."""
    if verify is False:
        return {"cert_reqs": "CERT_NONE"}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": DEFAULT_CA_BUNDLE if verify is True else verify}


def _failure(error: HTTPError, deadline: _Deadline) -> AttemptResult:
    """The attempt's error class, from what urllib3 raised before the answer's status came."""
    cause = error.reason if isinstance(error, MaxRetryError) else error
    if isinstance(cause, ConnectTimeoutError) and not isinstance(cause, NewConnectionError):
        return AttemptResult(None, deadline.elapsed_ms(), error="timeout: connect", timed_out=True)
    if deadline.passed or isinstance(cause, ReadTimeoutError):
        return AttemptResult(None, deadline.elapsed_ms(), error="timeout: no answer", timed_out=True)
    if isinstance(cause, SSLError):
        return AttemptResult(None, deadline.elapsed_ms(), error=f"tls: {_reason(error)}")
    return AttemptResult(None, deadline.elapsed_ms(), error=f"connection: {_reason(error)}")


def _reason(error: Exception) -> str:
    return str(error).rpartition("(Caused by")[2].strip(" )")[:300] or type(error).__name__
