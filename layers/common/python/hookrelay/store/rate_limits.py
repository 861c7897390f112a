"""The sending slots of rate-limited subscriptions, kept beside the deliveries (deliveries table)."""

import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hookrelay.rate_limit import (
    BACKLOG_LIMIT,
    SECOND_US,
    BacklogFull,
    next_free,
    slot_moment,
    slots_from,
    to_slot_us,
)

# `rate#<subscription id>`: no subscription_id or due_at attribute, so in neither of the table's indexes.
_RATE_PREFIX = "rate#"
# Kept this long after its last slot; TTL removes the item of a subscription no longer sending.
KEPT = timedelta(days=1)
_BACKLOG_LIMIT_US = BACKLOG_LIMIT // timedelta(microseconds=1)


class DynamoRateLimiter:
    """One item per rate-limited subscription holds its next free slot (`next_send_at`, unix µs).

    Taking `count` slots is one conditional UpdateItem, on one of two paths: a subscription with no
    backlog (`next_send_at` past) gets `now + count/rate` SET; one with a backlog gets `count/rate` ADDed,
    the new value returned. Which applies is guessed from the value this container last saw; a wrong guess
    costs one more write, the failed condition returning the value to go on from. Containers racing are
    ordered by DynamoDB's conditions: no slot is given twice.

    The container writes one subscription's item at most every `spacing_seconds` (a batch waits for its
    turn), its first write at a random point of its first spacing (containers started together, as Lambda
    starts five at once and up to five more a second, do not write together): with `spacing_seconds` from
    reserve_spacing_seconds for the delivery function's containers, the item takes at most
    RATE_KEY_WRITES_PER_SECOND writes a second on average, whatever the backlog and the publish rate (a
    second can take more: docs/concepts/delivery.md). A container new
    to the item reads it first (consistent GetItem), so that it guesses right.
    """

    def __init__(
        self,
        table: Any,
        *,
        spacing_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random.random,
    ):
        self._table = table
        self._spacing = spacing_seconds
        self._monotonic = monotonic
        self._sleep = sleep
        self._random = random
        self._seen_next: dict[str, int | None] = {}
        self._lock = threading.Lock()
        self._last_write: dict[str, float] = {}

    def reserve(self, subscription_id: str, rate_limit: int, count: int, now: datetime) -> list[datetime]:
        # A batch's late attempts take their slots from its threads: one at a time keeps the spacing.
        with self._lock:
            return self._reserve(subscription_id, rate_limit, count, now)

    def _reserve(self, subscription_id: str, rate_limit: int, count: int, now: datetime) -> list[datetime]:
        now_us = to_slot_us(now)
        if subscription_id in self._seen_next:
            held = self._seen_next[subscription_id]
        else:
            # A read, not a write, tells a container new to the item which update to make.
            held = self._held_next(subscription_id)
            self._last_write[subscription_id] = self._monotonic() - self._random() * self._spacing
        while True:
            # `now` moves on by the container's wait for its turn: slots are never taken in the past.
            now_us += self._paced(subscription_id)
            first, taken_to = next_free(held, now_us, rate_limit, count)
            if taken_to - now_us > _BACKLOG_LIMIT_US:
                raise BacklogFull(subscription_id)
            span = taken_to - first
            if first == now_us:
                # No backlog: the slots start now, unless another container has taken some meanwhile.
                answer = self._update(
                    subscription_id,
                    UpdateExpression="SET next_send_at = :next, expires_at = :expires",
                    ConditionExpression="attribute_not_exists(next_send_at) OR next_send_at <= :now",
                    ExpressionAttributeValues={":now": now_us, ":next": taken_to, ":expires": _expires(taken_to)},
                )
            else:
                # A backlog: the slots follow it, within BACKLOG_LIMIT of now.
                answer = self._update(
                    subscription_id,
                    UpdateExpression="ADD next_send_at :span SET expires_at = :expires",
                    ConditionExpression="next_send_at > :now AND next_send_at <= :latest",
                    ExpressionAttributeValues={
                        ":now": now_us,
                        ":span": span,
                        ":latest": now_us + _BACKLOG_LIMIT_US - span,
                        ":expires": _expires(now_us + _BACKLOG_LIMIT_US),
                    },
                    ReturnValues="UPDATED_NEW",
                )
            if isinstance(answer, dict):
                taken_to = int(answer.get("next_send_at", taken_to))
                self._seen_next[subscription_id] = taken_to
                return [slot_moment(slot) for slot in slots_from(taken_to - span, rate_limit, count)]
            held = answer

    def _held_next(self, subscription_id: str) -> int | None:
        key = {"delivery_id": _RATE_PREFIX + subscription_id}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
        return int(item["next_send_at"]) if "next_send_at" in item else None

    def _paced(self, subscription_id: str) -> int:
        """Wait for the container's turn to write the subscription's item; returns the µs waited."""
        last = self._last_write.get(subscription_id)
        wait = 0.0 if last is None else max(0.0, last + self._spacing - self._monotonic())
        if wait:
            self._sleep(wait)
        self._last_write[subscription_id] = self._monotonic()
        return int(wait * SECOND_US)

    def _update(self, subscription_id: str, **update: Any) -> dict[str, Any] | int | None:
        """The write's new attributes when made; when its condition failed, the `next_send_at` the item
        held (None: no item)."""
        try:
            response = self._table.update_item(
                Key={"delivery_id": _RATE_PREFIX + subscription_id},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **update,
            )
        except self._table.client.exceptions.ConditionalCheckFailedException as error:
            held = error.response.get("Item", {}).get("next_send_at", {}).get("N")
            return int(held) if held is not None else None
        return dict(response.get("Attributes", {}))


def _expires(last_slot_us: int) -> int:
    return int((slot_moment(last_slot_us) + KEPT).timestamp())
