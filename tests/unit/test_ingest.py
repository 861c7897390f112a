"""Fan-out with in-memory stores: one delivery per match, nothing twice, nothing lost on a crash."""

import dataclasses
import io
import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence

import pytest
from botocore.exceptions import ReadTimeoutError
from records import TEAM_LIMIT, subscription, subscription_id

from hookrelay.errors import Unavailable
from hookrelay.events_queue import FanOutRequest, InvalidEventMessage, queue_message, read_queue_message
from hookrelay.ingest import Ingest
from hookrelay.observability import logger
from hookrelay.queues import Message
from hookrelay.records import Event, Subscription, delivery_id
from hookrelay.store.cached_subscriptions import CachedTeamSubscriptions
from hookrelay.store.events import KeptEvent
from unit.fakes import Crash, FakeEvents, FakeQueue, FakeSubscriptionStore

EVENT = Event(
    event_id="11111111-2222-4333-8444-555555555555",
    event_name="signer.done",
    event_time="2026-01-01T00:00:00.000Z",
    team_id="acme",
    scope="app",
    data={"signer": {"id": "s1"}},
)


class World:
    def __init__(self, subscriptions: list[Subscription], chunk_size: int = 25) -> None:
        self.store = FakeSubscriptionStore()
        for item in subscriptions:
            self.store.create(item, TEAM_LIMIT)
        self.events = FakeEvents()
        self.delivery_queue = FakeQueue()
        self.slow_lane = FakeQueue()
        self.events_queue = FakeQueue()
        self.ingest = Ingest(
            subscriptions=CachedTeamSubscriptions(self.store, with_slow_marks=True),
            events=self.events,
            delivery_queue=self.delivery_queue,  # type: ignore[arg-type]
            slow_lane=self.slow_lane,  # type: ignore[arg-type]
            events_queue=self.events_queue,  # type: ignore[arg-type]
            chunk_size=chunk_size,
        )

    def enqueued_ids(self) -> list[str]:
        return [json.loads(message.body)["delivery_id"] for message in self.delivery_queue.messages]

    def run_batch(self, requests: list[FanOutRequest], has_time: bool = True) -> set[int]:
        """Fan out a batch as the handler does; the records (by index) that come back."""
        bodies = [queue_message(request) for request in requests]
        failed = set()
        for index in self.ingest.prepare_batch(bodies):
            try:
                self.ingest.process_message(str(index), bodies[index], has_time=lambda: has_time)
            except (Crash, Unavailable):  # any record's exception fails that record alone (powertools)
                failed.add(index)
        return failed | {int(record_id) for record_id in self.ingest.finish_batch()}

    def run(self, request: FanOutRequest, has_time: bool = True) -> bool:
        """Fan out one event alone; whether its record comes back."""
        return self.run_batch([request], has_time) == {0}


def test_one_delivery_per_matching_subscription() -> None:
    world = World(
        [
            subscription(1),
            subscription(2, subscribed_events=["signer.done"], scopes=["app"]),
            subscription(3, subscribed_events=["signature_request.done"]),
            subscription(4, enabled=False),
            subscription(5, sandbox=True),
            subscription(6, team_id="globex"),
        ]
    )
    world.run(FanOutRequest(event=EVENT))
    expected = [delivery_id(EVENT.event_id, subscription_id(index)) for index in (1, 2)]
    assert sorted(world.enqueued_ids()) == sorted(expected)
    # Each message carries what the delivery's first attempt records it with; fan-out writes no record.
    first = json.loads(world.delivery_queue.messages[0].body)
    assert first["attempt"] == 1
    assert first["origin"] | {"created_at": None, "expires_at": None} == {
        "team_id": "acme",
        "subscription_id": subscription_id(1),
        "event_id": EVENT.event_id,
        "event_name": EVENT.event_name,
        "created_at": None,
        "expires_at": None,
    }
    assert list(world.events.events) == [("acme", EVENT.event_id)]


def test_the_same_event_twice_names_the_same_deliveries_and_stores_the_event_once() -> None:
    # A fan-out finished in one chunk leaves no trace but its event: a second copy enqueues the same
    # first attempts again, and delivery makes each once (its conditional write finds one recorded).
    world = World([subscription(index) for index in range(10)])
    world.run(FanOutRequest(event=EVENT))
    world.run(FanOutRequest(event=EVENT))
    expected = {delivery_id(EVENT.event_id, s.id) for s in world.store.all_of_team("acme")}
    assert Counter(world.enqueued_ids()) == Counter(dict.fromkeys(expected, 2))
    assert list(world.events.events) == [("acme", EVENT.event_id)]


def test_two_teams_publishing_the_same_event_id_each_get_their_whole_fan_out() -> None:
    # Globex's subscription sorts after all of acme's: its progress mark must not hide them from acme's event.
    world = World([subscription(index) for index in range(3)] + [subscription(9, team_id="globex")])
    world.run(FanOutRequest(event=dataclasses.replace(EVENT, team_id="globex")))
    world.run(FanOutRequest(event=EVENT))
    every_subscription = world.store.all_of_team("acme") + world.store.all_of_team("globex")
    expected = {delivery_id(EVENT.event_id, s.id) for s in every_subscription}
    assert Counter(world.enqueued_ids()) == Counter(dict.fromkeys(expected, 1))


def test_ten_messages_per_send() -> None:
    world = World([subscription(index) for index in range(95)], chunk_size=500)
    world.run(FanOutRequest(event=EVENT))
    assert len(world.enqueued_ids()) == 95
    assert world.delivery_queue.calls == 10


@pytest.mark.parametrize("failing_call", [1, 2, 4, 7])
def test_a_crash_mid_fan_out_then_redelivery_sends_each_delivery_once(failing_call: int) -> None:
    world = World([subscription(index) for index in range(60)], chunk_size=25)
    world.delivery_queue.fail_on_call = failing_call
    assert world.run(FanOutRequest(event=EVENT))  # its record comes back
    world.delivery_queue.fail_on_call = None
    assert not world.run(FanOutRequest(event=EVENT))  # SQS delivers the message again
    expected = {delivery_id(EVENT.event_id, s.id) for s in world.store.all_of_team("acme")}
    assert Counter(world.enqueued_ids()) == Counter(dict.fromkeys(expected, 1))


def events(count: int) -> list[FanOutRequest]:
    return [FanOutRequest(event=dataclasses.replace(EVENT, event_id=str(uuid.uuid4()))) for _ in range(count)]


def test_the_messages_of_a_batch_s_events_go_ten_per_send() -> None:
    world = World([subscription(index) for index in range(3)])
    batch = events(10)
    assert world.run_batch(batch) == set()
    assert world.delivery_queue.calls == 3
    expected = {delivery_id(request.event.event_id, subscription_id(index)) for request in batch for index in range(3)}
    assert Counter(world.enqueued_ids()) == Counter(dict.fromkeys(expected, 1))


def test_a_quiet_team_s_deliveries_leave_before_a_busy_team_s_fan_outs_in_the_same_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With fair queues a quiet team's event is served at once, in a batch that a busy team's burst fills.
    world = World([subscription(1), subscription(2, team_id="globex")])
    steps: list[tuple[str, list[str]]] = []
    keep, send = world.events.keep, world.delivery_queue.send

    def kept(event: Event, expires_at: int) -> KeptEvent:
        steps.append(("store event", [event.team_id]))
        return keep(event, expires_at)

    def sent(messages: Sequence[Message]) -> None:
        steps.append(("send", [message.team_id for message in messages]))
        send(messages)

    monkeypatch.setattr(world.events, "keep", kept)
    monkeypatch.setattr(world.delivery_queue, "send", sent)
    quiet = FanOutRequest(event=dataclasses.replace(EVENT, team_id="globex"))
    assert world.run_batch([*events(5), quiet, *events(4)]) == set()
    assert steps == [
        ("store event", ["globex"]),
        ("send", ["globex"]),
        *[("store event", ["acme"])] * 9,
        ("send", ["acme"] * 9),
    ]


def test_a_batch_of_many_teams_none_holding_most_of_it_is_sent_ten_messages_a_send() -> None:
    world = World([subscription(index, team_id=f"team-{index}") for index in range(10)])
    batch = [FanOutRequest(event=dataclasses.replace(EVENT, team_id=f"team-{index}")) for index in range(10)]
    assert world.run_batch(batch) == set()
    assert len(world.enqueued_ids()) == 10
    assert world.delivery_queue.calls == 1


@pytest.mark.parametrize(
    ("subscriptions", "failing_call", "coming_back"),
    [
        # 7 events x 3 subscriptions: sends of events 0-3 (event 3: one message), 3-6, then event 6's last two.
        (3, 1, {0, 1, 2, 3}),
        (3, 2, {3, 4, 5, 6}),
        (3, 3, {6}),
        # 7 events x 12 (chunks of 25: one chunk each): event 0's first ten, its last two with event 1's first
        # eight...; once a send of an event's messages fails, the rest of them is not sent.
        (12, 2, {0, 1}),
        (12, 8, {5, 6}),
        (12, 9, {6}),
    ],
)
def test_a_record_comes_back_while_one_of_its_messages_is_not_accepted(
    subscriptions: int, failing_call: int, coming_back: set[int]
) -> None:
    world = World([subscription(index) for index in range(subscriptions)])
    batch = events(7)
    world.delivery_queue.fail_on_call = failing_call
    assert world.run_batch(batch) == coming_back
    sent = set(world.enqueued_ids())
    for index, request in enumerate(batch):
        expected = {delivery_id(request.event.event_id, subscription_id(sub)) for sub in range(subscriptions)}
        assert (expected <= sent) == (index not in coming_back), index  # none acknowledged with a message unsent
    world.delivery_queue.fail_on_call = None
    assert world.run_batch([batch[index] for index in sorted(coming_back)]) == set()
    assert set(world.enqueued_ids()) == {
        delivery_id(request.event.event_id, subscription_id(sub)) for request in batch for sub in range(subscriptions)
    }


def test_a_large_fan_out_continues_through_the_events_queue() -> None:
    world = World([subscription(index) for index in range(120)], chunk_size=25)
    request = FanOutRequest(event=EVENT)
    runs = 0
    while True:
        runs += 1
        world.run(request, has_time=False)  # time for one chunk per invocation
        if not world.events_queue.messages:
            break
        continuation = world.events_queue.messages.pop()
        request = read_queue_message(continuation.body)
        assert request.continue_after
        assert continuation.team_id == EVENT.team_id  # its message group: the team's fair-queue tenant
    assert runs == 5
    assert len(set(world.enqueued_ids())) == len(world.enqueued_ids()) == 120


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1]", "not an EventBridge event"),
        (json.dumps({"source": "elsewhere", "detail-type": "x", "detail": {}}), "source"),
        (json.dumps({"source": "hookrelay", "detail-type": "signer.done", "detail": {"event": {}}}), "event.event_id"),
        (
            json.dumps(
                {
                    "source": "hookrelay",
                    "detail-type": "signer.done",
                    "detail": {"event": {**dataclasses.asdict(EVENT), "event_name": "nope"}},
                }
            ),
            "unknown event name",
        ),
        (
            json.dumps({"source": "hookrelay", "detail-type": "other", "detail": {"event": dataclasses.asdict(EVENT)}}),
            "detail-type",
        ),
    ],
)
def test_foreign_messages_are_refused_with_a_reason(body: str, reason: str) -> None:
    with pytest.raises(InvalidEventMessage, match=reason):
        read_queue_message(body)


def test_a_changed_subscription_meets_the_next_event_with_its_new_selection() -> None:
    world = World(
        [
            subscription(1, subscribed_events=["contact.created"]),
            subscription(2, subscribed_events=["signer.done"], workspaces=["ws-1"]),
        ]
    )
    first = dataclasses.replace(EVENT, workspace_id="ws-1")
    world.run(FanOutRequest(event=first))
    # Each a change of the copy read at the revision its create wrote.
    world.store.replace(subscription(1, subscribed_events=["signer.done"], revision=1))
    world.store.replace(subscription(2, subscribed_events=["signer.done"], workspaces=["ws-2"], revision=1))
    second = dataclasses.replace(first, event_id="11111111-2222-4333-8444-666666666666")
    world.run(FanOutRequest(event=second))
    assert world.enqueued_ids() == [
        delivery_id(first.event_id, subscription_id(2)),
        delivery_id(second.event_id, subscription_id(1)),
    ]


def test_a_change_the_container_remembers_is_matched_at_once() -> None:
    store = FakeSubscriptionStore()
    store.create(subscription(1), TEAM_LIMIT)
    cache = CachedTeamSubscriptions(store)
    cache.refresh(["acme"])
    assert [s.id for s in cache.matching(EVENT)] == [subscription_id(1)]
    cache.remember(subscription(1, enabled=False))
    assert cache.matching(EVENT) == []


def test_a_team_whose_subscriptions_cannot_be_read_fails_only_its_own_events(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World([subscription(1), subscription(2, team_id="globex")])
    readable = world.store.all_of_team

    def throttled(team_id: str) -> list[Subscription]:
        if team_id == "acme":
            raise Unavailable("ProvisionedThroughputExceededException")
        return readable(team_id)

    monkeypatch.setattr(world.store, "all_of_team", throttled)
    other_team = dataclasses.replace(EVENT, team_id="globex")
    assert world.run_batch([FanOutRequest(event=EVENT), FanOutRequest(event=other_team)]) == {0}
    assert world.enqueued_ids() == [delivery_id(other_team.event_id, subscription_id(2))]
    monkeypatch.setattr(world.store, "all_of_team", readable)
    assert not world.run(FanOutRequest(event=EVENT))  # received again once the team can be read
    assert world.enqueued_ids()[1:] == [delivery_id(EVENT.event_id, subscription_id(1))]


@pytest.mark.parametrize("failing_read", ["versions", "all_of_team"])
def test_a_refresh_that_aws_does_not_answer_is_logged_in_one_line_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, failing_read: str
) -> None:
    # The full-size R1 counts tracebacks as crashes; a read that timed out is AWS's, not a bug.
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)
    store = FakeSubscriptionStore()
    store.create(subscription(1), TEAM_LIMIT)

    def timed_out(*_: object) -> None:
        raise ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/")

    monkeypatch.setattr(store, failing_read, timed_out)
    assert CachedTeamSubscriptions(store).refresh(["acme"]) == {"acme"}
    (line,) = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert (line["level"], line["aws_error_code"]) == ("ERROR", "ReadTimeoutError")
    assert "Traceback" not in logged.getvalue()


def delivery_ids_of(messages: Sequence[Message]) -> list[str]:
    return [json.loads(message.body)["delivery_id"] for message in messages]


@pytest.mark.parametrize("chunk_size", [25, 2])  # the last chunk held for the batch, and chunks sent at once
def test_a_subscription_marked_slow_gets_its_first_attempts_on_the_slow_lane_until_its_mark_ends(
    chunk_size: int,
) -> None:
    world = World([subscription(index) for index in range(4)], chunk_size=chunk_size)
    now = int(time.time())
    world.store.slow_marks["acme"] = {subscription_id(1): now + 60, subscription_id(3): now - 1}
    assert not world.run(FanOutRequest(event=EVENT))
    assert delivery_ids_of(world.slow_lane.messages) == [delivery_id(EVENT.event_id, subscription_id(1))]
    assert sorted(world.enqueued_ids()) == sorted(delivery_id(EVENT.event_id, subscription_id(n)) for n in (0, 2, 3))


def test_a_record_whose_slow_lane_messages_were_refused_comes_back() -> None:
    world = World([subscription(1), subscription(2)])
    world.store.slow_marks["acme"] = {subscription_id(1): int(time.time()) + 60}
    world.slow_lane.fail_on_call = 1
    assert world.run(FanOutRequest(event=EVENT))
    assert world.enqueued_ids() == [delivery_id(EVENT.event_id, subscription_id(2))]
