import json
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hookrelay_cli.local.functions import LocalFunction
from hookrelay_cli.template import FunctionSpec

# Two containers load this handler each, as two API containers load functions/api/app.py; `gate` (Gate) is
# one module for both, so that the test can hold one request in its route while the other is answered.
HANDLER = """
import gate
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

app = APIGatewayHttpResolver()


@app.post("/echo")
def echo() -> dict:
    if app.current_event.json_body["held"]:
        gate.inside.set()
        gate.released.wait(5)
    return {"body": app.current_event.json_body}


def lambda_handler(event, context):
    return app.resolve(event, context)
"""


class Gate(ModuleType):
    """The module `gate` of the handler: where one request waits in its route until the other is answered."""

    def __init__(self) -> None:
        super().__init__("gate")
        self.inside = threading.Event()
        self.released = threading.Event()


def request(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A payload 2.0 event, as the local gateway makes them."""
    return {
        "version": "2.0",
        "routeKey": "POST /echo",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": path}, "stage": "$default"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def test_two_in_process_containers_resolving_at_once_each_answer_their_own_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "echo.py").write_text(HANDLER)
    gate = Gate()
    monkeypatch.setitem(sys.modules, "gate", gate)
    spec = FunctionSpec("EchoFunction", tmp_path, "echo", "lambda_handler", {}, 10, "EchoRole")
    first, second = LocalFunction(spec, container=0), LocalFunction(spec, container=1)
    answers: dict[str, Any] = {}
    held = threading.Thread(target=lambda: answers.update(held=first.invoke(request("/echo", {"held": True}))))
    held.start()
    try:
        assert gate.inside.wait(5)
        answers["other"] = second.invoke(request("/echo", {"held": False}))
    finally:
        gate.released.set()
        held.join(5)
    assert json.loads(answers["other"]["body"])["body"] == {"held": False}
    assert json.loads(answers["held"]["body"])["body"] == {"held": True}


def test_a_handler_imports_the_modules_beside_it_as_on_lambda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lambda runs a handler with its code's directory on the import path: the API's app.py imports its routes/.
    (tmp_path / "beside_the_handler").mkdir()
    (tmp_path / "beside_the_handler" / "__init__.py").write_text("")
    (tmp_path / "beside_the_handler" / "answers.py").write_text("ANSWER = {'statusCode': 204}\n")
    (tmp_path / "handler.py").write_text(
        "from beside_the_handler.answers import ANSWER\n\n\ndef lambda_handler(event, context):\n    return ANSWER\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = FunctionSpec("BesideFunction", tmp_path, "handler", "lambda_handler", {}, 10, "BesideRole")
    try:
        assert LocalFunction(spec).invoke({}) == {"statusCode": 204}
    finally:
        for name in ("beside_the_handler.answers", "beside_the_handler"):
            sys.modules.pop(name, None)
