"""Real webhook receivers on 127.0.0.1 for tests: HTTP or HTTPS (a trustme test CA), scripted answers."""

import itertools
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    server_name: str | None
    client_port: int


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    # No answer at all: after delay_seconds, the connection is closed with a TCP reset (RST).
    reset: bool = False
    # The body is sent one byte at a time, a byte every trickle_seconds (0: all at once).
    trickle_seconds: float = 0.0


Script = Callable[[Received], Answer]
# Called with every request any receiver gets (the e2e session remembers the signatures it saw).
observers: list[Callable[[Received], None]] = []


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    # Connections wait here while the accept loop lags (a loaded machine): a batch's sends arrive at once.
    request_queue_size = 128

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.received: list[Received] = []
        self.server_names: list[str | None] = []
        # Every TCP connection accepted, whether or not a request followed: "no connection made" is 0.
        self.connections = 0
        # Set when the receiver stops: an answer still being trickled ends there.
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        self.connections += 1
        return super().get_request()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that gave up (timed out) closed the connection before the answer: not an error here.
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's algorithm and the client's
    # delayed ACK add 40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server_name = getattr(self.connection, "hookrelay_server_name", None)
        request = Received(
            self.command, self.path, dict(self.headers.items()), body, server_name, self.client_address[1]
        )
        self.server.received.append(request)
        for observe in observers:
            observe(request)
        answer = self.server.script(request)
        time.sleep(answer.delay_seconds)
        if answer.reset:
            self._reset()
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.trickle_seconds:
            for byte in answer.body:
                if self.server.stopping.wait(answer.trickle_seconds):
                    return
                self.wfile.write(bytes([byte]))
        else:
            self.wfile.write(answer.body)

    def _reset(self) -> None:
        """Close the connection with RST: a zero linger time, and the socket closed before any FIN."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        # The socket closes for real once its last file object does (the request reader's).
        self.rfile.close()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def receiver(
    script: Script = lambda _: Answer(), tls_for: str | None = None, ca: trustme.CA | None = None
) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1; with `tls_for`, HTTPS with a certificate for that name from `ca`."""
    server = Receiver(script)
    if tls_for:
        assert ca is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(tls_for).configure_cert(context)

        def remember_server_name(sock: ssl.SSLSocket | ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            sock.hookrelay_server_name = name  # type: ignore[union-attr]

        context.sni_callback = remember_server_name
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with _serving(server):
        yield server


class RawReceiver(socketserver.ThreadingTCPServer):
    """A TCP receiver that answers every connection, whatever it sends, with raw bytes: `head` at once,
    then `stream` in `chunk_bytes` pieces every `interval_seconds` until the sender closes or the stream ends.
    """

    daemon_threads = True

    def __init__(self, head: bytes, stream: Callable[[], Iterable[int]], interval_seconds: float, chunk_bytes: int):
        super().__init__(("127.0.0.1", 0), _RawHandler)
        self.head, self.stream = head, stream
        self.interval_seconds, self.chunk_bytes = interval_seconds, chunk_bytes
        self.stopping = threading.Event()
        # Bytes of the stream written so far, all connections together.
        self.sent = 0

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _RawHandler(socketserver.BaseRequestHandler):
    server: RawReceiver

    def handle(self) -> None:
        stream = iter(self.server.stream())
        try:
            self.request.sendall(self.server.head)
            while chunk := bytes(itertools.islice(stream, self.server.chunk_bytes)):
                if self.server.stopping.wait(self.server.interval_seconds):
                    return
                self.request.sendall(chunk)
                self.server.sent += len(chunk)
        except OSError:
            return  # the sender gave up and closed the connection


@contextmanager
def raw_receiver(
    head: bytes, stream: Callable[[], Iterable[int]] = tuple, interval_seconds: float = 0.0, chunk_bytes: int = 65536
) -> Iterator[RawReceiver]:
    with _serving(RawReceiver(head, stream, interval_seconds, chunk_bytes)) as server:
        yield server


@contextmanager
def _serving[Server: Receiver | RawReceiver](server: Server) -> Iterator[Server]:
    """Serve in a thread of its own; at the end, stop answers still being trickled, then the server."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


# Per part of an answer: what a trickling receiver sends at once, then what it sends a byte at a time without
# end. (A trickled body, after a whole status line and headers, is an Answer's trickle_seconds.)
TRICKLED_PARTS = {
    # A TLS handshake record header announcing 16 KiB, whose bytes never all come.
    "tls handshake": (b"\x16\x03\x03\x40\x00", lambda: itertools.repeat(0)),
    "status line": (b"", lambda: itertools.chain(b"HTTP/1.1 200 ", itertools.repeat(ord("K")))),
    "headers": (b"HTTP/1.1 200 OK\r\n", lambda: itertools.chain(b"X-Trickle: ", itertools.repeat(ord("a")))),
}


def trickling_receiver(part: str, interval_seconds: float = 0.25) -> AbstractContextManager[RawReceiver]:
    """A receiver that holds one part of its answer (a key of TRICKLED_PARTS) for ever, a byte at a time.

    Each byte keeps a socket read timeout from firing, so only a deadline on the whole attempt ends it.
    """
    head, stream = TRICKLED_PARTS[part]
    return raw_receiver(head, stream, interval_seconds, chunk_bytes=1)
