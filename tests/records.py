"""Stored records every test layer builds: a valid subscription, varied per test by keyword."""

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from hookrelay.ingest import EVENT_RETENTION
from hookrelay.records import Delivery, Subscription
from hookrelay.store.delivery_log import DynamoDeliveryLogStore
from hookrelay.store.events import DynamoEventStore, compressed

SECRET_KEY = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
CREATED_AT = "2026-01-01T00:00:00.000Z"
# The deployed HOOKRELAY_MAX_SUBSCRIPTIONS_PER_TEAM, for tests that store subscriptions directly.
TEAM_LIMIT = 1000


def subscription_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def receiver_endpoint(port: int) -> str:
    """The URL of a receiver from tests/receivers.py (allowed only where private endpoints are)."""
    return f"http://127.0.0.1:{port}/hook"


def subscription(index: int = 0, **fields: object) -> Subscription:
    """Team acme's subscription number `index` to every event, with `fields` replacing the defaults."""
    defaults: dict[str, Any] = {
        "id": subscription_id(index),
        "team_id": "acme",
        "endpoint": "https://hooks.example.com/x",
        "secret_key": SECRET_KEY,
        "subscribed_events": ["*"],
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
    }
    return Subscription(**{**defaults, **fields})


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it against its 400 KB limit ("Item sizes and formats", DynamoDB
    Developer Guide): attribute names and string values in UTF-8; numbers 1 byte per 2 digits, and 1;
    booleans and nulls 1; lists and maps 3, and per element 1 and the element (a map's names counted too)."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def _value_size(value: object) -> int:
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | Decimal):
        return (len(str(abs(value))) + 1) // 2 + 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, list):
        return 3 + sum(1 + _value_size(each) for each in value)
    if isinstance(value, dict):
        return 3 + sum(1 + len(name.encode("utf-8")) + _value_size(each) for name, each in value.items())
    raise TypeError(type(value))


def store_pending(deliveries_table: Any, deliveries: Sequence[Delivery]) -> None:
    """Store deliveries waiting for their first attempt, and their events, as ingest does."""
    events = DynamoEventStore(deliveries_table)
    for delivery in deliveries:
        events.keep(delivery.event, delivery.expires_at + int(EVENT_RETENTION.total_seconds()))
    DynamoDeliveryLogStore(deliveries_table).create_pending(deliveries)


def store_as_before_events_were_kept_apart(deliveries_table: Any, delivery: Delivery) -> None:
    """Store a delivery as releases before `event#` items wrote it (and deployed stacks still hold it):
    its event compressed inside the record, no event item."""
    fields = dataclasses.asdict(delivery)
    item = {name: value for name, value in fields.items() if value is not None and name not in ("id", "event")}
    deliveries_table.put_item(Item={**item, "delivery_id": delivery.id, "event": compressed(delivery.event)})
