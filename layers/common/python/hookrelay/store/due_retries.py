"""The retry index of the deliveries table (due_retries: partition due_shard, sort due_at): what the sweeper reads.

Apart from the delivery records' module so that the sweeper, which reads only delivery ids and
times, does not import the models (pydantic) at its cold start.
"""

import zlib
from dataclasses import dataclass
from typing import Any, Protocol

from boto3.dynamodb.conditions import Key


def due_shard_name(index: int) -> str:
    return f"due#{index}"


def due_shard(delivery_id: str, shards: int) -> str:
    """Which `due#<n>` partition of the retry index a delivery waits in (spread evenly, stable)."""
    return due_shard_name(zlib.crc32(delivery_id.encode()) % shards)


@dataclass(frozen=True)
class DueSlice:
    """(delivery id, due_at) of due retries in one shard of the retry index, and where the next page
    starts (None: no more)."""

    items: list[tuple[str, str]]
    next_position: dict[str, Any] | None


@dataclass(frozen=True)
class Claim:
    """A due retry the sweeper took: the attempt to enqueue, and the team whose message it is."""

    attempt: int
    team_id: str


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


class DynamoDueRetries:
    def __init__(self, table: Any):
        self._table = table

    def due(self, shard: str, now: str, limit: int, after: dict[str, Any] | None = None) -> DueSlice:
        query: dict[str, Any] = {
            "IndexName": "due_retries",
            "KeyConditionExpression": Key("due_shard").eq(shard) & Key("due_at").lte(now),
            "Limit": limit,
        }
        if after:
            query["ExclusiveStartKey"] = after
        response = self._table.query(**query)
        items = [(str(item["delivery_id"]), str(item["due_at"])) for item in response.get("Items", [])]
        return DueSlice(items, response.get("LastEvaluatedKey"))

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
        return Claim(attempt=int(claimed["attempt_count"]) + 1, team_id=str(claimed["team_id"]))
