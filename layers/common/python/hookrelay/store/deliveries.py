"""Delivery records: partition key delivery_id; each names its event, stored once beside them (store/events.py).

A record is created by its delivery's first attempt (from the origin its message carries), so a
delivery is in the log from its first attempt on; only a test event's is created when it is asked for.

Here: how a record is stored and read back, and what delivering reads and writes of it (each attempt,
a rate limit's slot, a test event's slot freed); store/delivery_log.py: what the delivery log API does.
"""

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ReadTimeoutError

from hookrelay.records import Attempt, Delivery, DeliveryOrigin, DeliveryStatus, fields_in, kept_attempts, with_values
from hookrelay.store.batch import get_items
from hookrelay.store.events import event_key, stored_event
from hookrelay.store.queue_waits import WAITS_PER_ITEM, QueueWait, wait_item

# Writes of an attempt whose every answer was lost: the check's read can overtake a write still on its
# way (R1 left a delivery pending so: its message came back "already done", its retry never enqueued),
# and writing again settles it, since the condition lets only one of the two be made.
RECORD_TRIES = 2


@dataclass(frozen=True)
class AttemptOutcome:
    """A delivery's state after an attempt; a retry also names when the sweeper must act (`due_at`)."""

    status: DeliveryStatus
    next_attempt_at: str | None = None
    due_at: str | None = None
    due_shard: str | None = None


class DeliveryStore(Protocol):
    """What delivering needs of the deliveries table."""

    def get_many(self, delivery_ids: Sequence[str], origins: Mapping[str, DeliveryOrigin]) -> dict[str, Delivery]:
        """These deliveries (with their events), by id: each as recorded, or, not recorded yet, as its
        origin in `origins` describes it (waiting for its first attempt). Left out: the others, and
        those whose event is gone."""
        ...

    def record_attempt(self, delivery: Delivery, number: int, attempt: Attempt, outcome: AttemptOutcome) -> bool:
        """Log attempt `number` of `delivery` (as read before the attempt) and its new state in one write;
        the first attempt's creates the record unless it exists.

        False when attempt `number` was already recorded (a second message for the same attempt) or
        another attempt was recorded since the read: the caller has nothing more to do.
        """
        ...

    def release_test_slot(self, subscription_id: str, delivery_id: str) -> None:
        """The test event `delivery_id` has been sent: the subscription may have another."""
        ...

    def list_queue_waits(self, waits: Sequence[QueueWait], listed_at: datetime) -> None:
        """List these first attempts to one subscription, waiting on the queue for their slots, in the
        delivery log (one write: store/queue_waits.py)."""
        ...

    def hold_slot(
        self,
        delivery: Delivery,
        number: int,
        slot_at: str,
        *,
        due_at: str | None,
        due_shard: str | None,
        replacing: str | None = None,
    ) -> str | None:
        """Keep on the record that attempt `number` of `delivery` waits for its rate limit's slot `slot_at`
        (status waiting, next_attempt_at), in place of slot `replacing` if given (one its message came too
        late for); the first attempt's creates the record. `due_at`: when the sweeper must act, in the
        retry index's partition `due_shard` (None: the one the record has).

        Returns the slot the attempt holds: `slot_at`, or the one an earlier message for the same attempt
        took (the caller waits for that one); None when the attempt was recorded meanwhile.
        """
        ...


def queued_test_key(subscription_id: str) -> str:
    """The key of a subscription's queued test event: beside the deliveries, never in the by_subscription
    index (it has no subscription_id attribute)."""
    return f"test#{subscription_id}"


def item_of(delivery: Delivery) -> dict[str, Any]:
    """A delivery's record as stored: without its event, which is stored once beside the records."""
    item = {name: value for name, value in with_values(delivery).items() if name not in ("id", "event")}
    return {**item, "attempts": [with_values(each) for each in delivery.attempts], "delivery_id": delivery.id}


# DynamoDB gives numbers back as Decimal; the records hold whole numbers.
_NUMBERS = frozenset({"attempt_count", "expires_at", "requested_attempt", "status_code", "latency_ms"})


def stored_fields(record: type, item: dict[str, Any]) -> dict[str, Any]:
    """The fields of `record` in a stored item."""
    return {key: int(value) if key in _NUMBERS else value for key, value in fields_in(record, item).items()}


def _delivery(item: dict[str, Any], event_item: dict[str, Any] | None) -> Delivery | None:
    """The delivery of a record and its event item (None: the event is gone, as the record soon will be)."""
    event_item = item if _holds_its_event(item) else event_item
    if event_item is None:
        return None
    fields = stored_fields(Delivery, item)
    fields.pop("event", None)  # a record of an earlier release holding its event: read as stored_event
    attempts = [Attempt(**stored_fields(Attempt, each)) for each in fields.pop("attempts", [])]
    return Delivery(**fields, id=item["delivery_id"], attempts=attempts, event=stored_event(event_item))


def _holds_its_event(item: dict[str, Any]) -> bool:
    # Records written before events were stored apart hold their event (compressed the same way)
    # until their TTL removes them.
    return "event" in item


def _unrecorded(delivery_id: str, origin: DeliveryOrigin, event_item: dict[str, Any] | None) -> Delivery | None:
    """A delivery waiting for its first attempt, which will record it as its origin describes it."""
    if event_item is None:
        return None
    return Delivery(**vars(origin), id=delivery_id, updated_at=origin.created_at, event=stored_event(event_item))


def _event_key_of(item: dict[str, Any]) -> str:
    return event_key(str(item["team_id"]), str(item["event_id"]))


def deliveries_by_id(
    table: Any, delivery_ids: Sequence[str], origins: Mapping[str, DeliveryOrigin]
) -> dict[str, Delivery]:
    """These deliveries, by id, as DeliveryStore.get_many reads them (also the delivery log's `get`)."""
    # One consistent batch read for the records and the events their origins name; a second one only
    # for events no origin named (messages of retries, sweeps, redrives name only their delivery).
    wanted = set(delivery_ids)
    items = _consistent_items(
        table, wanted | {event_key(origin.team_id, origin.event_id) for origin in origins.values()}
    )
    records = [items[key] for key in wanted if key in items]
    unread = {_event_key_of(item) for item in records if not _holds_its_event(item)} - items.keys()
    items.update(_consistent_items(table, unread))
    found: dict[str, Delivery | None] = {}
    for key in wanted:
        if key in items:
            found[key] = _delivery(items[key], items.get(_event_key_of(items[key])))
        elif origin := origins.get(key):
            found[key] = _unrecorded(key, origin, items.get(event_key(origin.team_id, origin.event_id)))
    return {key: delivery for key, delivery in found.items() if delivery is not None}


def _consistent_items(table: Any, keys: set[str]) -> dict[str, dict[str, Any]]:
    found = get_items(table, [{"delivery_id": key} for key in keys], consistent=True)
    return {str(item["delivery_id"]): item for item in found}


class DynamoDeliveryStore:
    def __init__(self, table: Any):
        self._table = table
        self._deserializer = TypeDeserializer()

    def get_many(self, delivery_ids: Sequence[str], origins: Mapping[str, DeliveryOrigin]) -> dict[str, Delivery]:
        return deliveries_by_id(self._table, delivery_ids, origins)

    def record_attempt(self, delivery: Delivery, number: int, attempt: Attempt, outcome: AttemptOutcome) -> bool:
        if delivery.attempt_count != number - 1:
            return False
        # The whole list is written (an update is billed for the whole item anyway); the condition on
        # attempt_count makes sure it is the list the delivery had when it was read.
        attempts = kept_attempts([*delivery.attempts, attempt])
        values: dict[str, Any] = {
            ":number": number,
            ":previous": number - 1,
            ":status": outcome.status,
            ":now": attempt.at,
            ":attempts": [with_values(each) for each in attempts],
        }
        update = "SET attempt_count = :number, #status = :status, updated_at = :now, attempts = :attempts"
        condition = "attribute_exists(delivery_id) AND attempt_count = :previous"
        if number == 1:
            # The first attempt creates the record with what the delivery log lists and indexes (unless
            # it exists: a test event's, one from an earlier release); a duplicate message's finds it made.
            origin = vars(delivery.origin())
            update += ", " + ", ".join(f"{field} = :{field}" for field in origin)
            values.update({f":{field}": value for field, value in origin.items()})
            condition = "attribute_not_exists(delivery_id) OR attempt_count = :previous"
        if outcome.next_attempt_at and outcome.due_at and outcome.due_shard:
            update += ", next_attempt_at = :next, due_at = :due, due_shard = :shard"
            values.update({":next": outcome.next_attempt_at, ":due": outcome.due_at, ":shard": outcome.due_shard})
        else:
            update += " REMOVE next_attempt_at, due_at, due_shard"
        tries_left = RECORD_TRIES
        while True:
            tries_left -= 1
            try:
                self._table.update_item(
                    Key={"delivery_id": delivery.id},
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=values,
                )
            except self._table.client.exceptions.ConditionalCheckFailedException:
                return self._recorded_by_this_call(delivery.id, number, attempt)
            except ReadTimeoutError:
                if self._recorded_by_this_call(delivery.id, number, attempt):
                    return True
                if not tries_left:
                    raise
                continue
            return True

    def list_queue_waits(self, waits: Sequence[QueueWait], listed_at: datetime) -> None:
        for start in range(0, len(waits), WAITS_PER_ITEM):
            self._table.put_item(Item=wait_item(waits[start : start + WAITS_PER_ITEM], listed_at))

    def _recorded_by_this_call(self, delivery_id: str, number: int, attempt: Attempt) -> bool:
        """Whether attempt `number` is recorded as `attempt`, this call's own, after the write's answer
        said otherwise or was lost.

        An answer that does not come within the read timeout (HOOKRELAY_AWS_READ_TIMEOUT_SECONDS) says
        nothing of the write: botocore sends it again, and if the first was made, the second finds its
        condition false; when every attempt's answer is lost, the call fails. Either taken for "not
        recorded", the message would come back "already done" and the attempt's retry would never be
        enqueued: it would wait out the sweeper's lease.
        """
        item = self._table.get_item(Key={"delivery_id": delivery_id}, ConsistentRead=True).get("Item") or {}
        attempts = item.get("attempts") or []
        return item.get("attempt_count") == number and bool(attempts) and attempts[-1].get("at") == attempt.at

    def hold_slot(
        self,
        delivery: Delivery,
        number: int,
        slot_at: str,
        *,
        due_at: str | None,
        due_shard: str | None,
        replacing: str | None = None,
    ) -> str | None:
        values: dict[str, Any] = {":waiting": "waiting", ":slot": slot_at, ":previous": number - 1}
        free = "NOT #status = :waiting"
        if replacing:
            free += " OR next_attempt_at = :replacing"
            values[":replacing"] = replacing
        update = "SET #status = :waiting, next_attempt_at = :slot, attempt_count = :previous"
        if due_at:
            update += ", due_at = :due"
            values[":due"] = due_at
        if due_shard:
            update += ", due_shard = :shard"
            values[":shard"] = due_shard
        if number == 1:
            origin = vars(delivery.origin())
            update += ", " + ", ".join(f"{field} = :{field}" for field in origin)
            values.update({f":{field}": value for field, value in origin.items()})
            update += ", updated_at = if_not_exists(updated_at, :created_at)"
        try:
            self._table.update_item(
                Key={"delivery_id": delivery.id},
                UpdateExpression=update,
                ConditionExpression=f"(attribute_not_exists(delivery_id) OR attempt_count = :previous) AND ({free})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._table.client.exceptions.ConditionalCheckFailedException as error:
            held = {key: self._deserializer.deserialize(value) for key, value in error.response.get("Item", {}).items()}
            if held.get("status") == "waiting" and int(held.get("attempt_count", 0)) == number - 1:
                return str(held["next_attempt_at"])
            return None
        return slot_at

    def release_test_slot(self, subscription_id: str, delivery_id: str) -> None:
        # A failed condition: a later test holds the slot now (this one's hold had lapsed).
        with contextlib.suppress(self._table.client.exceptions.ConditionalCheckFailedException):
            self._table.delete_item(
                Key={"delivery_id": queued_test_key(subscription_id)},
                ConditionExpression=Attr("queued_test").eq(delivery_id),
            )
