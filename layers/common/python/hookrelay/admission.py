"""Admitting an attempt under its subscription's rate limit (SPEC §4): its slot, and the wait for it."""

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hookrelay import clock
from hookrelay.delivery_jobs import Job
from hookrelay.observability import log_failure
from hookrelay.outcomes import Outcome, Report
from hookrelay.queues import Queue, delivery_message
from hookrelay.rate_limit import (
    LATE,
    SLOT_LEAD,
    BacklogFull,
    RateLimiter,
    Wait,
    group_counts,
    slot_text,
    wait_for,
    waits_on_queue,
)
from hookrelay.records import Delivery
from hookrelay.retry import SWEEPER_LEASE
from hookrelay.store.cached_subscriptions import CachedTeamSubscriptions
from hookrelay.store.deliveries import DeliveryStore
from hookrelay.store.due_retries import due_shard, wait_shard
from hookrelay.store.queue_waits import QueueWait


@dataclass(frozen=True)
class Ready:
    """A message whose delivery record has been read: what an attempt starts from."""

    message_id: str
    job: Job
    delivery: Delivery
    # The queue the message came from (the delivery queue or the slow lane): where it waits for its slot, or
    # goes back to take a new one. A slow lane's wait put on the delivery queue would be moved back without
    # its delay by a container that saw the endpoint slow, and could come after its slot and take another.
    lane: Queue
    # Its rate limit's slot: held by the record, or taken for this batch; None for a subscription without
    # a rate limit, or past its backlog limit (`backlog_full`).
    slot: datetime | None = None
    backlog_full: bool = False


def _held_slot(ready: Ready) -> datetime | None:
    """The rate-limit slot the message's attempt holds, if any: the record's (status waiting, kept there by
    Admission._hold_slot), else the message's own (a first attempt's that waited on the queue)."""
    delivery = ready.delivery
    if delivery.status == "waiting" and delivery.attempt_count == ready.job.attempt - 1 and delivery.next_attempt_at:
        return clock.parse_moment(delivery.next_attempt_at)
    return clock.parse_moment(ready.job.slot_at) if ready.job.slot_at else None


def _keeps_slot_on_record(ready: Ready) -> bool:
    """Whether a slot the attempt waits for on the queue is kept on its record as well: a retry's, and a first
    attempt's whose record holds the slot it waited for in the wait index (status waiting). Its record's slot
    comes before its message's (_held_slot): left there, a slot the message came too late for would make it
    take a new one each time it came back, and never be sent while the backlog lasted. Any other first
    attempt has no record until it is made: the delivery log lists it (_list_queue_waits)."""
    return ready.job.attempt > 1 or ready.delivery.status == "waiting"


def _usable_slot(ready: Ready, now: datetime) -> datetime | None:
    """The held slot, unless it has passed by more than LATE (the message came late: sent now, it could
    meet the next slots' requests in one second; it takes a new slot instead)."""
    held = _held_slot(ready)
    return held if held is not None and now - held <= LATE else None


def is_done(ready: Ready) -> bool:
    """Whether the message's attempt was recorded already (or its delivery ended)."""
    delivery = ready.delivery
    return delivery.status in ("delivered", "failed") or delivery.attempt_count >= ready.job.attempt


class Admission:
    def __init__(
        self,
        *,
        rate_limiter: RateLimiter,
        subscriptions: CachedTeamSubscriptions,
        deliveries: DeliveryStore,
        due_shards: int,
        sleep: Callable[[float], None],
    ):
        self._rate_limiter = rate_limiter
        self._subscriptions = subscriptions
        self._deliveries = deliveries
        self._due_shards = due_shards
        self._sleep = sleep

    def with_slots(self, ready: Sequence[Ready]) -> list[Ready | Report]:
        """The batch's messages with their rate limit's slots: the one a record holds for its attempt, or
        the next ones of its subscription, taken for the batch's messages together (one write each
        subscription). A subscription's whose slots could not be taken come back (ERROR)."""
        now = clock.utc_now()
        rates = [self.needs_slot(each) for each in ready]
        taking = [(each, rate) for each, rate in zip(ready, rates, strict=True) if rate]
        rate_limits = {each.delivery.subscription_id: rate for each, rate in taking}
        counts = group_counts([each.delivery.subscription_id for each, _ in taking])
        slots: dict[str, list[datetime]] = {}
        for subscription_id, count in counts.items():
            try:
                slots[subscription_id] = self._rate_limiter.reserve(
                    subscription_id, rate_limits[subscription_id], count, now + SLOT_LEAD
                )
            except BacklogFull:
                slots[subscription_id] = []
            except Exception as error:
                log_failure(
                    "taking rate-limit slots failed; their messages will be received again",
                    error,
                    subscription_id=subscription_id,
                )
        slotted = [self._slotted(each, rate, slots, now) for each, rate in zip(ready, rates, strict=True)]
        self._list_queue_waits([each for each, rate in zip(slotted, rates, strict=True) if rate], now)
        return slotted

    def _list_queue_waits(self, took_slots: Sequence[Ready | Report], now: datetime) -> None:
        """List in the delivery log the first attempts without a record that took a slot to wait for on the
        queue, one write a subscription: they have none until their attempt (store/queue_waits.py). A listing
        that fails costs the log these entries, not the deliveries."""
        waits: dict[str, list[QueueWait]] = {}
        for each in took_slots:
            if (
                isinstance(each, Ready)
                and each.slot
                and not _keeps_slot_on_record(each)
                and waits_on_queue(each.slot, now)
            ):
                wait = QueueWait(each.delivery.id, slot_text(each.slot), each.delivery.origin())
                waits.setdefault(each.delivery.subscription_id, []).append(wait)
        for subscription_id, listed in waits.items():
            try:
                self._deliveries.list_queue_waits(listed, now)
            except Exception as error:
                log_failure("listing deliveries waiting for their slots failed", error, subscription_id=subscription_id)

    def _slotted(
        self, ready: Ready, rate: int | None, slots: dict[str, list[datetime]], now: datetime
    ) -> Ready | Report:
        """`ready` with its slot; `rate`: its needs_slot."""
        subscription_id = ready.delivery.subscription_id
        if held := _usable_slot(ready, now):
            return dataclasses.replace(ready, slot=held)
        if not rate:
            return ready
        if subscription_id not in slots:
            return Report(ready.message_id, Outcome.ERROR)
        if slots[subscription_id]:
            return dataclasses.replace(ready, slot=slots[subscription_id].pop(0))
        return dataclasses.replace(ready, backlog_full=True)

    def needs_slot(self, ready: Ready) -> int | None:
        """The rate limit of a message that needs a new slot: its attempt is to be made, to a rate-limited
        subscription, and its record holds none for it."""
        if is_done(ready) or _usable_slot(ready, clock.utc_now()):
            return None
        delivery = ready.delivery
        subscription = self._subscriptions.find(delivery.team_id, delivery.subscription_id)
        return subscription.rate_limit if subscription is not None and subscription.enabled else None

    def wait_for_slot(self, ready: Ready, now: datetime) -> Outcome | None:
        """Wait for the attempt's rate-limit slot: in the container when it is near (returns None: send),
        else on the queue it came from (ready.lane), the slot in its message (and on its record, if
        _keeps_slot_on_record: the delivery log shows it waiting), or, further than a queue delay, in the wait
        index, the slot on its record (returns WAITING). A message whose attempt starts more than LATE after
        its slot goes back on its queue to take a new one. Past the backlog limit, it is not sent
        (DROPPED_BACKLOG_FULL)."""
        job, delivery = ready.job, ready.delivery
        if ready.slot is not None and now - ready.slot > LATE:
            # Back on its queue at once, without its slot: its next batch takes a new one with the others'.
            ready.lane.send([delivery_message(delivery.id, job.attempt, team_id=delivery.team_id, origin=job.origin)])
            return Outcome.WAITING
        if ready.backlog_full or ready.slot is None:  # None: only past the backlog limit (with_slots)
            return Outcome.DROPPED_BACKLOG_FULL
        slot = ready.slot
        wait = wait_for(slot, now)
        on_its_record = wait.in_wait_index or (wait.delay_seconds > 0 and _keeps_slot_on_record(ready))
        if on_its_record and _held_slot(ready) != slot:
            held = self._hold_slot(ready, slot, wait)
            if held is None:
                return Outcome.ALREADY_DONE
            slot = clock.parse_moment(held)
            wait = wait_for(slot, now)
        if wait.in_wait_index:
            return Outcome.WAITING  # the sweeper hands it to the queue within a queue delay of its slot
        if wait.delay_seconds:
            message = delivery_message(
                delivery.id,
                job.attempt,
                team_id=delivery.team_id,
                delay_seconds=wait.delay_seconds,
                origin=job.origin,
                slot_at=slot_text(slot),
            )
            ready.lane.send([message])
            return Outcome.WAITING
        self._sleep(wait.hold_seconds)
        return None

    def _hold_slot(self, ready: Ready, slot: datetime, wait: Wait) -> str | None:
        """Keep the slot on the record, status waiting (in place of one the message came too late for):
        further than a queue delay, in the wait index, due at the slot; one on the queue, due a sweeper's
        lease after it, so that the sweeper sends it again should its message be lost (not a retry's lease,
        which can end before the slot). The slot the attempt holds; None when it was recorded meanwhile."""
        delivery, attempt = ready.delivery, ready.job.attempt
        late = delivery.next_attempt_at if delivery.status == "waiting" else None
        if wait.in_wait_index:
            due_at, shard = slot_text(slot), wait_shard(delivery.id, self._due_shards)
        else:
            due_at, shard = slot_text(slot + SWEEPER_LEASE), due_shard(delivery.id, self._due_shards)
        return self._deliveries.hold_slot(
            delivery, attempt, slot_text(slot), due_at=due_at, due_shard=shard, replacing=late
        )
