"""The local gateway invokes a function as API Gateway does: a request that arrives while every
container of the function is busy gets a container of its own (Lambda scales out per concurrent
request) up to HOOKRELAY_LOCAL_GATEWAY_CONTAINERS, instead of waiting for the one container."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hookrelay_cli.local.gateway import GatewayResponse, HttpRequest
from hookrelay_cli.local.stack import PARAMETER_OVERRIDES_VARIABLE, LocalStack
from hookrelay_cli.template import FunctionSpec

WAIT_SECONDS = 10


class BlockingContainer:
    """A container that runs one invocation at a time, each held until `release` is set."""

    def __init__(self, spec: FunctionSpec, container: int, release: threading.Event, started: list[int]):
        self.spec = spec
        self.container = container
        self._release = release
        self._started = started
        self._lock = threading.Lock()

    def invoke(self, event: Any) -> Any:
        with self._lock:
            if event.get("type") == "REQUEST":
                return {"isAuthorized": True, "context": {"team_id": "acme"}}
            self._started.append(self.container)
            assert self._release.wait(WAIT_SECONDS)
            return {"statusCode": 200, "body": str(self.container)}


@pytest.fixture
def blocking_functions(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[int]]:
    """Every function of the stack made of BlockingContainers (the stack's own container is number 0)."""
    release, started = threading.Event(), list[int]()

    def container(function_id: str, number: int = 0) -> BlockingContainer:
        return BlockingContainer(stack.template.function(function_id), number, release, started)

    monkeypatch.setattr(stack, "function", container)
    stack.functions = {function_id: container(function_id) for function_id in stack.functions}
    return release, started


def wait_until_started(started: list[int], count: int) -> None:
    """Until `count` invocations have started (at most WAIT_SECONDS)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while len(started) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def request() -> HttpRequest:
    return HttpRequest("GET", "/v3/webhooks", [("Authorization", "Bearer k")], b"", "127.0.0.1")


def test_concurrent_requests_each_get_a_container(
    stack: LocalStack, blocking_functions: tuple[threading.Event, list[int]]
) -> None:
    release, started = blocking_functions
    gateway = stack.gateway()
    with ThreadPoolExecutor(3) as clients:
        answers = [clients.submit(gateway.handle, request()) for _ in range(3)]
        try:
            wait_until_started(started, 3)
            assert sorted(started) == [0, 1, 2]  # all three at once, each in a container of its own
        finally:
            release.set()
        responses: list[GatewayResponse] = [answer.result() for answer in answers]
    assert [response.status for response in responses] == [200, 200, 200]
    assert sorted(response.body for response in responses) == [b"0", b"1", b"2"]


def test_an_idle_container_is_used_again(
    stack: LocalStack, blocking_functions: tuple[threading.Event, list[int]]
) -> None:
    release, started = blocking_functions
    release.set()
    gateway = stack.gateway()
    assert [gateway.handle(request()).body for _ in range(3)] == [b"0", b"0", b"0"]
    assert started == [0, 0, 0]


def test_beyond_the_limit_a_request_waits_for_a_container(
    stack: LocalStack, blocking_functions: tuple[threading.Event, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKRELAY_LOCAL_GATEWAY_CONTAINERS", "2")
    release, started = blocking_functions
    gateway = stack.gateway()
    with ThreadPoolExecutor(3) as clients:
        answers = [clients.submit(gateway.handle, request()) for _ in range(3)]
        threading.Event().wait(1)
        assert sorted(started) == [0, 1]
        release.set()
        assert [answer.result().status for answer in answers] == [200, 200, 200]
    assert sorted(started) == [0, 0, 1] or sorted(started) == [0, 1, 1]


@pytest.mark.parametrize("value", ["0", "-1", "many", ""])
def test_a_wrong_number_of_gateway_containers_is_refused(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HOOKRELAY_LOCAL_GATEWAY_CONTAINERS", value)
    with pytest.raises(ValueError, match="HOOKRELAY_LOCAL_GATEWAY_CONTAINERS"):
        stack.gateway()


@pytest.fixture
def scaled_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's reserved concurrency and its stage's throttling scaled down (read when the stack starts)."""
    monkeypatch.setenv(
        PARAMETER_OVERRIDES_VARIABLE,
        "ApiReservedConcurrency=2 ApiThrottlingRateLimit=1 ApiThrottlingBurstLimit=3",
    )


def test_a_function_busy_at_its_reserved_concurrency_is_throttled_as_a_500(
    scaled_down: None, stack: LocalStack, blocking_functions: tuple[threading.Event, list[int]]
) -> None:
    release, started = blocking_functions
    gateway = stack.gateway()
    with ThreadPoolExecutor(2) as clients:
        answers = [clients.submit(gateway.handle, request()) for _ in range(2)]
        try:
            wait_until_started(started, 2)
            # Lambda refuses a third execution; API Gateway answers that as any invocation error.
            throttled = gateway.handle(request())
        finally:
            release.set()
        assert [answer.result().status for answer in answers] == [200, 200]
    assert (throttled.status, json.loads(throttled.body)) == (500, {"message": "Internal Server Error"})
    # Over its burst, the stage answers without invoking anything.
    stage = stack.gateway()
    answered = [stage.handle(request()) for _ in range(4)]
    assert [response.status for response in answered] == [200, 200, 200, 429]
    assert json.loads(answered[-1].body) == {"message": "Too Many Requests"}
    assert len(started) == 2 + 3
