"""First attempts waiting on the delivery queue for their rate limit's slot, as the delivery log lists them.

A delivery has no record before its first attempt, and one waiting on the queue for its slot gets none
until then: a record each would cost a write per delivery, and issue 23 bounds what a rate limit writes
at 1.1 per delivery. So a batch's first attempts to one subscription that wait on the queue are written
together, one item per batch, `waits#<subscription>#<first slot>`. It is in the by_subscription index
under the sort key `~waits#<last slot>`, after every record's `created_at` (ISO 8601 sorts before `~`):
a newest-first listing meets the latest slots first, and a listing of records leaves them out with
`created_at < ~`. An entry is listed while its delivery has no record (its attempt makes one) and its slot
is at most LISTED_AFTER_SLOT past; TTL removes the item a day after its last slot.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key

from hookrelay import clock
from hookrelay.records import DeliveryOrigin, DeliverySummary, with_values
from hookrelay.store.batch import get_items

SORT_PREFIX = "~waits#"
# Sorts after every `~waits#<slot>`: the top of a subscription's wait items.
_LAST_SORT_KEY = SORT_PREFIX + "~"
# Before every wait item: a listing of records reads below it.
RECORDS_BELOW = "~"
_KEY_PREFIX = "waits#"
# A message comes at its slot, and one that comes later than rate_limit.LATE takes a new slot (listed
# again, or held on a record); so the listing reads no item whose last slot is further past than this.
LISTED_AFTER_SLOT = timedelta(minutes=2)
KEPT = timedelta(days=1)
# An item lists at most this many deliveries (a delivery batch's, BatchSize 10).
WAITS_PER_ITEM = 10
# Query pages one listing reads at most; the wait items a lookup of one delivery reads at most.
PAGES_PER_CALL = 5
ITEMS_PER_LOOKUP = 100


@dataclass(frozen=True)
class QueueWait:
    """A first attempt waiting on the queue for slot `slot_at`, and what its record will be created with."""

    delivery_id: str
    slot_at: str
    origin: DeliveryOrigin

    def summary(self, listed_at: str) -> DeliverySummary:
        return DeliverySummary(
            id=self.delivery_id,
            subscription_id=self.origin.subscription_id,
            event_id=self.origin.event_id,
            event_name=self.origin.event_name,
            status="waiting",
            attempt_count=0,
            next_attempt_at=self.slot_at,
            created_at=self.origin.created_at,
            updated_at=listed_at,
        )


def wait_item(waits: Sequence[QueueWait], listed_at: datetime) -> dict[str, Any]:
    """The item listing `waits` (one subscription's, slots in order)."""
    origin = waits[0].origin
    return {
        "delivery_id": f"{_KEY_PREFIX}{origin.subscription_id}#{waits[0].slot_at}",
        "subscription_id": origin.subscription_id,
        "created_at": SORT_PREFIX + waits[-1].slot_at,
        "team_id": origin.team_id,
        "listed_at": clock.iso(listed_at),
        "waits": [
            {**with_values(wait.origin), "delivery_id": wait.delivery_id, "slot_at": wait.slot_at} for wait in waits
        ],
        "expires_at": int((clock.parse_moment(waits[-1].slot_at) + KEPT).timestamp()),
    }


def is_wait_position(created_at: str) -> bool:
    return created_at.startswith(SORT_PREFIX)


def listed_slot(created_at: str) -> str:
    """The slot a wait item's sort key names."""
    return created_at.removeprefix(SORT_PREFIX)


@dataclass(frozen=True)
class WaitSlice:
    """Listed waits, latest slot first, and where the next page starts (None: no more waits, the page has
    room for records)."""

    items: list[DeliverySummary]
    next_position: dict[str, str] | None


class QueueWaitList:
    """Reads of a subscription's wait items, for the delivery log."""

    def __init__(self, table: Any):
        self._table = table

    def page(self, subscription_id: str, limit: int, after: dict[str, str] | None, now: datetime) -> WaitSlice:
        """Up to `limit` waiting first attempts, latest slot first, from position `after` (a wait item's
        sort key and the last delivery listed from it). A delivery listed in two items (its message came
        late and took a new slot) is listed once a page, with its latest slot."""
        listed: list[tuple[DeliverySummary, dict[str, str]]] = []
        seen: set[str] = set()
        oldest = clock.iso(now - LISTED_AFTER_SLOT)
        more = False
        # Enough items for a full page when none of their deliveries has been recorded yet, and one more.
        items_per_page = -(-(limit + 1) // WAITS_PER_ITEM) + 1
        for items, has_more in self._items(subscription_id, after, now, items_per_page, PAGES_PER_CALL):
            more = has_more
            waits = [(wait, item) for item in items for wait in _waits_after(item, after)]
            recorded = self._recorded([wait.delivery_id for wait, _ in waits])
            for wait, item in waits:
                position = {"created_at": item["created_at"], "delivery_id": wait.delivery_id}
                if wait.delivery_id not in recorded and wait.delivery_id not in seen and wait.slot_at >= oldest:
                    listed.append((wait.summary(item["listed_at"]), position))
                seen.add(wait.delivery_id)
                if len(listed) > limit:
                    return WaitSlice([summary for summary, _ in listed[:limit]], listed[limit - 1][1])
            if waits:
                last_wait, last_item = waits[-1]
                after = {"created_at": last_item["created_at"], "delivery_id": last_wait.delivery_id}
        summaries = [summary for summary, _ in listed]
        if more:  # read as many items as a call may without filling the page: the next goes on from there
            return WaitSlice(summaries, after)
        return WaitSlice(summaries, listed[-1][1] if len(listed) == limit else None)

    def find(self, subscription_id: str, delivery_id: str, now: datetime) -> QueueWait | None:
        """The latest listed wait of `delivery_id`, among the ITEMS_PER_LOOKUP latest items."""
        for items, _ in self._items(subscription_id, None, now, ITEMS_PER_LOOKUP, pages=1):
            for item in items:
                for wait in _waits_of(item):
                    if wait.delivery_id == delivery_id:
                        return wait
        return None

    def _items(
        self, subscription_id: str, after: dict[str, str] | None, now: datetime, items_per_page: int, pages: int
    ) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """Pages of wait items from `after`'s on (itself included), latest slot first, each with whether
        more items follow it."""
        lowest = SORT_PREFIX + clock.iso(now - LISTED_AFTER_SLOT)
        highest = after["created_at"] if after else _LAST_SORT_KEY
        if highest < lowest:
            return
        query: dict[str, Any] = {
            "IndexName": "by_subscription",
            "KeyConditionExpression": Key("subscription_id").eq(subscription_id)
            & Key("created_at").between(lowest, highest),
            "ScanIndexForward": False,
            "Limit": items_per_page,
        }
        for _ in range(pages):
            response = self._table.query(**query)
            keys = [str(key["delivery_id"]) for key in response.get("Items", [])]
            read = get_items(self._table, [{"delivery_id": key} for key in keys])
            found = {str(item["delivery_id"]): item for item in read}
            last = response.get("LastEvaluatedKey")
            yield [found[key] for key in keys if key in found], last is not None
            if last is None:
                return
            query["ExclusiveStartKey"] = last

    def _recorded(self, delivery_ids: Sequence[str]) -> set[str]:
        """Those of these deliveries that have a record (their attempt was made, or a slot further than a
        queue delay held on it)."""
        keys = [{"delivery_id": key} for key in dict.fromkeys(delivery_ids)]
        return {str(item["delivery_id"]) for item in get_items(self._table, keys, fields=("delivery_id",))}


def _waits_of(item: dict[str, Any]) -> list[QueueWait]:
    """An item's waits, latest slot first."""
    waits = [
        QueueWait(
            delivery_id=str(entry["delivery_id"]),
            slot_at=str(entry["slot_at"]),
            origin=DeliveryOrigin.parse({**entry, "expires_at": int(entry["expires_at"])}),
        )
        for entry in item.get("waits", [])
    ]
    return sorted(waits, key=lambda wait: wait.slot_at, reverse=True)


def _waits_after(item: dict[str, Any], after: dict[str, str] | None) -> list[QueueWait]:
    """The item's waits, latest slot first; of the item `after` names, those after its delivery."""
    waits = _waits_of(item)
    if after is None or item["created_at"] != after["created_at"]:
        return waits
    ids = [wait.delivery_id for wait in waits]
    return waits[ids.index(after["delivery_id"]) + 1 :] if after["delivery_id"] in ids else waits
