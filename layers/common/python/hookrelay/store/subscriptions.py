"""Subscriptions, stored per team: partition key team_id, sort key subscription_id."""

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from hookrelay.models import Subscription


@dataclass(frozen=True)
class SubscriptionSlice:
    items: list[Subscription]
    has_more: bool


class SubscriptionStore(Protocol):
    def create(self, subscription: Subscription) -> None: ...

    def get(self, team_id: str, subscription_id: str) -> Subscription | None: ...

    def page(self, team_id: str, limit: int, after_id: str | None) -> SubscriptionSlice: ...

    def replace(self, subscription: Subscription) -> bool:
        """Write over an existing subscription; False when it no longer exists."""
        ...

    def delete(self, team_id: str, subscription_id: str) -> bool:
        """False when there was nothing to delete."""
        ...

    def all_of_team(self, team_id: str) -> list[Subscription]:
        """Every subscription of a team, in id order."""
        ...

    def disable(
        self, team_id: str, subscription_id: str, reason: str, at: str, *, failing_since: str | None = None
    ) -> None:
        """Stop deliveries to a subscription, saying why (it may have been deleted meanwhile).

        With `failing_since`, only while that run of failures is the stored one: a delivery decides
        from a cached copy, and another container may have seen a success since.
        """
        ...

    def set_failing_since(self, team_id: str, subscription_id: str, since: str | None) -> None:
        """Start (a time) or end (None) the endpoint's run of failures; starting keeps an earlier start."""
        ...


def _item(subscription: Subscription) -> dict[str, Any]:
    item = subscription.model_dump(exclude={"id", "delivery_format"}, exclude_none=True)
    item["subscription_id"] = subscription.id
    return item


def _subscription(item: dict[str, Any]) -> Subscription:
    return Subscription.model_validate({**item, "id": item["subscription_id"]})


class DynamoSubscriptionStore:
    def __init__(self, table: Any):
        self._table = table

    def create(self, subscription: Subscription) -> None:
        self._table.put_item(Item=_item(subscription), ConditionExpression=Attr("subscription_id").not_exists())

    def get(self, team_id: str, subscription_id: str) -> Subscription | None:
        response = self._table.get_item(Key={"team_id": team_id, "subscription_id": subscription_id})
        item = response.get("Item")
        return _subscription(item) if item else None

    def page(self, team_id: str, limit: int, after_id: str | None) -> SubscriptionSlice:
        # One more than asked tells whether another page exists without a second request.
        query: dict[str, Any] = {"KeyConditionExpression": Key("team_id").eq(team_id), "Limit": limit + 1}
        if after_id:
            query["ExclusiveStartKey"] = {"team_id": team_id, "subscription_id": after_id}
        items: list[dict[str, Any]] = []
        while len(items) <= limit:
            response = self._table.query(**query)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return SubscriptionSlice(items=[_subscription(item) for item in items[:limit]], has_more=len(items) > limit)

    def replace(self, subscription: Subscription) -> bool:
        try:
            self._table.put_item(Item=_item(subscription), ConditionExpression=Attr("subscription_id").exists())
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def all_of_team(self, team_id: str) -> list[Subscription]:
        query: dict[str, Any] = {"KeyConditionExpression": Key("team_id").eq(team_id)}
        subscriptions: list[Subscription] = []
        while True:
            response = self._table.query(**query)
            subscriptions.extend(_subscription(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return subscriptions
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def disable(
        self, team_id: str, subscription_id: str, reason: str, at: str, *, failing_since: str | None = None
    ) -> None:
        condition: ConditionBase = Attr("subscription_id").exists()
        if failing_since is not None:
            condition &= Attr("failing_since").eq(failing_since)
        with contextlib.suppress(self._table.meta.client.exceptions.ConditionalCheckFailedException):
            self._table.update_item(
                Key={"team_id": team_id, "subscription_id": subscription_id},
                UpdateExpression="SET enabled = :false, disabled_reason = :reason, updated_at = :at",
                ConditionExpression=condition,
                ExpressionAttributeValues={":false": False, ":reason": reason, ":at": at},
            )

    def set_failing_since(self, team_id: str, subscription_id: str, since: str | None) -> None:
        key = {"team_id": team_id, "subscription_id": subscription_id}
        with contextlib.suppress(self._table.meta.client.exceptions.ConditionalCheckFailedException):
            if since is None:
                self._table.update_item(
                    Key=key, UpdateExpression="REMOVE failing_since", ConditionExpression=Attr("failing_since").exists()
                )
            else:
                self._table.update_item(
                    Key=key,
                    UpdateExpression="SET failing_since = :since",
                    ConditionExpression=Attr("subscription_id").exists() & Attr("failing_since").not_exists(),
                    ExpressionAttributeValues={":since": since},
                )

    def delete(self, team_id: str, subscription_id: str) -> bool:
        response = self._table.delete_item(
            Key={"team_id": team_id, "subscription_id": subscription_id}, ReturnValues="ALL_OLD"
        )
        return "Attributes" in response


class CachedTeamSubscriptions:
    """A team's subscriptions, read with one paginated query and kept for `ttl_seconds` per container.

    A change made through the API therefore reaches fan-out within the TTL: long enough to spare a
    query per event when a team publishes many, short enough that a new subscription soon receives.
    """

    def __init__(self, store: SubscriptionStore, ttl_seconds: float, monotonic: Callable[[], float] = time.monotonic):
        self._store = store
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, list[Subscription], dict[str, Subscription]]] = {}

    def of_team(self, team_id: str) -> list[Subscription]:
        return self._entry(team_id)[1]

    def find(self, team_id: str, subscription_id: str) -> Subscription | None:
        """One subscription of the team, by id, from the same cached read (no scan per delivery)."""
        return self._entry(team_id)[2].get(subscription_id)

    def remember(self, subscription: Subscription) -> None:
        """Keep a change this container has just written in place of its cached copy until the TTL.

        Decisions made from the cache (a failing run's start and end) would otherwise repeat the
        same write for every delivery until the next read.
        """
        cached = self._cache.get(subscription.team_id)
        if cached is None or subscription.id not in cached[2]:
            return
        expires, listed, by_id = cached
        listed = [subscription if each.id == subscription.id else each for each in listed]
        self._cache[subscription.team_id] = (expires, listed, {**by_id, subscription.id: subscription})

    def _entry(self, team_id: str) -> tuple[float, list[Subscription], dict[str, Subscription]]:
        now = self._monotonic()
        cached = self._cache.get(team_id)
        if cached and cached[0] > now:
            return cached
        subscriptions = self._store.all_of_team(team_id)
        self._cache = {team: entry for team, entry in self._cache.items() if entry[0] > now}
        entry = (now + self._ttl, subscriptions, {subscription.id: subscription for subscription in subscriptions})
        self._cache[team_id] = entry
        return entry
