"""The API contract over real HTTP against `hookrelay local up`."""

import http.client
import json
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

import pytest
import requests

from api_client import ApiClient, ApiResponse
from api_contract import *  # noqa: F403 - the shared contract tests run here too
from api_contract import assert_problem
from e2e.conftest import DEV_KEY, RunningStack

pytestmark = pytest.mark.e2e


def test_printed_dev_key_works(local_stack: RunningStack) -> None:
    assert any(DEV_KEY in line for line in local_stack.output)
    response = requests.get(
        f"{local_stack.url}/v3/webhooks", headers={"Authorization": f"Bearer {DEV_KEY}"}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["meta"] == {"next_cursor": None}


def test_cli_help(local_stack: RunningStack) -> None:
    for command in ([], ["keys"], ["keys", "create"], ["local"], ["local", "up"], ["local", "invoke"]):
        result = local_stack.hookrelay(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage: hookrelay" in result.stdout


def test_keys_create_cli_makes_a_working_key(local_stack: RunningStack) -> None:
    key = local_stack.create_key_with_cli("cli-team")
    assert key.startswith("hr_")
    response = requests.get(f"{local_stack.url}/v3/webhooks", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 200


def test_key_for_a_bad_team_id_is_refused(local_stack: RunningStack) -> None:
    result = local_stack.hookrelay(
        "keys", "create", "--team", "a b", "--local", "--aws-endpoint", local_stack.aws_endpoint
    )
    assert result.returncode == 2
    assert "team id" in result.stderr


def test_api_gateway_answers_for_unrouted_paths(api: ApiClient) -> None:
    response = api.get("/")
    assert response.status == 404
    assert response.json() == {"message": "Not Found"}


def raw_http(stack: RunningStack, method: str, path: str, body: bytes | Iterable[bytes] | None = None) -> ApiResponse:
    """One request as http.client writes it: any method, and a body given in pieces goes chunked
    (Transfer-Encoding: chunked, no Content-Length), which requests would not send for TRACE or CONNECT."""
    address = urlsplit(stack.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {DEV_KEY}", "Content-Type": "application/json"}
        connection.request(method, path, body=body, headers=headers, encode_chunked=not isinstance(body, bytes))
        response = connection.getresponse()
        return ApiResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO"])
def test_any_other_method_on_a_known_route_is_a_405_problem(local_stack: RunningStack, method: str) -> None:
    response = raw_http(local_stack, method, "/v3/webhooks")
    assert_problem(response, 405)
    assert response.headers.get("allow") == "GET, POST"


def test_any_other_method_on_no_route_is_api_gateways_404(local_stack: RunningStack) -> None:
    response = raw_http(local_stack, "TRACE", "/")
    assert response.status == 404
    assert response.json() == {"message": "Not Found"}


def test_a_chunked_body_is_read_whole(local_stack: RunningStack) -> None:
    event_id = str(uuid.uuid4())
    document = json.dumps({"event_name": "signer.done", "event_id": event_id, "data": {"note": "x" * 200_000}}).encode()
    pieces = [document[start : start + 65_536] for start in range(0, len(document), 65_536)]
    response = raw_http(local_stack, "POST", "/v3/events", body=pieces)
    assert response.status == 202, response.body
    assert response.json() == {"event_id": event_id}


def test_a_chunked_body_over_10_mb_is_api_gateways_413(local_stack: RunningStack) -> None:
    piece = b"x" * 1024 * 1024
    response = raw_http(local_stack, "POST", "/v3/events", body=[piece] * 11)
    assert response.status == 413
    assert response.json() == {"message": "Request Entity Too Large"}


def test_a_body_lambda_cannot_take_is_api_gateways_500_not_the_apis_413(local_stack: RunningStack) -> None:
    # Over Lambda's 6 MB invocation payload, with the event around it: the function never runs.
    response = raw_http(local_stack, "POST", "/v3/events", body=b"x" * (7 * 1024 * 1024))
    assert response.status == 500
    assert response.json() == {"message": "Internal Server Error"}
    # Under it, the API refuses the body itself.
    assert_problem(raw_http(local_stack, "POST", "/v3/events", body=b"x" * (5 * 1024 * 1024)), 413)
