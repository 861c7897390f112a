"""What the delivery log API reads and writes of the deliveries table (store/deliveries.py: the records).

It lists a subscription's deliveries through the by_subscription index, reads one, creates a test
event's record, asks for a retry and holds a subscription's one queued test event.
"""

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from boto3.dynamodb.types import TypeDeserializer

from hookrelay import clock
from hookrelay.records import Delivery, DeliveryStatus, DeliverySummary
from hookrelay.store.batch import get_items
from hookrelay.store.deliveries import deliveries_by_id, item_of, queued_test_key, stored_fields
from hookrelay.store.due_retries import last_latency_ms
from hookrelay.store.queue_waits import RECORDS_BELOW, QueueWaitList, is_wait_position

# What the delivery log lists of a record (DeliverySummary's stored fields).
SUMMARY_FIELDS = (
    "delivery_id",
    "subscription_id",
    "event_id",
    "event_name",
    "status",
    "attempt_count",
    "next_attempt_at",
    "test",
    "created_at",
    "updated_at",
)
# Index pages one delivery-log request reads at most (each up to 1 MB) before answering with a cursor.
MAX_INDEX_PAGES_PER_CALL = 5


# A lapsed test slot is removed by TTL a day later.
TEST_SLOT_KEPT_SECONDS = 86_400
# Conditional writes cannot be batched; a pool keeps a large fan-out's writes in flight together.
WRITE_CONCURRENCY = 16


@dataclass(frozen=True)
class DeliverySlice:
    """Deliveries of a subscription, newest first, and where the next page starts (None: no more)."""

    items: list[DeliverySummary]
    next_position: dict[str, str] | None


POSITION_KEYS = frozenset({"created_at", "delivery_id"})


def _position(item: dict[str, Any]) -> dict[str, str]:
    return {key: str(item[key]) for key in POSITION_KEYS}


@dataclass(frozen=True)
class Reopened:
    """A delivery asked for again: how long its endpoint took to answer its last attempt (its lane)."""

    last_latency_ms: int


class DeliveryLogStore(Protocol):
    """What the delivery log API needs of the deliveries table."""

    def create_pending(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Create each record unless it exists (a test event's, listed at once); return those created
        or still waiting for their first attempt."""
        ...

    def get(self, delivery_id: str) -> Delivery | None: ...

    def of_subscription(
        self,
        subscription_id: str,
        *,
        limit: int,
        after: dict[str, str] | None = None,
        status: DeliveryStatus | None = None,
        since: str | None = None,
    ) -> DeliverySlice:
        """Up to `limit` deliveries, in `status` if given: first those waiting on the queue for their first
        attempt's slot (store/queue_waits.py; not with `since`), latest slot first; then the records,
        newest first, created at or after `since`.

        A slice may hold fewer than `limit` with a next position: a status filter reads a bounded
        number of index pages per call, so a sparse status never makes one request scan everything.
        """
        ...

    def get_waiting(self, subscription_id: str, delivery_id: str) -> Delivery | None:
        """A delivery the log lists as waiting on the queue for its first attempt's slot (no record yet)."""
        ...

    def reopen(
        self, delivery_id: str, attempt_count: int, next_attempt_at: str, due_at: str, due_shard: str
    ) -> Reopened | None:
        """Ask for attempt `attempt_count + 1` now (status pending, in the retry index as a lost-message guard).

        None when that attempt was already asked for or another attempt was recorded meanwhile:
        the caller must not enqueue it again.
        """
        ...

    def hold_test_slot(self, subscription_id: str, delivery_id: str, now: str, until: str) -> bool:
        """Mark test event `delivery_id` as the subscription's queued one until it is sent, or `until`
        (a lost message must not block tests for ever); False while another one is queued."""
        ...


def _summary(item: dict[str, Any]) -> DeliverySummary:
    """A delivery as the by_subscription index projects it."""
    return DeliverySummary(**stored_fields(DeliverySummary, item), id=item["delivery_id"])


class DynamoDeliveryLogStore:
    def __init__(self, table: Any):
        self._table = table
        self._deserializer = TypeDeserializer()
        self._waits = QueueWaitList(table)

    def create_pending(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        if not deliveries:
            return []
        with ThreadPoolExecutor(max_workers=min(WRITE_CONCURRENCY, len(deliveries))) as pool:
            waiting = list(pool.map(self._create_if_absent, deliveries))
        return [delivery for delivery, is_waiting in zip(deliveries, waiting, strict=True) if is_waiting]

    def _create_if_absent(self, delivery: Delivery) -> bool:
        try:
            self._table.put_item(
                Item=item_of(delivery),
                ConditionExpression=Attr("delivery_id").not_exists(),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._table.client.exceptions.ConditionalCheckFailedException as error:
            existing = {
                key: self._deserializer.deserialize(value) for key, value in error.response.get("Item", {}).items()
            }
            return existing.get("status") == "pending" and int(existing.get("attempt_count", 0)) == 0
        return True

    def get(self, delivery_id: str) -> Delivery | None:
        return deliveries_by_id(self._table, [delivery_id], {}).get(delivery_id)

    def of_subscription(
        self,
        subscription_id: str,
        *,
        limit: int,
        after: dict[str, str] | None = None,
        status: DeliveryStatus | None = None,
        since: str | None = None,
    ) -> DeliverySlice:
        listed: list[DeliverySummary] = []
        # A position among the waits (the records follow them all) or among the records.
        waits_after, after = (after, None) if after and is_wait_position(after["created_at"]) else (None, after)
        if status in (None, "waiting") and since is None and after is None:
            waits = self._waits.page(subscription_id, limit, waits_after, clock.utc_now())
            if waits.next_position:
                return DeliverySlice(waits.items, waits.next_position)
            listed, limit = waits.items, limit - len(waits.items)
        records = self._records(subscription_id, limit=limit, after=after, status=status, since=since)
        return DeliverySlice(listed + records.items, records.next_position)

    def get_waiting(self, subscription_id: str, delivery_id: str) -> Delivery | None:
        wait = self._waits.find(subscription_id, delivery_id, clock.utc_now())
        if wait is None:
            return None
        found = deliveries_by_id(self._table, [delivery_id], {delivery_id: wait.origin}).get(delivery_id)
        return found and dataclasses.replace(found, status="waiting", next_attempt_at=wait.slot_at)

    def _records(
        self,
        subscription_id: str,
        *,
        limit: int,
        after: dict[str, str] | None,
        status: DeliveryStatus | None,
        since: str | None,
    ) -> DeliverySlice:
        created: ConditionBase = (
            Key("created_at").between(since, RECORDS_BELOW) if since else Key("created_at").lt(RECORDS_BELOW)
        )
        condition = Key("subscription_id").eq(subscription_id) & created
        query: dict[str, Any] = {
            "IndexName": "by_subscription",
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after:
            query["ExclusiveStartKey"] = {"subscription_id": subscription_id, **after}
        found: list[dict[str, Any]] = []
        for _ in range(MAX_INDEX_PAGES_PER_CALL):
            response = self._table.query(**query)
            page = self._summaries([str(key["delivery_id"]) for key in response.get("Items", [])])
            found.extend(item for item in page if status is None or item.get("status") == status)
            last = response.get("LastEvaluatedKey")
            if len(found) > limit:
                return DeliverySlice([_summary(item) for item in found[:limit]], _position(found[limit - 1]))
            if last is None:
                return DeliverySlice([_summary(item) for item in found], None)
            query["ExclusiveStartKey"] = last
        return DeliverySlice([_summary(item) for item in found], _position(last))

    def _summaries(self, delivery_ids: list[str]) -> list[dict[str, Any]]:
        """The summary fields of these records, in the order given (records gone meanwhile left out).

        The index holds keys only, so that recording an attempt writes the table alone: the
        delivery log is read far less often than attempts are written.
        """
        keys = [{"delivery_id": key} for key in delivery_ids]
        found = {str(item["delivery_id"]): item for item in get_items(self._table, keys, fields=SUMMARY_FIELDS)}
        return [found[key] for key in delivery_ids if key in found]

    def reopen(
        self, delivery_id: str, attempt_count: int, next_attempt_at: str, due_at: str, due_shard: str
    ) -> Reopened | None:
        try:
            reopened = self._table.update_item(
                Key={"delivery_id": delivery_id},
                UpdateExpression=(
                    "SET #status = :pending, requested_attempt = :next, next_attempt_at = :at,"
                    " due_at = :due, due_shard = :shard"
                ),
                ConditionExpression=(
                    "attempt_count = :count AND (attribute_not_exists(requested_attempt) OR requested_attempt < :next)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":pending": "pending",
                    ":next": attempt_count + 1,
                    ":count": attempt_count,
                    ":at": next_attempt_at,
                    ":due": due_at,
                    ":shard": due_shard,
                },
                ReturnValues="ALL_NEW",  # returned values cost no capacity
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return None
        return Reopened(last_latency_ms=last_latency_ms(reopened["Attributes"]))

    def hold_test_slot(self, subscription_id: str, delivery_id: str, now: str, until: str) -> bool:
        try:
            self._table.put_item(
                Item={
                    "delivery_id": queued_test_key(subscription_id),
                    "queued_test": delivery_id,
                    "held_until": until,
                    "expires_at": int(clock.parse_moment(until).timestamp()) + TEST_SLOT_KEPT_SECONDS,
                },
                ConditionExpression=Attr("delivery_id").not_exists() | Attr("held_until").lt(now),
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
