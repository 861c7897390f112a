"""The operator CLI against a running local stack, as an operator uses it: `hookrelay ... --local`."""

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import local_up
import pytest
import requests
from receivers import Answer, receiver

from api_client import ApiClient
from e2e.conftest import (
    DEV_KEY,
    OPERATOR_STACK,
    SECRETS,
    SUBSCRIPTION_SECRET,
    RunningStack,
    bump_team_version,
    eventually,
    http_transport,
    park_in_eventbridge_dlq,
    publish,
    record,
    running_stack,
    subscribe,
    verify_all_signatures,
)
from hookrelay.records import delivery_id

pytestmark = pytest.mark.e2e
# Ctrl-C ends `local up` within this, a delivery in flight or not (its batch returns to its queue);
# without the stop's grace it waits for the send's timeout, longer than this to tell the two apart (and
# the longest with which an attempt still fits in the delivery function's Timeout: it starts none else).
STOP_SECONDS = 12
SEND_TIMEOUT_SECONDS = 15


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with running_stack(OPERATOR_STACK) as stack:
        yield stack


def test_dlq_redrive_moves_messages_back_and_they_are_delivered(stack: RunningStack) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    api = ApiClient(http_transport(stack, requests.Session()), stack.create_key(team))
    sqs, dlq, subscriptions = stack.sqs(), stack.queue_url("delivery-dlq"), stack.table("SubscriptionsTable")

    def dlq_depth() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    with receiver() as healthy:
        subscription = subscribe(api, f"http://127.0.0.1:{healthy.port}/hook")
        secret, key = str(subscription["secret_key"]), {"team_id": team, "subscription_id": subscription["id"]}
        # Bad data the API would never write (a secret that is not base64): every delivery attempt
        # raises before sending, five receives in a row, and SQS moves the message to the DLQ.
        subscriptions.update_item(
            Key=key, UpdateExpression="SET secret_key = :bad", ExpressionAttributeValues={":bad": "whsec_not*base64"}
        )
        delivery = delivery_id(publish(api), str(subscription["id"]))
        eventually(lambda: dlq_depth() == 1, "the delivery message in the delivery DLQ")
        assert healthy.received == []
        assert record(stack, delivery) == {}  # its first attempt, not made, creates its record

        (listed,) = json.loads(stack.local_cli("dlq", "list", "--json"))["messages"]
        assert (listed["delivery_id"], listed["attempt"]) == (delivery, 1)
        shown = json.loads(stack.local_cli("dlq", "show", listed["message_id"]))
        assert shown["delivery"]["status"] == "pending" and shown["delivery"]["attempt_count"] == 0
        assert dlq_depth() == 1  # looking took nothing away

        # The operator repairs the data, moving the team's version on as the README says, so that
        # warm containers read it again; then sends the message back.
        subscriptions.update_item(
            Key=key, UpdateExpression="SET secret_key = :good", ExpressionAttributeValues={":good": secret}
        )
        bump_team_version(stack, team)
        assert json.loads(stack.local_cli("dlq", "redrive")) == {"status": "COMPLETED", "moved": 1, "failed": 0}
        assert dlq_depth() == 0
        eventually(lambda: record(stack, delivery).get("status") == "delivered", "the redriven delivery delivered")

    (request,) = healthy.received
    assert request.headers["webhook-id"] == delivery
    verify_all_signatures(request, secret, str(subscription["id"]))
    shown = json.loads(stack.local_cli("deliveries", "show", delivery))
    assert shown["status"] == "delivered" and shown["attempt_count"] == 1
    assert [attempt["status_code"] for attempt in shown["attempts"]] == [200]


def test_an_event_eventbridge_parked_is_redriven_to_ingest_and_delivered(stack: RunningStack) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    api = ApiClient(http_transport(stack, requests.Session()), stack.create_key(team))
    with receiver() as healthy:
        subscription = subscribe(api, f"http://127.0.0.1:{healthy.port}/hook")
        reasons = {"ERROR_CODE": "NO_PERMISSIONS", "ERROR_MESSAGE": "Access denied.", "RETRY_ATTEMPTS": "0"}
        event, _ = park_in_eventbridge_dlq(stack, team, reasons)
        (listed,) = json.loads(stack.local_cli("dlq", "list", "--queue", "eventbridge", "--json"))["messages"]
        assert listed["error_code"] == "NO_PERMISSIONS"

        redriven = json.loads(stack.local_cli("dlq", "redrive", "--queue", "eventbridge"))

        assert redriven == {"status": "COMPLETED", "moved": 1, "failed": 0}
        delivery = delivery_id(event.event_id, str(subscription["id"]))
        eventually(lambda: record(stack, delivery).get("status") == "delivered", "the parked event delivered")
    (request,) = healthy.received
    assert request.headers["webhook-id"] == delivery


def test_a_revoked_key_is_refused(stack: RunningStack) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    key = stack.create_key_with_cli(team)
    api = ApiClient(http_transport(stack, requests.Session()), key)
    assert api.get("/v3/webhooks").status == 200

    (listed,) = json.loads(stack.local_cli("keys", "list", "--team", team, "--json"))["keys"]
    stack.local_cli("keys", "revoke", "--team", team, listed["key_id"])

    assert api.get("/v3/webhooks").status == 401
    assert json.loads(stack.local_cli("keys", "list", "--team", team, "--json")) == {"keys": []}


def test_ctrl_c_ends_local_up_within_seconds_while_a_delivery_is_in_flight() -> None:
    # The receiver holds the webhook longer than the send timeout: the stop must not wait for it.
    with receiver(lambda _: Answer(delay_seconds=60)) as hung:
        with running_stack(
            {
                "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
                "HOOKRELAY_SEND_TIMEOUT_SECONDS": str(SEND_TIMEOUT_SECONDS),
            }
        ) as stack:
            api = ApiClient(http_transport(stack, requests.Session()), stack.create_key(f"team-{uuid.uuid4().hex[:8]}"))
            subscribe(api, f"http://127.0.0.1:{hung.port}/hooks")
            publish(api)
            eventually(lambda: bool(hung.received), "the receiver got the webhook")
            stopping = time.monotonic()
        stopped_in = time.monotonic() - stopping

    assert stopped_in < STOP_SECONDS
    assert "stopped during a batch" in "".join(stack.output)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the stack's threads in /proc (Linux)")
def test_ctrl_c_ends_local_up_whichever_of_its_threads_takes_the_signal() -> None:
    # The kernel may hand a Ctrl-C to any thread of a busy process; kill(2) with a thread's id hands it
    # to that thread. (The portal e2e's stack once sat through a Ctrl-C so, for good.)
    started = local_up.start({})
    try:
        pid = started.process.pid
        other_threads = [int(thread) for thread in os.listdir(f"/proc/{pid}/task") if int(thread) != pid]
        os.kill(other_threads[-1], signal.SIGINT)
        assert started.process.wait(timeout=STOP_SECONDS) == 0
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait()
    assert "stopping" in "".join(started.output)


def test_a_ctrl_c_to_the_whole_process_group_after_a_delivery_prints_no_traceback_or_sdk_warning() -> None:
    # A terminal's Ctrl-C goes to its whole foreground process group: the stack, its moto child and its
    # containers. Before, two containers each printed a KeyboardInterrupt traceback, and the delivery
    # function's sender threads an X-Ray SDK "No segment found" warning at each AWS call.
    started = local_up.start({"HOOKRELAY_DEV_API_KEY": DEV_KEY}, own_process_group=True)
    try:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {DEV_KEY}"
        with receiver() as endpoint:
            created = api.post(
                f"{started.url}/v3/webhooks",
                json={"endpoint": f"http://127.0.0.1:{endpoint.port}/hook", "subscribed_events": ["*"]},
                timeout=30,
            )
            assert created.status_code == 201, created.text
            SECRETS.add(SUBSCRIPTION_SECRET, created.json()["secret_key"])
            published = api.post(
                f"{started.url}/v3/events",
                json={
                    "event_name": "signer.done",
                    "data": {"signer": {"id": "s-1"}},
                    "event_time": "2026-03-02T10:15:30Z",
                },
                timeout=30,
            )
            assert published.status_code == 202, published.text
            eventually(lambda: bool(endpoint.received), "the delivery received")
        os.killpg(started.process.pid, signal.SIGINT)
        # How long the stop takes is the other Ctrl-C tests' concern: this one is about what it prints.
        assert started.process.wait(timeout=local_up.STOP_TIMEOUT_SECONDS) == 0
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait()
    started.drain.join(timeout=5)
    output = "".join(started.output)
    assert "stopping" in output
    for unwanted in ("Traceback", "KeyboardInterrupt", "No segment found", "unpublished metrics"):
        assert unwanted not in output, output
