"""Fan-out with in-memory stores: one delivery per match, nothing twice, nothing lost on a crash."""

import dataclasses
import json
from collections import Counter

import pytest
from records import TEAM_LIMIT, subscription, subscription_id

from hookrelay.events_queue import FanOutRequest, InvalidEventMessage, queue_message, read_queue_message
from hookrelay.ingest import Ingest
from hookrelay.records import Event, Subscription, delivery_id
from hookrelay.store.subscriptions import CachedTeamSubscriptions
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
        self.events_queue = FakeQueue()
        self.ingest = Ingest(
            subscriptions=CachedTeamSubscriptions(self.store),
            events=self.events,
            delivery_queue=self.delivery_queue,  # type: ignore[arg-type]
            events_queue=self.events_queue,  # type: ignore[arg-type]
            chunk_size=chunk_size,
        )

    def enqueued_ids(self) -> list[str]:
        return [json.loads(message.body)["delivery_id"] for message in self.delivery_queue.messages]

    def run(self, request: FanOutRequest, has_time: bool = True) -> None:
        body = queue_message(request)
        self.ingest.prepare_batch([body])
        self.ingest.process_message(body, has_time=lambda: has_time)


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
    with pytest.raises(Crash):
        world.run(FanOutRequest(event=EVENT))
    world.delivery_queue.fail_on_call = None
    world.run(FanOutRequest(event=EVENT))  # SQS delivers the message again
    expected = {delivery_id(EVENT.event_id, s.id) for s in world.store.all_of_team("acme")}
    assert Counter(world.enqueued_ids()) == Counter(dict.fromkeys(expected, 1))


def test_a_large_fan_out_continues_through_the_events_queue() -> None:
    world = World([subscription(index) for index in range(120)], chunk_size=25)
    request = FanOutRequest(event=EVENT)
    runs = 0
    while True:
        runs += 1
        world.run(request, has_time=False)  # time for one chunk per invocation
        if not world.events_queue.messages:
            break
        request = read_queue_message(world.events_queue.messages.pop().body)
        assert request.continue_after
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
    world.store.replace(subscription(1, subscribed_events=["signer.done"]))
    world.store.replace(subscription(2, subscribed_events=["signer.done"], workspaces=["ws-2"]))
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
