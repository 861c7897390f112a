"""Events, stored once per team and event beside their deliveries: `event#<team id>#<event id>`.

The item holds the compressed event (what every delivery of it renders) and, once a fan-out has
gone on over several chunks, how far it got (`sent_through`). Delivery records only name it.
"""

import contextlib
import json
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr
from boto3.dynamodb.types import TypeDeserializer

from hookrelay.records import Event, as_json

_EVENT_PREFIX = "event#"


def event_key(team_id: str, event_id: str) -> str:
    # The event id is a UUID (no '#'), so the key names one team and one event whatever the team id holds.
    return f"{_EVENT_PREFIX}{team_id}#{event_id}"


def is_event_key(key: str) -> bool:
    return key.startswith(_EVENT_PREFIX)


def compressed(event: Event) -> bytes:
    # Kept as compressed JSON: its data may hold floats, which DynamoDB maps only as Decimal, and
    # every write of the item is billed per KB of it.
    return zlib.compress(as_json(event).encode("utf-8"))


def stored_event(item: dict[str, Any]) -> Event:
    # NaN and infinities, which no receiver's parser reads, were stored from the bus until 04c997d refused
    # them: such a stored number is read as null, as the API itself made them of before, so that its
    # event is still delivered.
    return Event(**json.loads(zlib.decompress(bytes(item["event"])), parse_constant=lambda _: None))


@dataclass(frozen=True)
class KeptEvent:
    """An event as its id is stored: the first copy, which every delivery of that id renders."""

    event: Event
    # How far an earlier fan-out of it got (None if none left a mark).
    sent_through: str | None = None


class EventStore(Protocol):
    def keep(self, event: Event, expires_at: int) -> KeptEvent:
        """Store the event unless its id is stored already; the copy its id holds (the first stays)."""
        ...

    def record_sent_through(self, team_id: str, event_id: str, subscription_id: str) -> None:
        """The fan-out has enqueued every delivery up to `subscription_id` (in subscription id order)."""
        ...


class DynamoEventStore:
    def __init__(self, table: Any):
        self._table = table
        self._deserializer = TypeDeserializer()

    def keep(self, event: Event, expires_at: int) -> KeptEvent:
        try:
            self._table.put_item(
                Item={
                    "delivery_id": event_key(event.team_id, event.event_id),
                    "event": compressed(event),
                    "expires_at": expires_at,
                },
                ConditionExpression=Attr("delivery_id").not_exists(),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._table.client.exceptions.ConditionalCheckFailedException as error:
            # The failed condition returns the stored item at no further cost.
            item = {name: self._deserializer.deserialize(value) for name, value in error.response["Item"].items()}
            sent_through = item.get("sent_through")
            return KeptEvent(stored_event(item), str(sent_through) if sent_through else None)
        return KeptEvent(event)

    def record_sent_through(self, team_id: str, event_id: str, subscription_id: str) -> None:
        # A failed condition means another run already got further (or the event has expired).
        with contextlib.suppress(self._table.client.exceptions.ConditionalCheckFailedException):
            self._table.update_item(
                Key={"delivery_id": event_key(team_id, event_id)},
                UpdateExpression="SET sent_through = :id",
                ConditionExpression=Attr("delivery_id").exists()
                & (Attr("sent_through").not_exists() | Attr("sent_through").lt(subscription_id)),
                ExpressionAttributeValues={":id": subscription_id},
            )
