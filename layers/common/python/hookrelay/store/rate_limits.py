"""The sending slots of rate-limited subscriptions, kept beside the deliveries (deliveries table)."""

from datetime import datetime, timedelta
from typing import Any

# `rate#<subscription id>`: no subscription_id or due_at attribute, so in neither of the table's indexes.
_RATE_PREFIX = "rate#"
# Kept this long after its last use; TTL removes the item of a subscription no longer sending.
KEPT = timedelta(days=1)
MICROSECONDS = 1_000_000


class DynamoRateLimiter:
    """One item per rate-limited subscription holds when its next request may go (`next_send_at`, unix µs).

    Admitting a request is one conditional UpdateItem: the slot is free when `next_send_at` has passed,
    and taking it moves `next_send_at` to now + 1/rate_limit. Containers racing for a slot are ordered
    by DynamoDB's condition check; exactly one of them wins it.
    """

    def __init__(self, table: Any):
        self._table = table

    def admit(self, subscription_id: str, rate_limit: int, now: datetime) -> bool:
        now_us = int(now.timestamp() * MICROSECONDS)
        try:
            self._table.update_item(
                Key={"delivery_id": _RATE_PREFIX + subscription_id},
                UpdateExpression="SET next_send_at = :next, expires_at = :expires",
                ConditionExpression="attribute_not_exists(next_send_at) OR next_send_at <= :now",
                ExpressionAttributeValues={
                    ":now": now_us,
                    ":next": now_us + MICROSECONDS // rate_limit,
                    ":expires": int((now + KEPT).timestamp()),
                },
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
