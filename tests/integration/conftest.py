"""Handlers against moto, with the resources template.yaml declares."""

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from api_client import ApiClient, ApiResponse
from hookrelay import wiring
from hookrelay.api_keys import issue_key
from hookrelay.settings import get_settings
from hookrelay_cli.local.gateway import HttpRequest
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.local.workers import QueuePoller
from integration.injected_dynamodb import InjectedDynamoDB
from paths import EVENTS, TEMPLATE

# Names reserved for documentation and tests (RFC 2606, RFC 6761): the tests' public-looking endpoints.
RESERVED_SUFFIXES = (".example", ".test", ".invalid", "example.com", "example.net", "example.org")


@pytest.fixture(autouse=True)
def _reserved_names_resolve_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reserved name is not found at once, as RFC 6761 lets resolvers answer, instead of asking the
    machine's name server: under load its answer took over the API's 2 s lookup bound, and a create
    answered 422 "did not resolve within 2 s"."""
    system_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.lower().rstrip(".").endswith(RESERVED_SUFFIXES):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return system_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def stack(restore_environment: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    # Production behaviour: private endpoints are refused (the local stack's own default allows them).
    monkeypatch.setenv("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "false")
    with mock_aws():
        get_settings.cache_clear()
        yield LocalStack.create(TEMPLATE, aws_endpoint="moto")
    get_settings.cache_clear()


@pytest.fixture
def to_localhost(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The stack, allowed to send to receivers on 127.0.0.1 (read when the handler loads)."""
    monkeypatch.setenv("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "true")
    get_settings.cache_clear()
    return stack


@pytest.fixture
def api_key(stack: LocalStack) -> Callable[[str], str]:
    def create(team_id: str) -> str:
        return issue_key(wiring.api_key_store(get_settings()), team_id).key

    return create


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def sample_events() -> list[Path]:
    return sorted(EVENTS.glob("*.json"))


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


@pytest.fixture
def ingest(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> QueuePoller:
    """The stack's events-queue poller; a record that fails comes back at once, not after 180 s."""
    monkeypatch.setenv("HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS", "0")
    (poller,) = [p for p in stack.queue_pollers() if p.function_id == "IngestFunction"]
    return poller


@pytest.fixture
def injected_dynamodb(stack: LocalStack) -> Iterator[InjectedDynamoDB]:
    """Transaction conflicts and eventually consistent reads, off until the test sets them."""
    with InjectedDynamoDB().installed() as injected:
        yield injected
