"""Delivery over the local stack to real receivers on 127.0.0.1: POST /v3/events → ingest →
delivery queue → the real delivery handler → signed HTTP requests, retried on a fast schedule."""

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from receivers import Answer, Received, receiver

from api_client import ApiClient
from e2e.conftest import (
    RunningStack,
    ed25519_verifies,
    eventually,
    http_transport,
    publish,
    record,
    remember_private_keys,
    running_stack,
    subscribe,
    verify_all_signatures,
)
from e2e.test_dlq_runbook import AwsCli
from hookrelay.records import delivery_id
from hookrelay.slow_answers import SLOW_ANSWER_MS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def delivery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # Receivers listen on 127.0.0.1 over plain http, so this stack allows private endpoints, as
    # the local stack does by default; retries come after 1, 2 and 3 seconds. Slack's and Discord's
    # hosts lead to local receivers.
    hosts = tmp_path_factory.mktemp("hosts") / "hosts"
    hosts.write_text("127.0.0.1 hooks.slack.com discord.com\n", encoding="utf-8")
    with running_stack(
        {
            "HOOKRELAY_LOCAL_HOSTS_FILE": str(hosts),
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
            "HOOKRELAY_RETRY_SCHEDULE": "1s,2s,3s",
            "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0",
        }
    ) as stack:
        yield stack


@pytest.fixture
def api(delivery_stack: RunningStack) -> ApiClient:
    return delivery_stack.new_team()


@pytest.fixture
def other_api(delivery_stack: RunningStack) -> ApiClient:
    return delivery_stack.new_team()


def test_every_format_arrives_signed_as_the_spec_says(api: ApiClient) -> None:
    with receiver() as yousign, receiver() as subnoto_json, receiver() as subnoto_form:
        subscriptions = {
            "yousign": subscribe(api, f"http://127.0.0.1:{yousign.port}/y", description="Contracts"),
            "subnoto_json": subscribe(api, f"http://127.0.0.1:{subnoto_json.port}/s", payload_format="subnoto"),
            "subnoto_form": subscribe(
                api,
                f"http://127.0.0.1:{subnoto_form.port}/f",
                payload_format="subnoto",
                content_type="application/x-www-form-urlencoded",
            ),
        }
        event_id = publish(api)
        eventually(lambda: all(r.received for r in (yousign, subnoto_json, subnoto_form)), "all three receivers called")

    (request,) = yousign.received
    subscription = subscriptions["yousign"]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["webhook-id"] == delivery_id(event_id, str(subscription["id"]))
    assert request.headers["X-Yousign-Retry"] == "0"
    assert request.headers["Accept-Encoding"] == "identity"
    verify_all_signatures(request, str(subscription["secret_key"]), str(subscription["id"]))
    body = json.loads(request.body)
    assert body == {
        "event_id": event_id,
        "event_name": "signer.done",
        "event_time": "1772446530",
        "subscription_id": subscription["id"],
        "subscription_description": "Contracts",
        "sandbox": False,
        "data": body["data"],
    }
    assert body["data"]["signer"]["info"]["first_name"] == "Jérôme"

    (request,) = subnoto_json.received
    subscription = subscriptions["subnoto_json"]
    verify_all_signatures(request, str(subscription["secret_key"]), str(subscription["id"]))
    payload = json.loads(request.body)
    assert payload["eventUuid"] == event_id and payload["eventType"] == "signer.done"
    assert payload["eventTime"] == 1772446530000 and payload["webhookUuid"] == subscription["id"]
    assert isinstance(payload["teamUuid"], str) and payload["data"]["signer"]["id"] == "s-1"

    (request,) = subnoto_form.received
    subscription = subscriptions["subnoto_form"]
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    verify_all_signatures(request, str(subscription["secret_key"]), str(subscription["id"]))
    fields = parse_qs(request.body.decode("ascii"), strict_parsing=True)
    assert list(fields) == ["payload"] and json.loads(fields["payload"][0])["eventUuid"] == event_id


def test_slack_and_discord_get_readable_messages_signed_like_the_rest(api: ApiClient) -> None:
    with receiver() as slack, receiver() as discord:
        slack_subscription = subscribe(api, f"http://hooks.slack.com:{slack.port}/services/T0/B0/xyz")
        discord_subscription = subscribe(api, f"http://discord.com:{discord.port}/api/webhooks/42/token")
        assert (slack_subscription["delivery_format"], discord_subscription["delivery_format"]) == ("slack", "discord")
        event_id = publish(api)
        eventually(lambda: bool(slack.received and discord.received), "Slack and Discord receivers called")
    # Slack's and Discord's markup for the text "Signer: Jérôme Durand <j@example.com>", the address broken
    # by a zero-width space after its @ (no mailto: link, no mention).
    slack_line = "Signer: Jérôme Durand &lt;j@\u200bexample.com&gt;"
    discord_line = "Signer: Jérôme Durand \\<j\\@\u200bexample.com\\>"

    (request,) = slack.received
    assert request.path == "/services/T0/B0/xyz" and request.headers["Content-Type"] == "application/json"
    assert request.headers["Host"] == f"hooks.slack.com:{slack.port}"
    verify_all_signatures(request, str(slack_subscription["secret_key"]), str(slack_subscription["id"]))
    message = json.loads(request.body)
    assert set(message) == {"text", "blocks"}
    assert message["text"].startswith("signer.done: ") and slack_line in message["text"]
    assert message["blocks"][0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": message["text"], "verbatim": True},
    }
    assert event_id in message["blocks"][1]["elements"][0]["text"]

    (request,) = discord.received
    assert request.path == "/api/webhooks/42/token" and request.headers["Content-Type"] == "application/json"
    verify_all_signatures(request, str(discord_subscription["secret_key"]), str(discord_subscription["id"]))
    message = json.loads(request.body)
    assert set(message) == {"content", "embeds", "allowed_mentions"} and message["content"].startswith("signer.done: ")
    assert message["allowed_mentions"] == {"parse": []}
    (embed,) = message["embeds"]
    assert embed["title"] == "signer.done" and embed["description"].split("\n") == [discord_line]
    assert embed["timestamp"] == "2026-03-02T10:15:30+00:00" and embed["footer"]["text"] == f"event {event_id}"


def test_a_batch_of_events_reaches_the_receiver_one_signed_request_each(api: ApiClient) -> None:
    names = ["signer.done", "signature_request.done", "ENVELOPE_SIGNED"] * 3 + ["signer.done"]
    with receiver() as hook:
        subscription = subscribe(api, f"http://127.0.0.1:{hook.port}/batch")
        events = [{"event_name": name, "data": {"n": index}} for index, name in enumerate(names)]
        response = api.post("/v3/events/batch", {"events": events})
        assert response.status == 202, response.body
        event_ids = [item["event_id"] for item in response.json()["data"]]
        eventually(lambda: len(hook.received) >= len(names), "every event of the batch delivered")
    arrived = {json.loads(request.body)["event_id"]: request for request in hook.received}
    assert set(arrived) == set(event_ids) and len(hook.received) == len(names)
    for index, (event_id, name) in enumerate(zip(event_ids, names, strict=True)):
        body = json.loads(arrived[event_id].body)
        assert (body["event_name"], body["data"]) == (name, {"n": index})
        assert arrived[event_id].headers["webhook-id"] == delivery_id(event_id, str(subscription["id"]))
        verify_all_signatures(arrived[event_id], str(subscription["secret_key"]), str(subscription["id"]))


def test_two_teams_publishing_the_same_event_id_each_get_their_delivery(api: ApiClient, other_api: ApiClient) -> None:
    event_id = str(uuid.uuid4())
    with receiver() as mine, receiver() as theirs:
        their_subscription = subscribe(other_api, f"http://127.0.0.1:{theirs.port}/hook")
        my_subscription = subscribe(api, f"http://127.0.0.1:{mine.port}/hook")
        assert publish(other_api, event_id=event_id) == event_id
        eventually(lambda: bool(theirs.received), "the other team's receiver called")
        assert publish(api, event_id=event_id) == event_id
        eventually(lambda: bool(mine.received), "this team's receiver called, though the other team used its event id")
    for (request,), subscription in ((theirs.received, their_subscription), (mine.received, my_subscription)):
        assert request.headers["webhook-id"] == delivery_id(event_id, str(subscription["id"]))
        assert json.loads(request.body)["event_id"] == event_id
        verify_all_signatures(request, str(subscription["secret_key"]), str(subscription["id"]))


def test_custom_headers_arrive_signed_and_a_patch_reaches_the_next_attempt(
    api: ApiClient, delivery_stack: RunningStack
) -> None:
    token = f"Bearer receiver-token-{uuid.uuid4().hex}"
    patched = threading.Event()

    def fail_first_once_patched(request: Received) -> Answer:
        if request.headers.get("X-Tenant") == "acme":
            patched.wait(timeout=10)
            return Answer(500, b"not yet")
        return Answer(200)

    with receiver(fail_first_once_patched) as migrating:
        subscription = subscribe(
            api, f"http://127.0.0.1:{migrating.port}/hook", headers={"Authorization": token, "X-Tenant": "acme"}
        )
        delivery = delivery_id(publish(api), str(subscription["id"]))
        eventually(lambda: len(migrating.received) == 1, "the first attempt arrived")
        path = f"/v3/webhooks/{subscription['id']}"
        assert api.patch(path, {"headers": {"X-Tenant": "globex"}}).status == 200
        patched.set()
        eventually(lambda: record(delivery_stack, delivery).get("status") == "delivered", "delivered on the retry")

    first, retry = migrating.received
    assert (first.headers["Authorization"], first.headers["X-Tenant"]) == (token, "acme")
    assert "Authorization" not in retry.headers and retry.headers["X-Tenant"] == "globex"
    for request in (first, retry):
        assert request.headers["webhook-id"] == delivery
        verify_all_signatures(request, str(subscription["secret_key"]), str(subscription["id"]))
    detail = api.get(f"{path}/deliveries/{delivery}").json()
    assert detail["request"]["headers"]["X-Tenant"] == "globex"
    assert detail["request"]["headers"]["webhook-id"] == delivery


def test_fails_twice_then_succeeds_with_the_same_webhook_id(api: ApiClient, delivery_stack: RunningStack) -> None:
    answers = iter([Answer(500, b"boom"), Answer(502, b"bad gateway"), Answer(200, b"thanks")])
    with receiver(lambda _: next(answers)) as flaky:
        subscription = subscribe(api, f"http://127.0.0.1:{flaky.port}/hook")
        event_id = publish(api)
        delivery = delivery_id(event_id, str(subscription["id"]))
        eventually(lambda: record(delivery_stack, delivery).get("status") == "delivered", "delivered on the third try")
    assert [r.headers["webhook-id"] for r in flaky.received] == [delivery] * 3
    assert [r.headers["X-Yousign-Retry"] for r in flaky.received] == ["0", "1", "2"]
    for request in flaky.received:
        verify_all_signatures(request, str(subscription["secret_key"]), str(subscription["id"]))
    attempts = record(delivery_stack, delivery)["attempts"]
    assert [attempt["status_code"] for attempt in attempts] == [500, 502, 200]  # type: ignore[index]
    assert [attempt["response_excerpt"] for attempt in attempts] == ["boom", "bad gateway", "thanks"]  # type: ignore[index]


def slow_marks(stack: RunningStack) -> dict[str, int]:
    """Every team's slow marks as an operator reads them, with the AWS CLI: subscription id -> when it ends."""
    aws = AwsCli(stack.aws_endpoint, "dynamodb")
    found = aws(
        "scan",
        "--table-name",
        stack.table("SubscriptionsTable").name,
        "--filter-expression",
        "subscription_id = :marks",
        "--expression-attribute-values",
        json.dumps({":marks": {"S": "#slow"}}),
    )
    return {
        name: int(value["N"])
        for item in found["Items"]
        for name, value in item.items()
        if name not in ("team_id", "subscription_id")
    }


def test_an_endpoint_found_slow_gets_its_next_events_from_the_slow_lane_without_a_move(
    api: ApiClient, delivery_stack: RunningStack
) -> None:
    with receiver(lambda _: Answer(delay_seconds=SLOW_ANSWER_MS / 1000 + 0.2)) as slow:
        subscription = str(subscribe(api, f"http://127.0.0.1:{slow.port}/hook")["id"])
        first = delivery_id(publish(api), subscription)
        eventually(lambda: record(delivery_stack, first).get("status") == "delivered", "the first delivered")
        eventually(lambda: slow_marks(delivery_stack).get(subscription, 0) > time.time(), "the endpoint marked slow")
        later = [delivery_id(publish(api), subscription) for _ in range(3)]
        eventually(
            lambda: all(record(delivery_stack, each).get("status") == "delivered" for each in later),
            "the later events delivered",
        )
    assert sorted(request.headers["webhook-id"] for request in slow.received) == sorted([first, *later])
    # Ingest sent them to the slow lane: no delivery-queue container held them or moved them there.
    moves = [line for line in delivery_stack.text().splitlines() if "moved to the slow lane" in line]
    assert not [line for line in moves if subscription in line]


def test_gone_disables_the_subscription(api: ApiClient, delivery_stack: RunningStack) -> None:
    with receiver(lambda _: Answer(410, b"gone")) as gone:
        subscription = subscribe(api, f"http://127.0.0.1:{gone.port}/hook")
        event_id = publish(api)
        delivery = delivery_id(event_id, str(subscription["id"]))
        eventually(lambda: record(delivery_stack, delivery).get("status") == "failed", "the delivery failed")
        publish(api)
        time.sleep(2)
    assert len(gone.received) == 1
    current = api.get(f"/v3/webhooks/{subscription['id']}").json()
    assert current["enabled"] is False and "410" in current["disabled_reason"]


def test_too_many_requests_waits_at_least_the_retry_after(api: ApiClient, delivery_stack: RunningStack) -> None:
    answers = iter([Answer(429, b"slow down", {"Retry-After": "61"}), Answer(200)])
    arrivals: list[float] = []

    def throttle_once(_: Received) -> Answer:
        arrivals.append(time.monotonic())
        return next(answers)

    with receiver(throttle_once) as throttled:
        subscription = subscribe(api, f"http://127.0.0.1:{throttled.port}/hook")
        delivery = delivery_id(publish(api), str(subscription["id"]))
        eventually(lambda: record(delivery_stack, delivery).get("status") == "delivered", "delivered after", 90)
    # The schedule's first retry would come after 1 s; Retry-After asked for 61.
    assert arrivals[1] - arrivals[0] >= 61
    assert [r.headers["webhook-id"] for r in throttled.received] == [delivery] * 2
    attempts = record(delivery_stack, delivery)["attempts"]
    assert [attempt["status_code"] for attempt in attempts] == [429, 200]  # type: ignore[index]


def test_a_redirect_is_not_followed(api: ApiClient, delivery_stack: RunningStack) -> None:
    with (
        receiver() as target,
        receiver(lambda _: Answer(302, b"", {"Location": f"http://127.0.0.1:{target.port}/"})) as redirecting,
    ):
        subscription = subscribe(api, f"http://127.0.0.1:{redirecting.port}/hook", auto_retry=False)
        event_id = publish(api)
        delivery = delivery_id(event_id, str(subscription["id"]))
        eventually(lambda: record(delivery_stack, delivery).get("status") == "failed", "the delivery failed")
    assert len(redirecting.received) == 1 and target.received == []
    (attempt,) = record(delivery_stack, delivery)["attempts"]  # type: ignore[misc]
    assert attempt["status_code"] == 302 and attempt["error"] == "redirect: 302 not followed"


def test_a_poison_message_goes_to_the_dlq_and_the_rest_is_delivered(
    api: ApiClient, delivery_stack: RunningStack
) -> None:
    sqs = delivery_stack.sqs()
    queue, dlq = delivery_stack.queue_url("delivery"), delivery_stack.queue_url("delivery-dlq")
    marker = uuid.uuid4().hex
    sqs.send_message(QueueUrl=queue, MessageBody=f"not a delivery {marker}")
    with receiver() as healthy:
        subscribe(api, f"http://127.0.0.1:{healthy.port}/hook")
        publish(api)
        eventually(lambda: len(healthy.received) == 1, "the good delivery arrived")

    def poison_in_dlq() -> bool:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return any(marker in message["Body"] for message in messages)

    eventually(poison_in_dlq, "the poison message moved to the delivery DLQ after its receives")


@pytest.fixture(scope="module")
def slow_retry_stack() -> Iterator[RunningStack]:
    # The second retry waits 20 minutes (16 at least, with the ±20 % jitter: a 16m step would fall under
    # the 15-minute queue delay a third of the time): longer than a queue delay, so it goes through the sweeper,
    # which runs every second here instead of every minute.
    with running_stack(
        {
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
            "HOOKRELAY_RETRY_SCHEDULE": "1s,20m",
            "HOOKRELAY_LOCAL_SCHEDULE_SECONDS": "1",
        }
    ) as stack:
        yield stack


def test_a_long_delay_goes_through_the_sweeper(slow_retry_stack: RunningStack) -> None:
    api = ApiClient(http_transport(slow_retry_stack, requests.Session()), slow_retry_stack.create_key("sweeper-team"))

    # Answered by attempt, not by arrival order: a request for anything else (a retry left over
    # from an earlier test, sent to a port the OS has since given this receiver) changes nothing.
    def fail_twice(request: Received) -> Answer:
        return Answer(200) if request.headers.get("X-Yousign-Retry") == "2" else Answer(500)

    with receiver(fail_twice) as flaky:
        subscription = subscribe(api, f"http://127.0.0.1:{flaky.port}/hook")
        delivery = delivery_id(publish(api), str(subscription["id"]))

        def ours() -> list[Received]:
            return [request for request in flaky.received if request.headers.get("webhook-id") == delivery]

        eventually(
            lambda: record(slow_retry_stack, delivery).get("status") == "scheduled",
            "the 20-minute retry scheduled",
        )
        scheduled = record(slow_retry_stack, delivery)
        assert len(ours()) == 2 and scheduled["due_at"] == scheduled["next_attempt_at"]
        # Twenty minutes pass: the retry falls due.
        table = slow_retry_stack.table("DeliveriesTable")
        past = "2000-01-01T00:00:00.000Z"
        table.update_item(
            Key={"delivery_id": delivery},
            UpdateExpression="SET due_at = :past, next_attempt_at = :past",
            ExpressionAttributeValues={":past": past},
        )
        eventually(
            lambda: record(slow_retry_stack, delivery).get("status") == "delivered", "the sweeper's retry delivered"
        )
    assert [r.headers["X-Yousign-Retry"] for r in ours()] == ["0", "1", "2"]
    final = record(slow_retry_stack, delivery)
    assert "due_at" not in final and "next_attempt_at" not in final


def test_a_name_that_turns_private_after_subscribing_is_refused_at_send(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("93.184.216.34 rebind.example\n", encoding="utf-8")
    with running_stack(
        {
            "HOOKRELAY_LOCAL_HOSTS_FILE": str(hosts),
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "false",
            "HOOKRELAY_RETRY_SCHEDULE": "1s",
        }
    ) as stack:
        api = ApiClient(http_transport(stack, requests.Session()), stack.create_key("rebinding-team"))
        with receiver() as private:
            # A public address when the API vets the endpoint...
            subscription = subscribe(api, f"https://rebind.example:{private.port}/hook")
            # ...and loopback, where a receiver listens, by the time hookrelay sends.
            hosts.write_text("127.0.0.1 rebind.example\n", encoding="utf-8")
            delivery = delivery_id(publish(api), str(subscription["id"]))
            eventually(lambda: record(stack, delivery).get("status") == "failed", "both attempts refused")
        assert private.connections == 0
        attempts = record(stack, delivery)["attempts"]
        assert len(attempts) == 2  # type: ignore[arg-type]
        for attempt in attempts:  # type: ignore[attr-defined]
            assert attempt.get("status_code") is None
            assert attempt["error"] == (
                "refused: endpoint host rebind.example resolves to 127.0.0.1, which is a loopback address"
            )


def test_ed25519_subscription_signs_v1a_verifiable_with_its_public_key_through_a_rotation(
    delivery_stack: RunningStack,
) -> None:
    team = f"team-ed25519-{uuid.uuid4().hex[:8]}"
    api = ApiClient(http_transport(delivery_stack, requests.Session()), delivery_stack.create_key(team))
    with receiver() as target:
        subscription = subscribe(api, f"http://127.0.0.1:{target.port}/ed", signature_scheme="ed25519")
        public_key = str(subscription["public_key"])
        publish(api)
        eventually(lambda: len(target.received) == 1, "the first delivery")
        rotated = api.post(f"/v3/webhooks/{subscription['id']}/secret/rotate", {}).json()
        publish(api)
        eventually(lambda: len(target.received) == 2, "the delivery after the rotation")
    remember_private_keys(delivery_stack, team)
    before, after = target.received
    entries = before.headers["webhook-signature"].split(" ")
    assert [entry.partition(",")[0] for entry in entries] == ["v1a", "v1"]
    assert ed25519_verifies(public_key, entries[0], before)
    assert not ed25519_verifies(public_key, entries[0], dataclasses.replace(before, body=before.body + b" "))
    # The v1, entry and the Yousign and Subnoto headers still carry the HMAC secret's signatures.
    verify_all_signatures(before, str(subscription["secret_key"]), str(subscription["id"]))

    entries = after.headers["webhook-signature"].split(" ")
    assert [entry.partition(",")[0] for entry in entries] == ["v1a", "v1a", "v1", "v1"]
    new_public_key = str(rotated["public_key"])
    assert new_public_key != public_key
    assert ed25519_verifies(new_public_key, entries[0], after) and ed25519_verifies(public_key, entries[1], after)
    verify_all_signatures(after, str(rotated["secret_key"]), str(subscription["id"]))
