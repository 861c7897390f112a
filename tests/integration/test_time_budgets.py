"""Time budgets under the local stack's real Timeouts (issue 22), each function in a container of its own,
killed at its template Timeout as Lambda kills it. Delivery takes a batch of ten to endpoints that hang
past the send deadline: every message ends attempted and recorded, or returned untouched; none is sent
without its attempt recorded, so none is sent twice for lack of a record. The sweeper, short of time,
stops claiming and enqueues every retry it claimed."""

import json
import math
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from receivers import Answer, Receiver, receiver

from hookrelay import clock
from hookrelay.aws import Table, python_values
from hookrelay.settings import AwsCallLimits, get_settings
from hookrelay.time_budget import attempt_seconds
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.template import Template
from integration.test_crash_safety import container_stack, delivery_poller, pending_deliveries, queue_depth
from integration.test_ingest import delivery_records, drain
from integration.test_sweeper import scheduled_delivery
from paths import REPO, TEMPLATE

SEND_DEADLINE_SECONDS = 3.9
# The endpoints answer only after the send deadline: every send ends at it.
HANG_SECONDS = SEND_DEADLINE_SECONDS + 2
EVENTS, SUBSCRIPTIONS = 5, 2  # a batch of ten
# Lambda's timeouts are whole seconds: this one is just above the send deadline.
JUST_ABOVE_THE_SEND_DEADLINE = math.ceil(SEND_DEADLINE_SECONDS)
MAX_RECEIVE_COUNT = 5  # the delivery queue's redrive policy


def template_with_timeout(folder: Path, function_id: str, seconds: int) -> Path:
    """A copy of template.yaml, in `folder`, whose function `function_id` has a Timeout of `seconds`."""
    text = TEMPLATE.read_text()
    function = text.index(f"\n  {function_id}:\n")
    timeout = text.index("      Timeout: ", function)
    end = text.index("\n", timeout)
    (folder / "template.yaml").write_text(text[:timeout] + f"      Timeout: {seconds}" + text[end:])
    (folder / "functions").symlink_to(REPO / "functions")
    return folder / "template.yaml"


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    with receiver(lambda _: Answer(delay_seconds=HANG_SECONDS)) as server:
        yield server


def stack_with_delivery_timeout(seconds: int, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    monkeypatch.setenv("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "true")
    monkeypatch.setenv("HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS", "0")
    monkeypatch.setenv("HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("HOOKRELAY_SEND_TIMEOUT_SECONDS", str(SEND_DEADLINE_SECONDS))
    with container_stack(template_with_timeout(folder, "DeliveryFunction", seconds)) as stack:
        yield stack


@pytest.fixture
def tight_stack(restore_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalStack]:
    """The delivery function's Timeout just above one send deadline: no attempt fits in it."""
    yield from stack_with_delivery_timeout(JUST_ABOVE_THE_SEND_DEADLINE, tmp_path, monkeypatch)


@pytest.fixture
def roomy_stack(restore_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalStack]:
    """The delivery function's Timeout leaves an attempt and the batch's reads their worst case."""
    environment = Template.read(TEMPLATE).function("DeliveryFunction").environment
    aws_call = AwsCallLimits.from_environment(
        {name: str(value) for name, value in environment.items()}
    ).worst_call_seconds
    timeout = math.ceil(aws_call + attempt_seconds(SEND_DEADLINE_SECONDS, aws_call))
    yield from stack_with_delivery_timeout(timeout, tmp_path, monkeypatch)


def sends_and_recorded_attempts(server: Receiver, deliveries: list[str]) -> dict[str, tuple[int, int]]:
    """Per delivery: (requests the endpoint got, attempts recorded)."""
    sent = Counter(request.headers["webhook-id"] for request in server.received)
    stored = delivery_records()
    return {delivery: (sent[delivery], int(stored[delivery]["attempt_count"])) for delivery in deliveries}


def test_a_batch_without_time_for_an_attempt_comes_back_untouched(
    tight_stack: LocalStack, hanging: Receiver, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = get_settings()
    deliveries = pending_deliveries(hanging.port, EVENTS, SUBSCRIPTIONS)
    poller = delivery_poller(tight_stack)
    for receive in range(1, MAX_RECEIVE_COUNT + 1):
        assert poller.poll_once(wait_seconds=1) == len(deliveries), f"receive {receive}"
        # Nothing sent, nothing recorded; the whole batch is back on the queue.
        assert sends_and_recorded_attempts(hanging, deliveries) == dict.fromkeys(deliveries, (0, 0))
        assert "Task timed out" not in capfd.readouterr().out
    # What is put back for lack of time still counts toward maxReceiveCount: received five times, an
    # untouched message goes to the DLQ instead of a sixth receive.
    assert poller.poll_once(wait_seconds=1) == 0
    assert queue_depth(settings.delivery_queue_url) == 0
    assert len(drain(tight_stack.resources.ref("DeliveryDeadLetterQueue"))) == len(deliveries)


def test_a_batch_with_time_for_its_attempts_is_attempted_and_recorded_once(
    roomy_stack: LocalStack, hanging: Receiver, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = get_settings()
    deliveries = pending_deliveries(hanging.port, EVENTS, SUBSCRIPTIONS)
    poller = delivery_poller(roomy_stack)
    assert poller.poll_once(wait_seconds=1) == len(deliveries)
    # Each send ended at its deadline, was recorded, and its retry waits (2 minutes away) on the slow lane,
    # a send that ran to its deadline marking its endpoint slow.
    assert sends_and_recorded_attempts(hanging, deliveries) == dict.fromkeys(deliveries, (1, 1))
    assert {record["status"] for record in delivery_records().values()} == {"pending"}
    assert poller.poll_once(wait_seconds=1) == 0
    assert queue_depth(settings.delivery_queue_url) == 0
    assert queue_depth(settings.slow_lane_url) == len(deliveries)
    assert "Task timed out" not in capfd.readouterr().out


# The sweeper's Timeout: it stops claiming with stop_seconds (8.5 s) left, half a second in.
SWEEPER_TIMEOUT = 9
DUE_RETRIES = 400


def test_a_sweeper_short_of_time_enqueues_every_retry_it_claimed(
    restore_environment: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with container_stack(template_with_timeout(tmp_path, "SweeperFunction", SWEEPER_TIMEOUT)) as stack:
        settings = get_settings()
        due = {scheduled_delivery(index, timedelta(seconds=-5)) for index in range(DUE_RETRIES)}
        answer = stack.invoke("SweeperFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})
        # Read on the stack's own client: a scan of them all can outlast a function's read timeout.
        deliveries = Table(settings.deliveries_table, python_values(stack.clients("dynamodb")))
        leases = {item["delivery_id"]: item.get("due_at", "") for item in deliveries.scan(ConsistentRead=True)["Items"]}
        claimed = {delivery for delivery in due if leases[delivery] > clock.now_iso()}
        enqueued = [json.loads(message["Body"])["delivery_id"] for message in drain(settings.delivery_queue_url)]
    assert "Task timed out" not in capfd.readouterr().out
    # It stopped before the end, and nothing it claimed waits out its lease.
    assert 0 < answer["enqueued"] < DUE_RETRIES
    assert sorted(enqueued) == sorted(claimed) and len(enqueued) == answer["enqueued"]
