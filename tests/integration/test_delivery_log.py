"""The delivery log routes (SPEC §6) through the API function against moto."""

import base64
import dataclasses
import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
import records
from receivers import receiver

from api_client import ApiClient
from api_contract import assert_problem, webhook
from hookrelay import clock, wiring
from hookrelay.aws import table
from hookrelay.ingest import new_delivery
from hookrelay.pagination import encode_cursor
from hookrelay.records import Attempt, Delivery, Event, Subscription, delivery_id
from hookrelay.settings import get_settings
from hookrelay.slow_answers import SLOW_ANSWER_MS
from hookrelay.store.deliveries import AttemptOutcome, DynamoDeliveryStore
from hookrelay.store.delivery_log import DynamoDeliveryLogStore
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.local.workers import QueuePoller
from integration.test_ingest import poll_until_empty, publish

pytestmark = pytest.mark.usefixtures("stack")


def deliveries() -> DynamoDeliveryStore:
    return DynamoDeliveryStore(table(get_settings().deliveries_table))


def recorded(delivery_id: str) -> Delivery | None:
    return DynamoDeliveryLogStore(table(get_settings().deliveries_table)).get(delivery_id)


def stored_subscription(team_id: str, subscription_id: str) -> Subscription:
    found = wiring.subscription_store(get_settings()).get(team_id, subscription_id)
    assert found is not None
    return found


def add_delivery(
    subscription: dict[str, Any], team_id: str, age_minutes: int, outcome: str | None = None, latency_ms: int = 12
) -> Delivery:
    """A delivery created `age_minutes` ago, with one attempt ending in `outcome` (delivered|failed) if given,
    answered after `latency_ms`."""
    created = clock.utc_now() - timedelta(minutes=age_minutes)
    event = Event(
        event_id=f"00000000-0000-4000-8000-{age_minutes:012d}",
        event_name="signer.done",
        event_time=clock.iso(created),
        team_id=team_id,
        data={"signer": {"id": "s-1"}},
    )
    delivery = dataclasses.replace(
        new_delivery(event, stored_subscription(team_id, str(subscription["id"]))),
        created_at=clock.iso(created),
        updated_at=clock.iso(created),
    )
    records.store_pending(table(get_settings().deliveries_table), [delivery])
    if outcome:
        code = 200 if outcome == "delivered" else 500
        attempt = Attempt(at=clock.iso(created), status_code=code, latency_ms=latency_ms, response_excerpt="body")
        deliveries().record_attempt(delivery, 1, attempt, AttemptOutcome("delivered" if code == 200 else "failed"))
    return delivery


def queued_jobs(queue_url: str | None = None) -> list[dict[str, Any]]:
    """Every message on the delivery queue (or the queue at `queue_url`), received and deleted."""
    sqs = boto3.client("sqs")
    url = queue_url or get_settings().delivery_queue_url
    jobs = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        for message in messages:
            jobs.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return jobs


def delivered(api: ApiClient, ingest: QueuePoller, delivery: QueuePoller) -> str:
    """Publish one event and run ingest, then delivery, until their queues are empty; the event's id."""
    event_id = publish(api)
    poll_until_empty(ingest)
    poll_until_empty(delivery)
    return event_id


@pytest.fixture
def subscription(api: ApiClient) -> dict[str, Any]:
    response = api.post("/v3/webhooks", webhook(description="log"))
    assert response.status == 201
    created: dict[str, Any] = response.json()
    return created


def test_list_is_newest_first_with_cursor_and_status_filter(api: ApiClient, subscription: dict[str, Any]) -> None:
    made = [
        add_delivery(subscription, "team-a", age, outcome)
        for age, outcome in ((30, "failed"), (20, None), (10, "delivered"))
    ]
    base = f"/v3/webhooks/{subscription['id']}/deliveries"

    first = api.get(f"{base}?limit=2").json()
    assert [item["id"] for item in first["data"]] == [made[2].id, made[1].id]
    assert first["data"][0]["status"] == "delivered" and first["data"][0]["attempt_count"] == 1
    second = api.get(f"{base}?limit=2&after={first['meta']['next_cursor']}").json()
    assert [item["id"] for item in second["data"]] == [made[0].id] and second["meta"]["next_cursor"] is None

    failed = api.get(f"{base}?status=failed").json()["data"]
    assert [item["id"] for item in failed] == [made[0].id]
    assert_problem(api.get(f"{base}?after=bm90LWEtY3Vyc29y"), 422, "query.after")
    assert_problem(api.get(f"{base}?status=lost"), 422, "query.status")
    assert_problem(api.get(f"{base}?limit=0"), 422, "query.limit")


def test_records_dynamodb_leaves_unprocessed_are_asked_for_again(
    api: ApiClient, subscription: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [add_delivery(subscription, "team-a", age) for age in (30, 20, 10)]
    client = table(get_settings().deliveries_table).client
    answer = client.batch_get_item
    asked: list[int] = []

    def throttled_at_first(RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((name, request),) = RequestItems.items()
        asked.append(len(request["Keys"]))
        if len(asked) > 1:
            return dict(answer(RequestItems=RequestItems))
        # As DynamoDB answers under throttling: one record, the others handed back unprocessed.
        response = answer(RequestItems={name: {**request, "Keys": request["Keys"][:1]}})
        return {**response, "UnprocessedKeys": {name: {**request, "Keys": request["Keys"][1:]}}}

    monkeypatch.setattr(client, "batch_get_item", throttled_at_first)
    listed = api.get(f"/v3/webhooks/{subscription['id']}/deliveries").json()["data"]
    assert [item["id"] for item in listed] == [made[2].id, made[1].id, made[0].id]
    assert asked == [3, 2]


def test_a_delivery_shows_its_request_and_attempts(api: ApiClient, subscription: dict[str, Any]) -> None:
    delivery = add_delivery(subscription, "team-a", 5, "failed")
    shown = api.get(f"/v3/webhooks/{subscription['id']}/deliveries/{delivery.id}").json()
    assert shown["id"] == delivery.id and shown["status"] == "failed" and shown["event_name"] == "signer.done"
    assert shown["attempts"] == [
        {
            "at": shown["attempts"][0]["at"],
            "url": None,  # recorded without one, as attempts before URLs were recorded
            "status_code": 500,
            "latency_ms": 12,
            "error": None,
            "response_excerpt": "body",
        }
    ]
    request = shown["request"]
    assert request["method"] == "POST" and request["url"] == subscription["endpoint"]
    assert request["headers"]["webhook-id"] == delivery.id and request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"])["event_id"] == delivery.event_id
    assert "secret" not in json.dumps(shown).lower()


def test_retry_sends_the_next_attempt_once(api: ApiClient, subscription: dict[str, Any]) -> None:
    delivery = add_delivery(subscription, "team-a", 5, "failed")
    path = f"/v3/webhooks/{subscription['id']}/deliveries/{delivery.id}/retry"
    response = api.post(path)
    assert response.status == 202 and response.json()["status"] == "pending"
    assert_problem(api.post(path), 409)  # asked again before the attempt is made
    assert queued_jobs() == [{"delivery_id": delivery.id, "attempt": 2}]
    record = recorded(delivery.id)
    assert record and record.requested_attempt == 2 and record.attempt_count == 1


def test_a_record_holding_its_event_from_an_earlier_release_is_shown_and_retried(
    api: ApiClient, subscription: dict[str, Any]
) -> None:
    event = Event(
        event_id="00000000-0000-4000-8000-00000000beef",
        event_name="signer.done",
        event_time=clock.now_iso(),
        team_id="team-a",
        data={"signer": {"id": "s-old"}},
    )
    delivery = new_delivery(event, stored_subscription("team-a", str(subscription["id"])))
    records.store_as_before_events_were_kept_apart(table(get_settings().deliveries_table), delivery)
    attempt = Attempt(at=clock.now_iso(), status_code=500, latency_ms=12)
    assert deliveries().record_attempt(delivery, 1, attempt, AttemptOutcome("failed"))
    path = f"/v3/webhooks/{subscription['id']}/deliveries/{delivery.id}"
    shown = api.get(path)
    assert shown.status == 200, shown.body
    assert json.loads(shown.json()["request"]["body"])["data"] == {"signer": {"id": "s-old"}}
    assert api.post(f"{path}/retry").status == 202
    assert [job["delivery_id"] for job in queued_jobs()] == [delivery.id]


def test_recover_resends_failed_since_and_is_idempotent(api: ApiClient, subscription: dict[str, Any]) -> None:
    old_failure = add_delivery(subscription, "team-a", 300, "failed")
    recent = [add_delivery(subscription, "team-a", age, "failed") for age in (30, 20)]
    add_delivery(subscription, "team-a", 10, "delivered")
    since = clock.iso(clock.utc_now() - timedelta(hours=1))
    path = f"/v3/webhooks/{subscription['id']}/recover"

    assert api.post(path, {"since": since}).json() == {"recovered": 2, "next_cursor": None}
    assert api.post(path, {"since": since}).json() == {"recovered": 0, "next_cursor": None}
    assert sorted(job["delivery_id"] for job in queued_jobs()) == sorted(d.id for d in recent)
    old = recorded(old_failure.id)
    assert old and old.status == "failed"
    assert_problem(api.post(path, {"since": "last tuesday"}), 422, "since")
    assert_problem(api.post(path, {}), 422, "since")


def test_a_delivery_whose_endpoint_answered_slowly_is_sent_again_from_the_slow_lane(
    api: ApiClient, subscription: dict[str, Any]
) -> None:
    # Retried by hand long after its last attempt, it would meet delivery-queue containers that no longer
    # remember its endpoint: each would hold an invocation for the slow answer.
    slow = add_delivery(subscription, "team-a", 40, "failed", latency_ms=SLOW_ANSWER_MS)
    fast = add_delivery(subscription, "team-a", 30, "failed", latency_ms=SLOW_ANSWER_MS - 1)
    path = f"/v3/webhooks/{subscription['id']}"
    assert api.post(f"{path}/deliveries/{slow.id}/retry").status == 202
    assert queued_jobs(get_settings().slow_lane_url) == [{"delivery_id": slow.id, "attempt": 2}]
    assert queued_jobs() == []
    timed_out = add_delivery(subscription, "team-a", 20, "failed", latency_ms=15_000)
    since = clock.iso(clock.utc_now() - timedelta(hours=1))
    assert api.post(f"{path}/recover", {"since": since}).json()["recovered"] == 2  # the retried one is pending
    assert [job["delivery_id"] for job in queued_jobs(get_settings().slow_lane_url)] == [timed_out.id]
    assert [job["delivery_id"] for job in queued_jobs()] == [fast.id]


def test_recover_with_a_cursor_before_since_is_422_on_after(api: ApiClient, subscription: dict[str, Any]) -> None:
    # DynamoDB refuses a start key outside the query's `created_at >= since` (ValidationException); moto does not.
    failed = add_delivery(subscription, "team-a", 120, "failed")
    path = f"/v3/webhooks/{subscription['id']}/recover"
    since = clock.iso(clock.utc_now() - timedelta(hours=1))
    before_since = encode_cursor({"created_at": failed.created_at, "delivery_id": failed.id})
    assert_problem(api.post(path, {"since": since, "after": before_since}), 422, "after")
    assert queued_jobs() == []


def test_test_event_is_the_catalog_sample_marked_as_test(api: ApiClient, subscription: dict[str, Any]) -> None:
    response = api.post(f"/v3/webhooks/{subscription['id']}/test", {"event_name": "signature_request.done"})
    assert response.status == 202
    sent = response.json()
    assert sent["test"] is True and sent["event_name"] == "signature_request.done" and sent["status"] == "pending"
    assert queued_jobs() == [{"delivery_id": sent["id"], "attempt": 1}]
    shown = api.get(f"/v3/webhooks/{subscription['id']}/deliveries/{sent['id']}").json()
    assert shown["request"]["headers"]["X-Hookrelay-Test"] == "true"
    assert json.loads(shown["request"]["body"])["data"]["signature_request"]["status"] == "done"

    another = api.post("/v3/webhooks", webhook(subscribed_events=["signer.done"])).json()
    default = api.post(f"/v3/webhooks/{another['id']}/test")
    assert default.status == 202 and default.json()["test"] is True and default.json()["event_name"] == "signer.done"
    assert_problem(api.post(f"/v3/webhooks/{subscription['id']}/test", {"event_name": "nope"}), 422, "event_name")


def test_rotation_keeps_the_previous_secret_for_the_overlap(api: ApiClient, subscription: dict[str, Any]) -> None:
    response = api.post(f"/v3/webhooks/{subscription['id']}/secret/rotate")
    assert response.status == 200
    rotated = response.json()
    assert rotated["secret_key"].startswith("whsec_") and rotated["secret_key"] != subscription["secret_key"]
    stored = stored_subscription("team-a", subscription["id"])
    now = clock.utc_now()
    assert stored.signing_secrets(clock.iso(now)) == [rotated["secret_key"], subscription["secret_key"]]
    assert stored.signing_secrets(clock.iso(now + timedelta(hours=24, seconds=5))) == [rotated["secret_key"]]
    assert "secret_key" not in api.get(f"/v3/webhooks/{subscription['id']}").json()

    chosen = api.post(f"/v3/webhooks/{subscription['id']}/secret/rotate", {"secret_key": "a-chosen-secret-of-24-chars"})
    assert chosen.json()["secret_key"] == "a-chosen-secret-of-24-chars"
    assert_problem(
        api.post(f"/v3/webhooks/{subscription['id']}/secret/rotate", {"secret_key": "short"}), 422, "secret_key"
    )


def test_sending_to_a_disabled_subscription_is_409(api: ApiClient, subscription: dict[str, Any]) -> None:
    delivery = add_delivery(subscription, "team-a", 5, "failed")
    assert api.patch(f"/v3/webhooks/{subscription['id']}", {"enabled": False}).status == 200
    base = f"/v3/webhooks/{subscription['id']}"
    assert_problem(api.post(f"{base}/deliveries/{delivery.id}/retry"), 409)
    assert_problem(api.post(f"{base}/recover", {"since": "2020-01-01T00:00:00Z"}), 409)
    assert_problem(api.post(f"{base}/test"), 409)
    assert queued_jobs() == []


def test_every_route_is_404_for_another_team_and_for_unknown_ids(
    api: ApiClient, other_api: ApiClient, subscription: dict[str, Any], stack: LocalStack
) -> None:
    delivery = add_delivery(subscription, "team-a", 5, "failed")
    other_subscription = api.post("/v3/webhooks", webhook()).json()
    mine = f"/v3/webhooks/{subscription['id']}"
    routes: list[tuple[str, str, Any]] = [
        ("GET", f"{mine}/deliveries", None),
        ("GET", f"{mine}/deliveries/{delivery.id}", None),
        ("POST", f"{mine}/deliveries/{delivery.id}/retry", None),
        ("POST", f"{mine}/recover", {"since": "2020-01-01T00:00:00Z"}),
        ("POST", f"{mine}/test", {"event_name": "signer.done"}),
        ("POST", f"{mine}/secret/rotate", None),
    ]
    for method, path, body in routes:
        assert_problem(other_api.request(method, path, json_body=body), 404)
    # A delivery id under another subscription of the same team, and ids that do not exist.
    elsewhere = f"/v3/webhooks/{other_subscription['id']}/deliveries/{delivery.id}"
    assert_problem(api.get(elsewhere), 404)
    assert_problem(api.post(f"{elsewhere}/retry"), 404)
    for unknown in ("00000000-0000-4000-8000-000000000000", "not-an-id", "x" * 2000):
        assert_problem(api.get(f"{mine}/deliveries/{unknown}"), 404)
        assert_problem(api.get(f"/v3/webhooks/{unknown}/deliveries"), 404)
    assert queued_jobs() == []
    assert stored_subscription("team-a", subscription["id"]).previous_secret_key is None


def test_credentials_in_the_endpoint_are_sent_but_never_shown(
    to_localhost: LocalStack, api: ApiClient, ingest: QueuePoller, capfd: pytest.CaptureFixture[str]
) -> None:
    (delivery,) = to_localhost.queue_pollers_of("DeliveryQueue")
    with receiver() as server:
        endpoint = f"http://hook-user:s3cr%40t-pass@127.0.0.1:{server.port}/hook"
        shown = f"http://hook-user:***@127.0.0.1:{server.port}/hook"
        created = api.post("/v3/webhooks", {"endpoint": endpoint, "subscribed_events": ["*"]})
        assert created.status == 201, created.body
        assert created.json()["endpoint"] == shown
        path = f"/v3/webhooks/{created.json()['id']}"
        assert api.get(path).json()["endpoint"] == shown
        assert [item["endpoint"] for item in api.get("/v3/webhooks").json()["data"]] == [shown]
        assert api.patch(path, {"description": "renamed"}).json()["endpoint"] == shown
        # A client that writes back what it read (the masked endpoint) keeps the credentials it cannot see.
        assert api.patch(path, {"endpoint": shown, "enabled": True}).json()["endpoint"] == shown
        assert api.post(f"{path}/secret/rotate").json()["endpoint"] == shown
        event_id = delivered(api, ingest, delivery)
        (request,) = server.received
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"hook-user:s3cr@t-pass").decode()
    detail = api.get(f"{path}/deliveries/{delivery_id(event_id, created.json()['id'])}").json()
    assert detail["status"] == "delivered"
    assert detail["request"]["url"] == shown
    output = capfd.readouterr()
    assert "s3cr" not in output.out + output.err


def test_a_secret_in_the_endpoint_url_is_sent_but_never_shown(
    to_localhost: LocalStack, api: ApiClient, ingest: QueuePoller, capfd: pytest.CaptureFixture[str]
) -> None:
    """Before, a delivery's request and attempts (a read-only portal link's reads too) showed a `?token=`
    value of the endpoint in full, and a Slack or Discord webhook's token."""
    (delivery,) = to_localhost.queue_pollers_of("DeliveryQueue")
    secret = "QUERY-SECRET-123456"
    with receiver() as server:
        endpoint = f"http://127.0.0.1:{server.port}/hook?token={secret}&event=done"
        shown = f"http://127.0.0.1:{server.port}/hook?token=***&event=done"
        created = api.post("/v3/webhooks", {"endpoint": endpoint, "subscribed_events": ["*"]})
        assert created.status == 201, created.body
        path = f"/v3/webhooks/{created.json()['id']}"
        event_id = delivered(api, ingest, delivery)
        (request,) = server.received
    assert request.path == f"/hook?token={secret}&event=done"
    detail = api.get(f"{path}/deliveries/{delivery_id(event_id, created.json()['id'])}")
    assert detail.json()["status"] == "delivered"
    assert secret not in detail.body.decode()
    assert detail.json()["request"]["url"] == shown
    assert [attempt["url"] for attempt in detail.json()["attempts"]] == [shown]
    # A client that writes back what it read keeps the secret it cannot see.
    assert api.patch(path, {"endpoint": shown}).json()["endpoint"] == shown
    assert stored_subscription("team-a", created.json()["id"]).endpoint == endpoint
    output = capfd.readouterr()
    assert secret not in output.out + output.err

    token = "DISCORD-TOKEN-SECRET-abcdef"
    chat = api.post("/v3/webhooks", webhook(endpoint=f"https://discord.com/api/webhooks/1234567890/{token}"))
    assert chat.status == 201, chat.body
    waiting = add_delivery(chat.json(), "team-a", age_minutes=1)
    chat_detail = api.get(f"/v3/webhooks/{chat.json()['id']}/deliveries/{waiting.id}")
    assert chat_detail.json()["request"]["url"] == "https://discord.com/api/webhooks/1234567890/***"
    assert token not in chat_detail.body.decode()


def test_an_attempt_recorded_before_its_url_was_masked_as_now_is_shown_masked(api: ApiClient) -> None:
    """Attempts recorded before a Slack or Discord webhook's token was masked hold it in their url."""
    endpoint = "https://discord.com/api/webhooks/1234567890/DISCORD-TOKEN-SECRET-abcdef"
    created = api.post("/v3/webhooks", webhook(endpoint=endpoint))
    assert created.status == 201, created.body
    delivery = add_delivery(created.json(), "team-a", age_minutes=1)
    attempt = Attempt(at=clock.now_iso(), url=endpoint, status_code=500, latency_ms=12)
    deliveries().record_attempt(delivery, 1, attempt, AttemptOutcome("failed"))
    detail = api.get(f"/v3/webhooks/{created.json()['id']}/deliveries/{delivery.id}")
    assert "DISCORD-TOKEN-SECRET-abcdef" not in detail.body.decode()
    assert [each["url"] for each in detail.json()["attempts"]] == ["https://discord.com/api/webhooks/1234567890/***"]


def test_sensitive_custom_headers_are_sent_but_shown_masked_in_the_delivery_detail(
    to_localhost: LocalStack, api: ApiClient, ingest: QueuePoller
) -> None:
    """Before, a read-only portal link showed `Authorization: Bearer rcv_live_...` in a delivery's request."""
    (delivery,) = to_localhost.queue_pollers_of("DeliveryQueue")
    token = "Bearer rcv_live_0123456789abcdef"
    headers = {"Authorization": token, "X-Client-Id": "client-0123456789", "X-Tenant": "acme"}
    shown = {"Authorization": "***cdef", "X-Client-Id": "***6789", "X-Tenant": "acme"}
    with receiver() as server:
        created = api.post(
            "/v3/webhooks",
            {
                "endpoint": f"http://127.0.0.1:{server.port}/hook",
                "subscribed_events": ["*"],
                "headers": headers,
                "sensitive_headers": ["X-Client-Id"],
            },
        )
        assert created.status == 201, created.body
        path = f"/v3/webhooks/{created.json()['id']}"
        # A client that writes back what it read keeps the values it cannot see.
        assert api.patch(path, {"headers": {**shown, "X-Tenant": "globex"}}).status == 200
        assert stored_subscription("team-a", created.json()["id"]).headers == {**headers, "X-Tenant": "globex"}
        event_id = delivered(api, ingest, delivery)
        (request,) = server.received
    assert request.headers["Authorization"] == token and request.headers["X-Client-Id"] == "client-0123456789"
    detail = api.get(f"{path}/deliveries/{delivery_id(event_id, created.json()['id'])}")
    assert {name: detail.json()["request"]["headers"][name] for name in headers} == {**shown, "X-Tenant": "globex"}
    assert "rcv_live" not in detail.body.decode() and "client-0123" not in detail.body.decode()


def test_a_write_only_header_is_sent_only_to_the_origin_it_was_written_for(
    to_localhost: LocalStack, api: ApiClient
) -> None:
    """Before, a PATCH of the endpoint alone sent the stored `Authorization` to whichever host it named."""
    (delivery,) = to_localhost.queue_pollers_of("DeliveryQueue")
    token = "Bearer rcv_live_0123456789abcdef"
    with receiver() as written_for, receiver() as elsewhere:
        created = api.post(
            "/v3/webhooks",
            {
                "endpoint": f"http://127.0.0.1:{written_for.port}/hook",
                "subscribed_events": ["*"],
                "headers": {"Authorization": token},
            },
        )
        assert created.status == 201, created.body
        path = f"/v3/webhooks/{created.json()['id']}"
        moved = api.patch(path, {"endpoint": f"http://127.0.0.1:{elsewhere.port}/hook"})
        assert api.post(f"{path}/test").status == 202
        poll_until_empty(delivery)
        assert [request.headers.get("Authorization") for request in elsewhere.received] == []
        assert_problem(moved, 422, "headers.Authorization")
        assert [request.headers["Authorization"] for request in written_for.received] == [token]
        # Written again for the new origin, the new value goes there.
        rewritten = {"Authorization": "Bearer for-elsewhere-0001"}
        moved = api.patch(path, {"endpoint": f"http://127.0.0.1:{elsewhere.port}/hook", "headers": rewritten})
        assert moved.status == 200, moved.body
        assert api.post(f"{path}/test").status == 202
        poll_until_empty(delivery)
        assert [request.headers["Authorization"] for request in elsewhere.received] == [rewritten["Authorization"]]
    assert len(written_for.received) == 1


def test_each_attempt_shows_the_url_it_was_sent_to_after_the_endpoint_changed(
    to_localhost: LocalStack, api: ApiClient, ingest: QueuePoller
) -> None:
    (delivery,) = to_localhost.queue_pollers_of("DeliveryQueue")
    with receiver() as first, receiver() as second:
        before = f"http://hook-user:pass@127.0.0.1:{first.port}/hook"
        created = api.post("/v3/webhooks", {"endpoint": before, "subscribed_events": ["*"]})
        assert created.status == 201, created.body
        path = f"/v3/webhooks/{created.json()['id']}"
        event_id = delivered(api, ingest, delivery)
        after = f"http://127.0.0.1:{second.port}/moved"
        assert api.patch(path, {"endpoint": after}).status == 200
        deliveries_path = f"{path}/deliveries/{delivery_id(event_id, created.json()['id'])}"
        assert api.post(f"{deliveries_path}/retry").status == 202
        poll_until_empty(delivery)
        assert (len(first.received), len(second.received)) == (1, 1)
    detail = api.get(deliveries_path).json()
    assert [attempt["url"] for attempt in detail["attempts"]] == [
        f"http://hook-user:***@127.0.0.1:{first.port}/hook",
        after,
    ]
    assert detail["request"]["url"] == after  # the request as the next attempt would send it
