"""Requests counted per team and window (hookrelay.team_limits), kept beside the deliveries (deliveries table)."""

from typing import Any, Protocol

# `limit#<team>#<kind>#<window>#<shard>`: no subscription_id or due_at attribute, so in neither index.
_LIMIT_PREFIX = "limit#"


class RequestCounts(Protocol):
    def take(self, key: str, share: int, expires_at: int) -> bool:
        """Count one request on the item `key` if it holds fewer than `share`; False when it is full."""
        ...


class DynamoRequestCounts:
    """One item per team, kind of request, window and shard holds its count (`requests`).

    Taking a request is one conditional UpdateItem (1 write unit, refused or not); TTL removes the item
    after `expires_at` (unix seconds).
    """

    def __init__(self, table: Any):
        self._table = table

    def take(self, key: str, share: int, expires_at: int) -> bool:
        try:
            self._table.update_item(
                Key={"delivery_id": _LIMIT_PREFIX + key},
                UpdateExpression="ADD requests :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(requests) OR requests < :share",
                ExpressionAttributeValues={":one": 1, ":share": share, ":expires": expires_at},
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
