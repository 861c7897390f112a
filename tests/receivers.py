"""Real webhook receivers on 127.0.0.1 for tests: HTTP or HTTPS (a trustme test CA), scripted answers."""

import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


Script = Callable[[Received], Answer]
# Called with every request any receiver gets (the e2e session remembers the signatures it saw).
observers: list[Callable[[Received], None]] = []


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.received: list[Received] = []
        self.server_names: list[str | None] = []
        # Every TCP connection accepted, whether or not a request followed: "no connection made" is 0.
        self.connections = 0

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

        def remember_server_name(sock: ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
            sock.hookrelay_server_name = name  # type: ignore[attr-defined]

        context.sni_callback = remember_server_name
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
