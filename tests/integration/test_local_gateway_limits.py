"""Bodies Lambda cannot take: the local gateway refuses a request whose event is over Lambda's 6 MB
synchronous invocation payload as an HTTP API does (its bare 500), without invoking the function; every
body the API's own limit refuses still reaches the function, which answers its 413 problem."""

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hookrelay.http_api import MAX_BODY_BYTES
from hookrelay_cli.local.gateway import LAMBDA_SYNC_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES, Gateway, HttpRequest
from hookrelay_cli.template import FunctionSpec, RouteSpec

INTERNAL_SERVER_ERROR = (500, {"message": "Internal Server Error"})


class RecordingFunction:
    """Keeps the events it is invoked with, and answers 200."""

    container = 0

    def __init__(self) -> None:
        self.spec = FunctionSpec("ApiFunction", Path("functions/api"), "app", "lambda_handler", {}, 10, "ApiRole")
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: Any) -> Any:
        self.events.append(event)
        return {"statusCode": 200, "body": "invoked"}


@pytest.fixture
def function() -> RecordingFunction:
    return RecordingFunction()


def post(function: RecordingFunction, body: bytes) -> tuple[int, Any]:
    gateway = Gateway([(RouteSpec("ANY", "/{proxy+}", None), function)], {})
    answer = gateway.handle(
        HttpRequest("POST", "/v3/events", [("Content-Type", "application/json")], body, "127.0.0.1")
    )
    return answer.status, json.loads(answer.body) if answer.body.startswith(b"{") else answer.body.decode()


def event_bytes(event: dict[str, Any]) -> int:
    return len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def test_a_text_body_whose_event_is_over_6_mb_never_reaches_the_function(function: RecordingFunction) -> None:
    assert post(function, b"x" * LAMBDA_SYNC_PAYLOAD_BYTES) == INTERNAL_SERVER_ERROR
    assert function.events == []


def test_a_binary_body_under_6_mb_is_over_once_base64_encoded(function: RecordingFunction) -> None:
    body = b"\xff" * (5 * 1024 * 1024)  # not UTF-8: the event carries it in base64, 6.7 MB
    assert len(body) < LAMBDA_SYNC_PAYLOAD_BYTES < len(base64.b64encode(body))
    assert post(function, body) == INTERNAL_SERVER_ERROR
    assert function.events == []


def test_the_largest_text_body_lambda_takes_reaches_the_function(function: RecordingFunction) -> None:
    # The event's envelope without a body, then a body that brings it to the limit exactly.
    assert post(function, b"") == (200, "invoked")
    envelope = event_bytes(function.events[0]) + len(',"body":""')
    body = b"x" * (LAMBDA_SYNC_PAYLOAD_BYTES - envelope)

    assert post(function, body) == (200, "invoked")
    assert event_bytes(function.events[-1]) == LAMBDA_SYNC_PAYLOAD_BYTES
    assert post(function, body + b"x") == INTERNAL_SERVER_ERROR
    assert len(function.events) == 2


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_every_body_the_api_refuses_itself_reaches_it(function: RecordingFunction, kind: str) -> None:
    # Just over the API's own limit (its 413 problem), in its largest event form: base64 of random bytes.
    body = b"x" * (MAX_BODY_BYTES + 1) if kind == "text" else os.urandom(MAX_BODY_BYTES + 1)
    assert post(function, body) == (200, "invoked")
    assert event_bytes(function.events[0]) < LAMBDA_SYNC_PAYLOAD_BYTES < MAX_PAYLOAD_BYTES
