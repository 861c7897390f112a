"""A team's items in the subscriptions table (partition key team_id, sort key subscription_id): its
subscriptions', its own (its version, and the number and stored size of its subscriptions) and its change
log's. Every write of a subscription made through `TeamItems.write` moves the team's version on and logs
the change in the same transaction (store/subscriptions.py says why).
"""

import contextlib
import json
from collections.abc import Collection
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from hookrelay.errors import TeamLimitReached, Unavailable
from hookrelay.observability import logger
from hookrelay.records import Subscription, fields_in, with_values
from hookrelay.store.batch import get_items
from hookrelay.store.retries import CONDITION_FAILED, Retries, cancellation_codes, lost_a_race, only_conditions_failed

# The sort key of a team's own item (its version and its number of subscriptions): '#' sorts before
# every character of a UUID, so the key condition of a team's subscriptions leaves it out.
TEAM_ITEM = "#team"
# The team's change log: the id of the subscription that version v changed is kept in slot v modulo
# CHANGE_LOG_SLOTS (sort key `#change#<slot>`, also before every UUID), overwritten CHANGE_LOG_SLOTS
# versions later. A ring rather than an item per version: its size is bounded without a TTL, and its
# key is known from the version alone. A cache further behind than that reads the whole team, as it
# would anyway: a team has at most 1 000 subscriptions.
CHANGE_LOG_SLOTS = 1000
# The team's slow marks (hookrelay.slow_lane): an attribute per subscription whose endpoint a delivery
# container saw answer slowly, named by its id, holding the epoch second its mark ends. Ingest reads it
# with the versions and sends those subscriptions' first attempts straight to the slow lane. Written by
# delivery alone and without the version, so that a slow endpoint makes no cache re-read its team.
SLOW_MARKS = "#slow"
# Expired marks a mark's write removes at most (one expression's worth): marks are written one at a time,
# so this keeps ahead of them, and the item holds about one mark per slow endpoint.
EXPIRED_MARKS_REMOVED_AT_MOST = 50


# What a subscription's stored size leaves out: delivery's health fields, written without the team's item.
_UNCOUNTED = frozenset({"failing_since", "disabled_reason", "updated_at", "revision"})


def stored_bytes(subscription: Subscription) -> int:
    """A subscription's stored size as its team's limit counts it: the UTF-8 JSON of its configuration."""
    counted = {name: value for name, value in with_values(subscription).items() if name not in _UNCOUNTED}
    return len(json.dumps(counted, separators=(",", ":"), ensure_ascii=False).encode())


def _change_slot(version: int) -> str:
    return f"#change#{version % CHANGE_LOG_SLOTS:04d}"


def subscriptions_of(team_id: str) -> ConditionBase:
    """The key condition of a team's subscriptions (the team's own items left out)."""
    return Key("team_id").eq(team_id) & Key("subscription_id").gt(TEAM_ITEM)


def item_of(subscription: Subscription) -> dict[str, Any]:
    item = with_values(subscription)
    item["subscription_id"] = item.pop("id")
    return item


def subscription_of(item: dict[str, Any]) -> Subscription:
    # DynamoDB gives numbers back as Decimal; the record holds whole numbers.
    fields = fields_in(Subscription, item)
    numbers: dict[str, int] = {key: int(item[key]) for key in ("rate_limit", "revision") if key in item}
    return Subscription(**{**fields, **numbers, "id": item["subscription_id"]})


def all_of_team(table: Any, team_id: str) -> list[Subscription]:
    """Every subscription of a team, in id order, as of the latest write (a strongly consistent read)."""
    query: dict[str, Any] = {"KeyConditionExpression": subscriptions_of(team_id), "ConsistentRead": True}
    subscriptions: list[Subscription] = []
    while True:
        response = table.query(**query)
        subscriptions.extend(subscription_of(item) for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return subscriptions
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class TeamItems:
    """A team's own item and change log: the writes that move its version, and the reads of it."""

    def __init__(self, table: Any, retries: Retries, max_team_bytes: int):
        self._table = table
        self._client = table.client
        self._retries = retries
        self._max_team_bytes = max_team_bytes

    def versions(self, team_ids: Collection[str]) -> dict[str, int]:
        keys = [{"team_id": team_id, "subscription_id": TEAM_ITEM} for team_id in team_ids]
        items = get_items(self._table, keys, fields=("team_id", "version"), consistent=True)
        return {str(item["team_id"]): int(item["version"]) for item in items}

    def versions_and_slow_marks(self, team_ids: Collection[str]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """The teams' versions, as `versions`, and their slow marks (subscription id -> the epoch second its
        mark ends), in the same read."""
        keys = [{"team_id": team_id, "subscription_id": own} for team_id in team_ids for own in (TEAM_ITEM, SLOW_MARKS)]
        versions: dict[str, int] = {}
        marks: dict[str, dict[str, int]] = {}
        for item in get_items(self._table, keys, consistent=True):
            team_id = str(item.pop("team_id"))
            if item.pop("subscription_id") == TEAM_ITEM:
                versions[team_id] = int(item["version"])
            else:
                marks[team_id] = {str(name): int(until) for name, until in item.items()}
        return versions, marks

    def mark_slow(self, team_id: str, subscription_id: str, until: int, now: int) -> None:
        """Mark the subscription's endpoint slow until the epoch second `until`; remove marks that ended
        before `now` (in a second write, only while they are unchanged)."""
        key = {"team_id": team_id, "subscription_id": SLOW_MARKS}
        written = self._table.update_item(
            Key=key,
            UpdateExpression="SET #marked = :until",
            ExpressionAttributeNames={"#marked": subscription_id},
            ExpressionAttributeValues={":until": until},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        ended = [(name, value) for name, value in written.items() if name not in key and value < now]
        if not ended:
            return
        ended = ended[:EXPIRED_MARKS_REMOVED_AT_MOST]
        names = {f"#e{index}": name for index, (name, _) in enumerate(ended)}
        values = {f":e{index}": value for index, (_, value) in enumerate(ended)}
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):  # marked again since
            self._table.update_item(
                Key=key,
                UpdateExpression="REMOVE " + ", ".join(names),
                ConditionExpression=" AND ".join(f"{name} = :{name[1:]}" for name in names),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )

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

    def write(
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
                grown = size - (stored_bytes(subscription_of(before)) if before else 0)
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
        return sum(stored_bytes(subscription) for subscription in all_of_team(self._table, team_id))

    def _start_team(self, team_id: str) -> None:
        """Create the team's item if it is missing (teams stored before it existed), counting what the team has."""
        counted = 0
        query: dict[str, Any] = {
            "KeyConditionExpression": subscriptions_of(team_id),
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
