"""Events through the real api and ingest handlers against moto: POST /v3/events → bus → events
queue → ingest (polled with SQS batch semantics) → delivery records and delivery-queue messages."""

import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import records
from botocore.exceptions import ClientError
from receivers import receiver
from records import receiver_endpoint

from api_client import ApiClient
from hookrelay import clock, wiring
from hookrelay.aws import client, table
from hookrelay.delivery_jobs import read_job
from hookrelay.events_queue import FanOutRequest, queue_message
from hookrelay.ingest import new_delivery
from hookrelay.records import Attempt, Event, Subscription, delivery_id
from hookrelay.settings import get_settings
from hookrelay.store.deliveries import AttemptOutcome, DynamoDeliveryStore
from hookrelay.store.delivery_log import DynamoDeliveryLogStore
from hookrelay.store.events import DynamoEventStore
from hookrelay_cli.local.functions import LocalContext
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.local.workers import QueuePoller
from paths import REPO

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

EVENT_ID = "0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b"
SAMPLE_EVENT: dict[str, Any] = {
    "event_id": EVENT_ID,
    "event_name": "signer.done",
    "event_time": "2026-01-01T00:00:00.000Z",
    "data": {},
}

INGEST_SAMPLE = json.loads((REPO / "events" / "ingest-sqs-batch.json").read_text())


def drain(queue_url: str) -> "list[MessageTypeDef]":
    """Every message on a queue, each received once (kept invisible, not deleted)."""
    sqs, messages = client("sqs"), list["MessageTypeDef"]()
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300).get(
        "Messages"
    ):
        messages.extend(batch)
    return messages


def delivery_messages() -> list[dict[str, Any]]:
    return [json.loads(message["Body"]) for message in drain(get_settings().delivery_queue_url)]


def delivery_records() -> dict[str, dict[str, Any]]:
    items = table(get_settings().deliveries_table).scan()["Items"]
    # Beside them: events (event#...) and earlier releases' fan-out marks (fanout#...).
    return {item["delivery_id"]: item for item in items if "subscription_id" in item}


def stored_subscriptions(subscription_ids: list[str], team_id: str = "team-a") -> list[Subscription]:
    store = wiring.subscription_store(get_settings())
    found = [store.get(team_id, subscription_id) for subscription_id in subscription_ids]
    return [subscription for subscription in found if subscription is not None]


def poll_until_empty(poller: QueuePoller, rounds: int = 50) -> None:
    for _ in range(rounds):
        if poller.poll_once() == 0:
            return
    raise AssertionError("the events queue did not drain")


def subscribe(client: ApiClient, **fields: object) -> str:
    body = {"endpoint": "https://hooks.example.com/x", "subscribed_events": ["*"], **fields}
    response = client.post("/v3/webhooks", body)
    assert response.status == 201, response.body
    return str(response.json()["id"])


@pytest.fixture
def subscribed(api: ApiClient) -> Callable[..., str]:
    return lambda **fields: subscribe(api, **fields)


def publish(api: ApiClient, **fields: object) -> str:
    response = api.post("/v3/events", {"event_name": "signer.done", "data": {"signer": {"id": "s-1"}}, **fields})
    assert response.status == 202, response.body
    return str(response.json()["event_id"])


def test_published_event_becomes_one_message_per_match_naming_what_its_record_will_hold(
    api: ApiClient, subscribed: Callable[..., str], ingest: QueuePoller
) -> None:
    everything = subscribed()
    signer_in_app = subscribed(subscribed_events=["signer.done"], scopes=["app"], workspaces=["ws-1"])
    subscribed(subscribed_events=["signature_request.done"])
    subscribed(enabled=False)
    subscribed(sandbox=True)

    event_id = publish(api, event_id=EVENT_ID, scope="app", workspace_id="ws-1", event_time="2026-03-02T10:15:30+01:00")
    poll_until_empty(ingest)

    expected = {delivery_id(event_id, sub): sub for sub in (everything, signer_in_app)}
    # Fan-out writes no delivery record: each delivery's first attempt creates it from its message.
    assert delivery_records() == {}
    jobs = {job.delivery_id: job for job in (read_job(json.dumps(body)) for body in delivery_messages())}
    assert set(jobs) == set(expected)
    store = DynamoDeliveryStore(table(get_settings().deliveries_table))
    waiting = store.get_many(list(jobs), {key: job.origin for key, job in jobs.items() if job.origin})
    for record_id, subscription_id in expected.items():
        delivery = waiting[record_id]
        assert jobs[record_id].attempt == 1
        assert delivery.status == "pending" and delivery.attempt_count == 0
        assert delivery.subscription_id == subscription_id and delivery.team_id == "team-a"
        assert delivery.event_id == event_id and delivery.event_name == "signer.done"
        assert delivery.expires_at > 0
        assert delivery.event.event_time == "2026-03-02T09:15:30.000Z"
        assert delivery.event.data == {"signer": {"id": "s-1"}}


@pytest.fixture
def deliver(to_localhost: LocalStack) -> Callable[[], None]:
    (poller,) = to_localhost.queue_pollers_of("DeliveryQueue")
    return lambda: poll_until_empty(poller)


@pytest.mark.parametrize("delivered_in_between", [True, False])
def test_the_same_event_twice_is_delivered_once(
    delivered_in_between: bool,
    api: ApiClient,
    ingest: QueuePoller,
    deliver: Callable[[], None],
) -> None:
    with receiver() as target:
        ids = [subscribe(api, endpoint=receiver_endpoint(target.port)) for _ in range(3)]
        publish(api, event_id=EVENT_ID)
        poll_until_empty(ingest)
        if delivered_in_between:
            deliver()
        publish(api, event_id=EVENT_ID)
        publish(api, event_id=EVENT_ID)
        poll_until_empty(ingest)
        deliver()
    expected = {delivery_id(EVENT_ID, sub) for sub in ids}
    assert set(delivery_records()) == expected
    assert Counter(request.headers["webhook-id"] for request in target.received) == Counter(dict.fromkeys(expected, 1))


def test_a_large_event_is_stored_once_whatever_its_fan_out(
    api: ApiClient, subscribed: Callable[..., str], ingest: QueuePoller
) -> None:
    for _ in range(50):
        subscribed()
    # Incompressible data: 200 KiB stays about 200 KiB once compressed.
    blob = os.urandom(150 * 1024).hex()[: 200 * 1024]
    written: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        # The team's request count (hookrelay.team_limits) shares the table: one small write per request.
        if b'"limit#' not in params["body"]:
            written.append(len(params["body"]))

    dynamodb = table(get_settings().deliveries_table).client
    for operation in ("PutItem", "UpdateItem"):
        dynamodb.meta.events.register(f"before-call.dynamodb.{operation}", count)
    try:
        publish(api, data={"blob": blob})
        poll_until_empty(ingest)
    finally:
        for operation in ("PutItem", "UpdateItem"):
            dynamodb.meta.events.unregister(f"before-call.dynamodb.{operation}", count)
    assert len(delivery_messages()) == 50
    print(f"\n{sum(written)} bytes in {len(written)} writes for a {len(blob)}-byte event fanned out to 50")
    # The event once (its JSON escapes bytes as text, hence the margin), nothing per delivery: each
    # delivery's record is created by its first attempt.
    assert len(written) == 1 and sum(written) < 1.4 * len(blob), f"{sum(written)} bytes in {len(written)} writes"


def test_a_fan_out_in_progress_at_deploy_time_is_completed_once(
    api: ApiClient, ingest: QueuePoller, deliver: Callable[[], None]
) -> None:
    """An earlier release's fan-out crashed after enqueuing its first chunk (records holding the event,
    its `fanout#` mark, one delivered already); SQS hands the event to this release again."""
    deliveries_table = table(get_settings().deliveries_table)
    store = DynamoDeliveryStore(deliveries_table)
    event = Event(**{**SAMPLE_EVENT, "team_id": "team-a", "data": {"signer": {"id": "s-1"}}})
    with receiver() as target:
        ids = sorted(subscribe(api, endpoint=receiver_endpoint(target.port)) for _ in range(5))
        first_chunk = [new_delivery(event, subscription) for subscription in stored_subscriptions(ids[:3])]
        for delivery in first_chunk:
            records.store_as_before_events_were_kept_apart(deliveries_table, delivery)
        deliveries_table.put_item(Item={"delivery_id": f"fanout#team-a#{EVENT_ID}", "sent_through": ids[2]})
        attempt = Attempt(at=clock.now_iso(), status_code=200, latency_ms=1)
        assert store.record_attempt(first_chunk[0], 1, attempt, AttemptOutcome("delivered"))
        publish(api, **{key: value for key, value in SAMPLE_EVENT.items() if key != "data"}, data=event.data)
        poll_until_empty(ingest)
        deliver()
    expected = {delivery_id(EVENT_ID, sub) for sub in ids}
    assert set(delivery_records()) == expected
    # The one delivered before the deploy is not sent again; every other one is sent once.
    sent = Counter(request.headers["webhook-id"] for request in target.received)
    assert sent == Counter(dict.fromkeys(expected - {first_chunk[0].id}, 1))
    for delivery_id_ in expected:
        record = DynamoDeliveryLogStore(deliveries_table).get(delivery_id_)
        assert record and record.status == "delivered" and record.attempt_count == 1


def test_two_teams_publishing_the_same_event_id_each_get_their_whole_fan_out(
    api: ApiClient, other_api: ApiClient, ingest: QueuePoller
) -> None:
    theirs = [subscribe(other_api) for _ in range(3)]
    mine = [subscribe(api) for _ in range(3)]
    publish(other_api, event_id=EVENT_ID)
    poll_until_empty(ingest)
    publish(api, event_id=EVENT_ID)
    poll_until_empty(ingest)
    expected = {delivery_id(EVENT_ID, sub) for sub in theirs + mine}
    assert Counter(m["delivery_id"] for m in delivery_messages()) == Counter(dict.fromkeys(expected, 1))


def test_fan_out_progress_is_kept_per_team(stack: LocalStack) -> None:
    events = DynamoEventStore(table(get_settings().deliveries_table))
    last_id = "ffffffff-ffff-4fff-8fff-ffffffffffff"
    event_of = {team: Event(**{**SAMPLE_EVENT, "team_id": team}) for team in ("team-a", "team-b")}
    assert events.keep(event_of["team-b"], 2**31).sent_through is None
    events.record_sent_through("team-b", EVENT_ID, last_id)
    assert events.keep(event_of["team-b"], 2**31).sent_through == last_id
    assert events.keep(event_of["team-a"], 2**31).sent_through is None


def test_an_event_id_published_again_with_other_content_delivers_nothing_more(
    api: ApiClient, subscribed: Callable[..., str], ingest: QueuePoller
) -> None:
    # The second copy's matches got deliveries that render the first copy: a subscription to workspace
    # ws-2 received ws-1's signer.
    in_ws_1 = subscribed(workspaces=["ws-1"])
    subscribed(workspaces=["ws-2"])
    publish(api, event_id=EVENT_ID, workspace_id="ws-1", data={"signer": {"id": "ws-1-signer"}})
    poll_until_empty(ingest)
    assert [message["delivery_id"] for message in delivery_messages()] == [delivery_id(EVENT_ID, in_ws_1)]
    publish(api, event_id=EVENT_ID, workspace_id="ws-2", data={"signer": {"id": "ws-2-signer"}})
    poll_until_empty(ingest)
    # The stored copy fanned out again: its one delivery, whose first attempt finds itself already made,
    # and none for ws-2.
    assert [message["delivery_id"] for message in delivery_messages()] == [delivery_id(EVENT_ID, in_ws_1)]


class DeliveryQueueSends:
    """The delivery queue's SendMessageBatch calls (the bodies of each, in order) and the message group
    of each entry; the calls `failing` picks (1-based) raise, as a crash would."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.groups: list[str | None] = []
        self.failing: Callable[[int], bool] = lambda call: False

    def sending(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("QueueUrl") != get_settings().delivery_queue_url:
            return
        self.calls.append([entry["MessageBody"] for entry in params["Entries"]])
        self.groups.extend(entry.get("MessageGroupId") for entry in params["Entries"])
        if self.failing(len(self.calls)):
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "simulated crash"}}, "SendMessageBatch"
            )


@pytest.fixture
def delivery_queue_sends(stack: LocalStack) -> Iterator[DeliveryQueueSends]:
    sends, sqs = DeliveryQueueSends(), client("sqs")
    sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch", sends.sending)
    yield sends
    sqs.meta.events.unregister("before-parameter-build.sqs.SendMessageBatch", sends.sending)


@pytest.fixture
def chunks_of_twenty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKRELAY_FANOUT_CHUNK_SIZE", "20")


def test_a_batch_redelivered_after_a_crash_mid_fan_out_produces_no_duplicates(
    chunks_of_twenty: None,
    api: ApiClient,
    subscribed: Callable[..., str],
    ingest: QueuePoller,
    delivery_queue_sends: DeliveryQueueSends,
) -> None:
    ids = [subscribed() for _ in range(45)]
    publish(api, event_id=EVENT_ID)
    # The first chunk's two batches of ten go out, then the fan-out dies.
    delivery_queue_sends.failing = lambda call: call >= 3
    assert ingest.poll_once() == 1
    before_crash = delivery_messages()
    assert len(before_crash) == 20
    delivery_queue_sends.failing = lambda call: False
    poll_until_empty(ingest)  # SQS delivers the event again
    after_redelivery = delivery_messages()
    expected = {delivery_id(EVENT_ID, sub) for sub in ids}
    sent = Counter(m["delivery_id"] for m in before_crash + after_redelivery)
    assert sent == Counter(dict.fromkeys(expected, 1))


class InvocationTime:
    """The time an ingest invocation has left: a minute until it stores its first event, then 5 s (its
    messages are sent at the end of the batch, after the records it still starts)."""

    def __init__(self) -> None:
        self.remaining_millis = 60_000
        self.events_stored = 0

    def storing(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") != get_settings().deliveries_table:
            return
        self.events_stored += 1
        if self.events_stored == 1:
            self.remaining_millis = 5_000


@pytest.fixture
def time_runs_short_at_first_event(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[InvocationTime]:
    time = InvocationTime()
    monkeypatch.setattr(LocalContext, "get_remaining_time_in_millis", lambda _: time.remaining_millis)
    dynamodb = table(get_settings().deliveries_table).client
    dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", time.storing)
    yield time
    dynamodb.meta.events.unregister("before-parameter-build.dynamodb.PutItem", time.storing)


def test_records_not_started_for_lack_of_time_come_back(
    api: ApiClient, subscribed: Callable[..., str], ingest: QueuePoller, time_runs_short_at_first_event: InvocationTime
) -> None:
    subscription = subscribed()
    expected = {delivery_id(publish(api), subscription) for _ in range(3)}
    assert ingest.poll_once() == 3
    # The first record fanned out; the two others were not started, so as not to be cut off by the timeout.
    first_invocation = [message["delivery_id"] for message in delivery_messages()]
    assert len(first_invocation) == 1 and set(first_invocation) < expected
    time_runs_short_at_first_event.remaining_millis = 60_000
    poll_until_empty(ingest)
    sent = Counter(first_invocation + [message["delivery_id"] for message in delivery_messages()])
    assert sent == Counter(dict.fromkeys(expected, 1))


def test_foreign_messages_go_to_the_dlq_without_blocking_the_batch(
    api: ApiClient, subscribed: Callable[..., str], ingest: QueuePoller
) -> None:
    subscription = subscribed()
    sqs, settings = client("sqs"), get_settings()
    poison = [
        "not json at all",
        json.dumps({"source": "someone.else", "detail": {}}),
        json.dumps(
            {"source": "hookrelay", "detail-type": "signer.done", "detail": {"event": {"event_name": "signer.done"}}}
        ),
    ]
    for body in poison:
        sqs.send_message(QueueUrl=settings.events_queue_url, MessageBody=body)
    publish(api, event_id=EVENT_ID)
    poll_until_empty(ingest)
    assert [m["delivery_id"] for m in delivery_messages()] == [delivery_id(EVENT_ID, subscription)]
    dlq_url = sqs.get_queue_url(QueueName="hookrelay-local-events-dlq")["QueueUrl"]
    assert sorted(m["Body"] for m in drain(dlq_url)) == sorted(poison)


def test_a_change_answered_before_an_event_is_what_the_event_meets(
    api: ApiClient, subscribed: Callable[..., str], ingest: QueuePoller
) -> None:
    leaving, staying = subscribed(), subscribed()
    publish(api)
    poll_until_empty(ingest)  # the ingest container now knows the team's subscriptions
    assert api.delete(f"/v3/webhooks/{leaving}").status == 204
    assert api.patch(f"/v3/webhooks/{staying}", {"enabled": False}).status == 200
    arriving = subscribed()
    event_id = publish(api)
    poll_until_empty(ingest)
    origins = [message["origin"] for message in delivery_messages()]
    assert {origin["subscription_id"] for origin in origins if origin["event_id"] == event_id} == {arriving}


def test_a_batch_reads_its_teams_versions_once_and_queries_only_changed_teams(
    api: ApiClient, other_api: ApiClient, subscribed: Callable[..., str], ingest: QueuePoller
) -> None:
    subscribed()
    assert other_api.post("/v3/webhooks", {"endpoint": "https://hooks.example.com/y", "subscribed_events": ["*"]})
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    dynamodb = table(get_settings().subscriptions_table).client
    dynamodb.meta.events.register("before-call.dynamodb", count)
    try:
        for _ in range(3):
            publish(api)
            publish(other_api)
        poll_until_empty(ingest)  # one batch of six events of two teams
        first = dict(calls)
        calls.clear()
        publish(api)
        poll_until_empty(ingest)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb", count)
    assert first.get("BatchGetItem") == 1
    assert {name: calls.get(name, 0) for name in ("BatchGetItem", "Query")} == {"BatchGetItem": 1, "Query": 0}


def test_a_batch_whose_every_record_fails_is_answered_not_raised(stack: LocalStack) -> None:
    # Every record failing is ordinary under at-least-once SQS (a lone copy of an event whose fan-out
    # another invocation is running): each comes back through the answer, and no invocation error is counted.
    event = {"Records": [{**record, "body": "not json at all"} for record in INGEST_SAMPLE["Records"]]}
    answer = stack.invoke("IngestFunction", event)
    assert answer == {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in event["Records"]]}


def ingest_batch(stack: LocalStack, records: dict[str, Event]) -> set[str]:
    """Invoke ingest with one events-queue batch (message id → event); the records that come back."""
    sample = INGEST_SAMPLE["Records"][0]
    batch = [
        {**sample, "messageId": message_id, "body": queue_message(FanOutRequest(event=event))}
        for message_id, event in records.items()
    ]
    answer = stack.invoke("IngestFunction", {"Records": batch})
    return {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}


def team_a_events(count: int) -> dict[str, Event]:
    return {
        f"record-{index}": Event(**{**SAMPLE_EVENT, "event_id": str(uuid.uuid4()), "team_id": "team-a"})
        for index in range(count)
    }


def test_the_messages_of_a_batch_s_events_go_ten_per_send_whichever_event_they_come_from(
    stack: LocalStack, subscribed: Callable[..., str], delivery_queue_sends: DeliveryQueueSends
) -> None:
    ids = [subscribed() for _ in range(3)]
    events = team_a_events(10)
    assert ingest_batch(stack, events) == set()
    assert [len(call) for call in delivery_queue_sends.calls] == [10, 10, 10]
    expected = {delivery_id(event.event_id, sub) for event in events.values() for sub in ids}
    assert Counter(m["delivery_id"] for m in delivery_messages()) == Counter(dict.fromkeys(expected, 1))


@pytest.mark.parametrize(
    ("failing_call", "coming_back"),
    [
        # 4 events x 3 subscriptions: the first call carries the first three events' messages and one
        # of the fourth's, the second (at the end of the batch) the fourth's two others.
        (1, {"record-0", "record-1", "record-2", "record-3"}),
        (2, {"record-3"}),
    ],
)
def test_a_record_comes_back_while_one_of_its_messages_is_not_accepted(
    failing_call: int,
    coming_back: set[str],
    stack: LocalStack,
    subscribed: Callable[..., str],
    delivery_queue_sends: DeliveryQueueSends,
) -> None:
    ids = [subscribed() for _ in range(3)]
    events = team_a_events(4)
    delivery_queue_sends.failing = lambda call: call == failing_call
    assert ingest_batch(stack, events) == coming_back
    first_run = Counter(m["delivery_id"] for m in delivery_messages())
    for message_id, event in events.items():
        accepted = {delivery_id(event.event_id, sub) for sub in ids} <= set(first_run)
        assert accepted == (message_id not in coming_back), message_id  # none acknowledged with a message unsent
    delivery_queue_sends.failing = lambda call: False
    assert ingest_batch(stack, {message_id: events[message_id] for message_id in coming_back}) == set()
    expected = {delivery_id(event.event_id, sub) for event in events.values() for sub in ids}
    sent = first_run + Counter(m["delivery_id"] for m in delivery_messages())
    assert set(sent) == expected


def test_the_first_attempts_of_an_endpoint_marked_slow_go_to_the_slow_lane_and_are_counted(
    stack: LocalStack, subscribed: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    fast, slow = subscribed(), subscribed()
    until = int(clock.utc_now().timestamp()) + 60
    wiring.subscription_store(get_settings()).mark_slow("team-a", slow, until, now=until - 60)
    events = team_a_events(3)
    capsys.readouterr()
    assert ingest_batch(stack, events) == set()
    on_the_slow_lane = [json.loads(message["Body"]) for message in drain(get_settings().slow_lane_url)]
    assert {message["delivery_id"] for message in on_the_slow_lane} == {
        delivery_id(event.event_id, slow) for event in events.values()
    }
    assert {message["delivery_id"] for message in delivery_messages()} == {
        delivery_id(event.event_id, fast) for event in events.values()
    }
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (batch,) = [metric for metric in emitted if "DeliveriesEnqueuedToSlowLane" in metric]
    # EMF lists a metric's values (DeliveriesEnqueued is added once per event and once for the batch).
    assert (sum(batch["DeliveriesEnqueued"]), sum(batch["DeliveriesEnqueuedToSlowLane"])) == (6.0, 3.0)


@pytest.mark.parametrize(
    ("field", "value"),
    # json.dumps writes the lone surrogate as the escape "\ud800", as a producer would.
    [("event_time", "0001-01-01T00:30:00+01:00"), ("event_time", "9999-12-31T23:30:00-01:00"), ("scope", "\ud800")],
)
def test_a_message_put_on_the_bus_past_the_api_fails_alone(
    stack: LocalStack, subscribed: Callable[..., str], field: str, value: str
) -> None:
    # An event time in year 0 or 10000 once in UTC failed the whole batch (an OverflowError where the
    # batch is prepared): every other team's event in it came back, and after 5 receives went to the DLQ.
    subscription = subscribed()
    sample = INGEST_SAMPLE["Records"][0]
    good, other = team_a_events(2).values()
    poisoned = json.loads(queue_message(FanOutRequest(event=other)))
    poisoned["detail"]["event"] |= {"team_id": "team-z", field: value}
    batch = [
        {**sample, "messageId": "good", "body": queue_message(FanOutRequest(event=good))},
        {**sample, "messageId": "poisoned", "body": json.dumps(poisoned)},
    ]
    answer = stack.invoke("IngestFunction", {"Records": batch})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "poisoned"}]}
    assert [message["delivery_id"] for message in delivery_messages()] == [delivery_id(good.event_id, subscription)]
