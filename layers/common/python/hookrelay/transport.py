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
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from urllib3 import BaseHTTPResponse, HTTPHeaderDict, PoolManager
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
    parse_endpoint,
    resolve,
    vet_addresses,
)
from hookrelay.deadlines import WATCHDOG, Deadline
from hookrelay.lookups import BoundedLookups, LookupTimedOut
from hookrelay.records import EXCERPT_BYTES, utf8_start
from hookrelay.senders import AttemptResult, Request

CONNECT_TIMEOUT_SECONDS = 5.0
TOTAL_TIMEOUT_SECONDS = 15.0
MAX_RESPONSE_BYTES = 64 * 1024
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


class _WatchedConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        Deadline.current().watch(sock)
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
            Deadline.current().watch(sock)
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
        WATCHDOG.start()
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
        with Deadline(deadline_seconds) as deadline:
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
        deadline: Deadline,
    ) -> AttemptResult:
        scheme, host, port = endpoint.scheme, endpoint.host, endpoint.port
        parts = urlsplit(endpoint.url)
        default_port = 443 if scheme == "https" else 80
        # One header per name, whatever the case it is written in: a later one replaces an earlier one.
        # Accept is what requests sent, unless the subscription's headers say otherwise: some receivers'
        # firewalls count a request without it as a bot's.
        sent_headers = HTTPHeaderDict({"Accept": "*/*"})
        sent_headers.update(headers)
        # A compressed answer can expand far beyond the bytes read (a decompression bomb).
        sent_headers["Accept-Encoding"] = "identity"
        sent_headers["Host"] = _bracketed(host) + ("" if port == default_port else f":{port}")
        if parts.username:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            sent_headers["Authorization"] = _basic_authorization(credentials)
        remaining = deadline.remaining()
        if not remaining:  # the lookup took it all
            return AttemptResult(None, deadline.elapsed_ms(), error="timeout: name lookup", timed_out=True)
        # The pool connects to the vetted address; TLS sends SNI for (none for an address literal), and checks
        # the certificate against, the host.
        tls = {**self._trust, "server_hostname": host, "assert_hostname": host} if scheme == "https" else {}
        try:
            # urllib3 refuses a scoped IPv6 address (fe80::1%eth0) without its brackets.
            pool = self._pools.connection_from_host(_bracketed(address), port, scheme, pool_kwargs=tls)
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
        excerpt = _excerpt(content)
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


def _bracketed(host: str) -> str:
    """The host as a URL or the Host header writes it: an IPv6 address in brackets (RFC 3986 IP-literal)."""
    return f"[{host}]" if ":" in host else host


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


def _excerpt(content: bytes) -> str:
    """The answer's start, at most EXCERPT_BYTES once encoded in UTF-8 (SPEC §4, and an attempt's bounded
    share of its record): each sequence that is not UTF-8 shows as U+FFFD (3 bytes), and a character the
    cut would split is left out."""
    return utf8_start(content[:EXCERPT_BYTES].decode("utf-8", errors="replace"), EXCERPT_BYTES)


def _failure(error: HTTPError, deadline: Deadline) -> AttemptResult:
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
