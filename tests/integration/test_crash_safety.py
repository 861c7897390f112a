"""Crash safety (issue 8, R5): a delivery container killed mid-batch, a poison message in a full batch,
and DynamoDB/SQS throttling injected at the botocore client, all against a moto server on 127.0.0.1.

The first two run strict (issue 14, item 7), as `local up` runs the functions: each container a process
of its own, its AWS calls checked against its role, ended at its Timeout, with R1's duplicate SQS
deliveries and index lag on. A server rather than the in-process mock: the containers share it, and a
throttle answered from a `before-send` hook never reaches it (under `mock_aws`, moto's own
`before-send` hook would still carry out the request the throttle claims was refused).

Covered elsewhere, not repeated here: two sweepers at once (tests/integration/test_sweeper.py,
`test_two_sweepers_at_once_never_enqueue_a_retry_twice`, with a staged worst interleaving since moto's
conditional writes are not atomic across threads); a crash mid fan-out (tests/integration/
test_ingest.py); a poison message through the running local stack (tests/e2e/test_delivery.py).
"""

import io
import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import records
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.hooks import BaseEventHooks
from receivers import Answer, Received, receiver
from records import receiver_endpoint

import hookrelay_cli.local.functions
from api_client import ApiClient
from hookrelay import aws
from hookrelay.aws import client, table
from hookrelay.ingest import new_delivery
from hookrelay.models import Event, delivery_id
from hookrelay.queues import Message, Queue, delivery_message
from hookrelay.settings import get_settings
from hookrelay.store.deliveries import DynamoDeliveryStore
from hookrelay.store.subscriptions import DynamoSubscriptionStore
from hookrelay_cli.local.functions import ContainerFunction
from hookrelay_cli.local.stack import LocalStack, local_aws
from hookrelay_cli.local.workers import QueuePoller
from integration.test_ingest import delivery_records, drain
from paths import TEMPLATE

pytestmark = pytest.mark.reliability

DELIVERY_FUNCTION = "DeliveryFunction"


# --- Throttling at the botocore client -------------------------------------------------------------

# Throttling answers as the services give them (JSON protocol; SQS also names its query-compatible
# error code in a header). Every code here is one botocore's retry modes treat as throttling.
THROTTLES: dict[str, list[tuple[dict[str, str], dict[str, str]]]] = {
    "dynamodb": [
        (
            {},
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded.",
            },
        ),
        (
            {},
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": "Rate of requests exceeds the allowed throughput.",
            },
        ),
    ],
    "sqs": [
        (
            {"x-amzn-query-error": "RequestThrottled;Sender"},
            {"__type": "com.amazonaws.sqs#RequestThrottled", "message": "Request is throttled."},
        ),
        ({}, {"__type": "com.amazonaws.sqs#ThrottlingException", "message": "Rate exceeded."}),
    ],
}


class _Body(io.BytesIO):
    """The raw body of an injected answer, as botocore reads one (`stream()`)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(65536):
            yield chunk


@dataclass(frozen=True)
class Throttled:
    service: str
    operation: str
    invocation: str
    attempt: int
    max_attempts: int


def _header(request: AWSPreparedRequest, name: str) -> str:
    value = request.headers.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


class Faults:
    """Faults injected into this process's boto3 clients (installed on hookrelay's one session before
    any client is made), and what became of each.

    - `throttle_every(n, budget)`: every n-th DynamoDB and SQS request (per service, `budget` each) is
      answered with a throttling error without reaching moto; never a call's last attempt, so
      botocore's retries always have a chance.
    - `exhaust_next(service, operation)`: the next such call is throttled on every attempt, so the
      error reaches hookrelay.
    - `refuse_entries(n)`: n SendMessageBatch calls answer one of their entries as failed (a
      partial failure, SenderFault false) and do not enqueue it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._every = 0
        self._budget: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._doomed_operations: set[tuple[str, str]] = set()
        self._doomed: set[str] = set()
        self._refusals_left = 0
        self.throttled: list[Throttled] = []
        self.got_through: set[str] = set()  # invocation ids with an attempt that reached moto
        self.refused: list[str] = []  # bodies of refused entries
        self.accepted: Counter[tuple[str, str]] = Counter()  # (queue url, body) SendMessageBatch took
        self.received: list[tuple[str, str, int]] = []  # (queue url, body, ApproximateReceiveCount)

    def install(self, events: BaseEventHooks) -> None:
        events.register_first("before-send", self._before_send)
        events.register("before-parameter-build.sqs.SendMessageBatch", self._maybe_refuse_an_entry)
        events.register("before-parameter-build.sqs.ReceiveMessage", self._remember_queue)
        events.register("after-call.sqs.SendMessageBatch", self._after_send_batch)
        events.register("after-call.sqs.ReceiveMessage", self._after_receive)

    def throttle_every(self, every: int, budget: int) -> None:
        with self._lock:
            self._every, self._budget = every, Counter(dict.fromkeys(THROTTLES, budget))

    def exhaust_next(self, service: str, operation: str) -> None:
        with self._lock:
            self._doomed_operations.add((service, operation))

    def refuse_entries(self, count: int) -> None:
        with self._lock:
            self._refusals_left = count

    def stop(self) -> None:
        with self._lock:
            self._every, self._doomed_operations, self._refusals_left = 0, set(), 0

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".")
        if service not in THROTTLES:
            return None
        invocation = _header(request, "amz-sdk-invocation-id")
        progress = dict(part.strip().split("=") for part in _header(request, "amz-sdk-request").split(";"))
        attempt, most = int(progress["attempt"]), int(progress["max"])
        with self._lock:
            if not self._throttles(service, operation, invocation, attempt, most):
                self.got_through.add(invocation)
                return None
            self.throttled.append(Throttled(service, operation, invocation, attempt, most))
            headers, error = THROTTLES[service][len(self.throttled) % len(THROTTLES[service])]
        return AWSResponse(
            request.url,
            400,
            {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "throttled", **headers},
            _Body(json.dumps(error).encode()),
        )

    def _throttles(self, service: str, operation: str, invocation: str, attempt: int, most: int) -> bool:
        if invocation in self._doomed:
            return True
        if attempt == 1 and (service, operation) in self._doomed_operations:
            self._doomed_operations.discard((service, operation))
            self._doomed.add(invocation)
            return True
        if not self._every or attempt >= most or self._budget[service] <= 0:
            return False
        self._calls[service] += 1
        if self._calls[service] % self._every:
            return False
        self._budget[service] -= 1
        return True

    def _maybe_refuse_an_entry(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        entries = params.get("Entries", [])
        with self._lock:
            if self._refusals_left > 0 and len(entries) > 1:
                self._refusals_left -= 1
                context["refused"] = entries.pop()
        context["queue_url"], context["entries"] = params["QueueUrl"], entries

    def _after_send_batch(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        refused = context.pop("refused", None)
        with self._lock:
            if "Error" in parsed:  # the whole call failed (nothing was enqueued)
                self._refusals_left += 1 if refused else 0
                return
            failed = {failure["Id"] for failure in parsed.get("Failed", [])}
            for entry in context["entries"]:
                if entry["Id"] not in failed:
                    self.accepted[(context["queue_url"], entry["MessageBody"])] += 1
            if refused:
                self.refused.append(refused["MessageBody"])
                parsed.setdefault("Failed", []).append(
                    {"Id": refused["Id"], "SenderFault": False, "Code": "RequestThrottled", "Message": "Rate exceeded."}
                )

    def _remember_queue(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["queue_url"] = params["QueueUrl"]

    def _after_receive(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            for message in parsed.get("Messages", []):
                count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0))
                self.received.append((context["queue_url"], message["Body"], count))

    def retried_by_botocore(self) -> list[Throttled]:
        """Throttles after which a later attempt of the same call got through."""
        return [fault for fault in self.throttled if fault.invocation in self.got_through]

    def gave_up(self) -> dict[str, list[Throttled]]:
        """Calls throttled on every attempt (by invocation id): botocore raised the error to hookrelay."""
        calls: dict[str, list[Throttled]] = {}
        for fault in self.throttled:
            if fault.invocation not in self.got_through:
                calls.setdefault(fault.invocation, []).append(fault)
        return calls

    def redelivered(self, queue_url: str) -> list[str]:
        """Bodies SQS handed out again (a record failed, or a receiver died before deleting it)."""
        return [body for url, body, count in self.received if url == queue_url and count > 1]


def fresh_aws_clients() -> None:
    """Forget hookrelay.aws's session and clients, so the next ones read AWS_ENDPOINT_URL again.

    Its clients live as long as the process: ones an earlier test made under `mock_aws` would aim
    at the real endpoints, and ones made here at a server that is gone.
    """
    aws.session.cache_clear()
    aws._client.cache_clear()
    aws._dynamodb.cache_clear()


def reset_moto(endpoint: str) -> None:
    """Empty moto's backends, which live as long as the process (the server is only a front to them)."""
    with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")) as answer:
        assert answer.status == 200


@pytest.fixture
def faults() -> Faults:
    return Faults()


# R1's faults, on for the tests whose functions run in containers (IAM enforced, Timeouts enforced).
STRICT_KNOBS = {
    "HOOKRELAY_LOCAL_IAM": "on",
    "HOOKRELAY_LOCAL_SQS_DUPLICATE_RATE": "0.1",
    "HOOKRELAY_LOCAL_INDEX_LAG_MS": "500",
}


@contextmanager
def moto_server_stack(faults: Faults, *, containers: bool) -> Iterator[LocalStack]:
    """The template's resources in a moto server on 127.0.0.1; every client of this process has `faults`."""
    with local_aws() as endpoint:
        reset_moto(endpoint)
        fresh_aws_clients()
        faults.install(aws.session().events)
        get_settings.cache_clear()
        stack = LocalStack.create(TEMPLATE, aws_endpoint=endpoint, containers=containers)
        try:
            yield stack
        finally:
            stack.stop_containers()
            reset_moto(endpoint)
            fresh_aws_clients()
            get_settings.cache_clear()


@pytest.fixture
def stack(restore_environment: None, monkeypatch: pytest.MonkeyPatch, faults: Faults) -> Iterator[LocalStack]:
    """The functions in this process, so that `faults` reach their clients too.

    Overrides conftest's in-process `stack`, so its `api` fixture goes through this one.
    """
    monkeypatch.setenv("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "true")
    monkeypatch.setenv("HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS", "0")
    with moto_server_stack(faults, containers=False) as stack:
        yield stack


@pytest.fixture
def strict_stack(restore_environment: None, monkeypatch: pytest.MonkeyPatch, faults: Faults) -> Iterator[LocalStack]:
    """The functions each in a container, as `local up` runs them, with R1's faults on; `faults` see
    only this process's clients (the pollers', the test's)."""
    monkeypatch.setenv("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "true")
    monkeypatch.setenv("HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS", "0")
    for name, value in STRICT_KNOBS.items():
        monkeypatch.setenv(name, value)
    with moto_server_stack(faults, containers=True) as stack:
        yield stack


def delivery_poller(stack: LocalStack) -> QueuePoller:
    return next(poller for poller in stack.queue_pollers() if poller.function_id == DELIVERY_FUNCTION)


def queue_depth(queue_url: str) -> int:
    attributes = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return sum(
        int(attributes[name])
        for name in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )


def eventually(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.05)


def poll_until_drained(poller: QueuePoller, queue_url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while queue_depth(queue_url):
        if time.monotonic() > deadline:
            raise AssertionError(f"{queue_url} did not drain: {queue_depth(queue_url)} message(s) left")
        poller.poll_once(wait_seconds=1)


def event(index: int) -> Event:
    return Event(
        event_id=f"0f29a0a2-3a6f-44a4-b2a2-{index:012d}",
        event_name="signer.done",
        event_time="2026-03-02T10:15:30.000Z",
        team_id="acme",
        data={"signer": {"id": f"s-{index}"}},
    )


def pending_deliveries(port: int, events: int, subscriptions: int) -> list[str]:
    """Records and first-attempt messages for `events` x `subscriptions`, as ingest would leave them."""
    settings = get_settings()
    store = DynamoSubscriptionStore(table(settings.subscriptions_table))
    subscribed = [records.subscription(index, endpoint=receiver_endpoint(port)) for index in range(subscriptions)]
    for each in subscribed:
        store.create(each, records.TEAM_LIMIT)
    deliveries = [new_delivery(event(index), each) for index in range(events) for each in subscribed]
    DynamoDeliveryStore(table(settings.deliveries_table)).create_pending(deliveries)
    Queue(client("sqs"), settings.delivery_queue_url).send([delivery_message(d.id, 1) for d in deliveries])
    return [delivery.id for delivery in deliveries]


def delivered(ids: set[str]) -> list[str]:
    stored = delivery_records()
    return [id_ for id_ in ids if stored.get(id_, {}).get("status") == "delivered"]


# --- 1. A delivery process killed mid-batch ----------------------------------------------------------

EVENTS, SUBSCRIPTIONS = 10, 2  # 20 deliveries: two batches of ten
ANSWERED_AT_ONCE = 6  # the first six requests are answered; the next ones hang until the kill
# How long SQS hides a received message: the batch the killed process held comes back after this.
VISIBILITY_SECONDS = 2


def test_a_delivery_container_killed_mid_batch_loses_nothing_and_resends_only_with_the_same_id(
    strict_stack: LocalStack,
) -> None:
    """SIGKILL of the delivery container while a batch is in flight (what a crash or a Lambda timeout
    looks like): some sends answered and recorded, others sent but not.

    The batch's messages come back (never deleted); the recorded ones are `already done`, the others
    are sent again: at least once, a second time only under the same webhook-id, with the same body.
    """
    settings = get_settings()
    released = threading.Event()
    lock = threading.Lock()
    answered = 0
    held: list[str] = []

    def answer(request: Received) -> Answer:
        nonlocal answered
        with lock:
            hold = not released.is_set() and answered >= ANSWERED_AT_ONCE
            if hold:
                held.append(request.headers["webhook-id"])
            else:
                answered += 1
        if hold:
            released.wait(30)
        return Answer(200)

    poller = delivery_poller(strict_stack)
    container = strict_stack.functions[DELIVERY_FUNCTION]
    assert isinstance(container, ContainerFunction)
    with receiver(answer) as server:
        expected = set(pending_deliveries(server.port, EVENTS, SUBSCRIPTIONS))
        client("sqs").set_queue_attributes(
            QueueUrl=settings.delivery_queue_url, Attributes={"VisibilityTimeout": str(VISIBILITY_SECONDS)}
        )
        first_batch = threading.Thread(target=poller.poll_once, kwargs={"wait_seconds": 1})
        first_batch.start()
        try:
            eventually(
                lambda: len(held) >= 3 and len(delivered(expected)) == ANSWERED_AT_ONCE,
                "the container mid-batch: some requests answered and recorded, others in flight",
                timeout=60,
            )
        finally:
            container.kill()
            first_batch.join()
        time.sleep(0.2)  # requests the container wrote just before it died reach the receiver
        by_killed = {request.headers["webhook-id"] for request in server.received}
        recorded_by_killed = set(delivered(expected))
        released.set()
        killed_at = time.monotonic()

        # The batch the dead container held comes back (the invocation failed), to a fresh container.
        poll_until_drained(poller, settings.delivery_queue_url)
        recovered_in = time.monotonic() - killed_at
        requests = list(server.received)

    sent = Counter(request.headers["webhook-id"] for request in requests)
    duplicates = {id_: count for id_, count in sent.items() if count > 1}
    print(
        f"\nkilled mid-batch: {len(expected)} deliveries, {len(requests)} requests, "
        f"{len(by_killed - recorded_by_killed)} in flight at the kill, "
        f"{len(duplicates)} sent twice (same webhook-id), all delivered {recovered_in:.1f} s after the kill"
    )
    assert set(sent) == expected  # every delivery reached the receiver, under no other id
    assert set(delivered(expected)) == expected
    stored = delivery_records()
    assert {(int(stored[id_]["attempt_count"]), stored[id_]["attempts"][0]["status_code"]) for id_ in expected} == {
        (1, 200)
    }
    # Only what the dead container had sent but not recorded is sent again: the same attempt, id and body.
    assert len(recorded_by_killed) == ANSWERED_AT_ONCE and set(held) <= by_killed - recorded_by_killed
    assert set(duplicates) == by_killed - recorded_by_killed and set(duplicates.values()) == {2}
    for id_ in duplicates:
        copies = [request for request in requests if request.headers["webhook-id"] == id_]
        assert len({request.body for request in copies}) == 1
        assert {request.headers["X-Yousign-Retry"] for request in copies} == {"0"}
    assert drain(strict_stack.resources.ref("DeliveryDeadLetterQueue")) == []


# --- 2. A poison message in a full batch ------------------------------------------------------------


def test_a_poison_message_in_a_full_batch_reaches_the_dlq_and_the_nine_others_are_delivered_once(
    strict_stack: LocalStack, faults: Faults
) -> None:
    settings = get_settings()
    poison = "not a delivery message"
    with receiver() as server:
        expected = set(pending_deliveries(server.port, events=9, subscriptions=1))
        Queue(client("sqs"), settings.delivery_queue_url).send([Message(poison)])
        poller = delivery_poller(strict_stack)
        assert poller.poll_once() == 10  # one batch: the nine and the poison together
        assert set(delivered(expected)) == expected
        poll_until_drained(poller, settings.delivery_queue_url)
        requests = list(server.received)
    assert Counter(request.headers["webhook-id"] for request in requests) == Counter(dict.fromkeys(expected, 1))
    receives = [count for url, body, count in faults.received if body == poison]
    assert receives == [1, 2, 3, 4, 5]  # then SQS's redrive policy (maxReceiveCount 5) moved it
    assert [message["Body"] for message in drain(strict_stack.resources.ref("DeliveryDeadLetterQueue"))] == [poison]


# --- 3. Two sweepers at once: see tests/integration/test_sweeper.py ---------------------------------

# --- 4. Throttling ------------------------------------------------------------------------------------

THROTTLED_EVENTS = 30
THROTTLE_EVERY = 3  # every third DynamoDB and every third SQS request...
THROTTLE_BUDGET = 10  # ...until ten of each were throttled (each costs botocore a backoff of up to 1 s)
# Adaptive retries slow the shared clients down while throttled (a third of all requests here): give
# the queues minutes to drain, and each invocation as long, so that no record is left for lack of
# time and the only records that come back are those whose calls were throttled on every attempt.
THROTTLED_DRAIN_SECONDS = 180


@pytest.fixture
def invocations_without_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hookrelay_cli.local.functions, "_TIMEOUT_MILLIS", THROTTLED_DRAIN_SECONDS * 1000)


def test_throttling_is_retried_and_nothing_is_lost_or_sent_twice(
    invocations_without_time_limit: None, stack: LocalStack, api: ApiClient, faults: Faults
) -> None:
    settings = get_settings()
    pollers = {poller.function_id: poller for poller in stack.queue_pollers()}
    phases: dict[str, float] = {}
    with receiver() as server:
        subscription_ids = []
        for _ in range(2):
            response = api.post(
                "/v3/webhooks", {"endpoint": f"http://127.0.0.1:{server.port}/hook", "subscribed_events": ["*"]}
            )
            assert response.status == 201, response.body
            subscription_ids.append(str(response.json()["id"]))
        faults.throttle_every(THROTTLE_EVERY, THROTTLE_BUDGET)
        started = time.monotonic()
        event_ids = []
        for index in range(THROTTLED_EVENTS):
            response = api.post("/v3/events", {"event_name": "signer.done", "data": {"signer": {"id": f"s-{index}"}}})
            assert response.status == 202, response.body
            event_ids.append(str(response.json()["event_id"]))
        phases["publish"] = time.monotonic() - started
        # Ingest: its first SendMessageBatch is throttled on every attempt; three others lose an entry.
        faults.exhaust_next("sqs", "SendMessageBatch")
        faults.refuse_entries(3)
        poll_until_drained(pollers["IngestFunction"], settings.events_queue_url, THROTTLED_DRAIN_SECONDS)
        phases["ingest"] = time.monotonic() - started - sum(phases.values())
        # Delivery: its first read of a record is throttled on every attempt.
        faults.exhaust_next("dynamodb", "GetItem")
        poll_until_drained(pollers[DELIVERY_FUNCTION], settings.delivery_queue_url, THROTTLED_DRAIN_SECONDS)
        phases["delivery"] = time.monotonic() - started - sum(phases.values())
        faults.stop()
        requests = list(server.received)

    expected = {delivery_id(event_id, sub) for event_id in event_ids for sub in subscription_ids}
    sent = Counter(request.headers["webhook-id"] for request in requests)
    assert sent == Counter(dict.fromkeys(expected, 1))  # each delivery sent once, none lost
    assert set(delivered(expected)) == expected

    retried, gave_up = faults.retried_by_botocore(), faults.gave_up()
    enqueued = Counter(
        {body: count for (url, body), count in faults.accepted.items() if url == settings.delivery_queue_url}
    )
    event_redeliveries = faults.redelivered(settings.events_queue_url)
    delivery_redeliveries = faults.redelivered(settings.delivery_queue_url)
    print(
        f"\nthrottling: {len(expected)} deliveries; {len(faults.throttled)} requests throttled "
        f"{dict(Counter(fault.service for fault in faults.throttled))}; "
        f"{len(retried)} retried by botocore {dict(Counter(f'{f.service}.{f.operation}' for f in retried))}; "
        f"{len(gave_up)} calls botocore gave up on "
        f"{sorted(f'{c[0].service}.{c[0].operation} x{len(c)}' for c in gave_up.values())} -> SQS redelivered "
        f"{len(event_redeliveries)} event(s), {len(delivery_redeliveries)} delivery message(s); "
        f"{len(faults.refused)} batch entries refused -> sent again by Queue.send; "
        f"{', '.join(f'{phase} {seconds:.1f} s' for phase, seconds in phases.items())}"
    )
    # Every periodic throttle was retried by botocore (adaptive mode) and the retry got through.
    assert len(retried) == 2 * THROTTLE_BUDGET
    assert Counter(fault.service for fault in retried) == dict.fromkeys(THROTTLES, THROTTLE_BUDGET)
    # The two calls throttled on every attempt failed their record (ingest's event, the delivery's
    # message); SQS handed each message out again and the second run did the work.
    assert sorted((c[0].service, c[0].operation) for c in gave_up.values()) == [
        ("dynamodb", "GetItem"),
        ("sqs", "SendMessageBatch"),
    ]
    assert all([f.attempt for f in c] == list(range(1, c[0].max_attempts + 1)) for c in gave_up.values())
    assert len(event_redeliveries) == 1 and len(delivery_redeliveries) == 1
    # Refused entries went out again in Queue.send's next call; no message was enqueued twice.
    assert len(faults.refused) == 3 and all(enqueued[body] == 1 for body in faults.refused)
    assert enqueued == Counter(delivery_message(id_, 1).body for id_ in expected)
