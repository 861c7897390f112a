"""The retry index of the deliveries table (due_retries: partition due_shard, sort due_at): what the sweeper reads.

Apart from the delivery records' module so that the sweeper, which reads only delivery ids and
times, does not import the models (pydantic) at its cold start.
"""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from boto3.dynamodb.conditions import Key

from hookrelay.store.batch import get_items


def due_shard_name(index: int) -> str:
    return f"due#{index}"


def due_shard(delivery_id: str, shards: int) -> str:
    """Which `due#<n>` partition of the retry index a delivery waits in (spread evenly, stable)."""
    return due_shard_name(zlib.crc32(delivery_id.encode()) % shards)


def wait_shard_name(index: int) -> str:
    return f"wait#{index}"


def wait_shard(delivery_id: str, shards: int) -> str:
    """Which `wait#<n>` partition of the retry index a delivery waits in for a rate-limit slot further
    than a queue delay (its due_at: the slot)."""
    return wait_shard_name(zlib.crc32(delivery_id.encode()) % shards)


# Where the sweeper has handed over each `wait#<n>` partition up to: one item beside the deliveries (in
# neither index: no subscription_id or due_shard attribute), written once a sweep.
_SWEEP_POSITIONS_KEY = {"delivery_id": "sweep#wait"}


@dataclass(frozen=True)
class DueSlice:
    """(delivery id, due_at) of due retries in one shard of the retry index, and where the next page
    starts (None: no more)."""

    items: list[tuple[str, str]]
    next_position: dict[str, Any] | None


@dataclass(frozen=True)
class Claim:
    """A due retry the sweeper took: the attempt to enqueue, the team whose message it is, and how long
    the endpoint took to answer its last attempt (which lane the retry goes to: hookrelay.slow_answers)."""

    attempt: int
    team_id: str
    last_latency_ms: int = 0


@dataclass(frozen=True)
class WaitingAttempt:
    """A delivery waiting for its rate limit's slot: the attempt to enqueue, its slot, its team, and its
    last attempt's latency (0 before the first), as a Claim's."""

    attempt: int
    slot_at: str
    team_id: str
    last_latency_ms: int = 0


class DueRetries(Protocol):
    def due(self, shard: str, now: str, limit: int, after: dict[str, Any] | None = None) -> DueSlice:
        """Up to `limit` deliveries of one shard of the retry index due by `now`, after `after` if given."""
        ...

    def claim(self, delivery_id: str, due_at: str, lease_until: str) -> Claim | None:
        """Take a due delivery for the sweeper: move its due_at to `lease_until` if still `due_at`.

        Returns the attempt to enqueue and its team, or None when another sweeper (or the
        attempt itself) got there first.
        """
        ...

    def waiting(self, shard: str, until: str, after: dict[str, Any] | None, limit: int) -> DueSlice:
        """Up to `limit` deliveries of one `wait#<n>` partition with slots up to `until`, after position
        `after`; `next_position`: the last one's (None when there are none)."""
        ...

    def waiting_attempts(self, delivery_ids: Sequence[str]) -> dict[str, WaitingAttempt]:
        """The attempts of these deliveries still waiting for their rate limit's slot."""
        ...

    def sweep_positions(self) -> dict[str, dict[str, Any]]:
        """Where the sweeper has handed over each `wait#<n>` partition up to (one missing: from its start)."""
        ...

    def keep_sweep_positions(self, positions: dict[str, dict[str, Any]]) -> None: ...


class DynamoDueRetries:
    def __init__(self, table: Any):
        self._table = table

    def due(self, shard: str, now: str, limit: int, after: dict[str, Any] | None = None) -> DueSlice:
        response = self._page(shard, now, limit, after)
        return DueSlice(_delivery_times(response.get("Items", [])), response.get("LastEvaluatedKey"))

    def _page(self, shard: str, until: str, limit: int, after: dict[str, Any] | None) -> dict[str, Any]:
        """A page of the shard's index rows due by `until`, after position `after`."""
        query: dict[str, Any] = {
            "IndexName": "due_retries",
            "KeyConditionExpression": Key("due_shard").eq(shard) & Key("due_at").lte(until),
            "Limit": limit,
        }
        if after:
            query["ExclusiveStartKey"] = after
        return dict(self._table.query(**query))

    def claim(self, delivery_id: str, due_at: str, lease_until: str) -> Claim | None:
        try:
            response = self._table.update_item(
                Key={"delivery_id": delivery_id},
                UpdateExpression="SET due_at = :lease, #status = :pending",
                ConditionExpression="due_at = :seen",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":lease": lease_until, ":seen": due_at, ":pending": "pending"},
                ReturnValues="ALL_NEW",
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return None
        claimed = response["Attributes"]
        return Claim(
            attempt=int(claimed["attempt_count"]) + 1,
            team_id=str(claimed["team_id"]),
            last_latency_ms=last_latency_ms(claimed),
        )

    def waiting(self, shard: str, until: str, after: dict[str, Any] | None, limit: int) -> DueSlice:
        found = self._page(shard, until, limit, after).get("Items", [])
        items = _delivery_times(found)
        last = found[-1] if found else None
        position = {key: str(last[key]) for key in ("due_shard", "due_at", "delivery_id")} if last else None
        return DueSlice(items, position)

    def waiting_attempts(self, delivery_ids: Sequence[str]) -> dict[str, WaitingAttempt]:
        keys = [{"delivery_id": delivery_id} for delivery_id in delivery_ids]
        # A read is billed on the whole item, so reading its attempts too costs nothing more.
        fields = ("delivery_id", "status", "attempt_count", "next_attempt_at", "team_id", "attempts")
        return {
            str(item["delivery_id"]): WaitingAttempt(
                attempt=int(item.get("attempt_count", 0)) + 1,
                slot_at=str(item["next_attempt_at"]),
                team_id=str(item["team_id"]),
                last_latency_ms=last_latency_ms(item),
            )
            for item in get_items(self._table, keys, fields=fields)
            if item.get("status") == "waiting" and "next_attempt_at" in item
        }

    def sweep_positions(self) -> dict[str, dict[str, Any]]:
        item = self._table.get_item(Key=_SWEEP_POSITIONS_KEY, ConsistentRead=True).get("Item") or {}
        return {str(shard): dict(position) for shard, position in item.get("positions", {}).items()}

    def keep_sweep_positions(self, positions: dict[str, dict[str, Any]]) -> None:
        self._table.put_item(Item={**_SWEEP_POSITIONS_KEY, "positions": positions})


def last_latency_ms(item: dict[str, Any]) -> int:
    """The latency of a delivery item's last attempt (0 before its first): which lane its next one takes
    (hookrelay.slow_answers.Lanes)."""
    attempts = item.get("attempts") or []
    return int(attempts[-1].get("latency_ms", 0)) if attempts else 0


def _delivery_times(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(str(row["delivery_id"]), str(row["due_at"])) for row in rows]
