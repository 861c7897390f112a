"""Crash safety (issue 8, R5): a delivery container killed mid-batch, a poison message in a full batch,
and DynamoDB/SQS throttling injected at the botocore client, all against a moto server on 127.0.0.1.

All run strict (issue 14, item 7), as `local up` runs the functions: each container a process of its
own, its AWS calls checked against its role, ended at its Timeout, with R1's duplicate SQS deliveries
and index lag on; the faults reach the containers through HOOKRELAY_LOCAL_FAULTS (local.faults). A
server rather than the in-process mock: the containers share it, and a throttle answered from a
`before-send` hook never reaches it (under `mock_aws`, moto's own `before-send` hook would still carry
out the request the throttle claims was refused).

Covered elsewhere, not repeated here: two sweepers at once (tests/integration/test_sweeper.py,
`test_two_sweepers_at_once_never_enqueue_a_retry_twice`, with a staged worst interleaving since moto's
conditional writes are not atomic across threads); a crash mid fan-out (tests/integration/
test_ingest.py); a poison message through the running local stack (tests/e2e/test_delivery.py).
"""

import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import records
from receivers import Answer, Received, receiver
from records import receiver_endpoint

from api_client import ApiClient
from hookrelay import aws, wiring
from hookrelay.aws import client, table
from hookrelay.delivery_jobs import read_job
from hookrelay.events_queue import read_queue_message
from hookrelay.ingest import new_delivery
from hookrelay.queues import Message, delivery_message
from hookrelay.records import Event, delivery_id
from hookrelay.settings import get_settings
from hookrelay_cli.local.faults import FAULTS_VARIABLE, THROTTLES, Faults
from hookrelay_cli.local.functions import ContainerFunction
from hookrelay_cli.local.stack import LocalStack, local_aws
from hookrelay_cli.local.workers import QueuePoller
from integration.test_ingest import delivery_records, drain
from paths import TEMPLATE

pytestmark = pytest.mark.reliability

DELIVERY_FUNCTION = "DeliveryFunction"


def fresh_aws_clients() -> None:
    """Forget hookrelay.aws's session and clients, so the next ones read AWS_ENDPOINT_URL again.

    Its clients live as long as the process: ones an earlier test made under `mock_aws` would aim
    at the real endpoints, and ones made here at a server that is gone.
    """
    aws.session.cache_clear()
    aws._client.cache_clear()
    aws._tables_client.cache_clear()


def reset_moto(endpoint: str) -> None:
    """Empty moto's backends, which live as long as the process (the server is only a front to them)."""
    with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")) as answer:
        assert answer.status == 200


# R1's faults, on for every test here, with the functions each in a container (IAM and Timeouts enforced).
STRICT_KNOBS = {
    "HOOKRELAY_LOCAL_IAM": "on",
    "HOOKRELAY_LOCAL_SQS_DUPLICATE_RATE": "0.1",
    "HOOKRELAY_LOCAL_INDEX_LAG_MS": "500",
}


@pytest.fixture
def faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Faults:
    """Faults the containers install at their start (HOOKRELAY_LOCAL_FAULTS), and the test's process too."""
    path = tmp_path / "faults.json"
    monkeypatch.setenv(FAULTS_VARIABLE, str(path))
    return Faults(path)


@pytest.fixture
def stack(restore_environment: None, monkeypatch: pytest.MonkeyPatch, faults: Faults) -> Iterator[LocalStack]:
    """The template's resources in a moto server on 127.0.0.1, the functions each in a container, as
    `local up` runs them, with R1's faults on; every client, the containers' and this process's, has `faults`.

    Overrides conftest's in-process `stack`, so its `api` fixture goes through this one.
    """
    monkeypatch.setenv("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "true")
    monkeypatch.setenv("HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS", "0")
    for name, value in STRICT_KNOBS.items():
        monkeypatch.setenv(name, value)
    with container_stack(TEMPLATE, faults) as stack:
        yield stack


@contextmanager
def container_stack(template: Path, faults: Faults | None = None) -> Iterator[LocalStack]:
    """The local stack of `template` as `local up` runs it: each function container a process of its
    own, against a moto server on 127.0.0.1; this process's clients have `faults`, if any."""
    with local_aws() as endpoint:
        reset_moto(endpoint)
        fresh_aws_clients()
        if faults:
            faults.install(aws.session().events)
        get_settings.cache_clear()
        stack = LocalStack.create(template, aws_endpoint=endpoint, containers=True)
        try:
            yield stack
        finally:
            stack.stop_containers()
            reset_moto(endpoint)
            fresh_aws_clients()
            get_settings.cache_clear()


def delivery_poller(stack: LocalStack) -> QueuePoller:
    (poller,) = stack.queue_pollers_of("DeliveryQueue")
    return poller


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
    poll_lanes_until_drained([(poller, queue_url)], timeout)


def poll_lanes_until_drained(lanes: list[tuple[QueuePoller, str]], timeout: float) -> None:
    """Poll each queue that still holds messages until none does (messages may move between them)."""
    deadline = time.monotonic() + timeout
    while left := {queue_url: depth for _, queue_url in lanes if (depth := queue_depth(queue_url))}:
        if time.monotonic() > deadline:
            raise AssertionError(f"not drained: {left}")
        for poller, queue_url in lanes:
            if queue_url in left:
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
    store = wiring.subscription_store(settings)
    subscribed = [records.subscription(index, endpoint=receiver_endpoint(port)) for index in range(subscriptions)]
    for each in subscribed:
        store.create(each, records.TEAM_LIMIT)
    deliveries = [new_delivery(event(index), each) for index in range(events) for each in subscribed]
    records.store_pending(table(settings.deliveries_table), deliveries)
    wiring.delivery_queue(settings).send([delivery_message(d.id, 1, team_id=d.team_id) for d in deliveries])
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
    stack: LocalStack,
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

    poller = delivery_poller(stack)
    container = stack.functions[DELIVERY_FUNCTION]
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
    assert drain(stack.resources.ref("DeliveryDeadLetterQueue")) == []


# --- 2. A poison message in a full batch ------------------------------------------------------------


def test_a_poison_message_in_a_full_batch_reaches_the_dlq_and_the_nine_others_are_delivered_once(
    stack: LocalStack, faults: Faults
) -> None:
    settings = get_settings()
    poison = "not a delivery message"
    with receiver() as server:
        expected = set(pending_deliveries(server.port, events=9, subscriptions=1))
        wiring.delivery_queue(settings).send([Message(poison, "acme")])
        poller = delivery_poller(stack)
        assert poller.poll_once() == 10  # one batch: the nine and the poison together
        assert set(delivered(expected)) == expected
        poll_until_drained(poller, settings.delivery_queue_url)
        requests = list(server.received)
    assert Counter(request.headers["webhook-id"] for request in requests) == Counter(dict.fromkeys(expected, 1))
    receives = [count for body, count in faults.received(settings.delivery_queue_url) if body == poison]
    assert receives == [1, 2, 3, 4, 5]  # then SQS's redrive policy (maxReceiveCount 5) moved it
    assert [message["Body"] for message in drain(stack.resources.ref("DeliveryDeadLetterQueue"))] == [poison]


# --- 3. Two sweepers at once: see tests/integration/test_sweeper.py ---------------------------------

# --- 4. Throttling ------------------------------------------------------------------------------------

THROTTLED_EVENTS = 30
THROTTLE_EVERY = 3  # every third DynamoDB and every third SQS request...
THROTTLE_BUDGET = 10  # ...until ten of each were throttled (each costs botocore a backoff of up to 1 s)
# Adaptive retries slow the clients down while throttled (a third of all requests here): give the
# queues minutes to drain.
THROTTLED_DRAIN_SECONDS = 180
# How long a failed record stays hidden: not 0, the visibility the pollers give the duplicates they hand
# out again, so that the records that failed and came back can be told from SQS's duplicates.
FAILED_VISIBILITY_SECONDS = 1


def test_throttling_is_retried_and_nothing_is_lost_or_sent_twice(
    stack: LocalStack,
    api: ApiClient,
    faults: Faults,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = get_settings()
    monkeypatch.setenv("HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS", str(FAILED_VISIBILITY_SECONDS))
    pollers = {
        poller.function_id: poller
        for queue_id in ("EventsQueue", "DeliveryQueue")
        for poller in stack.queue_pollers_of(queue_id)
    }
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
        # Delivery: its first read of a batch's records is throttled on every attempt. Both lanes: on a loaded
        # machine a batch's answers can take a second, and its container moves the rest to the slow lane.
        faults.exhaust_next("dynamodb", "BatchGetItem")
        lanes = [
            (pollers[DELIVERY_FUNCTION], settings.delivery_queue_url),
            (stack.queue_pollers_of("SlowLaneQueue")[0], settings.slow_lane_url),
        ]
        poll_lanes_until_drained(lanes, THROTTLED_DRAIN_SECONDS)
        phases["delivery"] = time.monotonic() - started - sum(phases.values())
        faults.stop()
        requests = list(server.received)

    expected = {delivery_id(event_id, sub) for event_id in event_ids for sub in subscription_ids}
    sent = Counter(request.headers["webhook-id"] for request in requests)
    assert sent == Counter(dict.fromkeys(expected, 1))  # each delivery sent once, none lost
    assert set(delivered(expected)) == expected

    retried, gave_up = faults.retried_by_botocore(), faults.gave_up()
    exhausted = {
        invocation: call
        for invocation, call in gave_up.items()
        if [fault.attempt for fault in call] == list(range(1, call[0].max_attempts + 1))
    }
    # Throttles whose retry never came: the container was killed at its Timeout in between.
    cut_off = [fault for invocation, call in gave_up.items() if invocation not in exhausted for fault in call]
    timed_out = "Task timed out after" in capfd.readouterr().out
    enqueued = faults.accepted(settings.delivery_queue_url)
    throttled, refused = faults.throttled(), faults.refused()
    event_redeliveries = set(faults.redelivered(settings.events_queue_url))
    delivery_redeliveries = set(faults.redelivered(settings.delivery_queue_url))
    event_failures = faults.hidden_for(settings.events_queue_url, FAILED_VISIBILITY_SECONDS)
    delivery_failures = faults.hidden_for(settings.delivery_queue_url, FAILED_VISIBILITY_SECONDS)
    duplicated = set(
        faults.hidden_for(settings.events_queue_url, 0) + faults.hidden_for(settings.delivery_queue_url, 0)
    )
    print(
        f"\nthrottling: {len(expected)} deliveries; {len(throttled)} requests throttled "
        f"{dict(Counter(fault.service for fault in throttled))}; "
        f"{len(retried)} retried by botocore {dict(Counter(f'{f.service}.{f.operation}' for f in retried))}; "
        f"{len(exhausted)} calls botocore gave up on "
        f"{sorted(f'{c[0].service}.{c[0].operation} x{len(c)}' for c in exhausted.values())}; "
        f"{len(cut_off)} cut off by a Timeout -> "
        f"{len(event_failures)} event(s), {len(delivery_failures)} delivery message(s) failed and came back; "
        f"{len(duplicated)} message(s) handed out twice as SQS does; "
        f"{len(refused)} batch entries refused -> sent again by Queue.send; "
        f"{', '.join(f'{phase} {seconds:.1f} s' for phase, seconds in phases.items())}"
    )
    # Every periodic throttle was retried by botocore (adaptive mode) and the retry got through, but in
    # an invocation killed at its Timeout before the retry (its batch then came back whole).
    assert len(retried) + len(cut_off) == 2 * THROTTLE_BUDGET and (timed_out or not cut_off)
    assert Counter(fault.service for fault in retried + cut_off) == dict.fromkeys(THROTTLES, THROTTLE_BUDGET)
    # The two calls throttled on every attempt failed their record (ingest's event, the delivery's
    # message); SQS handed each message out again and a later run did the work.
    assert sorted((c[0].service, c[0].operation) for c in exhausted.values()) == [
        ("dynamodb", "BatchGetItem"),
        ("sqs", "SendMessageBatch"),
    ]
    # With Timeouts enforced, exact counts of the records that came back no longer hold: an ingest
    # invocation slowed down by adaptive retries leaves records for a later one when too little time
    # is left (or, cut off at its Timeout, fails its batch whole). The invariant: records that failed
    # came back (at least those two), and a message came back only if it failed or was one SQS handed
    # out twice (HOOKRELAY_LOCAL_SQS_DUPLICATE_RATE), which sent nothing twice (`sent` above).
    assert event_failures and delivery_failures
    assert event_redeliveries | delivery_redeliveries <= {*event_failures, *delivery_failures} | duplicated
    # Refused entries went out again in Queue.send's next call. A delivery was enqueued more than once
    # only when its event was fanned out again (its message came back, or SQS handed it out twice): a
    # repeated fan-out enqueues what it cannot tell was attempted, and the copy sent nothing (`sent`).
    assert len(refused) == 3
    enqueued_deliveries = Counter(read_job(body).delivery_id for body in enqueued.elements())
    assert set(enqueued_deliveries) == expected
    fanned_out_again = {read_queue_message(body).event.event_id for body in event_redeliveries}
    assert {id_ for id_, count in enqueued_deliveries.items() if count > 1} <= {
        delivery_id(event_id, sub) for event_id in fanned_out_again for sub in subscription_ids
    }
