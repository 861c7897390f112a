"""Subscriptions, stored per team: partition key team_id, sort key subscription_id.

Here: what the API and delivery read and write of them; store/team_items.py: how a team's items are
stored and its version moved on with each write; store/cached_subscriptions.py: a container's copy.
"""

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from hookrelay.errors import Unavailable
from hookrelay.observability import logger
from hookrelay.records import Subscription
from hookrelay.settings import DEFAULT_MAX_SUBSCRIPTION_BYTES_PER_TEAM
from hookrelay.store.batch import get_items
from hookrelay.store.retries import THROTTLED, TRANSACTION_RETRIES, Retries
from hookrelay.store.team_items import TeamItems, all_of_team, item_of, stored_bytes, subscription_of, subscriptions_of


@dataclass(frozen=True)
class SubscriptionSlice:
    items: list[Subscription]
    has_more: bool


class SubscriptionStore(Protocol):
    """Every write the API makes, and every auto-disable, also moves the team's version on and logs which
    subscription it changed under that version, in the same transaction, so that a reader that saw the
    version after a write answered also sees the write, re-reading only what changed
    (CachedTeamSubscriptions). Delivery's record of an endpoint's run of failures moves no version: no
    cache needs to see it at once. Every write moves the subscription's own `revision` on, so that a
    write made from a copy read earlier can be made only while nothing else was written since.

    A write that keeps losing races (transaction conflicts, throttling) raises Unavailable, having
    written nothing; None or False always means that a condition did not hold.
    """

    def create(self, subscription: Subscription, limit: int) -> Subscription:
        """The subscription as stored (at its first revision). TeamLimitReached, writing nothing, when the
        team already has `limit` subscriptions or it would take the team's stored size past its limit."""
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
        delivery's health writes) or no longer exists: read it again. TeamLimitReached, writing nothing,
        when it would take the team's stored size past its limit.
        """
        ...

    def delete(self, team_id: str, subscription_id: str) -> bool:
        """False when there was nothing to delete."""
        ...

    def all_of_team(self, team_id: str) -> list[Subscription]:
        """Every subscription of a team, in id order, as of the latest write (a strongly consistent read)."""
        ...

    def some_of_team(self, team_id: str, subscription_ids: Collection[str]) -> list[Subscription]:
        """Those of these subscriptions that exist, as of the latest write (a strongly consistent read)."""
        ...

    def versions(self, team_ids: Collection[str]) -> dict[str, int]:
        """Each team's version, in one read; 0 for a team never written since versions exist."""
        ...

    def versions_and_slow_marks(self, team_ids: Collection[str]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """Each team's version, as `versions`, and its slow marks (subscription id -> the epoch second the
        mark ends, past ones included), in one read."""
        ...

    def mark_slow(self, team_id: str, subscription_id: str, until: int, now: int) -> None:
        """Mark the subscription's endpoint slow until the epoch second `until`, moving no version; marks
        that ended before `now` may be removed."""
        ...

    def changed_between(self, team_id: str, after: int, upto: int) -> set[str] | None:
        """The ids of the subscriptions that the writes which moved the team's version from `after` to `upto`
        changed (created, replaced, deleted or disabled); None when the change log no longer reaches back
        to `after`: read the whole team."""
        ...

    def disable(
        self, team_id: str, subscription_id: str, reason: str, at: str, *, failing_since: str | None = None
    ) -> Subscription | None:
        """Stop deliveries to a subscription, saying why, while it is enabled (it may have been deleted meanwhile).

        With `failing_since`, only while that run of failures is the stored one: a delivery decides
        from a cached copy, and another container may have seen a success since. When nothing was written,
        the subscription as stored (None if deleted), for the caller to decide from; else None.
        """
        ...

    def set_failing_since(self, team_id: str, subscription_id: str, since: str | None) -> Subscription | None:
        """Start (a time) or end (None) the endpoint's run of failures; starting keeps an earlier start.

        The subscription as stored afterwards (also when there was nothing to write: another container
        wrote it first); None when it no longer exists.
        """
        ...


def next_revision(subscription: Subscription) -> Subscription:
    """What a write made from `subscription` (read at its revision, or new: 0) stores."""
    return dataclasses.replace(subscription, revision=subscription.revision + 1)


# A refused write's answer holds the item as DynamoDB sends it (typed values): the table does not convert errors.
_DESERIALIZER = TypeDeserializer()


class DynamoSubscriptionStore:
    def __init__(
        self,
        table: Any,
        retries: Retries = TRANSACTION_RETRIES,
        max_team_bytes: int = DEFAULT_MAX_SUBSCRIPTION_BYTES_PER_TEAM,
    ):
        self._table = table
        self._client = table.client
        self._retries = retries
        self._team = TeamItems(table, retries, max_team_bytes)

    def create(self, subscription: Subscription, limit: int) -> Subscription:
        stored = next_revision(subscription)
        put = {"Put": {"Item": item_of(stored), "ConditionExpression": "attribute_not_exists(subscription_id)"}}
        # Ids are random UUIDs: the put's condition fails only when an earlier try of this very transaction
        # was made and its answer lost (botocore tried it again), so the subscription is stored either way.
        self._team.write(subscription.team_id, subscription.id, put, added=1, limit=limit, size=stored_bytes(stored))
        return stored

    def get(self, team_id: str, subscription_id: str) -> Subscription | None:
        # Consistent: a GET, PATCH or rotation right after the create (or a PATCH) it follows must see it.
        response = self._table.get_item(
            Key={"team_id": team_id, "subscription_id": subscription_id}, ConsistentRead=True
        )
        item = response.get("Item")
        return subscription_of(item) if item else None

    def page(self, team_id: str, limit: int, after_id: str | None) -> SubscriptionSlice:
        # One more than asked tells whether another page exists without a second request. Consistent,
        # so that a list right after a create or delete shows it (the portal lists right after a delete).
        query: dict[str, Any] = {
            "KeyConditionExpression": subscriptions_of(team_id),
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
        return SubscriptionSlice(items=[subscription_of(item) for item in items[:limit]], has_more=len(items) > limit)

    def replace(self, subscription: Subscription) -> Subscription | None:
        stored = next_revision(subscription)
        condition = "revision = :read"
        if not subscription.revision:
            # Stored before revisions were kept (or by hand, with 0), and not written since.
            condition = f"attribute_exists(subscription_id) AND ({condition} OR attribute_not_exists(revision))"
        put = {
            "Item": item_of(stored),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {":read": subscription.revision},
        }
        written = self._team.write(subscription.team_id, subscription.id, {"Put": put}, size=stored_bytes(stored))
        return stored if written else None

    def all_of_team(self, team_id: str) -> list[Subscription]:
        return all_of_team(self._table, team_id)

    def some_of_team(self, team_id: str, subscription_ids: Collection[str]) -> list[Subscription]:
        keys = [{"team_id": team_id, "subscription_id": subscription_id} for subscription_id in subscription_ids]
        return [subscription_of(item) for item in get_items(self._table, keys, consistent=True)]

    def versions(self, team_ids: Collection[str]) -> dict[str, int]:
        return self._team.versions(team_ids)

    def versions_and_slow_marks(self, team_ids: Collection[str]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        return self._team.versions_and_slow_marks(team_ids)

    def mark_slow(self, team_id: str, subscription_id: str, until: int, now: int) -> None:
        self._team.mark_slow(team_id, subscription_id, until, now)

    def changed_between(self, team_id: str, after: int, upto: int) -> set[str] | None:
        return self._team.changed_between(team_id, after, upto)

    def disable(
        self, team_id: str, subscription_id: str, reason: str, at: str, *, failing_since: str | None = None
    ) -> Subscription | None:
        # Logged like the API's writes, so that every container's next batch re-reads the subscription and
        # sends it nothing more; only while it is enabled, so that the 410s of a batch's concurrent sends
        # move the version once.
        condition = "attribute_exists(subscription_id) AND enabled = :true"
        values: dict[str, Any] = {":true": True, ":false": False, ":reason": reason, ":at": at, ":one": 1}
        if failing_since is not None:
            condition += " AND failing_since = :since"
            values[":since"] = failing_since
        update = {
            "Key": {"team_id": team_id, "subscription_id": subscription_id},
            "UpdateExpression": "SET enabled = :false, disabled_reason = :reason, updated_at = :at ADD revision :one",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        return (
            None
            if self._team.write(team_id, subscription_id, {"Update": update})
            else self.get(team_id, subscription_id)
        )

    def set_failing_since(self, team_id: str, subscription_id: str, since: str | None) -> Subscription | None:
        """A single-item write that moves the subscription's revision on (a PATCH read before it does not write
        over it) and no version: delivery makes these from many containers at once, each time an endpoint
        starts or stops failing, and every cache re-reading the team for them is what they must not cost.
        A container that decided from an older copy learns the stored one from the refused write's answer."""
        update: dict[str, Any] = {
            "Key": {"team_id": team_id, "subscription_id": subscription_id},
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if since is None:
            update |= {
                "UpdateExpression": "REMOVE failing_since ADD revision :one",
                "ConditionExpression": "attribute_exists(failing_since)",
                "ExpressionAttributeValues": {":one": 1},
            }
        else:
            update |= {
                "UpdateExpression": "SET failing_since = :since ADD revision :one",
                "ConditionExpression": "attribute_exists(subscription_id) AND attribute_not_exists(failing_since)",
                "ExpressionAttributeValues": {":since": since, ":one": 1},
            }
        try:
            written = self._single_write(lambda: self._table.update_item(**update))
        except self._client.exceptions.ConditionalCheckFailedException as refused:
            found = refused.response.get("Item")
            return (
                subscription_of({key: _DESERIALIZER.deserialize(value) for key, value in found.items()})
                if found
                else None
            )
        return subscription_of(written["Attributes"])

    def delete(self, team_id: str, subscription_id: str) -> bool:
        delete = {
            "Delete": {
                "Key": {"team_id": team_id, "subscription_id": subscription_id},
                "ConditionExpression": "attribute_exists(subscription_id)",
            }
        }
        return self._team.write(team_id, subscription_id, delete, added=-1, size=0)

    def _single_write[T](self, write: Callable[[], T]) -> T:
        """One item's write, tried again while it meets a transaction on its item (a conflict no SDK
        retries) or stays throttled after botocore's own tries; then Unavailable."""
        for _ in self._retries:
            try:
                return write()
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in THROTTLED:
                    raise
                logger.info(
                    "subscription write refused for now; trying again",
                    extra={"operation": "UpdateItem", "error_code": code, "error_message": str(error)},
                )
        raise Unavailable("DynamoDB kept refusing the write (conflicts, throttling)")
