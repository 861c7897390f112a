"""The local stack's moto servers keep a client's connection for its next request
(local.keep_alive_server): one handshake and one server thread per connection instead of per call,
with every answer whole and nothing of one request read as the next."""

import http.client
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from hookrelay_cli.local.keep_alive_server import KeepAliveWSGIServer
from hookrelay_cli.local.moto_servers import moto_app

Environ = dict[str, Any]


def echo(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers with what it was asked, except for /fail; reads no body unless the path is /read."""
    if environ["PATH_INFO"] == "/fail":
        raise RuntimeError("the app failed")
    body = environ["wsgi.input"].read() if environ["PATH_INFO"].startswith("/read") else b""
    answer = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "type": environ.get("CONTENT_TYPE"),
        "target": environ.get("HTTP_X_AMZ_TARGET"),
        "body": body.decode(),
        "port": environ["REMOTE_PORT"],
    }
    start_response("200 OK", [("Content-Type", "application/json"), ("Connection", "close")])
    return [json.dumps(answer).encode()]


@contextmanager
def served[Served: KeepAliveWSGIServer](server: Served) -> Iterator[Served]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def server() -> Iterator[KeepAliveWSGIServer]:
    with served(KeepAliveWSGIServer("127.0.0.1", 0, echo)) as serving:
        yield serving


def asked(connection: http.client.HTTPConnection, method: str, path: str, body: bytes = b"", **headers: str) -> Any:
    connection.request(method, path, body, headers)
    answer = connection.getresponse()
    return answer.status, answer.getheader("Connection"), answer.read()


def test_one_connection_serves_request_after_request(server: KeepAliveWSGIServer) -> None:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    answers = [
        asked(connection, "POST", "/read", b'{"TableName": "t"}', **{"Content-Type": "application/x-amz-json-1.0"}),
        asked(connection, "GET", "/path?x=1"),
        asked(connection, "PUT", "/read/again", b"second"),
    ]
    assert [(status, closing) for status, closing, _ in answers] == [(200, None)] * 3
    echoed = [json.loads(body) for _, _, body in answers]
    # The app asked to close, but the connection served all three: one client port.
    assert len({answer["port"] for answer in echoed}) == 1
    assert [(answer["method"], answer["path"], answer["body"]) for answer in echoed] == [
        ("POST", "/read", '{"TableName": "t"}'),
        ("GET", "/path", ""),
        ("PUT", "/read/again", "second"),
    ]
    assert echoed[0]["type"] == "application/x-amz-json-1.0"
    assert echoed[1]["query"] == "x=1"


def test_a_body_the_app_leaves_unread_is_not_read_as_the_next_request(server: KeepAliveWSGIServer) -> None:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    unread = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    status, _, _ = asked(connection, "POST", "/ignores-its-body", unread)
    status_after, _, body_after = asked(connection, "GET", "/next")
    assert (status, status_after) == (200, 200)
    assert json.loads(body_after)["path"] == "/next"


def test_a_path_reaches_the_app_as_wsgi_spells_it(server: KeepAliveWSGIServer) -> None:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    _, _, body = asked(connection, "GET", "/queue/%C3%A9t%C3%A9%20x")
    assert json.loads(body)["path"] == "/queue/été x".encode().decode("latin-1")


def test_a_chunked_body_is_refused_and_the_connection_closed(server: KeepAliveWSGIServer) -> None:
    # The whole request in one write: http.client sends the last chunk apart, and a server that has
    # already refused and closed the connection makes that write fail (EPIPE) on a loaded machine.
    answer = raw(server, b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n0\r\n\r\n")
    head = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")  # raw returns once the server closed
    assert head[0].startswith(b"HTTP/1.1 411 ") and b"Connection: close" in head[1:]


def test_an_app_that_fails_answers_500_and_the_server_serves_on(server: KeepAliveWSGIServer) -> None:
    failing = http.client.HTTPConnection(server.host, server.port, timeout=5)
    status, closing, _ = asked(failing, "GET", "/fail")
    assert (status, closing) == (500, "close")
    status, _, _ = asked(http.client.HTTPConnection(server.host, server.port, timeout=5), "GET", "/fine")
    assert status == 200


def raw(server: KeepAliveWSGIServer, request: bytes) -> bytes:
    """What the server writes for `request` until it closes the connection."""
    with socket.create_connection((server.host, server.port), timeout=5) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /x HTTP/2.0\r\n\r\n",
        b"GET /x\r\n\r\n",
        b"GET /x HTTP/1.1\r\nNo-Colon\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\n folded: onto Host\r\n\r\n",
        b"GET /x HTTP/1.1\r\nSpace : before the colon\r\n\r\n",
    ],
    ids=["version", "no version", "no colon", "folded", "space in the name"],
)
def test_a_request_an_http_1_1_server_cannot_parse_is_refused_and_closed(
    server: KeepAliveWSGIServer, request_head: bytes
) -> None:
    # Read to the connection's end: the server closed it.
    assert b"Error code: 400" in raw(server, request_head)


def test_too_many_headers_are_refused(server: KeepAliveWSGIServer) -> None:
    headers = b"".join(b"X-%d: y\r\n" % number for number in range(101))
    assert raw(server, b"GET /x HTTP/1.1\r\n" + headers + b"\r\n").startswith(b"HTTP/1.1 431 ")


def test_headers_reach_the_app_and_the_client_chooses_whether_the_connection_stays(
    server: KeepAliveWSGIServer,
) -> None:
    asked_twice = b"GET /a HTTP/1.1\r\nX-Amz-Target: first\r\nX-Amz-Target: second\r\n\r\n"
    # HTTP/1.0 closes after its answer unless asked to keep the connection, HTTP/1.1 when asked to close.
    for closing in [b"GET /b HTTP/1.0\r\n\r\n", b"GET /b HTTP/1.1\r\nConnection: close\r\n\r\n"]:
        answer = raw(server, asked_twice + closing + b"GET /never HTTP/1.1\r\n\r\n")
        bodies = [json.loads(part.split(b"\r\n\r\n", 1)[1]) for part in answer.split(b"HTTP/1.")[1:]]
        assert [(body["path"], body["target"]) for body in bodies] == [("/a", "first,second"), ("/b", None)]


class CountingConnections(KeepAliveWSGIServer):
    connections = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)


def test_botocore_calls_moto_over_one_connection() -> None:
    with served(CountingConnections("127.0.0.1", 0, moto_app())) as moto:
        sqs = boto3.client(
            "sqs",
            endpoint_url=f"http://{moto.host}:{moto.port}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        url = sqs.create_queue(QueueName=f"kept-{uuid.uuid4()}")["QueueUrl"]
        for number in range(20):
            sqs.send_message(QueueUrl=url, MessageBody=str(number))
        assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 10
        assert moto.connections == 1
