"""The local stack's moto, in two processes so that their CPU runs on two cores: DynamoDB, which the
stack's functions call most (moto's UpdateItem parses and validates each expression), is served by a
moto server in a child process; SQS, EventBridge (whose rules send to SQS: they share moto's
backends) and every other service by the server of the process that starts it.

The stack's own clients and its containers reach the child directly (AWS_ENDPOINT_URL_DYNAMODB);
the main server forwards every DynamoDB request it gets (X-Amz-Target DynamoDB_20120810.*) to the
child, so that outside tools (the CLI's --local, the tests) keep using the one endpoint it prints.

The child ends when its parent does, however the parent ends: it waits for the end of its stdin,
the pipe only its parent holds. It runs in a process group of its own, which a Ctrl-C in the terminal
does not reach (its parent's functions still write during the stop).
"""

import http.client
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import LISTEN_QUEUE

from hookrelay_cli.local.dynamodb import DynamoDBRules, enforce_dynamodb_rules
from hookrelay_cli.local.keep_alive_server import KeepAliveWSGIServer
from hookrelay_cli.local.moto_costs import keep_collections_short, keep_moto_costs_flat

DYNAMODB_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_DYNAMODB"
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."
# What a forwarded request may take: botocore's own read timeout.
FORWARD_TIMEOUT_SECONDS = 60
# The child has nothing to finish: it only answers requests.
CHILD_STOP_TIMEOUT_SECONDS = 5
# The werkzeug server of the main process sets these itself; a forwarded answer must not repeat them.
_NOT_FORWARDED_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "server", "date"})

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MotoServer:
    """A moto server on a thread of this process, its requests answered by `app`."""

    def __init__(self, host: str, port: int, app: WsgiApp, fd: int | None = None) -> None:
        self._server = KeepAliveWSGIServer(host, port, app, fd=fd)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


def moto_app() -> WsgiApp:
    return DomainDispatcherApplication(create_backend_app)


class DynamoDBForwarding:
    """moto's app, but for DynamoDB requests, which it forwards to the DynamoDB server at `endpoint`."""

    def __init__(self, app: WsgiApp, endpoint: str) -> None:
        self._app = app
        address = urlsplit(endpoint)
        self._host, self._port = address.hostname or "127.0.0.1", address.port

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(DYNAMODB_TARGET_PREFIX):
            return self._app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {name[5:].replace("_", "-"): value for name, value in environ.items() if name.startswith("HTTP_")}
        headers["CONTENT-TYPE"] = environ.get("CONTENT_TYPE", "")
        path = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
        connection = http.client.HTTPConnection(self._host, self._port, timeout=FORWARD_TIMEOUT_SECONDS)
        try:
            connection.request(environ["REQUEST_METHOD"], path, body, headers)
            answer = connection.getresponse()
            payload = answer.read()
        finally:
            connection.close()
        start_response(
            f"{answer.status} {answer.reason}",
            [(name, value) for name, value in answer.getheaders() if name.lower() not in _NOT_FORWARDED_HEADERS],
        )
        return [payload]


class DynamoDBProcess:
    """A moto server for DynamoDB in a child process, under `rules` (local.dynamodb).

    Its socket is opened here and handed to the child, so that its endpoint is known at once and
    the requests made while the child still imports moto wait in the socket's queue; a child that
    has died refuses them.
    """

    def __init__(self, rules: DynamoDBRules) -> None:
        with socket.create_server(("127.0.0.1", 0), backlog=LISTEN_QUEUE) as listening:
            self.endpoint = f"http://127.0.0.1:{listening.getsockname()[1]}"
            self._process = subprocess.Popen(  # noqa: S603 - this interpreter, this module
                [sys.executable, "-m", __name__, str(listening.fileno()), rules.to_json()],
                stdin=subprocess.PIPE,
                pass_fds=[listening.fileno()],
                process_group=0,
            )

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=CHILD_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def main() -> None:
    """The child: serve DynamoDB on the socket it was handed until its stdin ends."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    listening_fd, rules = int(sys.argv[1]), DynamoDBRules.from_json(sys.argv[2])
    enforce_dynamodb_rules(rules)
    keep_moto_costs_flat()
    keep_collections_short()
    server = MotoServer("127.0.0.1", 0, moto_app(), fd=listening_fd)
    server.start()
    sys.stdin.read()


if __name__ == "__main__":
    main()
