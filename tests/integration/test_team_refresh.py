"""What a team's refresh costs and whom its failure reaches (issue 23): a container re-reads only the
subscriptions that changed, delivery's health writes make no container re-read anything, and a team whose
subscriptions cannot be read fails only its own messages."""

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import records
from receivers import Answer, receiver
from records import receiver_endpoint, subscription_id

from hookrelay import wiring
from hookrelay.aws import table
from hookrelay.models.subscriptions import SubscriptionPatch
from hookrelay.records import Subscription, delivery_id, with_values
from hookrelay.settings import get_settings
from hookrelay.store.cached_subscriptions import CachedTeamSubscriptions
from hookrelay.subscriptions import Subscriptions
from hookrelay.time_budget import UNLIMITED
from hookrelay_cli.local.stack import LocalStack
from integration.injected_dynamodb import InjectedDynamoDB
from integration.test_delivery import World, event_of, queued_jobs
from integration.test_ingest import ingest_batch

BIG_TEAM = 1000


@dataclass
class SubscriptionReads:
    """The calls made to the subscriptions table and the items they answered with, by operation."""

    calls: Counter[str] = field(default_factory=Counter)
    items: int = 0

    def clear(self) -> None:
        self.calls.clear()
        self.items = 0


@contextmanager
def subscription_reads() -> Iterator[SubscriptionReads]:
    reads = SubscriptionReads()
    name = get_settings().subscriptions_table
    dynamodb = table(name).client

    def before(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        if body.get("TableName") == name or name in body.get("RequestItems", {}):
            context["subscriptions_table"] = True
            reads.calls[model.name] += 1

    def after(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("subscriptions_table"):
            reads.items += len(parsed.get("Items", [])) + len(parsed.get("Responses", {}).get(name, []))
            reads.items += "Item" in parsed

    dynamodb.meta.events.register("before-call.dynamodb", before, unique_id="counted-before")
    dynamodb.meta.events.register("after-call.dynamodb", after, unique_id="counted-after")
    try:
        yield reads
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb", before, unique_id="counted-before")
        dynamodb.meta.events.unregister("after-call.dynamodb", after, unique_id="counted-after")


def seed_team(port: int, team_id: str, count: int) -> list[Subscription]:
    """A team of `count` subscriptions to the receiver on `port`, as the store leaves them."""
    subscriptions = [
        records.subscription(n, team_id=team_id, endpoint=receiver_endpoint(port), revision=1) for n in range(count)
    ]
    with table(get_settings().subscriptions_table).batch_writer() as batch:
        for subscription in subscriptions:
            item = with_values(subscription)
            item["subscription_id"] = item.pop("id")
            batch.put_item(Item=item)
        batch.put_item(Item={"team_id": team_id, "subscription_id": "#team", "version": 0, "subscription_count": count})
    return subscriptions


def test_after_one_patch_in_a_team_of_1000_the_next_batch_reads_only_the_changed_subscription(
    stack: LocalStack,
) -> None:
    world = World()
    logic = Subscriptions(world.subscriptions, allow_private=True, max_per_team=BIG_TEAM)
    with receiver() as target, subscription_reads() as reads:
        team = seed_team(target.port, "acme", BIG_TEAM)
        warm = world.deliverer.deliver_batch(
            [("m0", world.message(world.pending(team[0], event_of(team[0], 0)), 1))], UNLIMITED
        )
        assert reads.items >= BIG_TEAM  # the container's first sight of the team reads all of it
        logic.update("acme", team[7].id, SubscriptionPatch(description="moved"))
        reads.clear()
        messages = [(f"m{n}", world.message(world.pending(team[n], event_of(team[n], n)), 1)) for n in (3, 7, 500)]
        reports = world.deliverer.deliver_batch(messages, UNLIMITED)
    assert [report.outcome for report in warm + reports] == ["delivered"] * 4
    # The team's version, the change log's entry for the new version, the patched subscription.
    assert reads.items == 3
    assert reads.calls == {"BatchGetItem": 3}


def test_a_flapping_endpoint_makes_no_container_re_read_its_team(stack: LocalStack) -> None:
    answers = iter([Answer(500), Answer(200), Answer(500), Answer(200)])
    world = World()
    with receiver(lambda _: next(answers)) as flapping, subscription_reads() as reads:
        subscription = world.subscribe(flapping.port)
        version = world.subscriptions.versions(["acme"])
        another_container = CachedTeamSubscriptions(wiring.subscription_store(get_settings()))
        another_container.refresh(["acme"])
        reads.clear()
        outcomes = []
        for number in range(4):
            delivery = world.pending(subscription, event_of(subscription, number))
            (report,) = world.deliverer.deliver_batch([(f"m{number}", world.message(delivery, 1))], UNLIMITED)
            outcomes.append(report.outcome)
            another_container.refresh(["acme"])
    assert outcomes == ["pending", "delivered", "pending", "delivered"]
    assert len(world.subscriptions.failing_since_writes) == 4  # the run's start and end, twice
    assert world.subscriptions.versions(["acme"]) == version
    # Every refresh of either container read the team's version and nothing else, but for the delivering
    # container's first sight of the team (one query, one subscription).
    assert reads.calls["Query"] == 1
    assert reads.items == 8 + 1


# With rate limits, the unreadable team's message takes no slot (its subscription's limit is unknown).
@pytest.mark.parametrize("rate_limit", [None, 5], ids=["unlimited", "rate-limited"])
def test_a_throttled_refresh_of_one_team_leaves_the_other_team_s_deliveries_in_the_batch_delivered(
    stack: LocalStack, injected_dynamodb: InjectedDynamoDB, rate_limit: int | None
) -> None:
    world = World()
    logic = Subscriptions(world.subscriptions, allow_private=True, max_per_team=BIG_TEAM)
    with receiver() as target:
        hot, quiet = (
            world.subscribe(target.port, id=subscription_id(n), team_id=team, rate_limit=rate_limit)
            for n, team in enumerate(("team-a", "team-b"))
        )

        def batch(number: int) -> list[tuple[str, str]]:
            return [
                (
                    f"{subscription.team_id}-{number}",
                    world.message(world.pending(subscription, event_of(subscription, number)), 1),
                )
                for subscription in (hot, quiet)
            ]

        first = world.deliverer.deliver_batch(batch(1), UNLIMITED)
        logic.update("team-a", hot.id, SubscriptionPatch(description="changed"))  # team-a must be read again
        injected_dynamodb.throttled_partitions = {"team-a"}
        throttled = world.deliverer.deliver_batch(batch(2), UNLIMITED)
        injected_dynamodb.throttled_partitions = set()
        again = world.deliverer.deliver_batch(batch(2)[:1], UNLIMITED)
    assert [report.outcome for report in first] == ["delivered", "delivered"]
    assert {report.message_id: report.outcome for report in throttled} == {"team-a-2": "error", "team-b-2": "delivered"}
    assert [report.comes_back for report in throttled] == [True, False]
    assert [report.outcome for report in again] == ["delivered"]  # received again, once the partition answers


TEAMS = ("team-a", "team-b")


def test_a_team_key_dynamodb_keeps_throttling_fails_only_that_team_s_events_in_an_ingest_batch(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch's one read of its teams' versions (and slow marks) hands team-a's keys back unprocessed
    # at every try, as DynamoDB does while their partition is over its throughput. Asked again without
    # end, they held the whole batch until the function's Timeout: team-b's event too.
    world = World()
    subscriptions = {team: world.subscribe(9, id=subscription_id(n), team_id=team) for n, team in enumerate(TEAMS)}
    client = table(get_settings().subscriptions_table).client
    answer = client.batch_get_item

    def team_a_throttled(RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((name, request),) = RequestItems.items()
        hot = [key for key in request["Keys"] if key["team_id"] == "team-a"]
        cool = [key for key in request["Keys"] if key["team_id"] != "team-a"]
        response = dict(answer(RequestItems={name: {**request, "Keys": cool}})) if cool else {"Responses": {}}
        return {**response, "UnprocessedKeys": {name: {**request, "Keys": hot}} if hot else {}}

    monkeypatch.setattr(client, "batch_get_item", team_a_throttled)
    monkeypatch.setattr("hookrelay.store.batch.time.sleep", lambda seconds: None)
    events = {f"record-{team}": event_of(subscription, 1) for team, subscription in subscriptions.items()}
    assert ingest_batch(stack, events) == {"record-team-a"}
    (queued,) = queued_jobs(1)
    assert queued == delivery_id(events["record-team-b"].event_id, subscriptions["team-b"].id)
