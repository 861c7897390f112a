"""Subscriptions, stored per team: partition key team_id, sort key subscription_id."""

import contextlib
import dataclasses
import functools
import json
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from hookrelay.errors import TeamLimitReached, Unavailable
from hookrelay.matching import SubscriptionIndex
from hookrelay.observability import log_failure, logger
from hookrelay.records import Event, Subscription, fields_in, with_values
from hookrelay.settings import DEFAULT_MAX_SUBSCRIPTION_BYTES_PER_TEAM
from hookrelay.store.batch import get_items
from hookrelay.store.retries import (
    CONDITION_FAILED,
    THROTTLED,
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


# The sort key of a team's own item (its version and its number of subscriptions): '#' sorts before
# every character of a UUID, so the key condition of a team's subscriptions leaves it out.
TEAM_ITEM = "#team"
# The team's change log: the id of the subscription that version v changed is kept in slot v modulo
# CHANGE_LOG_SLOTS (sort key `#change#<slot>`, also before every UUID), overwritten CHANGE_LOG_SLOTS
# versions later. A ring rather than an item per version: its size is bounded without a TTL, and its
# key is known from the version alone. A cache further behind than that reads the whole team, as it
# would anyway: a team has at most 1 000 subscriptions.
CHANGE_LOG_SLOTS = 1000


# What a subscription's stored size leaves out: delivery's health fields, written without the team's item.
_UNCOUNTED = frozenset({"failing_since", "disabled_reason", "updated_at", "revision"})


def stored_bytes(subscription: Subscription) -> int:
    """A subscription's stored size as its team's limit counts it: the UTF-8 JSON of its configuration."""
    counted = {name: value for name, value in with_values(subscription).items() if name not in _UNCOUNTED}
    return len(json.dumps(counted, separators=(",", ":"), ensure_ascii=False).encode())


def _change_slot(version: int) -> str:
    return f"#change#{version % CHANGE_LOG_SLOTS:04d}"


def _subscriptions_of(team_id: str) -> ConditionBase:
    return Key("team_id").eq(team_id) & Key("subscription_id").gt(TEAM_ITEM)


def _item(subscription: Subscription) -> dict[str, Any]:
    item = with_values(subscription)
    item["subscription_id"] = item.pop("id")
    return item


def next_revision(subscription: Subscription) -> Subscription:
    """What a write made from `subscription` (read at its revision, or new: 0) stores."""
    return dataclasses.replace(subscription, revision=subscription.revision + 1)


# A refused write's answer holds the item as DynamoDB sends it (typed values): the table does not convert errors.
_DESERIALIZER = TypeDeserializer()


def _subscription(item: dict[str, Any]) -> Subscription:
    # DynamoDB gives numbers back as Decimal; the record holds whole numbers.
    fields = fields_in(Subscription, item)
    numbers: dict[str, int] = {key: int(item[key]) for key in ("rate_limit", "revision") if key in item}
    return Subscription(**{**fields, **numbers, "id": item["subscription_id"]})


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
        self._max_team_bytes = max_team_bytes

    def create(self, subscription: Subscription, limit: int) -> Subscription:
        stored = next_revision(subscription)
        put = {"Put": {"Item": _item(stored), "ConditionExpression": "attribute_not_exists(subscription_id)"}}
        # Ids are random UUIDs: the put's condition fails only when an earlier try of this very transaction
        # was made and its answer lost (botocore tried it again), so the subscription is stored either way.
        self._write(subscription.team_id, subscription.id, put, added=1, limit=limit, size=stored_bytes(stored))
        return stored

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
        written = self._write(subscription.team_id, subscription.id, {"Put": put}, size=stored_bytes(stored))
        return stored if written else None

    def all_of_team(self, team_id: str) -> list[Subscription]:
        query: dict[str, Any] = {"KeyConditionExpression": _subscriptions_of(team_id), "ConsistentRead": True}
        subscriptions: list[Subscription] = []
        while True:
            response = self._table.query(**query)
            subscriptions.extend(_subscription(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return subscriptions
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def some_of_team(self, team_id: str, subscription_ids: Collection[str]) -> list[Subscription]:
        keys = [{"team_id": team_id, "subscription_id": subscription_id} for subscription_id in subscription_ids]
        return [_subscription(item) for item in get_items(self._table, keys, consistent=True)]

    def versions(self, team_ids: Collection[str]) -> dict[str, int]:
        keys = [{"team_id": team_id, "subscription_id": TEAM_ITEM} for team_id in team_ids]
        items = get_items(self._table, keys, fields=("team_id", "version"), consistent=True)
        return {str(item["team_id"]): int(item["version"]) for item in items}

    def changed_between(self, team_id: str, after: int, upto: int) -> set[str] | None:
        if upto - after > CHANGE_LOG_SLOTS:
            return None
        versions = range(after + 1, upto + 1)
        keys = [{"team_id": team_id, "subscription_id": _change_slot(version)} for version in versions]
        logged = get_items(self._table, keys, fields=("version", "changed"), consistent=True)
        # A slot overwritten by a later version (or never written: a version moved by hand, or before this release).
        if {int(item["version"]) for item in logged} != set(versions):
            return None
        return {str(item["changed"]) for item in logged}

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
        return None if self._write(team_id, subscription_id, {"Update": update}) else self.get(team_id, subscription_id)

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
                _subscription({key: _DESERIALIZER.deserialize(value) for key, value in found.items()})
                if found
                else None
            )
        return _subscription(written["Attributes"])

    def delete(self, team_id: str, subscription_id: str) -> bool:
        delete = {
            "Delete": {
                "Key": {"team_id": team_id, "subscription_id": subscription_id},
                "ConditionExpression": "attribute_exists(subscription_id)",
            }
        }
        return self._write(team_id, subscription_id, delete, added=-1, size=0)

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

    def _write(
        self,
        team_id: str,
        subscription_id: str,
        write: dict[str, Any],
        *,
        added: int = 0,
        limit: int | None = None,
        size: int | None = None,
    ) -> bool:
        """Apply one conditional write of a subscription, move its team's version on, keep its totals and log
        the change under the new version, together.

        `added` subscriptions to the team's count (refused past `limit`); `size`: the subscription's stored
        size after the write (0 for a delete; None when its configuration does not change), refused when it
        would grow the team's stored size past its limit (TeamLimitReached). The team's item (and, with
        `size`, the subscription's) is read first, and the transaction made only while the version is still
        the one read: the totals are set from that read, and the change log's slot is named by the version.
        False when the write's own condition did not hold. A transaction that lost a race (another write
        moved the version, a conflict, throttling) is tried again from a fresh read, a bounded number of
        times; then Unavailable.
        """
        name = self._table.name
        ((operation, fields),) = write.items()
        for _ in self._retries:
            team, before = self._team_and_subscription(team_id, subscription_id if size is not None else None)
            if team is None:
                self._start_team(team_id)
                continue
            version = int(team["version"])
            count = int(team["subscription_count"]) + added
            if limit is not None and added > 0 and count > limit:
                raise TeamLimitReached(
                    f"A team may have at most {limit} webhook subscriptions: delete one before creating another."
                )
            expression = "SET version = :next, subscription_count = :count"
            values: dict[str, Any] = {":read": version, ":next": version + 1, ":count": count}
            if size is not None:
                total = int(team["subscription_bytes"]) if "subscription_bytes" in team else self._team_bytes(team_id)
                grown = size - (stored_bytes(_subscription(before)) if before else 0)
                if grown > 0 and total + grown > self._max_team_bytes:
                    raise TeamLimitReached(
                        f"A team's webhook subscriptions may take at most {self._max_team_bytes} bytes stored"
                        f" (their configuration as JSON); they take {total}, and this write adds {grown}:"
                        " delete or shrink one first."
                    )
                expression += ", subscription_bytes = :bytes"
                values[":bytes"] = total + grown
            team_update = {
                "Key": {"team_id": team_id, "subscription_id": TEAM_ITEM},
                "UpdateExpression": expression,
                "ConditionExpression": "version = :read",
                "ExpressionAttributeValues": values,
            }
            change = {
                "Item": {
                    "team_id": team_id,
                    "subscription_id": _change_slot(version + 1),
                    "version": version + 1,
                    "changed": subscription_id,
                }
            }
            items = [
                {operation: {**fields, "TableName": name}},
                {"Update": {**team_update, "TableName": name}},
                {"Put": {**change, "TableName": name}},
            ]
            try:
                self._client.transact_write_items(TransactItems=items)
            except self._client.exceptions.TransactionCanceledException as error:
                codes = cancellation_codes(error)
                # The team's condition fails only when another write moved the version since it was read.
                if lost_a_race(codes) or codes[1] == CONDITION_FAILED:
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
                return False
            return True
        raise Unavailable("DynamoDB kept cancelling the write (conflicts, throttling); nothing was written")

    def _team_and_subscription(
        self, team_id: str, subscription_id: str | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The team's item and, if named, the subscription's, in one strongly consistent read; None when absent."""
        ids = [TEAM_ITEM] + ([subscription_id] if subscription_id else [])
        keys = [{"team_id": team_id, "subscription_id": each} for each in ids]
        found = {str(item["subscription_id"]): item for item in get_items(self._table, keys, consistent=True)}
        return found.get(TEAM_ITEM), found.get(subscription_id) if subscription_id else None

    def _team_bytes(self, team_id: str) -> int:
        """The stored size of a team counted before its item kept it (teams stored before this release)."""
        return sum(stored_bytes(subscription) for subscription in self.all_of_team(team_id))

    def _start_team(self, team_id: str) -> None:
        """Create the team's item if it is missing (teams stored before it existed), counting what the team has."""
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
        # Raced by another writer starting it, or by a transaction on the item: either way, read it again.
        with contextlib.suppress(
            self._client.exceptions.ConditionalCheckFailedException,
            self._client.exceptions.TransactionConflictException,
        ):
            self._table.put_item(
                Item={"team_id": team_id, "subscription_id": TEAM_ITEM, "version": 0, "subscription_count": counted},
                ConditionExpression=Attr("subscription_id").not_exists(),
            )


@dataclass(frozen=True)
class _Team:
    version: int
    subscriptions: list[Subscription]  # in id order

    @functools.cached_property
    def by_id(self) -> dict[str, Subscription]:
        return {subscription.id: subscription for subscription in self.subscriptions}

    @functools.cached_property
    def index(self) -> SubscriptionIndex:
        # Built by the first event matched against this version, so containers that only deliver never build it.
        return SubscriptionIndex(self.subscriptions)

    def changed(self, version: int, ids: Collection[str], read: Iterable[Subscription]) -> "_Team":
        """This team at `version`: the subscriptions with these ids replaced by those `read` (the others deleted)."""
        kept = {id_: subscription for id_, subscription in self.by_id.items() if id_ not in ids}
        kept.update((subscription.id, subscription) for subscription in read)
        return _Team(version, [kept[id_] for id_ in sorted(kept)])


# Teams a container keeps, the least recently used dropped first: a bound on its memory.
MAX_CACHED_TEAMS = 1000


class CachedTeamSubscriptions:
    """A team's subscriptions, kept per container and checked against the team's version before use.

    `refresh` is called once per batch with the batch's teams: one read of their versions, then for each
    team whose version moved, one read of its change log and one of the subscriptions the log names (the
    whole team only when seen for the first time, or when it changed more than it has subscriptions).
    Every change is answered only after it moved the version, so a batch that starts after the answer acts
    on the change.

    A team whose refresh fails (throttled, unavailable) fails alone: `refresh` names it, and `matching` and
    `find` raise Unavailable for it until a later refresh succeeds, while the batch's other teams go on.
    """

    def __init__(self, store: SubscriptionStore):
        self._store = store
        self._teams: OrderedDict[str, _Team] = OrderedDict()
        self._unavailable: set[str] = set()

    def refresh(self, team_ids: Iterable[str]) -> set[str]:
        """Bring these teams up to date; those whose subscriptions could not be read."""
        wanted = set(team_ids)
        if not wanted:
            return set()
        try:
            versions = self._store.versions(wanted)
        except Exception as error:
            log_failure("reading the teams' versions failed; their messages will be received again", error)
            self._unavailable |= wanted
            return wanted
        unavailable = set()
        for team_id in sorted(wanted):
            try:
                self._teams[team_id] = self._read(team_id, versions.get(team_id, 0))
            except Exception as error:
                log_failure(
                    "reading a team's subscriptions failed; its messages will be received again", error, team_id=team_id
                )
                unavailable.add(team_id)
            else:
                self._teams.move_to_end(team_id)
        self._unavailable = (self._unavailable - wanted) | unavailable
        while len(self._teams) > MAX_CACHED_TEAMS:
            self._teams.popitem(last=False)
        return unavailable

    def _read(self, team_id: str, version: int) -> _Team:
        cached = self._teams.get(team_id)
        if cached is not None and cached.version == version:
            return cached
        if cached is not None and 0 < version - cached.version <= max(1, len(cached.subscriptions)):
            changed = self._store.changed_between(team_id, cached.version, version)
            if changed is not None:
                return cached.changed(version, changed, self._store.some_of_team(team_id, changed))
        return _Team(version, self._store.all_of_team(team_id))

    def matching(self, event: Event) -> list[Subscription]:
        """The subscriptions of the event's team that receive it, found through the team's index."""
        return self._team(event.team_id).index.matching(event)

    def find(self, team_id: str, subscription_id: str) -> Subscription | None:
        """One subscription of the team, by id, from the same cached read (no read per delivery)."""
        return self._team(team_id).by_id.get(subscription_id)

    def remember(self, subscription: Subscription) -> None:
        """Keep a subscription as this container has just written (or found) it in place of its cached copy:
        decisions made from the cache (a failing run's start and end) would otherwise repeat the same write
        for each of the batch's deliveries, and delivery's health writes move no version."""
        cached = self._teams.get(subscription.team_id)
        if cached is None or subscription.id not in cached.by_id:
            return
        self._teams[subscription.team_id] = cached.changed(cached.version, [subscription.id], [subscription])

    def _team(self, team_id: str) -> _Team:
        if team_id not in self._teams and team_id not in self._unavailable:
            self.refresh([team_id])
        if team_id in self._unavailable:
            raise Unavailable(f"the subscriptions of team {team_id} could not be read")
        return self._teams[team_id]
