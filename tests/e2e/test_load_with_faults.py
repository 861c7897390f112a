"""Issue 8 R1, load with faults: events through the local stack to receivers that fail 30 % of the
requests they get, and every delivery still ends delivered, none lost, duplicates only under the
same webhook-id.

    .venv/bin/pytest tests/e2e/test_load_with_faults.py -s                               # 1 000 x 3
    HOOKRELAY_LOAD_EVENTS=10000 .venv/bin/pytest tests/e2e/test_load_with_faults.py -s   # full size

`hookrelay local up` runs with a fast retry schedule, a 1 s send timeout and 4 delivery pollers
(as Lambda runs several delivery invocations at once). Three subscriptions, each to a receiver of
its own on 127.0.0.1, take every event. Each request a receiver gets is answered by a fault plan
decided per attempt (event, subscription, X-Yousign-Retry) from a fixed seed, so a run's faults are
reproducible: 70 % a 200 at once; 10 % a 500; 10 % slow beyond the send timeout (a 200 after
1.5-2 s: the receiver has the webhook, hookrelay does not know it, so it retries and the receiver
sees the webhook twice); 10 % a connection reset. Events are published in waves from a few
threads, each wave once the previous ones are nearly delivered: moto's SQS receive walks the whole
queue, so short queues are much faster. `-s` shows progress and the report line.
"""

import json
import os
import random
import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
import requests
from receivers import Answer, Received, Receiver, receiver

from api_client import ApiClient
from e2e.conftest import RunningStack, http_transport, running_stack, subscribe
from hookrelay.records import delivery_id

EVENTS = int(os.environ.get("HOOKRELAY_LOAD_EVENTS", "1000"))
SQS_DUPLICATE_RATE = "0.1"
INDEX_LAG_MS = "500"
SUBSCRIPTIONS = 3
SEED = "issue-8-r1"
FAULT_SHARE = 0.3
FAULT_KINDS = ("500", "slow", "reset")
SEND_TIMEOUT_SECONDS = 1.0
SLOW_SECONDS = (1.5, 2.0)
# 16 retries, 17 attempts. Each attempt fails with probability 0.3, independently of the others
# (the plan hashes the attempt number in), so a delivery fails for good only if all 17 fail:
# 0.3^17 = 1.3e-9, i.e. 3.9e-6 for a run of 3 000 deliveries and 3.9e-5 for 30 000. (The 8 attempts
# of "1s,1s,2s,2s,3s,5s,8s" would not do: 0.3^8 = 6.6e-5 per delivery, 2 failed in 30 000.)
RETRY_SCHEDULE = "1s,1s,1s,2s,2s,2s,3s,3s,3s,3s,3s,3s,3s,3s,3s,3s"
DELIVERY_POLLERS = 4
WAVE = 100
PRODUCERS = 4
# The next wave is published once at most this many deliveries are still to come.
BACKLOG = WAVE * SUBSCRIPTIONS
# Give up when no delivery has arrived for this long: something is stuck, not slow.
STALL_SECONDS = 60
FAILED_VISIBILITY_SECONDS = 10
# A publish answered 429 or 503 with Retry-After is sent again, as producers are told to, this many times in all.
REFUSED_FOR_NOW = (429, 503)
PUBLISH_TRIES = 5

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.timeout(300 + EVENTS * 0.4)]


def planned(event_id: str, path: str, attempt: int) -> str:
    """What the receiver does with this attempt: "ok" or one of FAULT_KINDS."""
    draw = random.Random(f"{SEED}/{event_id}/{path}/{attempt}").random()
    if draw >= FAULT_SHARE:
        return "ok"
    return FAULT_KINDS[int(draw / FAULT_SHARE * len(FAULT_KINDS))]


@dataclass(frozen=True)
class Answered:
    webhook_id: str
    event_id: str
    path: str
    attempt: int
    kind: str


@dataclass
class FaultyReceivers:
    """The script of every receiver: answers by the fault plan, and remembers what it answered."""

    answered: list[Answered] = field(default_factory=list)
    # Webhook ids answered 200 at once (within the send timeout): delivered as far as receivers know.
    delivered: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Received) -> Answer:
        headers = {name.lower(): value for name, value in request.headers.items()}
        event_id = json.loads(request.body)["event_id"]
        attempt = int(headers["x-yousign-retry"]) + 1
        kind = planned(event_id, request.path, attempt)
        with self.lock:
            self.answered.append(Answered(headers["webhook-id"], event_id, request.path, attempt, kind))
            if kind == "ok":
                self.delivered.add(headers["webhook-id"])
        if kind == "500":
            return Answer(500, b"injected failure")
        if kind == "slow":
            slow = random.Random(f"{SEED}/{event_id}/{request.path}/{attempt}/delay")
            return Answer(200, b"ok, too late", delay_seconds=slow.uniform(*SLOW_SECONDS))
        if kind == "reset":
            return Answer(reset=True)
        return Answer(200)

    def delivered_count(self) -> int:
        with self.lock:
            return len(self.delivered)


@pytest.fixture(scope="module")
def load_stack() -> Iterator[RunningStack]:
    with running_stack(
        {
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
            "HOOKRELAY_RETRY_SCHEDULE": RETRY_SCHEDULE,
            "HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS": str(SEND_TIMEOUT_SECONDS),
            "HOOKRELAY_SEND_TIMEOUT_SECONDS": str(SEND_TIMEOUT_SECONDS),
            # A failed record comes back after 10 s, not AWS's visibility timeout (240 s): its five receives
            # span under a minute, not 20, yet a burst of AWS errors under the full size's overload does not
            # spend them all in a second (with 0, 11 messages reached the DLQ in one full-size run).
            "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": str(FAILED_VISIBILITY_SECONDS),
            "HOOKRELAY_LOCAL_POLLERS_PER_QUEUE": str(DELIVERY_POLLERS),
            # As strict as AWS: SQS hands some messages out twice and in no set order, the
            # subscriptions' and deliveries' indexes lag their tables (timeouts are always enforced).
            "HOOKRELAY_LOCAL_SQS_DUPLICATE_RATE": SQS_DUPLICATE_RATE,
            "HOOKRELAY_LOCAL_INDEX_LAG_MS": INDEX_LAG_MS,
        }
    ) as stack:
        yield stack


def publish_in_waves(stack: RunningStack, key: str, event_ids: list[str], receivers: FaultyReceivers) -> Counter[int]:
    """Publish the events; the refusals for now (429, 503) that were sent again, by status."""
    clients = threading.local()
    refused: Counter[int] = Counter()
    lock = threading.Lock()

    def publish(event_id: str) -> None:
        if not hasattr(clients, "api"):
            clients.api = ApiClient(http_transport(stack, requests.Session()), key)
        data = {"signer": {"id": event_id[:8], "info": {"first_name": "Jérôme", "email": "j@example.com"}}}
        body = {"event_id": event_id, "event_name": "signer.done", "data": data}
        for _ in range(PUBLISH_TRIES):
            response = clients.api.post("/v3/events", body)
            if response.status not in REFUSED_FOR_NOW or "retry-after" not in response.headers:
                break
            # As a producer does: the same event_id again after Retry-After (SPEC: no duplicate fan-out).
            with lock:
                refused[response.status] += 1
            time.sleep(float(response.headers["retry-after"]))
        assert response.status == 202, f"{response.body!r}; the stack's last lines:\n{stack.tail()}"

    with ThreadPoolExecutor(PRODUCERS) as producers:
        for start in range(0, len(event_ids), WAVE):
            wave = event_ids[start : start + WAVE]
            list(producers.map(publish, wave))
            published = (start + len(wave)) * SUBSCRIPTIONS
            while published - receivers.delivered_count() > BACKLOG:
                time.sleep(0.1)
    return refused


def wait_for_every_delivery(
    stack: RunningStack, receivers: FaultyReceivers, expected: set[str], started: float
) -> None:
    last_count, last_change, last_print = 0, time.monotonic(), time.monotonic()
    while (count := receivers.delivered_count()) < len(expected):
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        assert now - last_change < STALL_SECONDS, (
            f"no delivery for {STALL_SECONDS} s at {count}/{len(expected)}: {stalled(stack, receivers, expected)}"
        )
        if now - last_print >= 10:
            print(f"  {count}/{len(expected)} delivered after {time.monotonic() - started:.0f} s", flush=True)
            last_print = now
        time.sleep(0.1)


def stalled(stack: RunningStack, receivers: FaultyReceivers, expected: set[str]) -> str:
    """Where the deliveries no receiver got are: their records, the queues, the log lines naming them."""
    with receivers.lock:
        missing = sorted(expected - receivers.delivered)
    records = delivery_records(stack)
    shown = missing[:5]
    lines = [line for line in stack.output if any(delivery in line for delivery in shown)]
    # Failures of a whole batch name no delivery: counted by their message.
    errors = Counter(
        match.group(1)
        for line in stack.output
        if '"level":"ERROR"' in line and (match := re.search(r'"message":"((?:[^"\\]|\\.)*)"', line))
    )
    return (
        f"{len(missing)} missing, e.g. "
        + "; ".join(f"{delivery}: {records.get(delivery, 'no record')}" for delivery in shown)
        + f"; queues {queue_depths(stack)}; errors logged {dict(errors)}; their log lines:\n"
        + "".join(lines[-30:])
    )


def delivery_records(stack: RunningStack) -> dict[str, dict[str, object]]:
    """Every delivery record's status and attempt count, by delivery id."""
    deliveries = stack.table("DeliveriesTable")
    scan = {
        "ProjectionExpression": "delivery_id, #status, attempt_count",
        "ExpressionAttributeNames": {"#status": "status"},
    }
    records: dict[str, dict[str, object]] = {}
    while True:
        page = deliveries.scan(**scan)
        records.update({str(item["delivery_id"]): item for item in page["Items"] if "status" in item})
        if "LastEvaluatedKey" not in page:
            return records
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def crash_report(output: list[str], crashes: list[int]) -> str:
    """Where each crash was raised (the innermost frame of ours its traceback names), then the first whole."""
    frames = []
    for index, end in zip(crashes, [*crashes[1:], len(output)], strict=True):
        lines = output[index : min(end, index + 80)]
        ours = [line.strip() for line in lines if 'File "' in line and "/.venv/" not in line and "/.pyenv/" not in line]
        frames.append(ours[-1] if ours else output[index].strip())
    where = "\n".join(f"{count} x {frame}" for frame, count in Counter(frames).most_common())
    first = "".join(output[max(0, crashes[0] - 5) : crashes[0] + 120])
    return f"{len(crashes)} tracebacks, raised at:\n{where}\n\n{first}"


def queue_depths(stack: RunningStack) -> dict[str, int]:
    sqs = stack.sqs()
    depths = {}
    for queue in ("delivery", "delivery-dlq"):
        attributes = sqs.get_queue_attributes(QueueUrl=stack.queue_url(queue), AttributeNames=["All"])["Attributes"]
        depths[queue] = sum(
            int(attributes[name])
            for name in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )
    return depths


def test_every_delivery_ends_delivered_through_faults(load_stack: RunningStack) -> None:
    stack = load_stack
    receivers = FaultyReceivers()
    api = ApiClient(http_transport(stack, requests.Session()), stack.create_key(f"load-{uuid.uuid4().hex[:8]}"))
    event_ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SEED}/event/{index}")) for index in range(EVENTS)]
    with ExitStack() as running:
        servers: list[Receiver] = [running.enter_context(receiver(receivers)) for _ in range(SUBSCRIPTIONS)]
        paths = {}
        for index, server in enumerate(servers):
            subscription = subscribe(api, f"http://127.0.0.1:{server.port}/hooks/{index}", description=f"R1 {index}")
            paths[f"/hooks/{index}"] = str(subscription["id"])
        expected = {
            delivery_id(event_id, subscription_id) for event_id in event_ids for subscription_id in paths.values()
        }
        started = time.monotonic()
        refused = publish_in_waves(stack, api.key, event_ids, receivers)
        published = time.monotonic() - started
        wait_for_every_delivery(stack, receivers, expected, started)
        wall = time.monotonic() - started
        # The last attempts' records are written once their answer is in; late slow answers end.
        time.sleep(SLOW_SECONDS[1] + 1)
        answered = list(receivers.answered)

    # Every request a receiver saw names an expected delivery, the one of its event and subscription:
    # a receiver that deduplicates by webhook-id sees every duplicate as one.
    assert {a.webhook_id for a in answered} <= expected
    assert all(a.webhook_id == delivery_id(a.event_id, paths[a.path]) for a in answered)
    assert receivers.delivered == expected

    records = delivery_records(stack)
    assert records.keys() == expected
    statuses = Counter(str(record["status"]) for record in records.values())
    assert statuses == {"delivered": len(expected)}, statuses
    # The attempt recorded as delivering is the last one a receiver answered 200 at once.
    last_ok: dict[str, int] = defaultdict(int)
    for a in answered:
        if a.kind == "ok":
            last_ok[a.webhook_id] = max(last_ok[a.webhook_id], a.attempt)
    wrong = {
        id_: (records[id_]["attempt_count"], last_ok[id_])
        for id_ in expected
        if records[id_]["attempt_count"] != last_ok[id_]
    }
    assert not wrong, (
        f"{len(wrong)} records whose delivering attempt is not the last answered 200, e.g. {list(wrong.items())[:3]}"
    )

    # No invocation crashed (several delivery containers run at once in the stack's one process).
    crashes = [index for index, line in enumerate(stack.output) if "Traceback" in line or "failed on a batch" in line]
    assert not crashes, crash_report(stack.output, crashes)
    depths = queue_depths(stack)
    assert depths["delivery-dlq"] == 0, depths

    faults = Counter(a.kind for a in answered)
    oks = Counter(a.webhook_id for a in answered if a.kind in ("ok", "slow"))
    duplicates = sum(count - 1 for count in oks.values())
    # The same attempt (same X-Yousign-Retry) sent again: a message handled twice, as SQS allows.
    resent = sum(count - 1 for count in Counter((a.webhook_id, a.attempt) for a in answered).values())
    attempts = sum(int(record["attempt_count"]) for record in records.values())  # type: ignore[call-overload]
    print(
        f"R1 load with faults: {EVENTS} events x {SUBSCRIPTIONS} subscriptions = {len(expected)} deliveries, "
        f"delivered {statuses['delivered']}, lost {len(expected) - statuses['delivered']}; "
        f"{len(answered)} requests, {attempts} attempts recorded, retries {attempts - len(expected)}; "
        f"faults injected: {faults['500']} x 500, {faults['slow']} slow, {faults['reset']} reset "
        f"({sum(faults[k] for k in FAULT_KINDS) / len(answered):.1%}); "
        f"duplicates seen by receivers {duplicates} (all under their own webhook-id); "
        f"attempts sent more than once {resent}; "
        f"published in {published:.0f} s (refused for now and sent again: {dict(refused) or 'none'}), "
        f"all delivered in {wall:.0f} s; delivery queue left {depths['delivery']}",
        flush=True,
    )
