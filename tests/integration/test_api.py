"""The API contract through the real authorizer and api handlers, in-process, against moto."""

from collections.abc import Callable

import pytest

from api_client import ApiClient, ApiResponse
from api_contract import *  # noqa: F403 - the shared contract tests run here too
from hookrelay_cli.local.gateway import HttpRequest
from hookrelay_cli.local.stack import LocalStack


@pytest.fixture
def transport(stack: LocalStack) -> Callable[[str, str, dict[str, str], bytes], ApiResponse]:
    gateway = stack.gateway()

    def send(method: str, path: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        response = gateway.handle(HttpRequest(method, path, list(headers.items()), body, "127.0.0.1"))
        return ApiResponse(response.status, {name.lower(): value for name, value in response.headers}, response.body)

    return send


@pytest.fixture
def api(transport: Callable[..., ApiResponse], api_key: Callable[[str], str]) -> ApiClient:
    return ApiClient(transport, api_key("team-a"))


@pytest.fixture
def other_api(transport: Callable[..., ApiResponse], api_key: Callable[[str], str]) -> ApiClient:
    return ApiClient(transport, api_key("team-b"))
