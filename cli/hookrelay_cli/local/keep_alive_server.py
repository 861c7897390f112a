"""A threaded WSGI server whose connections serve one request after another (HTTP/1.1 keep-alive).

werkzeug's development server closes every connection after its answer, and drains the socket
afterwards (which would swallow a kept connection's next request), so that each AWS call of the local
stack paid a TCP handshake, a new thread on the server and a new connection in botocore's pool. The
stack's clients are botocore, the AWS CLI and the tests' requests sessions: every request body comes
with a Content-Length, which this server reads in full before the app runs. A chunked body is refused
(411), as are requests an HTTP/1.1 server cannot parse: a request line other than HTTP/1.0 or 1.1, a
header line without a colon or folded onto the next (400), too long or too many (431).
"""

import io
import logging
import socket
import sys
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from werkzeug.serving import LISTEN_QUEUE

_log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Headers the server sets itself from the answer it writes.
_SERVER_HEADERS = frozenset({"content-length", "connection", "transfer-encoding", "keep-alive"})
# http.client's limits on a request's header lines.
_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100


class _BadHeaders(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class KeepAliveWSGIServer(ThreadingHTTPServer):
    """Serves `app` on (host, port), or on the listening socket `fd` when given, a thread per connection."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_QUEUE  # as the DynamoDB child's socket, opened by its parent, listens

    def __init__(self, host: str, port: int, app: WsgiApp, fd: int | None = None) -> None:
        self.app = app
        super().__init__((host, port), _KeepAliveHandler, bind_and_activate=fd is None)
        if fd is not None:
            self.socket.close()
            self.socket = socket.socket(fileno=fd)
            self.server_address = self.socket.getsockname()

    @property
    def host(self) -> str:
        return str(self.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An answer's head and body leave in one segment (buffered, flushed after each request), at once:
    # Nagle's algorithm would hold a second segment for the client's delayed ACK, 40 ms a call.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: KeepAliveWSGIServer
    raw_requestline: bytes  # set by http.server's handle_one_request

    def parse_request(self) -> bool:
        """The request line and headers. http.server reads headers with the email package's parser, a
        fifth of the CPU of a DynamoDB call in the stack's servers; they are plain lines here."""
        self.command = ""
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line {' '.join(words)!r}")
            return False
        self.command, self.path, self.request_version = words
        try:
            self.headers = _headers(self.rfile)
        except _BadHeaders as refused:
            self.send_error(refused.status, str(refused))
            return False
        connection = self.headers.get("Connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if self.request_version == "HTTP/1.1" and self.headers.get("Expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def _answer(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "a Content-Length is required")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "Content-Length is not a number")
            return
        body = self.rfile.read(length)
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started[:] = [(status, headers)]
            return lambda data: None  # the app's iterable is the whole answer: no app of this stack writes

        try:
            answer = self.server.app(self._environ(body), start_response)
            try:
                payload = b"".join(answer)
            finally:
                if hasattr(answer, "close"):
                    answer.close()
        except Exception:
            _log.exception("%s %s failed", self.command, self.path)
            self.send_error(500)
            return
        status, headers = started[0]
        code, _, reason = status.partition(" ")
        self.send_response_only(int(code), reason)
        for name, value in headers:
            if name.lower() not in _SERVER_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def _environ(self, body: bytes) -> dict[str, Any]:
        target = urlsplit(self.path)
        environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            # WSGI's str of bytes: the path's UTF-8 bytes, each as one latin-1 character.
            "PATH_INFO": unquote_to_bytes(target.path).decode("latin-1"),
            "QUERY_STRING": target.query,
            "REQUEST_URI": self.path,
            "RAW_URI": self.path,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": self.client_address[1],
            "SERVER_NAME": self.server.host,
            "SERVER_PORT": str(self.server.port),
            "SERVER_PROTOCOL": self.request_version,
            "CONTENT_LENGTH": str(len(body)),
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_LENGTH":
                continue
            key = "CONTENT_TYPE" if key == "CONTENT_TYPE" else f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged (they are the stack's AWS calls); errors go to this module's logger."""

    def log_error(self, format: str, *args: Any) -> None:
        _log.warning("%s: " + format, self.address_string(), *args)


def _headers(lines: io.BufferedIOBase) -> HTTPMessage:
    """A request's header lines, up to the empty one, as http.server's handlers hold them."""
    headers = HTTPMessage()
    for _ in range(_MAX_HEADERS + 1):
        line = lines.readline(_MAX_HEADER_LINE + 1)
        if len(line) > _MAX_HEADER_LINE:
            raise _BadHeaders(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, colon, value = line.decode("iso-8859-1").partition(":")
        # A line that begins with a space folds a header onto the previous line, which RFC 9112 lets a
        # server refuse; no client of the stack sends one.
        if not colon or not name or name != name.strip():
            raise _BadHeaders(HTTPStatus.BAD_REQUEST, f"Bad header line {line!r}")
        headers[name] = value.strip()
    raise _BadHeaders(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
