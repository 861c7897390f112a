"""The local stack's function containers, each a process of its own, ended at its function's Timeout
as Lambda ends it (tests/integration/slow_stack: a function that sleeps past its 1 s Timeout)."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookrelay.aws import client
from hookrelay_cli.local.functions import FunctionError, FunctionTimedOut
from hookrelay_cli.local.stack import LocalStack
from integration.test_crash_safety import container_stack
from integration.test_ingest import drain
from integration.test_local_iam import template_without_delivery_table_policy
from paths import REPO

SLOW_TEMPLATE = Path(__file__).parent / "slow_stack" / "template.yaml"
# Well past the 1 s Timeout (+ the container's cold start, which its first invocation waits for).
SLOW_SECONDS = 4.0


@pytest.fixture
def slow_stack(restore_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalStack]:
    monkeypatch.setenv("SLOW_SECONDS", str(SLOW_SECONDS))
    monkeypatch.setenv("SLOW_DONE_FILE", str(tmp_path / "done"))
    with container_stack(SLOW_TEMPLATE) as stack:
        yield stack


def test_a_batch_past_the_timeout_has_no_effect_comes_back_and_reaches_the_dlq(
    slow_stack: LocalStack, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sqs = client("sqs")
    sqs.send_message(QueueUrl=slow_stack.resources.ref("WorkQueue"), MessageBody="slow work")
    (poller,) = slow_stack.queue_pollers()
    started = time.monotonic()
    assert poller.poll_once(wait_seconds=1) == 1
    took = time.monotonic() - started
    time.sleep(SLOW_SECONDS)  # long enough for a handler left running to finish
    assert not (tmp_path / "done").exists(), "the handler ran on past its Timeout"
    assert took < SLOW_SECONDS, f"the invocation was not ended at its 1 s Timeout ({took:.1f} s)"
    assert "Task timed out after 1.00 seconds" in capfd.readouterr().out

    # Neither deleted nor reported: the batch comes back after the queue's 2 s visibility timeout,
    # times out again, and SQS's redrive policy (maxReceiveCount 2) then moves it to the DLQ.
    deadline = time.monotonic() + 60
    while not (dead := drain(slow_stack.resources.ref("WorkDeadLetterQueue"))):
        assert time.monotonic() < deadline, "the message never reached the DLQ"
        poller.poll_once(wait_seconds=1)
    assert [message["Body"] for message in dead] == ["slow work"]
    assert not (tmp_path / "done").exists()


def test_local_invoke_of_a_function_past_its_timeout_raises(slow_stack: LocalStack) -> None:
    with pytest.raises(FunctionTimedOut, match=r"Task timed out after 1\.00 seconds"):
        slow_stack.invoke("SlowFunction", {"Records": []})
    # The next invocation gets a fresh container, which times out the same way.
    with pytest.raises(FunctionTimedOut):
        slow_stack.invoke("SlowFunction", {"Records": []})


def test_a_container_runs_with_only_its_roles_permissions(
    restore_environment: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A copy of template.yaml without the delivery function's policy on the deliveries table: in its
    own container, the function's first call is refused as AWS refuses it, naming function, action, resource."""
    event = json.loads((REPO / "events" / "delivery-sqs-batch.json").read_text())
    with container_stack(template_without_delivery_table_policy(tmp_path)) as stack:
        result = stack.invoke("DeliveryFunction", event)
        table_arn = f"arn:aws:dynamodb:{stack.resources.region}:{stack.resources.account_id}:table/" + (
            stack.resources.ref("DeliveriesTable")
        )
    # The record fails alone and comes back, as any unexpected error does.
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    logs = capfd.readouterr().out
    assert "AccessDeniedException" in logs
    assert (
        "assumed-role/hookrelay-local-DeliveryFunctionRole/hookrelay-local-DeliveryFunction is not authorized to"
        f" perform: dynamodb:BatchGetItem on resource: {table_arn}"
    ) in logs


def test_a_stopped_stack_starts_no_container_for_a_late_invocation(slow_stack: LocalStack) -> None:
    """Ctrl-C can come while a poller waits on its queue: the batch it then receives must not start
    a container that the stop would have to wait for (the message comes back after its visibility timeout)."""
    slow_stack.stop()
    started = time.monotonic()
    with pytest.raises(FunctionError, match="stopped"):
        slow_stack.invoke("SlowFunction", {"Records": []})
    assert time.monotonic() - started < SLOW_SECONDS


def test_a_pollers_long_poll_outlasts_the_functions_read_timeout(slow_stack: LocalStack) -> None:
    # The functions' AWS calls give up reading after 1 s (HOOKRELAY_AWS_READ_TIMEOUT_SECONDS); a long
    # poll of an empty queue is answered only at its end, and the stack's pollers have clients of their own.
    (poller,) = slow_stack.queue_pollers()
    started = time.monotonic()
    assert poller.poll_once(wait_seconds=3) == 0
    assert time.monotonic() - started >= 3
