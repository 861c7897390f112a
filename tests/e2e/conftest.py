"""The local stack as users run it: `hookrelay local up` in its own process, driven over HTTP."""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import boto3
import pytest
import requests
import standardwebhooks
import svix
from receivers import Received

from api_client import ApiClient, ApiResponse, Transport
from hookrelay.api_keys import issue_key
from hookrelay.store.api_keys import DynamoApiKeyStore
from hookrelay_cli.local.resources import default_name
from hookrelay_cli.local.stack import LOCAL_CREDENTIALS, LOCAL_STACK_NAME
from paths import REPO

READY = re.compile(r"hookrelay local stack ready on (http://\S+)")
AWS_ENDPOINT = re.compile(r"AWS endpoint \(moto\): (http://\S+)")
DEV_KEY = "hr_dev_e2e_key_0123456789"
LOCAL_SESSION = {
    "aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    "region_name": LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
}
START_TIMEOUT_SECONDS = 60
WAIT_SECONDS = 30


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    url: str
    aws_endpoint: str
    output: list[str] = field(default_factory=list)

    def hookrelay(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run the hookrelay CLI as a user would, against this stack."""
        return subprocess.run(
            [sys.executable, "-m", "hookrelay_cli.main", *arguments],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=False,
        )

    def create_key_with_cli(self, team_id: str) -> str:
        result = self.hookrelay("keys", "create", "--team", team_id, "--local", "--aws-endpoint", self.aws_endpoint)
        assert result.returncode == 0, result.stderr
        key: str = json.loads(result.stdout)["api_key"]
        return key

    def create_key(self, team_id: str) -> str:
        """What `keys create --local` does, without starting a process per test."""
        dynamodb = boto3.resource("dynamodb", endpoint_url=self.aws_endpoint, **LOCAL_SESSION)
        table = dynamodb.Table(default_name(LOCAL_STACK_NAME, "ApiKeysTable"))
        return issue_key(DynamoApiKeyStore(table), team_id).key


def eventually(check: Callable[[], bool], what: str, within: float = WAIT_SECONDS) -> None:
    """Wait for something the stack does in the background, failing with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.1)


def start_stack(environment: dict[str, str]) -> RunningStack:
    process = subprocess.Popen(
        [sys.executable, "-m", "hookrelay_cli.main", "local", "up", "--port", "0", "--aws-port", "0"],
        cwd=REPO,
        env={**os.environ, **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    url = aws_endpoint = None
    while url is None:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("local stack exited before it was ready:\n" + "".join(output))
        output.append(line)
        if match := AWS_ENDPOINT.search(line):
            aws_endpoint = match.group(1)
        if match := READY.search(line):
            url = match.group(1)
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("local stack not ready in time:\n" + "".join(output))
    assert aws_endpoint, "".join(output)
    stack = RunningStack(process=process, url=url, aws_endpoint=aws_endpoint, output=output)
    # Keep draining the stack's output so it never blocks on a full pipe.
    threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True).start()
    return stack


def stop_stack(stack: RunningStack) -> int:
    stack.process.send_signal(signal.SIGINT)
    try:
        return stack.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        raise


@pytest.fixture(scope="session")
def local_stack() -> Iterator[RunningStack]:
    stack = start_stack(
        {
            "HOOKRELAY_DEV_API_KEY": DEV_KEY,
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "false",
            # Failed records come back at once rather than after the queue's 180 s visibility timeout.
            "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0",
            # The delivery queue is left as ingest fills it, for the tests to read (test_delivery
            # runs a stack of its own that delivers).
            "HOOKRELAY_LOCAL_PAUSED_FUNCTIONS": "DeliveryFunction",
        }
    )
    yield stack
    assert stop_stack(stack) == 0, "".join(stack.output)


@pytest.fixture(scope="session")
def http() -> requests.Session:
    return requests.Session()


def http_transport(stack: RunningStack, http: requests.Session) -> Transport:
    """Requests over real HTTP to a running stack's API."""

    def send(method: str, path: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        response = http.request(method, stack.url + path, headers=headers, data=body, timeout=30)
        return ApiResponse(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)

    return send


@pytest.fixture
def api(local_stack: RunningStack, http: requests.Session) -> ApiClient:
    # A team of its own per test, so tests never see each other's subscriptions.
    return ApiClient(http_transport(local_stack, http), local_stack.create_key(f"team-{time.monotonic_ns()}"))


@pytest.fixture
def other_api(local_stack: RunningStack, http: requests.Session) -> ApiClient:
    return ApiClient(http_transport(local_stack, http), local_stack.create_key(f"other-{time.monotonic_ns()}"))


# Subscribing, publishing and checking what arrived, as the delivery tests do.
def subscribe(api: ApiClient, endpoint: str, **fields: object) -> dict[str, object]:
    response = api.post("/v3/webhooks", {"endpoint": endpoint, "subscribed_events": ["*"], **fields})
    assert response.status == 201, response.body
    subscription: dict[str, object] = response.json()
    return subscription


def publish(api: ApiClient, event_name: str = "signer.done") -> str:
    data = {"signer": {"id": "s-1", "info": {"first_name": "Jérôme", "last_name": "Durand", "email": "j@example.com"}}}
    response = api.post("/v3/events", {"event_name": event_name, "data": data, "event_time": "2026-03-02T10:15:30Z"})
    assert response.status == 202, response.body
    return str(response.json()["event_id"])


def record(stack: RunningStack, delivery: str) -> dict[str, object]:
    table = boto3.resource("dynamodb", endpoint_url=stack.aws_endpoint, **LOCAL_SESSION).Table(
        default_name(LOCAL_STACK_NAME, "DeliveriesTable")
    )
    item: dict[str, object] = table.get_item(Key={"delivery_id": delivery}, ConsistentRead=True).get("Item") or {}
    return item


def verify_all_signatures(request: Received, secret: str, subscription_id: str) -> None:
    headers = {name.lower(): value for name, value in request.headers.items()}
    standardwebhooks.Webhook(secret).verify(request.body, headers, json_parse=False)
    svix.Webhook(secret).verify(request.body, headers)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected_yousign = "sha256=" + hmac.new(key, request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-yousign-signature-256"], expected_yousign)
    assert headers["x-webhook-id"] == subscription_id
    parts = dict(part.split("=", 1) for part in headers["x-webhook-signature"].split(","))
    signed = b"t:" + parts["t"].encode() + b":" + request.body
    assert hmac.compare_digest(parts["v1"], hmac.new(key, signed, hashlib.sha256).hexdigest())
    assert abs(int(parts["t"]) // 1000 - int(headers["webhook-timestamp"])) <= 1
    assert headers["user-agent"].startswith("hookrelay/")
