"""Subscriptions, stored per team: partition key team_id, sort key subscription_id."""

import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from hookrelay.errors import Unavailable
from hookrelay.matching import SubscriptionIndex
from hookrelay.observability import logger
from hookrelay.records import Event, Subscription, fields_in, with_values
from hookrelay.store.batch import get_items
from hookrelay.store.retries import (
    CONDITION_FAILED,
    TRANSACTION_RETRIES,
    Retries,
    cancellation_codes,
    lost_a_race,
    only_conditions_failed,
)


@dataclass(frozen=True)
class SubscriptionSlice:
    items: list[Subscription]
    has_more: bool


class SubscriptionStore(Protocol):
    """Every write also moves the team's version on, in the same transaction, so that a reader that
    saw the version after a write answered also sees the write (CachedTeamSubscriptions); and moves
    the subscription's own `revision` on, so that a write made from a copy read earlier can be made
    only while nothing else was written since.

    A write that keeps losing races (transaction conflicts, throttling) raises Unavailable, having
    written nothing; None or False always means that a condition did not hold.
    """

    def create(self, subscription: Subscription, limit: int) -> Subscription | None:
        """The subscription as stored (at its first revision); None, writing nothing, when the team
        already has `limit` subscriptions."""
        ...

    def get(self, team_id: str, subscription_id: str) -> Subscription | None:
        """The subscription as of the latest write (a strongly consistent read)."""
        ...

    def page(self, team_id: str, limit: int, after_id: str | None) -> SubscriptionSlice:
        """A page of the team's subscriptions as of the latest write (a strongly consistent read)."""
        ...

    def replace(self, subscription: Subscription) -> Subscription | None:
        """Write `subscription`, a changed copy of one read at its `revision`, over the stored one, and
        return it as stored (at the next revision).

        None when the stored one is no longer at that revision (written since, by the API or by
        delivery's health writes) or no longer exists: read it again.
        """
        ...

    def delete(self, team_id: str, subscription_id: str) -> bool:
        """False when there was nothing to delete."""
        ...

    def all_of_team(self, team_id: str) -> list[Subscription]:
        """Every subscription of a team, in id order, as of the latest write (a strongly consistent read)."""
        ...

    def versions(self, team_ids: Collection[str]) -> dict[str, int]:
        """Each team's version, in one read; 0 for a team never written since versions exist."""
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


# The sort key of a team's own item (its version and its number of subscriptions): '#' sorts before
# every character of a UUID, so the key condition of a team's subscriptions leaves it out.
TEAM_ITEM = "#team"


def _subscriptions_of(team_id: str) -> ConditionBase:
    return Key("team_id").eq(team_id) & Key("subscription_id").gt(TEAM_ITEM)


def _item(subscription: Subscription) -> dict[str, Any]:
    item = with_values(subscription)
    item["subscription_id"] = item.pop("id")
    return item


def next_revision(subscription: Subscription) -> Subscription:
    """What a write made from `subscription` (read at its revision, or new: 0) stores."""
    return dataclasses.replace(subscription, revision=subscription.revision + 1)


def _subscription(item: dict[str, Any]) -> Subscription:
    # DynamoDB gives numbers back as Decimal; the record holds whole numbers.
    fields = fields_in(Subscription, item)
    numbers: dict[str, int] = {key: int(item[key]) for key in ("rate_limit", "revision") if key in item}
    return Subscription(**{**fields, **numbers, "id": item["subscription_id"]})


class DynamoSubscriptionStore:
    def __init__(self, table: Any, retries: Retries = TRANSACTION_RETRIES):
        self._table = table
        self._client = table.client
        self._retries = retries

    def create(self, subscription: Subscription, limit: int) -> Subscription | None:
        stored = next_revision(subscription)
        put = {"Put": {"Item": _item(stored), "ConditionExpression": "attribute_not_exists(subscription_id)"}}
        return stored if self._write(subscription.team_id, put, added=1, limit=limit) else None

    def get(self, team_id: str, subscription_id: str) -> Subscription | None:
        # Consistent: a GET, PATCH or rotation right after the create (or a PATCH) it follows must see it.
        response = self._table.get_item(
            Key={"team_id": team_id, "subscription_id": subscription_id}, ConsistentRead=True
        )
        item = response.get("Item")
        return _subscription(item) if item else None

    def page(self, team_id: str, limit: int, after_id: str | None) -> SubscriptionSlice:
        # One more than asked tells whether another page exists without a second request. Consistent,
        # so that a list right after a create or delete shows it (the portal lists right after a delete).
        query: dict[str, Any] = {
            "KeyConditionExpression": _subscriptions_of(team_id),
            "Limit": limit + 1,
            "ConsistentRead": True,
        }
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

    def replace(self, subscription: Subscription) -> Subscription | None:
        stored = next_revision(subscription)
        condition = "revision = :read"
        if not subscription.revision:
            # Stored before revisions were kept (or by hand, with 0), and not written since.
            condition = f"attribute_exists(subscription_id) AND ({condition} OR attribute_not_exists(revision))"
        put = {
            "Item": _item(stored),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {":read": subscription.revision},
        }
        return stored if self._write(subscription.team_id, {"Put": put}) else None

    def all_of_team(self, team_id: str) -> list[Subscription]:
        query: dict[str, Any] = {"KeyConditionExpression": _subscriptions_of(team_id), "ConsistentRead": True}
        subscriptions: list[Subscription] = []
        while True:
            response = self._table.query(**query)
            subscriptions.extend(_subscription(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return subscriptions
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def versions(self, team_ids: Collection[str]) -> dict[str, int]:
        keys = [{"team_id": team_id, "subscription_id": TEAM_ITEM} for team_id in team_ids]
        items = get_items(self._table, keys, fields=("team_id", "version"), consistent=True)
        return {str(item["team_id"]): int(item["version"]) for item in items}

    def disable(
        self, team_id: str, subscription_id: str, reason: str, at: str, *, failing_since: str | None = None
    ) -> None:
        condition = "attribute_exists(subscription_id)"
        values: dict[str, Any] = {":false": False, ":reason": reason, ":at": at}
        if failing_since is not None:
            condition += " AND failing_since = :since"
            values[":since"] = failing_since
        self._update(
            team_id,
            subscription_id,
            "SET enabled = :false, disabled_reason = :reason, updated_at = :at",
            condition,
            values,
        )

    def set_failing_since(self, team_id: str, subscription_id: str, since: str | None) -> None:
        if since is None:
            self._update(team_id, subscription_id, "REMOVE failing_since", "attribute_exists(failing_since)")
        else:
            self._update(
                team_id,
                subscription_id,
                "SET failing_since = :since",
                "attribute_exists(subscription_id) AND attribute_not_exists(failing_since)",
                {":since": since},
            )

    def delete(self, team_id: str, subscription_id: str) -> bool:
        delete = {
            "Delete": {
                "Key": {"team_id": team_id, "subscription_id": subscription_id},
                "ConditionExpression": "attribute_exists(subscription_id)",
            }
        }
        return self._write(team_id, delete, added=-1)

    def _update(
        self, team_id: str, subscription_id: str, expression: str, condition: str, values: dict[str, Any] | None = None
    ) -> None:
        """A change made only while `condition` holds (when it does not, there is nothing to do), which
        moves the subscription's revision on: a PATCH read before it must not write over it."""
        update: dict[str, Any] = {
            "Key": {"team_id": team_id, "subscription_id": subscription_id},
            "UpdateExpression": f"{expression} ADD revision :one",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {**(values or {}), ":one": 1},
        }
        self._write(team_id, {"Update": update})

    def _write(self, team_id: str, write: dict[str, Any], *, added: int = 0, limit: int | None = None) -> bool:
        """Apply one conditional write of a subscription and move its team's version on, together.

        False when the write's condition (or, with `limit`, the team's count) did not hold. A transaction
        cancelled for another reason (a conflict with another one on the team's item, throttling) is
        tried again, a bounded number of times; then Unavailable.
        """
        condition = "attribute_exists(version)"
        values: dict[str, Any] = {":one": 1, ":added": added}
        if limit is not None:
            condition += " AND subscription_count < :limit"
            values[":limit"] = limit
        team_update = {
            "Key": {"team_id": team_id, "subscription_id": TEAM_ITEM},
            "UpdateExpression": "SET version = version + :one, subscription_count = subscription_count + :added",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        ((operation, fields),) = write.items()
        name = self._table.name
        items = [{operation: {**fields, "TableName": name}}, {"Update": {**team_update, "TableName": name}}]
        for _ in self._retries:
            try:
                self._client.transact_write_items(TransactItems=items)
            except self._client.exceptions.TransactionCanceledException as error:
                codes = cancellation_codes(error)
                if lost_a_race(codes):
                    logger.info(
                        "subscription write cancelled; trying again",
                        extra={
                            "operation": "TransactWriteItems",
                            "error_code": "TransactionCanceledException",
                            "reasons": codes,
                            "error_message": str(error),
                        },
                    )
                    continue
                if not only_conditions_failed(codes):
                    raise
                # The team's condition fails for a team stored before its item existed, or one at its limit.
                if codes[1:] == [CONDITION_FAILED] and self._start_team(team_id):
                    continue
                return False
            return True
        raise Unavailable("DynamoDB kept cancelling the write (conflicts, throttling); nothing was written")

    def _start_team(self, team_id: str) -> bool:
        """Create the team's item if it is missing (teams stored before it existed), counting what the
        team has; False when it already existed (True: try the write again)."""
        counted = 0
        query: dict[str, Any] = {
            "KeyConditionExpression": _subscriptions_of(team_id),
            "Select": "COUNT",
            "ConsistentRead": True,
        }
        while True:
            response = self._table.query(**query)
            counted += int(response["Count"])
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        try:
            self._table.put_item(
                Item={"team_id": team_id, "subscription_id": TEAM_ITEM, "version": 0, "subscription_count": counted},
                ConditionExpression=Attr("subscription_id").not_exists(),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        except self._client.exceptions.TransactionConflictException:
            return True  # a transaction on the item is in progress: try the write again once it has settled
        return True


@dataclass(frozen=True)
class _Team:
    version: int
    subscriptions: list[Subscription]

    @functools.cached_property
    def by_id(self) -> dict[str, Subscription]:
        return {subscription.id: subscription for subscription in self.subscriptions}

    @functools.cached_property
    def index(self) -> SubscriptionIndex:
        # Built by the first event matched against this version, so containers that only deliver never build it.
        return SubscriptionIndex(self.subscriptions)


# Teams a container keeps, the least recently used dropped first: a bound on its memory.
MAX_CACHED_TEAMS = 1000


class CachedTeamSubscriptions:
    """A team's subscriptions, kept per container and checked against the team's version before use.

    `refresh` is called once per batch with the batch's teams: one read of their versions, and a
    query for each team whose version moved. Every change is answered only after it moved the
    version, so a batch that starts after the answer acts on the change.
    """

    def __init__(self, store: SubscriptionStore):
        self._store = store
        self._teams: OrderedDict[str, _Team] = OrderedDict()

    def refresh(self, team_ids: Iterable[str]) -> None:
        wanted = set(team_ids)
        if not wanted:
            return
        versions = self._store.versions(wanted)
        for team_id in sorted(wanted):
            version = versions.get(team_id, 0)
            cached = self._teams.pop(team_id, None)
            if cached is None or cached.version != version:
                cached = _Team(version, self._store.all_of_team(team_id))
            self._teams[team_id] = cached
        while len(self._teams) > MAX_CACHED_TEAMS:
            self._teams.popitem(last=False)

    def matching(self, event: Event) -> list[Subscription]:
        """The subscriptions of the event's team that receive it, found through the team's index."""
        return self._team(event.team_id).index.matching(event)

    def find(self, team_id: str, subscription_id: str) -> Subscription | None:
        """One subscription of the team, by id, from the same cached read (no read per delivery)."""
        return self._team(team_id).by_id.get(subscription_id)

    def remember(self, subscription: Subscription) -> None:
        """Keep a change this container has just written in place of its cached copy for the rest of
        the batch: decisions made from the cache (a failing run's start and end) would otherwise
        repeat the same write for each of the batch's deliveries."""
        cached = self._teams.get(subscription.team_id)
        if cached is None or subscription.id not in cached.by_id:
            return
        listed = [subscription if each.id == subscription.id else each for each in cached.subscriptions]
        self._teams[subscription.team_id] = _Team(cached.version, listed)

    def _team(self, team_id: str) -> _Team:
        if team_id not in self._teams:
            self.refresh([team_id])
        return self._teams[team_id]
