"""The local stack's delivery pollers: HOOKRELAY_LOCAL_POLLERS_PER_QUEUE containers per queue, each
invoking the real delivery handler, which sends with the configured timeouts."""

import os
import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
import records
from receivers import Answer, receiver
from records import receiver_endpoint

from hookrelay import clock, wiring
from hookrelay.aws import client, table
from hookrelay.ingest import new_delivery
from hookrelay.queues import delivery_message
from hookrelay.records import Event
from hookrelay.settings import get_settings
from hookrelay.store.delivery_log import DynamoDeliveryLogStore
from hookrelay_cli.local.stack import LocalStack, polled_concurrency
from hookrelay_cli.local.workers import QueuePoller
from hookrelay_cli.template import Template
from paths import TEMPLATE


def queued_delivery(port: int, event_id: str) -> str:
    """A subscription to a receiver on 127.0.0.1, a pending delivery of one event, and its first message."""
    settings, now = get_settings(), clock.now_iso()
    subscription = records.subscription(endpoint=receiver_endpoint(port))
    store = wiring.subscription_store(settings)
    if store.get(subscription.team_id, subscription.id) is None:
        store.create(subscription, records.TEAM_LIMIT)
    event = Event(event_id=event_id, event_name="signer.done", event_time=now, team_id="acme", data={})
    delivery = new_delivery(event, subscription)
    records.store_pending(table(settings.deliveries_table), [delivery])
    wiring.delivery_queue(settings).send([delivery_message(delivery.id, 1, team_id=delivery.team_id)])
    return delivery.id


def delivery_pollers(stack: LocalStack) -> list[QueuePoller]:
    """The pollers of the delivery queue (not of its slow lane)."""
    return stack.queue_pollers_of("DeliveryQueue")


def test_one_poller_per_queue_by_default(stack: LocalStack) -> None:
    pollers = stack.queue_pollers()
    # The delivery function's two event sources: its queue and the slow lane.
    assert sorted(poller.function_id for poller in pollers) == [
        "DeliveryFunction",
        "DeliveryFunction",
        "IngestFunction",
    ]


def test_more_pollers_per_queue_each_with_a_container_of_its_own(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKRELAY_LOCAL_POLLERS_PER_QUEUE", "3")
    pollers = delivery_pollers(stack)
    functions = [poller._function for poller in pollers]
    assert [function.container for function in functions] == [0, 1, 2]
    assert functions[0] is stack.functions["DeliveryFunction"]
    assert len({id(function) for function in functions}) == 3
    assert sum(poller.function_id == "IngestFunction" for poller in stack.queue_pollers()) == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_a_wrong_number_of_pollers_is_refused(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HOOKRELAY_LOCAL_POLLERS_PER_QUEUE", value)
    with pytest.raises(ValueError, match="HOOKRELAY_LOCAL_POLLERS_PER_QUEUE"):
        stack.queue_pollers()


def test_two_containers_deliver_at_once(to_localhost: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKRELAY_LOCAL_POLLERS_PER_QUEUE", "2")
    first, second = delivery_pollers(to_localhost)
    arrived = threading.Event()

    def first_one_slow(_: object) -> Answer:
        slow = not arrived.is_set()
        arrived.set()
        return Answer(delay_seconds=2.0 if slow else 0.1)

    with receiver(first_one_slow) as server:
        queued_delivery(server.port, "0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b")
        busy = threading.Thread(target=first.poll_once)
        busy.start()
        assert arrived.wait(10)
        queued_delivery(server.port, "1f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b")
        started = time.monotonic()
        # With one container, this batch would wait for the first one's slow answer.
        assert second.poll_once() == 1
        assert busy.is_alive(), "the second container delivered only after the first had finished"
        assert time.monotonic() - started < 1.5
        busy.join()
    assert len(server.received) == 2


def test_the_delivery_handler_sends_with_the_configured_timeouts(
    to_localhost: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("HOOKRELAY_SEND_TIMEOUT_SECONDS", "0.5")
    get_settings.cache_clear()
    (poller,) = delivery_pollers(to_localhost)
    with receiver(lambda _: Answer(delay_seconds=2.0)) as server:
        delivery = queued_delivery(server.port, "0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b")
        assert poller.poll_once() == 1
    record = DynamoDeliveryLogStore(table(get_settings().deliveries_table)).get(delivery)
    assert record and record.status == "pending"
    (attempt,) = record.attempts
    assert attempt.error == "timeout: no answer"
    assert 500 <= attempt.latency_ms < 2000


class RecordingFunction:
    """A function that keeps the message ids of every batch it is invoked with, and fails none."""

    def __init__(self, stack: LocalStack) -> None:
        self.spec = stack.template.function("DeliveryFunction")
        self.container = 0
        self.batches: list[list[str]] = []

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.batches.append([record["messageId"] for record in event["Records"]])
        return {"batchItemFailures": []}


def recording_poller(
    stack: LocalStack, function: RecordingFunction, duplicate_rate: float = 0.0, batching_window_seconds: float = 0
) -> QueuePoller:
    (source,) = [s for s in stack.template.queue_sources() if s.queue_id == "DeliveryQueue"]
    return QueuePoller(
        client("sqs"),
        queue_url=stack.resources.ref(source.queue_id),
        queue_arn=stack.resources.get_att(source.queue_id, "Arn"),
        function=function,
        batch_size=10,
        report_batch_item_failures=True,
        failed_visibility_seconds=None,
        duplicate_rate=duplicate_rate,
        batching_window_seconds=batching_window_seconds,
    )


def send_messages(stack: LocalStack, count: int) -> list[str]:
    queue = wiring.delivery_queue(get_settings())
    queue.send([delivery_message(f"d-{index}", 1, team_id="acme") for index in range(count)])
    messages = client("sqs").receive_message(QueueUrl=get_settings().delivery_queue_url, MaxNumberOfMessages=10)
    ids = [message["MessageId"] for message in messages["Messages"]]
    client("sqs").change_message_visibility_batch(
        QueueUrl=get_settings().delivery_queue_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages["Messages"])
        ],
    )
    return ids


def test_with_duplicates_on_every_message_reaches_two_invocations_then_is_deleted(stack: LocalStack) -> None:
    function = RecordingFunction(stack)
    poller = recording_poller(stack, function, duplicate_rate=1.0)
    wiring.delivery_queue(get_settings()).send([delivery_message(f"d-{i}", 1, team_id="acme") for i in range(5)])
    while poller.poll_once():
        pass
    seen = Counter(message_id for batch in function.batches for message_id in batch)
    assert len(seen) == 5 and set(seen.values()) == {2}


def test_batches_come_in_no_set_order(stack: LocalStack) -> None:
    function = RecordingFunction(stack)
    poller = recording_poller(stack, function, duplicate_rate=0.0)
    sent_order = send_messages(stack, 10)
    assert poller.poll_once() == 10
    (batch,) = function.batches
    assert sorted(batch) == sorted(sent_order) and batch != sent_order


def test_a_batching_window_gathers_what_arrives_until_it_ends(stack: LocalStack) -> None:
    function = RecordingFunction(stack)
    poller = recording_poller(stack, function, batching_window_seconds=1)
    queue = wiring.delivery_queue(get_settings())
    queue.send([delivery_message("first", 1, team_id="acme")])
    later = threading.Timer(0.4, lambda: queue.send([delivery_message("later", 1, team_id="quiet")]))
    started = time.monotonic()
    later.start()
    assert poller.poll_once() == 2
    # Without the window the first message is invoked alone at once, and the later one in a batch of its own.
    assert time.monotonic() - started >= 0.95
    assert [len(batch) for batch in function.batches] == [2]


def test_the_stack_s_pollers_gather_for_the_template_s_batching_window(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = stack.template.queue_sources()
    monkeypatch.setattr(
        Template, "queue_sources", lambda _: [replace(source, batching_window_seconds=1) for source in sources]
    )
    (poller,) = delivery_pollers(stack)
    wiring.delivery_queue(get_settings()).send([delivery_message("lone", 1, team_id="acme")])
    started = time.monotonic()
    assert poller.poll_once() == 1
    assert time.monotonic() - started >= 0.95


def test_a_full_batch_does_not_wait_for_the_batching_window(stack: LocalStack) -> None:
    function = RecordingFunction(stack)
    poller = recording_poller(stack, function, batching_window_seconds=5)
    send_messages(stack, 10)
    started = time.monotonic()
    assert poller.poll_once() == 10
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("value", ["-0.1", "1.5", "often"])
def test_a_wrong_duplicate_rate_is_refused(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HOOKRELAY_LOCAL_SQS_DUPLICATE_RATE", value)
    with pytest.raises(ValueError, match="HOOKRELAY_LOCAL_SQS_DUPLICATE_RATE"):
        stack.queue_pollers()


def test_with_duplicates_each_delivery_is_still_sent_once(
    to_localhost: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKRELAY_LOCAL_SQS_DUPLICATE_RATE", "1")
    (poller,) = delivery_pollers(to_localhost)
    with receiver() as server:
        deliveries = {queued_delivery(server.port, f"{index}f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b") for index in range(3)}
        received = 0
        while count := poller.poll_once():
            received += count
    assert received == 6  # each message handed to two invocations
    assert Counter(request.headers["webhook-id"] for request in server.received) == Counter(
        dict.fromkeys(deliveries, 1)
    )


@pytest.mark.parametrize("pollers", [1, 3])
def test_the_queues_functions_concurrency_is_their_pollers(pollers: int) -> None:
    concurrency = polled_concurrency(Template.read(TEMPLATE), pollers)
    # The delivery function's containers: those of its queue's pollers and of its slow lane's.
    assert concurrency == {"DeliveryReservedConcurrency": str(2 * pollers), "IngestReservedConcurrency": str(pollers)}


def test_delivery_spaces_its_rate_limit_writes_for_the_local_containers(stack: LocalStack) -> None:
    # Spaced for the 400 containers of AWS (one rate# write every 4 s per container), the one local
    # container took a subscription's slots slower than its rate: 500 events at 5/s did not drain in 360 s.
    assert os.environ["HOOKRELAY_DELIVERY_CONTAINERS"] == "2"  # one per lane
