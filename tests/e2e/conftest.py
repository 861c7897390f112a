"""The local stack as users run it: `hookrelay local up` in its own process, driven over HTTP."""

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import boto3
import local_up
import pytest
import receivers
import requests
import standardwebhooks
import svix
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from receivers import Received

from api_client import ApiClient, ApiResponse, Transport
from hookrelay.api_keys import PORTAL_TOKEN_PREFIX, issue_key
from hookrelay.aws import Table, python_values
from hookrelay.events_queue import FanOutRequest
from hookrelay.records import Event
from hookrelay.store.api_keys import DynamoApiKeyStore
from hookrelay.store.team_items import TEAM_ITEM
from hookrelay_cli.local.resources import default_name
from hookrelay_cli.local.stack import LOCAL_CREDENTIALS, LOCAL_STACK_NAME
from hookrelay_cli.local.tracing import TRACES_FILE_VARIABLE
from paths import REPO

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# `local up` prints its development key on purpose, once, so that a developer can use it.
DEV_KEY_BANNER = re.compile(r"^Development API key \(team \S+\): (\S+)$", re.MULTILINE)
PORTAL_BANNER = re.compile(r"^Webhook portal \(team \S+, until \S+\): \S+#token=(\S+)$", re.MULTILINE)
DEV_KEY = "hr_dev_e2e_key_0123456789"


class _LocalSession(TypedDict):
    aws_access_key_id: str
    aws_secret_access_key: str
    region_name: str


LOCAL_SESSION: _LocalSession = {
    "aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    "region_name": LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
}
# Generous: with two test workers, one of them running the load test, a stack can be starved for seconds.
WAIT_SECONDS = 60
# The operator's stacks (the CLIs' tests): receivers on 127.0.0.1; a failed message is received again at
# once (so the five failures that park it in a DLQ take moments, not 15 minutes); subscription and key
# changes are seen at once.
OPERATOR_STACK = {
    "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
    "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0",
    "HOOKRELAY_API_KEY_CACHE_SECONDS": "0",
}


@dataclass
class RunningStack(local_up.LocalUp):
    # Who started it (a test id), to say where a leak was found.
    started_by: str = ""
    # Where its X-Ray segments were written, one JSON document a line.
    traces_file: Path | None = None

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

    def local_cli(self, *arguments: str) -> str:
        """Run a CLI command against this stack (`--local`); its stdout, after checking it succeeded."""
        result = self.hookrelay(*arguments, "--local", "--aws-endpoint", self.aws_endpoint)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def create_key_with_cli(self, team_id: str) -> str:
        key: str = json.loads(self.local_cli("keys", "create", "--team", team_id))["api_key"]
        SECRETS.add(API_KEY, key)
        return key

    def sqs(self) -> "SQSClient":
        """An SQS client of the stack's moto server, as an operator's SDK would have."""
        return boto3.client("sqs", endpoint_url=self.aws_endpoint, **LOCAL_SESSION)

    def queue_url(self, name: str) -> str:
        """The URL of the stack's queue `name` ("delivery", "delivery-dlq", "events", ...)."""
        return str(self.sqs().get_queue_url(QueueName=f"{LOCAL_STACK_NAME}-{name}")["QueueUrl"])

    def table(self, logical_id: str) -> Table:
        """The template's table `logical_id`, as the stack named it."""
        dynamodb = boto3.client("dynamodb", endpoint_url=self.aws_endpoint, **LOCAL_SESSION)
        return Table(default_name(LOCAL_STACK_NAME, logical_id), python_values(dynamodb))

    def new_team(self) -> ApiClient:
        """A client for a team of its own, so that tests never see each other's subscriptions."""
        return ApiClient(http_transport(self, requests.Session()), self.create_key(f"team-{uuid.uuid4().hex[:8]}"))

    def create_key(self, team_id: str) -> str:
        """What `keys create --local` does, without starting a process per test."""
        key = issue_key(DynamoApiKeyStore(self.table("ApiKeysTable")), team_id).key
        SECRETS.add(API_KEY, key)
        return key

    def text(self) -> str:
        """Everything the stack printed so far (all of it once the stack has stopped)."""
        if self.process.poll() is not None:
            self.drain.join(timeout=5)
        return "".join(self.output)

    def tail(self, lines: int = 40) -> str:
        """The last `lines` the stack printed: why a request it answered 5xx failed."""
        return "\n".join(self.text().splitlines()[-lines:])

    def traces(self) -> list[dict[str, Any]]:
        """The trace segments and subsegments the stack's functions sent so far."""
        return [json.loads(line) for line in self.traces_text().splitlines()]

    def traces_text(self) -> str:
        return self.traces_file.read_text(encoding="utf-8") if self.traces_file else ""


# Secrets hygiene (R6): every stack started and every secret seen in the session, so that the
# session can check at its end that no stack printed a secret.
API_KEY = "API key"
PORTAL_TOKEN = "portal token"
SUBSCRIPTION_SECRET = "subscription secret"
SIGNATURE = "signature"
# A subscription's custom header values: often the receiver's own credentials (Authorization: Bearer ...).
CUSTOM_HEADER = "custom header value"
# Shorter values (a timestamp in a signature header) are not secrets and would match by chance.
MIN_SECRET_LENGTH = 16
TOKEN_RUN = re.compile(rf"[A-Za-z0-9+/_-]{{{MIN_SECRET_LENGTH},}}")
STACKS: list[RunningStack] = []
# Every stack's trace segments, kept after the session only when they hold a secret.
TRACES_DIR = Path(tempfile.mkdtemp(prefix="hookrelay-e2e-traces-"))


def _base64_decoded(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def secret_forms(kind: str, value: str) -> set[str]:
    """The value and the spellings of it a log could hold instead: a whsec_ secret's (or a whsk_ private
    key's) base64 part and its key in hex, a signature's base64 digest in hex."""
    forms = {value}
    if kind == SUBSCRIPTION_SECRET:
        prefix = next((prefix for prefix in ("whsec_", "whsk_") if value.startswith(prefix)), "")
        encoded = value.removeprefix(prefix)
        key = _base64_decoded(encoded) if prefix else value.encode()
        forms |= {encoded, *([key.hex()] if key else [])}
    elif kind == SIGNATURE and (digest := _base64_decoded(value)):
        forms.add(digest.hex())
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def signature_values(headers: dict[str, str]) -> Iterator[str]:
    """The digests in a delivery's signature headers (Standard Webhooks, Yousign, Subnoto)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    for entry in lowered.get("webhook-signature", "").split():
        yield entry.partition(",")[2]
    if yousign := lowered.get("x-yousign-signature-256"):
        yield yousign.removeprefix("sha256=")
    for part in lowered.get("x-webhook-signature", "").split(","):
        name, _, value = part.partition("=")
        if name == "v1":
            yield value


def fingerprint(value: str) -> str:
    """How a failure names a secret without printing it."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Leak:
    kind: str
    fingerprint: str
    # "output" (what the stack printed) or "traces" (its trace segments)
    where: str
    stack: str
    line: int

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.fingerprint} in the {self.where} of the stack started by {self.stack}, line {self.line}"
        )


class SecretsSeen:
    """Every secret the session has seen: API keys sent or issued, subscription secrets, signatures."""

    def __init__(self) -> None:
        self._kinds: dict[str, str] = {}
        self._lock = threading.Lock()
        # Lines printed on purpose: `local up`'s development key banner.
        self.allowed_lines: set[str] = set()

    def add(self, kind: str, value: object) -> None:
        if isinstance(value, str) and value:
            with self._lock:
                self._kinds.setdefault(value, kind)

    def add_from_json(self, body: bytes) -> None:
        """The `secret_key` and custom header values of a request or response body (create, update, rotate)."""
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested too deep for the stack to accept it either
            return
        if isinstance(document, dict):
            self.add(SUBSCRIPTION_SECRET, document.get("secret_key"))
            if isinstance(headers := document.get("headers"), dict):
                for value in headers.values():
                    self.add(CUSTOM_HEADER, value)
            self.add_portal_url(document.get("url"))

    def add_portal_url(self, url: object) -> None:
        """The token of a portal session's link (POST /v3/portal-sessions, `hookrelay portal`)."""
        if isinstance(url, str) and "#token=" in url:
            self.add(PORTAL_TOKEN, url.split("#token=", 1)[1])

    def add_from_delivery(self, request: Received) -> None:
        for value in signature_values(request.headers):
            self.add(SIGNATURE, value)

    def kinds(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for kind in self._kinds.values():
                counts[kind] = counts.get(kind, 0) + 1
            return counts

    def leaks(self, stacks: Iterable[RunningStack]) -> list[Leak]:
        """Every line of every stack's output and trace segments that holds a secret seen in the session.

        Each secret form is matched by its longest run of token characters (base64, hex and key
        alphabets: a log writes one between quotes, spaces, '=' or ','), against the same runs of
        each line: one set lookup per run, where a substring search per secret per line took
        minutes once the load test had added thousands of signatures and lines.
        """
        with self._lock:
            cores = {
                max(TOKEN_RUN.findall(form), key=len): (kind, value)
                for value, kind in self._kinds.items()
                for form in secret_forms(kind, value)
                if TOKEN_RUN.search(form)
            }
        found: list[Leak] = []
        for stack in stacks:
            for where, text in (("output", stack.text()), ("traces", stack.traces_text())):
                for number, line in enumerate(text.splitlines(), start=1):
                    if line in self.allowed_lines:
                        continue
                    found.extend(
                        Leak(cores[run][0], fingerprint(cores[run][1]), where, stack.started_by, number)
                        for run in set(TOKEN_RUN.findall(line))
                        if run in cores
                    )
        return found


SECRETS = SecretsSeen()


def eventually(check: Callable[[], bool], what: str, within: float = WAIT_SECONDS) -> None:
    """Wait for something the stack does in the background, failing with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.1)


@contextmanager
def running_stack(environment: dict[str, str]) -> Iterator[RunningStack]:
    """`hookrelay local up` with `environment` for the `with` block (local_up.running), as a test
    failure; as strict as AWS (local_up.AS_STRICT_AS_AWS), its functions traced, their segments written to a
    file of their own."""
    traces_file = Path(tempfile.mkstemp(prefix="stack-", suffix=".jsonl", dir=TRACES_DIR)[1])
    try:
        with local_up.running(
            {TRACES_FILE_VARIABLE: str(traces_file), **local_up.AS_STRICT_AS_AWS, **environment}
        ) as started:
            yield _watched(started, traces_file)
    except local_up.LocalUpFailed as failure:
        raise AssertionError(str(failure)) from None


def _watched(started: local_up.LocalUp, traces_file: Path) -> RunningStack:
    """The stack, with its output and traces to be scanned for secrets at the end of the session (R6)."""
    for banner in DEV_KEY_BANNER.finditer("".join(started.output)):
        SECRETS.add(API_KEY, banner.group(1))
        SECRETS.allowed_lines.add(banner.group(0))
    for banner in PORTAL_BANNER.finditer("".join(started.output)):
        SECRETS.add(PORTAL_TOKEN, banner.group(1))
        SECRETS.allowed_lines.add(banner.group(0))
    started_by = os.environ.get("PYTEST_CURRENT_TEST", "?").removesuffix(" (setup)").removesuffix(" (call)")
    stack = RunningStack(**vars(started), started_by=started_by, traces_file=traces_file)
    STACKS.append(stack)
    return stack


def remember_secrets_sent(headers: dict[str, str], body: bytes | None) -> None:
    """The API key and any `secret_key` of a request about to be sent to a stack."""
    for name, value in headers.items():
        if name.lower() == "authorization":
            token = value.removeprefix("Bearer ").strip()
            SECRETS.add(PORTAL_TOKEN if token.startswith(PORTAL_TOKEN_PREFIX) else API_KEY, token)
    if body:
        SECRETS.add_from_json(body)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_stack_output() -> Iterator[SecretsSeen]:
    """R6: once every stack of the session has stopped, none printed a secret the session saw."""
    receivers.observers.append(SECRETS.add_from_delivery)
    yield SECRETS
    receivers.observers.remove(SECRETS.add_from_delivery)
    leaks = SECRETS.leaks(STACKS)
    print(f"\nsecrets hygiene: {SECRETS.kinds()} checked in the output and traces of {len(STACKS)} stacks")
    assert not leaks, f"secrets in the stacks' output or traces ({TRACES_DIR}):\n" + "\n".join(
        sorted({str(leak) for leak in leaks})
    )
    shutil.rmtree(TRACES_DIR)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[RunningStack]:
    with running_stack(
        {
            "HOOKRELAY_DEV_API_KEY": DEV_KEY,
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "false",
            # Failed records come back at once rather than after the queue's 180 s visibility timeout.
            "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0",
            # The delivery queue is left as ingest fills it, for the tests to read (test_delivery
            # runs a stack of its own that delivers).
            "HOOKRELAY_LOCAL_PAUSED_FUNCTIONS": "DeliveryFunction",
        }
    ) as stack:
        yield stack


@pytest.fixture(scope="session")
def http() -> requests.Session:
    return requests.Session()


def http_transport(stack: RunningStack, http: requests.Session) -> Transport:
    """Requests over real HTTP to a running stack's API."""

    def send(method: str, path: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        remember_secrets_sent(headers, body)
        response = http.request(method, stack.url + path, headers=headers, data=body, timeout=30)
        SECRETS.add_from_json(response.content)
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
    SECRETS.add(SUBSCRIPTION_SECRET, subscription.get("secret_key"))
    return subscription


def publish(api: ApiClient, event_name: str = "signer.done", **fields: object) -> str:
    data = {"signer": {"id": "s-1", "info": {"first_name": "Jérôme", "last_name": "Durand", "email": "j@example.com"}}}
    response = api.post(
        "/v3/events", {"event_name": event_name, "data": data, "event_time": "2026-03-02T10:15:30Z", **fields}
    )
    assert response.status == 202, response.body
    return str(response.json()["event_id"])


def statuses(api: ApiClient, subscription_id: object) -> dict[str, str]:
    """Each delivery of the subscription (up to 100) by id: its status."""
    page = api.get(f"/v3/webhooks/{subscription_id}/deliveries?limit=100").json()
    return {item["id"]: item["status"] for item in page["data"]}


def record(stack: RunningStack, delivery: str) -> dict[str, Any]:
    item: dict[str, Any] = (
        stack.table("DeliveriesTable").get_item(Key={"delivery_id": delivery}, ConsistentRead=True).get("Item") or {}
    )
    return item


def remember_private_keys(stack: RunningStack, team_id: str) -> None:
    """The ed25519 private keys of a team's subscriptions, which no answer shows: read from the table
    (current and previous), for the end-of-session scan (R6)."""
    items = stack.table("SubscriptionsTable").query(
        KeyConditionExpression="team_id = :team", ExpressionAttributeValues={":team": team_id}
    )["Items"]
    for item in items:
        for name in ("private_key", "previous_private_key"):
            SECRETS.add(SUBSCRIPTION_SECRET, item.get(name))


def ed25519_verifies(public_key: str, entry: str, request: Received) -> bool:
    """An independent check of one `v1a,` entry: the `cryptography` package's ed25519 over id.timestamp.body."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    verifier = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request.body
    try:
        verifier.verify(base64.b64decode(entry.removeprefix("v1a,")), signed)
    except InvalidSignature:
        return False
    return True


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


def bump_team_version(stack: RunningStack, team_id: str) -> None:
    """What README says to do after repairing a team's subscription items: warm containers read them again."""
    stack.table("SubscriptionsTable").update_item(
        Key={"team_id": team_id, "subscription_id": TEAM_ITEM},
        UpdateExpression="ADD version :one",
        ExpressionAttributeValues={":one": 1},
    )


def park_in_eventbridge_dlq(stack: RunningStack, team_id: str, reasons: dict[str, str]) -> tuple[Event, dict[str, Any]]:
    """What EventBridge parks when the rule cannot put an event on the events queue: the event as the rule
    sends it (returned with it), and why as message attributes."""
    event = Event(
        event_id=str(uuid.uuid4()),
        event_name="signer.done",
        event_time="2026-03-02T10:15:30.000Z",
        team_id=team_id,
        data={"signer": {"id": "s-1"}},
    )
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event.event_name,
        "source": "hookrelay",
        "account": "123456789012",
        "time": "2026-03-02T10:15:30Z",
        "region": "us-east-1",
        "resources": [],
        "detail": FanOutRequest(event).detail(),
    }
    stack.sqs().send_message(
        QueueUrl=stack.queue_url("eventbridge-dlq"),
        MessageBody=json.dumps(envelope),
        MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in reasons.items()},
    )
    return event, envelope
